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

/** What saving a rule did: the rule as stored, and the alerts it fired on starting to count. */
export interface RuleChange {
  /** With `countingSinceMs` set by the store (see `activate`). */
  rule: Rule;
  /** The levels the rule's counted windows had already reached when it started counting. */
  alerts: NewAlert[];
}

/**
 * Rules, their counters, alerts and the delivery outbox.
 *
 * Every store follows the rule engine of core (`planBatch`, `findCrossings`, `activate`,
 * `seedQueries`, `crossingsAtStart`): counters are written by `applyBatch` (see UsageStore) in
 * the same transaction as the rollups, evaluating the rules the store holds at that moment; an
 * alert row is unique per (rule, scope key, window start, level) and its delivery rows are
 * inserted in the same transaction, so an alert exists exactly once and never without its
 * deliveries. Saving a rule and applying a batch are serialised against each other (per
 * project), so every event is counted by a new rule exactly once: either in the counters rebuilt
 * from the rollups when the rule starts counting, or by the first batch that sees the rule.
 */
export interface RuleStore {
  /**
   * Stores a new rule and starts it counting (`activate`): rebuilds its counters from the
   * rollups from the start of its current window on (unless another enabled rule with the same
   * `counterKeyOf` keeps them current), and fires the levels they have already reached.
   * `not_found` when the project does not exist, `conflict` when the id does.
   */
  createRule(rule: Rule, nowMs: number): Promise<RuleChange>;
  /**
   * Replaces a rule. When what it measures changed (scope, filters, metric, window) or it is
   * re-enabled, it starts counting anew as `createRule` does. Undefined when there is no such
   * rule. Counters are never deleted with a rule (others may share them); `prune` removes old
   * buckets.
   */
  updateRule(rule: Rule, nowMs: number): Promise<RuleChange | undefined>;
  deleteRule(projectId: string, ruleId: string): Promise<boolean>;
  getRule(projectId: string, ruleId: string): Promise<Rule | undefined>;
  /** All rules of a project, or of every project when `projectId` is undefined. */
  listRules(projectId?: string): Promise<Rule[]>;
  /**
   * Counter buckets of a counter key (`counterKeyOf(rule)`) with bucketStart in [fromMs, toMs),
   * of one scope key when given, ordered by bucket then scope key.
   */
  readCounters(
    counterKey: string,
    fromMs: number,
    toMs: number,
    scopeKey?: string,
  ): Promise<RuleCounter[]>;
  /**
   * Optional fast path for `POST /v1/check`: the same as `readCounters` for one scope key of an
   * enforcing rule's counter key, answered synchronously on the caller's thread, or undefined
   * when the store cannot answer so (the caller then uses `readCounters`). Only for counter keys
   * of enforcing rules: a store may know the unfolded values of those alone.
   */
  readEnforcedCounters?(
    counterKey: string,
    fromMs: number,
    toMs: number,
    scopeKey: string,
  ): RuleCounter[] | undefined;

  /**
   * Records alerts raised outside a batch (a reconciliation's `uncapturedTokens` rules): each
   * unless its (rule, scope key, window start, level) exists, with a delivery per channel of its
   * rule, in one transaction where the store has them. Returns the ones inserted.
   */
  fireAlerts(alerts: readonly NewAlert[], nowMs: number): Promise<NewAlert[]>;
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
