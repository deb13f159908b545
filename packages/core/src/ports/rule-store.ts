import type { NewAlert } from '../rules/evaluate.js';
import type { ChannelConfig, Rule } from '../rules/rule.js';
import type { AlertMessage } from './notifier.js';

export interface AlertRecord extends NewAlert {
  acknowledgedAtMs: number | undefined;
}

export interface AlertQuery {
  projectId: string;
  ruleId?: string | undefined;
  /** Alerts fired at or after this instant. */
  sinceMs?: number | undefined;
  acknowledged?: boolean | undefined;
  limit: number;
}

export type DeliveryStatus = 'pending' | 'sending' | 'delivered' | 'dead';

export interface DeliveryRecord {
  /** Stable across retries: receivers drop repeats by it (webhook-id). */
  id: string;
  alertId: string;
  projectId: string;
  channelIndex: number;
  channel: ChannelConfig;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptMs: number;
  lastError: string | undefined;
  createdAtMs: number;
  updatedAtMs: number;
  deliveredAtMs: number | undefined;
  message: AlertMessage;
}

export type DeliveryOutcome =
  | { status: 'delivered' }
  | { status: 'retry'; nextAttemptMs: number; error: string }
  | { status: 'dead'; error: string };

/** The value of one rule counter bucket. */
export interface RuleCounter {
  /** The counter key (`counterKeyOf(rule)`): rules that measure the same thing share counters. */
  ruleId: string;
  scopeKey: string;
  /** Calendar window start, or the minute for rolling windows. */
  bucketStartMs: number;
  value: number;
}

/**
 * Rules, their counters, alerts and the delivery outbox.
 *
 * Counters are written by `applyBatch` (see UsageStore) in the same transaction as the
 * rollups; an alert row is unique per (rule, scope key, window start, level) and its delivery
 * rows are inserted in that same transaction, so an alert exists exactly once and is never
 * without its deliveries.
 */
export interface RuleStore {
  /**
   * Stores a new rule. Unless another enabled rule already keeps its counters current (same
   * `counterKeyOf`), seeds the counters of the CURRENT window from the rollups, so a rule created
   * mid-window starts from the window's totals (and does not fire for the past).
   */
  createRule(rule: Rule, nowMs: number): Promise<void>;
  /**
   * Replaces a rule. When what it measures changed (scope, filters, metric, window) or it is
   * re-enabled, the current window of its counters is re-seeded from the rollups (unless another
   * enabled rule keeps those counters current). False when there is no such rule. Counters are
   * never deleted with a rule (others may share them); `prune` removes old buckets.
   */
  updateRule(rule: Rule, nowMs: number): Promise<boolean>;
  deleteRule(projectId: string, ruleId: string): Promise<boolean>;
  getRule(projectId: string, ruleId: string): Promise<Rule | undefined>;
  /** All rules of a project, or of every project when `projectId` is undefined. */
  listRules(projectId?: string): Promise<Rule[]>;
  /** Counter buckets of a counter key (`counterKeyOf(rule)`) with bucketStart in [fromMs, toMs). */
  readCounters(counterKey: string, fromMs: number, toMs: number): Promise<RuleCounter[]>;

  listAlerts(query: AlertQuery): Promise<AlertRecord[]>;
  acknowledgeAlert(projectId: string, alertId: string, nowMs: number): Promise<boolean>;

  /**
   * Leases up to `limit` deliveries that are due (pending with nextAttempt ≤ now, or `sending`
   * whose lease expired: a dispatcher that crashed mid-send), marking them `sending` until
   * now + leaseMs and counting the attempt. Two dispatchers never lease the same delivery.
   */
  claimDeliveries(nowMs: number, limit: number, leaseMs: number): Promise<DeliveryRecord[]>;
  completeDelivery(id: string, outcome: DeliveryOutcome, nowMs: number): Promise<void>;
  listDeliveries(
    projectId: string,
    filter: { alertId?: string | undefined; status?: DeliveryStatus | undefined },
    limit: number,
  ): Promise<DeliveryRecord[]>;
}
