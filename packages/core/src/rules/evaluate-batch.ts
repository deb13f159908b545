import type { PricedEvent } from '../event/usage-event.js';
import type { RuleCounter } from '../ports/rule-store.js';
import {
  buildAlert,
  type CompiledRule,
  counterDeltas,
  crossedLevels,
  type NewAlert,
  projectToWindowEnd,
} from './evaluate.js';

const MINUTE_MS = 60_000;

/**
 * The primitive, transactional operations a store offers the rule evaluation. All of them run
 * inside the store's batch transaction, so what `evaluateBatch` decides is committed together
 * with the rollups, or not at all.
 */
export interface CounterOps {
  /** Adds `delta` to a counter bucket (of counter key `ruleId`, see `counterKeyOf`) and returns its new value. */
  add(ruleId: string, scopeKey: string, bucketStartMs: number, delta: number): number;
  /** Sum of the counter buckets with start in (fromExclusiveMs, toInclusiveMs]. */
  sum(ruleId: string, scopeKey: string, fromExclusiveMs: number, toInclusiveMs: number): number;
  /** Whether an alert of this rule, scope and level has a window ending after `afterMs`. */
  alertOverlaps(ruleId: string, scopeKey: string, levelIndex: number, afterMs: number): boolean;
  /** Inserts the alert and its deliveries unless (rule, scope key, window start, level) exists; true if inserted. */
  insertAlert(alert: NewAlert, rule: CompiledRule): boolean;
}

/**
 * Adds a batch's NEW events to the rules' counters and records every level crossing exactly:
 * the counter returns its total after the batch, so before = after − delta and a level fires
 * when before < level ≤ after. Calendar windows fire once per window instance (the alert key);
 * a rolling window re-arms when the window of its previous alert has passed. A crossing in a
 * window that has already ended (a late event) fires too, marked late.
 */
export function evaluateBatch(
  fresh: readonly PricedEvent[],
  rules: readonly CompiledRule[],
  nowMs: number,
  ops: CounterOps,
): { alerts: NewAlert[]; enforcedCounters: RuleCounter[] } {
  const alerts: NewAlert[] = [];
  const enforcedCounters: RuleCounter[] = [];
  if (rules.length === 0 || fresh.length === 0) return { alerts, enforcedCounters };
  const batchMinutes = new Map<string, Array<{ bucket: number; delta: number }>>();
  for (const d of counterDeltas(fresh, rules)) {
    const window = d.rule.rule.window;
    const bucketValue = ops.add(d.counterKey, d.scopeKey, d.bucketStartMs, d.delta);
    let before: number;
    let after: number;
    let windowStartMs = d.windowStartMs;
    let windowEndMs = d.windowEndMs;
    if (window.type === 'rolling') {
      const spanMs = window.minutes * MINUTE_MS;
      const key = `${d.counterKey}\u0000${d.scopeKey}`;
      const mine = batchMinutes.get(key) ?? [];
      mine.push({ bucket: d.bucketStartMs, delta: d.delta });
      batchMinutes.set(key, mine);
      after = ops.sum(d.counterKey, d.scopeKey, d.bucketStartMs - spanMs, d.bucketStartMs);
      let fromThisBatch = 0;
      for (const m of mine) {
        if (m.bucket > d.bucketStartMs - spanMs && m.bucket <= d.bucketStartMs)
          fromThisBatch += m.delta;
      }
      before = after - fromThisBatch;
      windowStartMs = d.bucketStartMs - spanMs + MINUTE_MS;
      windowEndMs = d.bucketStartMs + MINUTE_MS;
    } else {
      after = bucketValue;
      before = after - d.delta;
    }
    for (const compiled of d.rules) {
      const rule = compiled.rule;
      for (const level of crossedLevels(compiled.levels, before, after)) {
        if (
          window.type === 'rolling' &&
          ops.alertOverlaps(rule.id, d.scopeKey, level.index, windowStartMs)
        ) {
          continue;
        }
        const alert = buildAlert(
          compiled,
          d.scopeKey,
          windowStartMs,
          windowEndMs,
          level,
          after,
          nowMs,
        );
        if (ops.insertAlert(alert, compiled)) alerts.push(alert);
      }
      if (
        rule.forecast &&
        window.type === 'calendar' &&
        windowEndMs > nowMs &&
        after < compiled.fullThreshold &&
        projectToWindowEnd(after, windowStartMs, windowEndMs, nowMs) >= compiled.fullThreshold
      ) {
        const alert = buildAlert(
          compiled,
          d.scopeKey,
          windowStartMs,
          windowEndMs,
          'forecast',
          after,
          nowMs,
        );
        if (ops.insertAlert(alert, compiled)) alerts.push(alert);
      }
    }
    if (d.rules.some((c) => c.rule.enforce)) {
      enforcedCounters.push({
        ruleId: d.counterKey,
        scopeKey: d.scopeKey,
        bucketStartMs: d.bucketStartMs,
        value: bucketValue,
      });
    }
  }
  return { alerts, enforcedCounters };
}
