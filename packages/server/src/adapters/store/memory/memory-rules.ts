import {
  type AlertQuery,
  type AlertRecord,
  activate,
  type CompiledRule,
  compileRule,
  counterKeyOf,
  countersFromRows,
  crossingsAtStart,
  type DeliveryOutcome,
  type DeliveryRecord,
  type DeliveryStatus,
  deliveryIdOf,
  enforcedCounters,
  findCrossings,
  firstCountedBucket,
  type NewAlert,
  type PricedEvent,
  planBatch,
  type Rule,
  type RuleChange,
  type RuleCounter,
  seedQueries,
  TokenwatchError,
  type UsageQuery,
  type UsageRow,
} from '@tokenwatch/core';

/** Reads the rollups, for rebuilding a rule's counters when it starts counting. */
export type RollupReader = (query: UsageQuery) => UsageRow[];

/**
 * The in-memory twin of rules, counters, alerts and the outbox: the rule engine of core over
 * plain maps (same contract as the SQL stores).
 */
export class MemoryRules {
  private readonly rules = new Map<string, Rule>();
  /** Rule ids per project. */
  private readonly byProject = new Map<string, string[]>();
  /** Enabled rules per project, compiled; dropped when a rule of the project changes. */
  private readonly compiled = new Map<string, CompiledRule[]>();
  /** Alert ids per project, in insertion order. */
  private readonly alertsByProject = new Map<string, string[]>();
  /** counter key → scope key → bucket start → value. */
  private readonly counters = new Map<string, Map<string, Map<number, number>>>();
  private readonly alerts = new Map<string, AlertRecord>();
  private readonly alertKeys = new Set<string>();
  private readonly deliveries = new Map<string, Omit<DeliveryRecord, 'message'>>();

  private counter(counterKey: string, scopeKey: string): Map<number, number> {
    let byScope = this.counters.get(counterKey);
    if (!byScope) {
      byScope = new Map();
      this.counters.set(counterKey, byScope);
    }
    let buckets = byScope.get(scopeKey);
    if (!buckets) {
      buckets = new Map();
      byScope.set(scopeKey, buckets);
    }
    return buckets;
  }

  private enabledRules(projectIds: Iterable<string>): CompiledRule[] {
    const out: CompiledRule[] = [];
    for (const projectId of projectIds) {
      let compiled = this.compiled.get(projectId);
      if (!compiled) {
        compiled = (this.byProject.get(projectId) ?? [])
          .map((id) => this.rules.get(id) as Rule)
          .filter((r) => r.enabled)
          .map(compileRule);
        this.compiled.set(projectId, compiled);
      }
      out.push(...compiled);
    }
    return out;
  }

  /**
   * Runs the rule engine over a batch's new events against staged copies of the counters and
   * returns a commit function, so a failing batch leaves no trace (atomicity, as the SQL stores
   * get from their transaction).
   */
  evaluate(
    fresh: readonly PricedEvent[],
    nowMs: number,
  ): { alerts: NewAlert[]; enforcedCounters: RuleCounter[]; commit: () => void } {
    const plan = planBatch(fresh, this.enabledRules(new Set(fresh.map((e) => e.projectId))));
    const staged = new Map<string, number>();
    const stagedKey = (c: string, s: string, b: number) => `${c}\u0000${s}\u0000${b}`;
    for (const d of plan.deltas) {
      const key = stagedKey(d.counterKey, d.scopeKey, d.bucketStartMs);
      const current =
        staged.get(key) ?? this.counter(d.counterKey, d.scopeKey).get(d.bucketStartMs) ?? 0;
      staged.set(key, current + d.delta);
    }
    const rows: RuleCounter[] = [];
    for (const range of plan.reads) {
      for (const [bucket, value] of this.counter(range.counterKey, range.scopeKey)) {
        if (bucket < range.fromMs || bucket > range.toMs) continue;
        if (staged.has(stagedKey(range.counterKey, range.scopeKey, bucket))) continue;
        rows.push({
          ruleId: range.counterKey,
          scopeKey: range.scopeKey,
          bucketStartMs: bucket,
          value,
        });
      }
    }
    for (const d of plan.deltas) {
      const value = staged.get(stagedKey(d.counterKey, d.scopeKey, d.bucketStartMs)) as number;
      rows.push({
        ruleId: d.counterKey,
        scopeKey: d.scopeKey,
        bucketStartMs: d.bucketStartMs,
        value,
      });
    }
    const candidates = findCrossings(plan, rows, nowMs);
    return {
      alerts: candidates.filter((a) => !this.alertKeys.has(a.alertId)),
      enforcedCounters: enforcedCounters(plan, rows),
      commit: () => {
        for (const d of plan.deltas) {
          const key = stagedKey(d.counterKey, d.scopeKey, d.bucketStartMs);
          this.counter(d.counterKey, d.scopeKey).set(d.bucketStartMs, staged.get(key) as number);
        }
        this.insertAlerts(candidates, nowMs);
      },
    };
  }

  /** Inserts the alerts that do not exist yet, each with its deliveries; returns those inserted. */
  insertAlerts(alerts: readonly NewAlert[], nowMs: number): NewAlert[] {
    const inserted: NewAlert[] = [];
    for (const alert of alerts) {
      if (this.alertKeys.has(alert.alertId)) continue;
      const rule = this.rules.get(alert.ruleId);
      if (!rule) continue;
      this.alertKeys.add(alert.alertId);
      inserted.push(alert);
      this.alerts.set(alert.alertId, { ...alert, acknowledgedAtMs: undefined });
      const ids = this.alertsByProject.get(alert.projectId) ?? [];
      ids.push(alert.alertId);
      this.alertsByProject.set(alert.projectId, ids);
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
    return inserted;
  }

  private sharedWithEnabledRule(rule: Rule): boolean {
    const key = counterKeyOf(rule);
    return (this.byProject.get(rule.projectId) ?? []).some((id) => {
      const r = this.rules.get(id) as Rule;
      return r.id !== rule.id && r.enabled && counterKeyOf(r) === key;
    });
  }

  /** Saves a rule and, when it starts counting, rebuilds its counters and fires what it owes. */
  private save(
    previous: Rule | undefined,
    next: Rule,
    nowMs: number,
    rollups: RollupReader,
  ): RuleChange {
    const activation = activate(previous, next, nowMs, this.sharedWithEnabledRule(next));
    const rule = activation.rule;
    if (!this.rules.has(rule.id)) {
      const ids = this.byProject.get(rule.projectId) ?? [];
      ids.push(rule.id);
      this.byProject.set(rule.projectId, ids);
    }
    this.rules.set(rule.id, structuredClone(rule));
    this.compiled.delete(rule.projectId);
    if (activation.seed) {
      const counterKey = counterKeyOf(rule);
      const first = firstCountedBucket(rule);
      for (const buckets of this.counters.get(counterKey)?.values() ?? []) {
        for (const b of [...buckets.keys()]) if (b >= first) buckets.delete(b);
      }
      for (const seed of seedQueries(rule, nowMs)) {
        for (const c of countersFromRows(rule, seed, rollups(seed.query)))
          this.counter(c.ruleId, c.scopeKey).set(c.bucketStartMs, c.value);
      }
    }
    let alerts: NewAlert[] = [];
    if (activation.starts) {
      const counters = this.readCounters(
        counterKeyOf(rule),
        firstCountedBucket(rule),
        Number.MAX_SAFE_INTEGER,
      );
      alerts = this.insertAlerts(crossingsAtStart(compileRule(rule), counters, nowMs), nowMs);
    }
    return { rule: structuredClone(rule), alerts };
  }

  createRule(rule: Rule, nowMs: number, rollups: RollupReader, projectExists: boolean): RuleChange {
    compileRule(rule);
    if (!projectExists)
      throw new TokenwatchError('not_found', `project "${rule.projectId}" does not exist`);
    if (this.rules.has(rule.id))
      throw new TokenwatchError('conflict', `rule "${rule.id}" already exists`);
    return this.save(undefined, rule, nowMs, rollups);
  }

  updateRule(rule: Rule, nowMs: number, rollups: RollupReader): RuleChange | undefined {
    compileRule(rule);
    const existing = this.rules.get(rule.id);
    if (!existing || existing.projectId !== rule.projectId) return undefined;
    return this.save(existing, rule, nowMs, rollups);
  }

  /** Drops counter buckets older than `beforeMs` (windows that can no longer change). */
  /** Finished deliveries updated before `beforeMs`, then alerts before it with none left. */
  pruneHistory(beforeMs: number): { alertsDeleted: number; deliveriesDeleted: number } {
    let deliveriesDeleted = 0;
    const alertsWithDeliveries = new Set<string>();
    for (const [id, d] of this.deliveries) {
      if ((d.status === 'delivered' || d.status === 'dead') && d.updatedAtMs < beforeMs) {
        this.deliveries.delete(id);
        deliveriesDeleted++;
      } else alertsWithDeliveries.add(d.alertId);
    }
    let alertsDeleted = 0;
    for (const [id, a] of this.alerts) {
      if (a.windowEndMs >= beforeMs || a.firedAtMs >= beforeMs || alertsWithDeliveries.has(id))
        continue;
      this.alerts.delete(id);
      this.alertKeys.delete(id);
      const ids = this.alertsByProject.get(a.projectId) ?? [];
      this.alertsByProject.set(
        a.projectId,
        ids.filter((x) => x !== id),
      );
      alertsDeleted++;
    }
    return { alertsDeleted, deliveriesDeleted };
  }

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
    this.byProject.set(
      projectId,
      (this.byProject.get(projectId) ?? []).filter((id) => id !== ruleId),
    );
    this.compiled.delete(projectId);
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

  readCounters(ruleId: string, fromMs: number, toMs: number, scope?: string): RuleCounter[] {
    const out: RuleCounter[] = [];
    for (const [scopeKey, buckets] of this.counters.get(ruleId) ?? []) {
      if (scope !== undefined && scopeKey !== scope) continue;
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
    return (this.alertsByProject.get(q.projectId) ?? [])
      .map((id) => this.alerts.get(id) as AlertRecord)
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
