import { Worker } from 'node:worker_threads';
import {
  type AlertQuery,
  type AlertRecord,
  type ApiKeyRecord,
  type ApplyOptions,
  type ApplyResult,
  type ConflictRecord,
  type DeliveryOutcome,
  type DeliveryRecord,
  type DeliveryStatus,
  type ErrorCode,
  type ModelPriceEntry,
  type NewAlert,
  type PricedEvent,
  type Project,
  type PruneOptions,
  type PruneResult,
  type Rule,
  type RuleChange,
  type RuleCounter,
  type Store,
  TokenwatchError,
  type UsageQuery,
  type UsageRow,
  type UserSearch,
  userSearchQuery,
} from '@tokenwatch/core';
import { createPrivateDatabaseFile, isOnDisk } from '../../../util/private-files.js';
import { EnforcedCounters } from './enforced-counters.js';
import { encodeEvents } from './event-log.js';
import type { CheckpointerData, CheckpointReport } from './sqlite-checkpointer.js';
import type { SqliteApplyResult } from './sqlite-database.js';
import { DEFAULT_MAX_WAL_MIB, type SqliteStoreOptions } from './sqlite-options.js';
import type { WriterReport } from './sqlite-worker.js';
import { emptyFoldStats, recordFold, type WalMonitor, type WalStatus } from './wal-monitor.js';

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: {
    code: ErrorCode;
    message: string;
    retryable: boolean;
    details: TokenwatchError['details'];
    context: Record<string, unknown>;
  };
}

/**
 * The SQLite adapter running in a worker thread: the same `SqliteDatabase`, called through
 * messages. On a 2-core machine the HTTP thread (parse, validate, price) and the writer thread
 * (transactions) then run in parallel. Calls are answered in order; the store's semantics are
 * unchanged (the contract suite runs against this class too).
 */
export class ThreadedSqliteStore implements Store, WalMonitor {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: unknown) => void }
  >();
  private failure: Error | undefined;

  private readonly checkpointer: Worker | undefined;
  /** Enforcing counters read on this thread (on-disk files only; see EnforcedCounters). */
  private readonly enforced: EnforcedCounters | undefined;
  private readonly wal: WalStatus = { walBytes: 0, checkpointFailures: 0, folds: emptyFoldStats() };
  /** Called on each failed checkpoint (the server logs it); failures are counted regardless. */
  onCheckpointFailure: ((message: string, code: string | undefined) => void) | undefined;

  constructor(
    options: SqliteStoreOptions,
    workerUrl: URL = new URL('./sqlite-worker.js', import.meta.url),
  ) {
    const onDisk = isOnDisk(options.path);
    // Before either thread opens it: the checkpointer may be first, and SQLite would make it 0644.
    if (onDisk) createPrivateDatabaseFile(options.path);
    this.enforced = onDisk ? new EnforcedCounters(options.path) : undefined;
    this.worker = new Worker(workerUrl, {
      workerData: { ...options, externalCheckpoints: onDisk },
    });
    // WAL checkpoints on a third thread, so the writer's commits never wait for one.
    const checkpointerData: CheckpointerData = {
      path: options.path,
      intervalMs: 200,
      maxWalBytes: (options.maxWalMiB ?? DEFAULT_MAX_WAL_MIB) * 1024 * 1024,
    };
    this.checkpointer = onDisk
      ? new Worker(new URL('./sqlite-checkpointer.js', workerUrl), {
          workerData: checkpointerData,
        })
      : undefined;
    this.checkpointer?.on('message', (message: CheckpointReport) => {
      if (message.type === 'wal') this.wal.walBytes = message.walBytes;
      else if (message.type === 'failure') this.checkpointFailed(message.message, message.code);
    });
    this.checkpointer?.on('error', (err) => {
      // The writer still works without checkpoints, but the WAL then grows: say so.
      this.checkpointFailed(`checkpointer thread failed: ${err.message}`, undefined);
    });
    this.worker.on('message', (reply: Reply | WriterReport) => {
      if ('type' in reply) {
        if (reply.type === 'fold') recordFold(this.wal.folds, reply.seconds, reply.events);
        else this.checkpointFailed(`writer: ${reply.message}`, reply.code);
        return;
      }
      const call = this.pending.get(reply.id);
      if (!call) return;
      this.pending.delete(reply.id);
      if (reply.ok) call.resolve(reply.result);
      else {
        const e = reply.error;
        call.reject(
          new TokenwatchError(e?.code ?? 'internal', e?.message ?? 'store error', {
            retryable: e?.retryable ?? false,
            details: e?.details ?? [],
            context: e?.context ?? {},
          }),
        );
      }
    });
    const failAll = (err: Error) => {
      this.failure = err;
      for (const call of this.pending.values()) {
        call.reject(
          new TokenwatchError('unavailable', `SQLite writer thread failed: ${err.message}`, {
            cause: err,
          }),
        );
      }
      this.pending.clear();
    };
    this.worker.on('error', failAll);
    this.worker.on('exit', (code) => {
      if (this.pending.size > 0) failAll(new Error(`exited with code ${code}`));
    });
  }

  walStatus(): WalStatus {
    return { ...this.wal, folds: { ...this.wal.folds } };
  }

  private checkpointFailed(message: string, code: string | undefined): void {
    this.wal.checkpointFailures++;
    this.onCheckpointFailure?.(message, code);
  }

  private call<T>(method: string, ...args: unknown[]): Promise<T> {
    if (this.failure) {
      return Promise.reject(
        new TokenwatchError('unavailable', `SQLite writer thread failed: ${this.failure.message}`),
      );
    }
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, method, args });
    });
  }

  async migrate(): Promise<void> {
    await this.call('migrate');
    this.enforced?.open();
  }
  async applyBatch(events: readonly PricedEvent[], options: ApplyOptions): Promise<ApplyResult> {
    // Encoded here, on the HTTP thread: a string crosses to the writer far cheaper than the
    // events' objects (a structured clone each), and it is the log row the writer appends.
    let encoded: string;
    try {
      encoded = encodeEvents(events);
    } catch (err) {
      throw new TokenwatchError(
        'internal',
        `events could not be encoded: ${(err as Error).message}`,
      );
    }
    const { counterGeneration, ...result } = await this.call<SqliteApplyResult>(
      'applyEncodedBatch',
      encoded,
      options,
    );
    // Before the caller sends the 202: a check from now on counts these events.
    this.enforced?.committed(counterGeneration, result.enforcedCounters);
    return result;
  }
  queryUsage(query: UsageQuery): Promise<UsageRow[]> {
    return this.call('queryUsage', query);
  }
  searchUsers(search: UserSearch): Promise<UsageRow[]> {
    return this.queryUsage(userSearchQuery(search));
  }

  countGroups(query: UsageQuery): Promise<number> {
    return this.call('countGroups', query);
  }
  listConflicts(projectId: string, limit: number): Promise<ConflictRecord[]> {
    return this.call('listConflicts', projectId, limit);
  }
  prune(options: PruneOptions): Promise<PruneResult> {
    return this.call('prune', options);
  }
  createProject(project: Project): Promise<void> {
    return this.call('createProject', project);
  }
  getProject(id: string): Promise<Project | undefined> {
    return this.call('getProject', id);
  }
  listProjects(): Promise<Project[]> {
    return this.call('listProjects');
  }
  createKey(key: ApiKeyRecord): Promise<void> {
    return this.call('createKey', key);
  }
  findKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    return this.call('findKeyByHash', hash);
  }
  listKeys(projectId: string): Promise<ApiKeyRecord[]> {
    return this.call('listKeys', projectId);
  }
  revokeKey(projectId: string, keyId: string, nowMs: number): Promise<boolean> {
    return this.call('revokeKey', projectId, keyId, nowMs);
  }
  listPriceOverrides(projectId: string): Promise<ModelPriceEntry[]> {
    return this.call('listPriceOverrides', projectId);
  }
  putPriceOverride(projectId: string, entry: ModelPriceEntry): Promise<void> {
    return this.call('putPriceOverride', projectId, entry);
  }
  deletePriceOverride(
    projectId: string,
    provider: string,
    modelId: string,
    effectiveFrom: string,
  ): Promise<boolean> {
    return this.call('deletePriceOverride', projectId, provider, modelId, effectiveFrom);
  }
  createRule(rule: Rule, nowMs: number): Promise<RuleChange> {
    return this.call('createRule', rule, nowMs);
  }
  updateRule(rule: Rule, nowMs: number): Promise<RuleChange | undefined> {
    return this.call('updateRule', rule, nowMs);
  }
  deleteRule(projectId: string, ruleId: string): Promise<boolean> {
    return this.call('deleteRule', projectId, ruleId);
  }
  getRule(projectId: string, ruleId: string): Promise<Rule | undefined> {
    return this.call('getRule', projectId, ruleId);
  }
  listRules(projectId?: string): Promise<Rule[]> {
    return this.call('listRules', projectId);
  }
  readCounters(
    ruleId: string,
    fromMs: number,
    toMs: number,
    scopeKey?: string,
  ): Promise<RuleCounter[]> {
    return this.call('readCounters', ruleId, fromMs, toMs, scopeKey);
  }
  readEnforcedCounters(
    counterKey: string,
    fromMs: number,
    toMs: number,
    scopeKey: string,
  ): RuleCounter[] | undefined {
    return this.enforced?.read(counterKey, fromMs, toMs, scopeKey);
  }
  fireAlerts(alerts: readonly NewAlert[], nowMs: number): Promise<NewAlert[]> {
    return this.call('fireAlerts', alerts, nowMs);
  }
  listAlerts(query: AlertQuery): Promise<AlertRecord[]> {
    return this.call('listAlerts', query);
  }
  acknowledgeAlert(projectId: string, alertId: string, nowMs: number): Promise<boolean> {
    return this.call('acknowledgeAlert', projectId, alertId, nowMs);
  }
  claimDeliveries(nowMs: number, limit: number, leaseMs: number): Promise<DeliveryRecord[]> {
    return this.call('claimDeliveries', nowMs, limit, leaseMs);
  }
  completeDelivery(id: string, outcome: DeliveryOutcome, nowMs: number): Promise<void> {
    return this.call('completeDelivery', id, outcome, nowMs);
  }
  listDeliveries(
    projectId: string,
    filter: { alertId?: string | undefined; status?: DeliveryStatus | undefined },
    limit: number,
  ): Promise<DeliveryRecord[]> {
    return this.call('listDeliveries', projectId, filter, limit);
  }
  async close(): Promise<void> {
    this.enforced?.close();
    await this.stopCheckpointer();
    if (this.failure) return;
    await this.call('close');
    await this.worker.terminate();
  }

  private async stopCheckpointer(): Promise<void> {
    const checkpointer = this.checkpointer;
    if (!checkpointer) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2_000);
      checkpointer.on('message', (message: CheckpointReport) => {
        if (message.type !== 'stopped') return;
        clearTimeout(timer);
        resolve();
      });
      checkpointer.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      checkpointer.postMessage('stop');
    });
    await checkpointer.terminate();
  }
}
