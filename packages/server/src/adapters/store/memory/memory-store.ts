import {
  type AlertQuery,
  type AlertRecord,
  type ApiKeyRecord,
  type ApplyOptions,
  type ApplyResult,
  addMeasures,
  aggregateEvents,
  type ConflictRecord,
  type DeliveryOutcome,
  type DeliveryRecord,
  type DeliveryStatus,
  EventOutcome,
  groupRollups,
  type ModelPriceEntry,
  type NewAlert,
  type PricedEvent,
  type Project,
  type PruneOptions,
  type PruneResult,
  type RollupDelta,
  type Rule,
  type RuleChange,
  type RuleCounter,
  type Store,
  type TagRollupDelta,
  TokenwatchError,
  type UsageQuery,
  type UsageRow,
  type UserSearch,
  userSearchQuery,
} from '@tokenwatch/core';
import { MemoryRules } from './memory-rules.js';

interface StoredRollup extends RollupDelta {
  tagKey?: string;
  tagValue?: string;
}

/** Rollup rows by project, then by key: queries read one project's rows only. */
type Table = Map<string, Map<string, StoredRollup>>;

/**
 * The in-memory twin of the store: same contract, no persistence. Used by tests of the layers
 * above the store and as the reference the contract suite holds every adapter to.
 */
export class MemoryStore implements Store {
  private readonly eventIds = new Map<string, { fingerprint: string; eventMs: number }>();
  private readonly conflicts: ConflictRecord[] = [];
  private readonly tables: Record<'minute' | 'hour' | 'day' | 'tagHour' | 'tagDay', Table> = {
    minute: new Map(),
    hour: new Map(),
    day: new Map(),
    tagHour: new Map(),
    tagDay: new Map(),
  };
  private readonly projects = new Map<string, Project>();
  private readonly keys = new Map<string, ApiKeyRecord>();
  private readonly prices = new Map<string, ModelPriceEntry>();
  private readonly ruleState = new MemoryRules();
  /** Set by tests to make the next applyBatch fail half-way, as a crashed transaction would. */
  failNextApply: Error | undefined;

  async migrate(): Promise<void> {}

  async applyBatch(events: readonly PricedEvent[], options: ApplyOptions): Promise<ApplyResult> {
    // Work on a staging copy of the claims so a failure leaves nothing behind (atomicity).
    const claimed = new Map<string, { fingerprint: string; eventMs: number }>();
    const outcomes: EventOutcome[] = [];
    const fresh: PricedEvent[] = [];
    const newConflicts: ConflictRecord[] = [];
    let duplicates = 0;
    for (const e of events) {
      const key = `${e.projectId}\u0000${e.id}`;
      const first = this.eventIds.get(key) ?? claimed.get(key);
      if (!first) {
        claimed.set(key, { fingerprint: e.fingerprint, eventMs: e.timestampMs });
        outcomes.push(EventOutcome.Accepted);
        fresh.push(e);
      } else if (first.fingerprint === e.fingerprint) {
        outcomes.push(EventOutcome.Duplicate);
        duplicates++;
      } else {
        outcomes.push(EventOutcome.Conflict);
        newConflicts.push({
          projectId: e.projectId,
          eventId: e.id,
          firstFingerprint: first.fingerprint,
          conflictingFingerprint: e.fingerprint,
          seenAtMs: options.nowMs,
        });
      }
    }
    const evaluated = this.ruleState.evaluate(fresh, options.nowMs);
    const failure = this.failNextApply;
    if (failure) {
      this.failNextApply = undefined;
      throw new TokenwatchError('unavailable', failure.message, { cause: failure });
    }
    evaluated.commit();
    const deltas = aggregateEvents(fresh);
    for (const [k, v] of claimed) this.eventIds.set(k, v);
    this.conflicts.push(...newConflicts);
    this.merge(this.tables.minute, deltas.minute);
    this.merge(this.tables.hour, deltas.hour);
    this.merge(this.tables.day, deltas.day);
    this.merge(this.tables.tagHour, deltas.tagHour);
    this.merge(this.tables.tagDay, deltas.tagDay);
    return {
      accepted: fresh.length,
      duplicates,
      conflicts: newConflicts.length,
      outcomes,
      alerts: evaluated.alerts,
      enforcedCounters: evaluated.enforcedCounters,
    };
  }

  private merge(table: Table, rows: readonly (RollupDelta | TagRollupDelta)[]): void {
    for (const d of rows) {
      const tag = 'tagKey' in d ? `\u0000${d.tagKey}\u0000${d.tagValue}` : '';
      const key = `${d.bucketMs}${tag}\u0000${d.userId}\u0000${d.appId}\u0000${d.modelId}\u0000${d.provider}`;
      let rows = table.get(d.projectId);
      if (!rows) {
        rows = new Map();
        table.set(d.projectId, rows);
      }
      const existing = rows.get(key);
      if (existing) {
        addMeasures(existing, d);
      } else {
        rows.set(key, { ...d });
      }
    }
  }

  async queryUsage(q: UsageQuery): Promise<UsageRow[]> {
    return this.query(q);
  }

  private query(q: UsageQuery): UsageRow[] {
    const usesTags = q.tagFilter !== undefined || q.groupBy.some((g) => g.startsWith('tag:'));
    const table = usesTags
      ? q.resolution === 'day'
        ? this.tables.tagDay
        : this.tables.tagHour
      : this.tables[q.resolution];
    const inRange = [...(table.get(q.projectId)?.values() ?? [])].filter(
      (r) => r.bucketMs >= q.fromMs && r.bucketMs < q.toMs,
    );
    return groupRollups(q, inRange);
  }

  async searchUsers(search: UserSearch): Promise<UsageRow[]> {
    return this.query(userSearchQuery(search));
  }

  async countGroups(q: UsageQuery): Promise<number> {
    return (await this.queryUsage({ ...q, limit: Number.MAX_SAFE_INTEGER })).length;
  }

  async listConflicts(projectId: string, limit: number): Promise<ConflictRecord[]> {
    return this.conflicts
      .filter((c) => c.projectId === projectId)
      .reverse()
      .slice(0, limit);
  }

  async prune(options: PruneOptions): Promise<PruneResult> {
    let minuteRowsDeleted = 0;
    for (const rows of this.tables.minute.values()) {
      for (const [k, r] of rows) {
        if (r.bucketMs < options.nowMs - options.minuteRetentionMs) {
          rows.delete(k);
          minuteRowsDeleted++;
        }
      }
    }
    let eventIdsDeleted = 0;
    for (const [k, v] of this.eventIds) {
      if (v.eventMs < options.nowMs - options.dedupeRetentionMs) {
        this.eventIds.delete(k);
        eventIdsDeleted++;
      }
    }
    this.ruleState.pruneCounters(options.nowMs - options.dedupeRetentionMs - 32 * 86_400_000);
    const historyCutoff = options.nowMs - options.historyRetentionMs;
    const conflictsBefore = this.conflicts.length;
    const kept = this.conflicts.filter((c) => c.seenAtMs >= historyCutoff);
    this.conflicts.splice(0, this.conflicts.length, ...kept);
    return {
      minuteRowsDeleted,
      eventIdsDeleted,
      ...this.ruleState.pruneHistory(historyCutoff),
      conflictsDeleted: conflictsBefore - kept.length,
    };
  }

  async createProject(project: Project): Promise<void> {
    if (this.projects.has(project.id)) {
      throw new TokenwatchError('conflict', `project "${project.id}" already exists`);
    }
    this.projects.set(project.id, { ...project });
  }
  async getProject(id: string): Promise<Project | undefined> {
    const p = this.projects.get(id);
    return p ? { ...p } : undefined;
  }
  async listProjects(): Promise<Project[]> {
    return [...this.projects.values()]
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((p) => ({ ...p }));
  }
  async createKey(key: ApiKeyRecord): Promise<void> {
    if (!this.projects.has(key.projectId)) {
      throw new TokenwatchError('not_found', `project "${key.projectId}" does not exist`);
    }
    if (this.keys.has(key.id) || [...this.keys.values()].some((k) => k.hash === key.hash)) {
      throw new TokenwatchError('conflict', 'a key with this id or hash already exists');
    }
    this.keys.set(key.id, { ...key });
  }
  async findKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const k = [...this.keys.values()].find((key) => key.hash === hash);
    return k ? { ...k } : undefined;
  }
  async listKeys(projectId: string): Promise<ApiKeyRecord[]> {
    return [...this.keys.values()]
      .filter((k) => k.projectId === projectId)
      .sort((a, b) => a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : 1))
      .map((k) => ({ ...k }));
  }
  async revokeKey(projectId: string, keyId: string, nowMs: number): Promise<boolean> {
    const k = this.keys.get(keyId);
    if (!k || k.projectId !== projectId) return false;
    k.revokedAtMs ??= nowMs;
    return true;
  }
  async listPriceOverrides(projectId: string): Promise<ModelPriceEntry[]> {
    return [...this.prices.entries()]
      .filter(([k]) => k.startsWith(`${projectId}\u0000`))
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([, v]) => ({ ...v }));
  }
  async putPriceOverride(projectId: string, entry: ModelPriceEntry): Promise<void> {
    if (!this.projects.has(projectId)) {
      throw new TokenwatchError('not_found', `project "${projectId}" does not exist`);
    }
    this.prices.set(
      `${projectId}\u0000${entry.provider}\u0000${entry.modelId}\u0000${entry.effectiveFrom}`,
      { ...entry },
    );
  }
  async deletePriceOverride(
    projectId: string,
    provider: string,
    modelId: string,
    effectiveFrom: string,
  ): Promise<boolean> {
    return this.prices.delete(
      `${projectId}\u0000${provider}\u0000${modelId}\u0000${effectiveFrom}`,
    );
  }
  async createRule(rule: Rule, nowMs: number): Promise<RuleChange> {
    return this.ruleState.createRule(
      rule,
      nowMs,
      (q) => this.query(q),
      this.projects.has(rule.projectId),
    );
  }
  async updateRule(rule: Rule, nowMs: number): Promise<RuleChange | undefined> {
    return this.ruleState.updateRule(rule, nowMs, (q) => this.query(q));
  }
  async deleteRule(projectId: string, ruleId: string): Promise<boolean> {
    return this.ruleState.deleteRule(projectId, ruleId);
  }
  async getRule(projectId: string, ruleId: string): Promise<Rule | undefined> {
    return this.ruleState.getRule(projectId, ruleId);
  }
  async listRules(projectId?: string): Promise<Rule[]> {
    return this.ruleState.listRules(projectId);
  }
  async readCounters(
    ruleId: string,
    fromMs: number,
    toMs: number,
    scopeKey?: string,
  ): Promise<RuleCounter[]> {
    return this.ruleState.readCounters(ruleId, fromMs, toMs, scopeKey);
  }
  async fireAlerts(alerts: readonly NewAlert[], nowMs: number): Promise<NewAlert[]> {
    return this.ruleState.insertAlerts(alerts, nowMs);
  }
  async listAlerts(query: AlertQuery): Promise<AlertRecord[]> {
    return this.ruleState.listAlerts(query);
  }
  async acknowledgeAlert(projectId: string, alertId: string, nowMs: number): Promise<boolean> {
    return this.ruleState.acknowledgeAlert(projectId, alertId, nowMs);
  }
  async claimDeliveries(nowMs: number, limit: number, leaseMs: number): Promise<DeliveryRecord[]> {
    return this.ruleState.claimDeliveries(nowMs, limit, leaseMs);
  }
  async completeDelivery(id: string, outcome: DeliveryOutcome, nowMs: number): Promise<void> {
    this.ruleState.completeDelivery(id, outcome, nowMs);
  }
  async listDeliveries(
    projectId: string,
    filter: { alertId?: string | undefined; status?: DeliveryStatus | undefined },
    limit: number,
  ): Promise<DeliveryRecord[]> {
    return this.ruleState.listDeliveries(projectId, filter, limit);
  }

  async close(): Promise<void> {}
}
