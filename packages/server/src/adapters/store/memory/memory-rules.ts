import {
  type AlertQuery,
  type AlertRecord,
  type CompiledRule,
  compileRule,
  counterKeyOf,
  type DeliveryOutcome,
  type DeliveryRecord,
  type DeliveryStatus,
  deliveryIdOf,
  evaluateBatch,
  type NewAlert,
  type PricedEvent,
  type RollupDelta,
  type Rule,
  type RuleCounter,
  rollupMeasure,
  ruleMatches,
  scopeKeyOf,
  TokenwatchError,
  windowFor,
} from '@tokenwatch/core';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

/** Rollup rows as the twin keeps them, for seeding a new rule's counters. */
export interface RollupSource {
  minute: Iterable<RollupDelta>;
  hour: Iterable<RollupDelta>;
}

/** The in-memory twin of rules, counters, alerts and the outbox (same contract as SQLite). */
export class MemoryRules {
  private readonly rules = new Map<string, Rule>();
  private readonly counters = new Map<string, Map<string, Map<number, number>>>();
  private readonly alerts = new Map<string, AlertRecord>();
  private readonly alertKeys = new Set<string>();
  private readonly deliveries = new Map<string, Omit<DeliveryRecord, 'message'>>();

  private counter(ruleId: string, scopeKey: string): Map<number, number> {
    let byScope = this.counters.get(ruleId);
    if (!byScope) {
      byScope = new Map();
      this.counters.set(ruleId, byScope);
    }
    let buckets = byScope.get(scopeKey);
    if (!buckets) {
      buckets = new Map();
      byScope.set(scopeKey, buckets);
    }
    return buckets;
  }

  /**
   * Runs the evaluation against staged copies and returns a commit function, so a failing batch
   * leaves no trace (atomicity, as the SQL stores get from their transaction).
   */
  evaluate(
    fresh: readonly PricedEvent[],
    rules: readonly CompiledRule[],
    nowMs: number,
  ): { alerts: NewAlert[]; enforcedCounters: RuleCounter[]; commit: () => void } {
    const staged = new Map<string, number>(); // "rule\0scope\0bucket" → new value
    const stagedAlerts: Array<{ alert: NewAlert; rule: Rule }> = [];
    const stagedKeys = new Set<string>();
    const value = (ruleId: string, scopeKey: string, bucket: number) =>
      staged.get(`${ruleId}\u0000${scopeKey}\u0000${bucket}`) ??
      this.counter(ruleId, scopeKey).get(bucket) ??
      0;
    const result = evaluateBatch(fresh, rules, nowMs, {
      add: (ruleId, scopeKey, bucket, delta) => {
        const next = value(ruleId, scopeKey, bucket) + delta;
        staged.set(`${ruleId}\u0000${scopeKey}\u0000${bucket}`, next);
        return next;
      },
      sum: (ruleId, scopeKey, from, to) => {
        const buckets = new Set<number>(this.counter(ruleId, scopeKey).keys());
        for (const k of staged.keys()) {
          const [r, s, b] = k.split('\u0000');
          if (r === ruleId && s === scopeKey) buckets.add(Number(b));
        }
        let total = 0;
        for (const b of buckets) if (b > from && b <= to) total += value(ruleId, scopeKey, b);
        return total;
      },
      alertOverlaps: (ruleId, scopeKey, level, after) =>
        [...this.alerts.values(), ...stagedAlerts.map((a) => a.alert)].some(
          (a) =>
            a.ruleId === ruleId &&
            a.scopeKey === scopeKey &&
            a.levelIndex === level &&
            a.windowEndMs > after,
        ),
      insertAlert: (alert, compiled) => {
        const key = `${alert.ruleId}\u0000${alert.scopeKey}\u0000${alert.windowStartMs}\u0000${alert.levelIndex}`;
        if (this.alertKeys.has(key) || stagedKeys.has(key)) return false;
        stagedKeys.add(key);
        stagedAlerts.push({ alert, rule: compiled.rule });
        return true;
      },
    });
    return {
      ...result,
      commit: () => {
        for (const [k, v] of staged) {
          const [r, s, b] = k.split('\u0000') as [string, string, string];
          this.counter(r, s).set(Number(b), v);
        }
        for (const key of stagedKeys) this.alertKeys.add(key);
        for (const { alert, rule } of stagedAlerts) {
          this.alerts.set(alert.alertId, { ...alert, acknowledgedAtMs: undefined });
          rule.channels.forEach((channel, i) => {
            const id = deliveryIdOf(alert.alertId, i);
            this.deliveries.set(id, {
              id,
              alertId: alert.alertId,
              projectId: alert.projectId,
              channelIndex: i,
              channel,
              status: 'pending',
              attempts: 0,
              nextAttemptMs: nowMs,
              lastError: undefined,
              createdAtMs: nowMs,
              updatedAtMs: nowMs,
              deliveredAtMs: undefined,
            });
          });
        }
      },
    };
  }

  private sharedWithEnabledRule(rule: Rule): boolean {
    const key = counterKeyOf(rule);
    return [...this.rules.values()].some(
      (r) =>
        r.id !== rule.id && r.projectId === rule.projectId && r.enabled && counterKeyOf(r) === key,
    );
  }

  /** Sets the current window of the rule's counters from the rollups (see RuleStore.createRule). */
  private seed(rule: Rule, nowMs: number, rollups: RollupSource): void {
    if (!rule.enabled || this.sharedWithEnabledRule(rule)) return;
    const counterKey = counterKeyOf(rule);
    let from: number;
    let to: number;
    let source: Iterable<RollupDelta>;
    let bucketOf: (bucketMs: number) => number;
    if (rule.window.type === 'rolling') {
      const minute = nowMs - (nowMs % MINUTE_MS);
      from = minute - (rule.window.minutes - 1) * MINUTE_MS;
      to = minute + MINUTE_MS;
      source = rollups.minute;
      bucketOf = (b) => b;
    } else {
      const win = windowFor(nowMs, rule.window);
      from = win.startMs;
      to = win.endMs;
      source = from % HOUR_MS === 0 && to % HOUR_MS === 0 ? rollups.hour : rollups.minute;
      bucketOf = () => win.startMs;
    }
    const firstBucket =
      rule.window.type === 'rolling' ? from : windowFor(nowMs, rule.window).startMs;
    for (const buckets of this.counters.get(counterKey)?.values() ?? []) {
      for (const b of [...buckets.keys()]) if (b >= firstBucket && b < to) buckets.delete(b);
    }
    for (const r of source) {
      if (r.projectId !== rule.projectId || r.bucketMs < from || r.bucketMs >= to) continue;
      if (!ruleMatches(rule, r)) continue;
      // Rollup rows are sums: take the measure directly rather than per event.
      const measure = rollupMeasure(rule.metric, r);
      if (measure === 0) continue;
      const scopeKey = scopeKeyOf(rule, r);
      const buckets = this.counter(counterKey, scopeKey);
      const b = bucketOf(r.bucketMs);
      buckets.set(b, (buckets.get(b) ?? 0) + measure);
    }
  }

  createRule(rule: Rule, nowMs: number, rollups: RollupSource, projectExists: boolean): void {
    compileRule(rule);
    if (!projectExists)
      throw new TokenwatchError('not_found', `project "${rule.projectId}" does not exist`);
    if (this.rules.has(rule.id))
      throw new TokenwatchError('conflict', `rule "${rule.id}" already exists`);
    this.rules.set(rule.id, structuredClone(rule));
    this.seed(rule, nowMs, rollups);
  }

  updateRule(rule: Rule, nowMs: number, rollups: RollupSource): boolean {
    compileRule(rule);
    const existing = this.rules.get(rule.id);
    if (!existing || existing.projectId !== rule.projectId) return false;
    this.rules.set(rule.id, structuredClone(rule));
    if (counterKeyOf(existing) !== counterKeyOf(rule) || !existing.enabled)
      this.seed(rule, nowMs, rollups);
    return true;
  }

  /** Drops counter buckets older than `beforeMs` (windows that can no longer change). */
  pruneCounters(beforeMs: number): void {
    for (const byScope of this.counters.values()) {
      for (const buckets of byScope.values()) {
        for (const b of [...buckets.keys()]) if (b < beforeMs) buckets.delete(b);
      }
    }
  }

  deleteRule(projectId: string, ruleId: string): boolean {
    const existing = this.rules.get(ruleId);
    if (!existing || existing.projectId !== projectId) return false;
    this.rules.delete(ruleId);
    return true;
  }

  getRule(projectId: string, ruleId: string): Rule | undefined {
    const r = this.rules.get(ruleId);
    return r && r.projectId === projectId ? structuredClone(r) : undefined;
  }

  listRules(projectId?: string): Rule[] {
    return [...this.rules.values()]
      .filter((r) => projectId === undefined || r.projectId === projectId)
      .sort((a, b) =>
        a.projectId < b.projectId
          ? -1
          : a.projectId > b.projectId
            ? 1
            : a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : 1),
      )
      .map((r) => structuredClone(r));
  }

  readCounters(ruleId: string, fromMs: number, toMs: number): RuleCounter[] {
    const out: RuleCounter[] = [];
    for (const [scopeKey, buckets] of this.counters.get(ruleId) ?? []) {
      for (const [bucketStartMs, value] of buckets) {
        if (bucketStartMs >= fromMs && bucketStartMs < toMs)
          out.push({ ruleId, scopeKey, bucketStartMs, value });
      }
    }
    return out.sort(
      (a, b) =>
        a.bucketStartMs - b.bucketStartMs ||
        (a.scopeKey < b.scopeKey ? -1 : a.scopeKey > b.scopeKey ? 1 : 0),
    );
  }

  listAlerts(q: AlertQuery): AlertRecord[] {
    return [...this.alerts.values()]
      .filter(
        (a) =>
          a.projectId === q.projectId &&
          (q.ruleId === undefined || a.ruleId === q.ruleId) &&
          (q.sinceMs === undefined || a.firedAtMs >= q.sinceMs) &&
          (q.acknowledged === undefined || (a.acknowledgedAtMs !== undefined) === q.acknowledged),
      )
      .sort((a, b) => b.firedAtMs - a.firedAtMs || (a.alertId < b.alertId ? -1 : 1))
      .slice(0, q.limit)
      .map((a) => structuredClone(a));
  }

  acknowledgeAlert(projectId: string, alertId: string, nowMs: number): boolean {
    const a = this.alerts.get(alertId);
    if (!a || a.projectId !== projectId) return false;
    a.acknowledgedAtMs ??= nowMs;
    return true;
  }

  private withMessage(d: Omit<DeliveryRecord, 'message'>): DeliveryRecord {
    return structuredClone({ ...d, message: (this.alerts.get(d.alertId) as AlertRecord).message });
  }

  claimDeliveries(nowMs: number, limit: number, leaseMs: number): DeliveryRecord[] {
    const due = [...this.deliveries.values()]
      .filter((d) => (d.status === 'pending' || d.status === 'sending') && d.nextAttemptMs <= nowMs)
      .sort((a, b) => a.nextAttemptMs - b.nextAttemptMs || (a.id < b.id ? -1 : 1))
      .slice(0, limit);
    for (const d of due) {
      d.status = 'sending';
      d.attempts++;
      d.nextAttemptMs = nowMs + leaseMs;
      d.updatedAtMs = nowMs;
    }
    return due.map((d) => this.withMessage(d));
  }

  completeDelivery(id: string, outcome: DeliveryOutcome, nowMs: number): void {
    const d = this.deliveries.get(id);
    if (!d) return;
    d.updatedAtMs = nowMs;
    if (outcome.status === 'delivered') {
      d.status = 'delivered';
      d.deliveredAtMs = nowMs;
      d.lastError = undefined;
    } else if (outcome.status === 'retry') {
      d.status = 'pending';
      d.nextAttemptMs = outcome.nextAttemptMs;
      d.lastError = outcome.error.slice(0, 1000);
    } else {
      d.status = 'dead';
      d.lastError = outcome.error.slice(0, 1000);
    }
  }

  listDeliveries(
    projectId: string,
    filter: { alertId?: string | undefined; status?: DeliveryStatus | undefined },
    limit: number,
  ): DeliveryRecord[] {
    return [...this.deliveries.values()]
      .filter(
        (d) =>
          d.projectId === projectId &&
          (filter.alertId === undefined || d.alertId === filter.alertId) &&
          (filter.status === undefined || d.status === filter.status),
      )
      .sort((a, b) => b.createdAtMs - a.createdAtMs || (a.id < b.id ? -1 : 1))
      .slice(0, limit)
      .map((d) => this.withMessage(d));
  }
}
