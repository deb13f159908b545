import type { PricedEvent } from '../event/usage-event.js';
import type { UsageQuery, UsageRow, UserSearch } from '../query/usage-query.js';
import type { NewAlert } from '../rules/evaluate.js';
import type { DeliveryRecord, RuleCounter } from './rule-store.js';

/** What happened to one event of a batch. */
export const EventOutcome = {
  /** New id: counted in every rollup. */
  Accepted: 0,
  /** Id already applied with the same payload: counted nothing (a redelivery or retry). */
  Duplicate: 1,
  /** Id already applied with a different payload: the first wins; recorded as a conflict. */
  Conflict: 2,
} as const;
export type EventOutcome = (typeof EventOutcome)[keyof typeof EventOutcome];

export interface ApplyResult {
  accepted: number;
  duplicates: number;
  conflicts: number;
  /** One outcome per input event, in input order. */
  outcomes: EventOutcome[];
  /** Alerts this batch created (each exists once: a redelivery or a second flush cannot add it again). */
  alerts: NewAlert[];
  /** New values of the counters of enforcing rules this batch touched (for POST /v1/check). */
  enforcedCounters: RuleCounter[];
  /**
   * The deliveries of this batch's alerts, created already leased to the calling process, for
   * its dispatcher to send at once without a claim (status `sending`, the lease ending at
   * `nextAttemptMs`). Only from a store asked to (SQLite's `leaseNewDeliveriesMs`); otherwise
   * absent, and new deliveries wait in the outbox for a claim.
   */
  leasedDeliveries?: DeliveryRecord[];
}

export interface ApplyOptions {
  /**
   * Wall-clock time of the apply, epoch ms: stamps rollups' first/last update and conflicts,
   * and decides which alerts are late. The batch is evaluated against the enabled rules the
   * store holds when its transaction runs (see RuleStore).
   */
  nowMs: number;
}

export interface ConflictRecord {
  projectId: string;
  eventId: string;
  firstFingerprint: string;
  conflictingFingerprint: string;
  seenAtMs: number;
}

export interface PruneOptions {
  nowMs: number;
  /** Minute rollups older than this are deleted (default 7 days). */
  minuteRetentionMs: number;
  /**
   * Event ids whose event time is older than this are forgotten. Must be longer than the
   * accepted lateness (35 days): an older redelivery is refused by validation anyway, so
   * it can never be counted twice.
   */
  dedupeRetentionMs: number;
  /**
   * The history: alerts, finished deliveries (delivered or dead), conflicts and queue poison
   * messages older than this are deleted (default 90 days). An alert goes once its window ended
   * and it fired before the cutoff, and once none of its deliveries is left. Must exceed the
   * accepted lateness (35 days), so an alert deleted can never fire again for its window.
   */
  historyRetentionMs: number;
}

export interface PruneResult {
  minuteRowsDeleted: number;
  eventIdsDeleted: number;
  alertsDeleted: number;
  deliveriesDeleted: number;
  conflictsDeleted: number;
  /** Stores that keep the scale-out queue's poison messages (PostgreSQL). */
  poisonMessagesDeleted?: number;
}

/**
 * The usage store: exact, idempotent aggregation.
 *
 * Contract (checked by `runStoreContract` for every adapter):
 * - `applyBatch` is ONE transaction: for each event it claims the (project, id) pair under a
 *   unique constraint, and only events that claimed a new id are added to the minute, hour and
 *   day rollups (and tag rollups). If it throws, nothing of the batch is applied, and the
 *   caller may retry the whole batch: the result is the same as applying it once.
 * - Buckets come from the event time, in UTC. A late event lands in its own (past) bucket.
 * - Same id twice within one batch: the first occurrence wins, the second is a duplicate or a
 *   conflict exactly as if it had come in a later batch.
 * - Reads are confined to `query.projectId`; no query can reach another project's rows.
 * - Errors: a failure the caller may retry (busy, I/O, connection) is a `TokenwatchError`
 *   with code `unavailable` (retryable); anything else is `internal`.
 */
export interface UsageStore {
  applyBatch(events: readonly PricedEvent[], options: ApplyOptions): Promise<ApplyResult>;
  queryUsage(query: UsageQuery): Promise<UsageRow[]>;
  /**
   * How many rows `queryUsage` returns for the query without its limit: with `groupBy: ['user']`,
   * the active users of the range, however many there are.
   */
  countGroups(query: UsageQuery): Promise<number>;
  /**
   * Users of `search.projectId` with a call counted in the range whose id starts with
   * `search.prefix` — all of them, not only the top ones — as `queryUsage(userSearchQuery(search))`
   * answers: one row per user (`user` set), most tokens first, ties by id, at most `limit`.
   */
  searchUsers(search: UserSearch): Promise<UsageRow[]>;
  /** Most recent conflicts of a project, newest first. */
  listConflicts(projectId: string, limit: number): Promise<ConflictRecord[]>;
  prune(options: PruneOptions): Promise<PruneResult>;
}
