import type {
  AlertQuery,
  AlertRecord,
  ApiKeyRecord,
  ApplyOptions,
  ApplyResult,
  ConflictRecord,
  DeliveryOutcome,
  DeliveryRecord,
  DeliveryStatus,
  ModelPriceEntry,
  NewAlert,
  PricedEvent,
  Project,
  PruneOptions,
  PruneResult,
  Rule,
  RuleChange,
  RuleCounter,
  Store,
  UsageQuery,
  UsageRow,
  UserSearch,
} from '@tokenwatch/core';
import { userSearchQuery } from '@tokenwatch/core';
import { SqliteDatabase } from './sqlite-database.js';
import type { SqliteStoreOptions } from './sqlite-options.js';
import type { WalMonitor, WalStatus } from './wal-monitor.js';

export type { SqliteStoreOptions } from './sqlite-options.js';

/** The SQLite adapter of the `Store` port, in the calling thread. */
export class SqliteStore implements Store, WalMonitor {
  readonly database: SqliteDatabase;

  constructor(options: SqliteStoreOptions) {
    this.database = new SqliteDatabase(options);
  }

  walStatus(): WalStatus {
    return {
      walBytes: this.database.walBytes(),
      checkpointFailures: this.database.checkpointFailures,
      folds: { ...this.database.foldStats },
    };
  }
  get onCheckpointFailure() {
    return this.database.onCheckpointFailure;
  }
  set onCheckpointFailure(listener:
    | ((message: string, code: string | undefined) => void)
    | undefined) {
    this.database.onCheckpointFailure = listener;
  }

  async migrate(): Promise<void> {
    this.database.migrate();
  }
  async applyBatch(events: readonly PricedEvent[], options: ApplyOptions): Promise<ApplyResult> {
    const { counterGeneration: _, ...result } = this.database.applyBatch(events, options);
    return result;
  }
  async queryUsage(query: UsageQuery): Promise<UsageRow[]> {
    return this.database.queryUsage(query);
  }
  async searchUsers(search: UserSearch): Promise<UsageRow[]> {
    return this.database.queryUsage(userSearchQuery(search));
  }

  async countGroups(query: UsageQuery): Promise<number> {
    return this.database.countGroups(query);
  }
  async listConflicts(projectId: string, limit: number): Promise<ConflictRecord[]> {
    return this.database.listConflicts(projectId, limit);
  }
  async prune(options: PruneOptions): Promise<PruneResult> {
    return this.database.prune(options);
  }
  async createProject(project: Project): Promise<void> {
    this.database.projects().createProject(project);
  }
  async getProject(id: string): Promise<Project | undefined> {
    return this.database.projects().getProject(id);
  }
  async listProjects(): Promise<Project[]> {
    return this.database.projects().listProjects();
  }
  async createKey(key: ApiKeyRecord): Promise<void> {
    this.database.projects().createKey(key);
  }
  async findKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    return this.database.projects().findKeyByHash(hash);
  }
  async listKeys(projectId: string): Promise<ApiKeyRecord[]> {
    return this.database.projects().listKeys(projectId);
  }
  async revokeKey(projectId: string, keyId: string, nowMs: number): Promise<boolean> {
    return this.database.projects().revokeKey(projectId, keyId, nowMs);
  }
  async listPriceOverrides(projectId: string): Promise<ModelPriceEntry[]> {
    return this.database.projects().listPriceOverrides(projectId);
  }
  async putPriceOverride(projectId: string, entry: ModelPriceEntry): Promise<void> {
    this.database.projects().putPriceOverride(projectId, entry);
  }
  async deletePriceOverride(
    projectId: string,
    provider: string,
    modelId: string,
    effectiveFrom: string,
  ): Promise<boolean> {
    return this.database
      .projects()
      .deletePriceOverride(projectId, provider, modelId, effectiveFrom);
  }
  async createRule(rule: Rule, nowMs: number): Promise<RuleChange> {
    return this.database.createRule(rule, nowMs);
  }
  async updateRule(rule: Rule, nowMs: number): Promise<RuleChange | undefined> {
    return this.database.updateRule(rule, nowMs);
  }
  async deleteRule(projectId: string, ruleId: string): Promise<boolean> {
    return this.database.deleteRule(projectId, ruleId);
  }
  async getRule(projectId: string, ruleId: string): Promise<Rule | undefined> {
    return this.database.rulesEngine().getRule(projectId, ruleId);
  }
  async listRules(projectId?: string): Promise<Rule[]> {
    return this.database.rulesEngine().listRules(projectId);
  }
  async readCounters(
    ruleId: string,
    fromMs: number,
    toMs: number,
    scopeKey?: string,
  ): Promise<RuleCounter[]> {
    return this.database.readCounters(ruleId, fromMs, toMs, scopeKey);
  }
  async fireAlerts(alerts: readonly NewAlert[], nowMs: number): Promise<NewAlert[]> {
    return this.database.rulesEngine().fireAlerts(alerts, nowMs);
  }
  async listAlerts(query: AlertQuery): Promise<AlertRecord[]> {
    return this.database.rulesEngine().listAlerts(query);
  }
  async acknowledgeAlert(projectId: string, alertId: string, nowMs: number): Promise<boolean> {
    return this.database.rulesEngine().acknowledgeAlert(projectId, alertId, nowMs);
  }
  async claimDeliveries(nowMs: number, limit: number, leaseMs: number): Promise<DeliveryRecord[]> {
    return this.database.rulesEngine().claimDeliveries(nowMs, limit, leaseMs);
  }
  async completeDelivery(id: string, outcome: DeliveryOutcome, nowMs: number): Promise<void> {
    this.database.rulesEngine().completeDelivery(id, outcome, nowMs);
  }
  async listDeliveries(
    projectId: string,
    filter: { alertId?: string | undefined; status?: DeliveryStatus | undefined },
    limit: number,
  ): Promise<DeliveryRecord[]> {
    return this.database.rulesEngine().listDeliveries(projectId, filter, limit);
  }
  async close(): Promise<void> {
    this.database.close();
  }
}
