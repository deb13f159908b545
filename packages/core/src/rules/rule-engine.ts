import { TokenwatchError } from '../errors.js';
import type { RuleCounter } from '../ports/rule-store.js';
import type { BatchPlan, Touch } from './batch-plan.js';
import { countingSince, firstCountedBucket, floorMinute, MINUTE_MS } from './counter-buckets.js';
import {
  buildAlert,
  type CompiledRule,
  crossedLevels,
  type NewAlert,
  projectToWindowEnd,
} from './evaluate.js';
import type { RuleWindow } from './rule.js';
import { windowFor } from './windows.js';

/*
 * The rule engine: everything that decides what a rule counts and when it fires, written once.
 * Store adapters only persist what it plans (counter deltas, alert rows with their outbox) and
 * read back what it asks for, inside their batch transaction:
 *
 *   const plan = planBatch(fresh, rules);
 *   store: add plan.deltas to the counters            (atomic with the rollups)
 *   store: rows = the counters in plan.reads           (values after the add)
 *   const alerts = findCrossings(plan, rows, nowMs);
 *   store: insert the alerts that do not exist yet, each with its deliveries
 *
 * Semantics (the README's "Rules, budgets and alerts" states them for users):
 * - A calendar rule's value for a window instance is the sum of the metric over the distinct
 *   accepted events whose time falls in it. Each level fires once per (rule, scope key, window)
 *   when the value reaches it.
 * - A rolling rule of N minutes is evaluated at every minute that has events (of the scope key,
 *   counting for the rule), and at the minute it started counting in: its value there is the
 *   sum over the events of the N whole minutes ending with that minute, late events included. Time is cut into periods of N minutes (from
 *   the Unix epoch), and each level fires once per (rule, scope key, period) in which the value
 *   reaches it at such a minute: while usage stays at or above a level, it fires again in the
 *   next period that has events.
 * - A rule evaluates the windows (rolling: minutes) that end after it started counting
 *   (`countingSince`): the window it was created in counts in full and fires at once if it is
 *   already over a level; earlier windows never fire for it.
 * Both are monotone in the set of events (more events only add alerts), which is why the alerts
 * depend only on that set and never on arrival order, batch boundaries, redeliveries or workers:
 * whatever order the events come in, the last one to reach a window (or minute) sees its final
 * value. Alerts fired for a window that had already ended are marked `late`. The forecast level
 * is the one exception: it is a projection made when events arrive.
 */

export * from './batch-plan.js';
export * from './counter-buckets.js';
export * from './uncaptured-alerts.js';

export type CounterValues = ReadonlyMap<string, ReadonlyMap<number, number>>;

function indexRows(rows: readonly RuleCounter[] | CounterValues): CounterValues {
  if (!Array.isArray(rows)) return rows as CounterValues;
  const out = new Map<string, Map<number, number>>();
  for (const r of rows as readonly RuleCounter[]) {
    const key = `${r.ruleId}\u0000${r.scopeKey}`;
    let buckets = out.get(key);
    if (!buckets) {
      buckets = new Map();
      out.set(key, buckets);
    }
    buckets.set(r.bucketStartMs, r.value);
  }
  return out;
}

/** Sums of sparse minute buckets over windows, by prefix sums over the sorted buckets. */
class MinuteSums {
  private readonly buckets: number[];
  private readonly prefix: number[];

  constructor(values: ReadonlyMap<number, number>) {
    this.buckets = [...values.keys()].sort((a, b) => a - b);
    this.prefix = [0];
    for (const b of this.buckets)
      this.prefix.push((this.prefix[this.prefix.length - 1] as number) + (values.get(b) as number));
  }

  /** Number of buckets with start ≤ ms. */
  private rank(ms: number): number {
    let lo = 0;
    let hi = this.buckets.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.buckets[mid] as number) <= ms) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Sum of the buckets with start in (fromExclusiveMs, toInclusiveMs]. */
  sum(fromExclusiveMs: number, toInclusiveMs: number): number {
    return (
      (this.prefix[this.rank(toInclusiveMs)] as number) -
      (this.prefix[this.rank(fromExclusiveMs)] as number)
    );
  }

  starts(): readonly number[] {
    return this.buckets;
  }
}

/**
 * Alerts of a rolling rule group at its evaluation minutes in [fromMs, toMs): the minutes that
 * have events, and the minute each rule started counting in (its window then counts in full, as
 * a calendar rule's current window does). The value at a minute is the sum of its N-minute
 * window; `added` (undefined when everything counts as new, e.g. when a rule starts) is what
 * the batch added, so a level fires where the value reaches it now and did not before. Each
 * level fires once per period of N minutes.
 */
function rollingCrossings(
  rules: readonly CompiledRule[],
  minutes: number,
  scopeKey: string,
  buckets: ReadonlyMap<number, number>,
  added: ReadonlyMap<number, number> | undefined,
  fromMs: number,
  toMs: number,
  nowMs: number,
  out: Map<string, NewAlert>,
): void {
  const spanMs = minutes * MINUTE_MS;
  const after = new MinuteSums(buckets);
  const delta = added ? new MinuteSums(added) : undefined;
  for (const compiled of rules) {
    const first = floorMinute(countingSince(compiled.rule));
    const points = after.starts().filter((m) => m > first && m >= fromMs && m < toMs);
    if (first >= fromMs && first < toMs) points.push(first);
    for (const minute of points) {
      const value = after.sum(minute - spanMs, minute);
      if (value === 0) continue;
      // A minute that got its first events from this batch was no evaluation point before it.
      const isNew =
        !delta ||
        (minute !== first && (buckets.get(minute) as number) === (added?.get(minute) ?? 0));
      const before = isNew || !delta ? 0 : value - delta.sum(minute - spanMs, minute);
      const periodStart = Math.floor(minute / spanMs) * spanMs;
      for (const level of crossedLevels(compiled.levels, before, value)) {
        const alert = buildAlert(
          compiled,
          scopeKey,
          periodStart,
          periodStart + spanMs,
          level,
          value,
          nowMs,
          { startMs: minute - spanMs + MINUTE_MS, endMs: minute + MINUTE_MS },
        );
        if (!out.has(alert.alertId)) out.set(alert.alertId, alert);
      }
    }
  }
}

function calendarCrossings(
  rules: readonly CompiledRule[],
  scopeKey: string,
  window: RuleWindow,
  bucketStartMs: number,
  before: number,
  after: number,
  nowMs: number,
  out: Map<string, NewAlert>,
): void {
  const win = windowFor(bucketStartMs, window);
  for (const compiled of rules) {
    if (win.endMs <= countingSince(compiled.rule)) continue;
    for (const level of crossedLevels(compiled.levels, before, after)) {
      const alert = buildAlert(compiled, scopeKey, win.startMs, win.endMs, level, after, nowMs);
      out.set(alert.alertId, alert);
    }
    if (
      compiled.rule.forecast &&
      win.endMs > nowMs &&
      before < after &&
      after < compiled.fullThreshold &&
      projectToWindowEnd(after, win.startMs, win.endMs, nowMs) >= compiled.fullThreshold
    ) {
      const alert = buildAlert(
        compiled,
        scopeKey,
        win.startMs,
        win.endMs,
        'forecast',
        after,
        nowMs,
      );
      out.set(alert.alertId, alert);
    }
  }
}

function missingRow(t: Touch, bucket: number): TokenwatchError {
  return new TokenwatchError('internal', 'a counter the batch added to was not read back', {
    context: { counterKey: t.counterKey, scopeKey: t.scopeKey, bucketStartMs: bucket },
  });
}

/**
 * The alerts a batch may have caused, from the counters after its additions (`rows` holds at
 * least `plan.reads`). A candidate that exists already (a redelivery, another worker) must be
 * skipped by the store's insert: alert rows are unique per (rule, scope key, window, level).
 */
export function findCrossings(
  plan: BatchPlan,
  rows: readonly RuleCounter[] | CounterValues,
  nowMs: number,
): NewAlert[] {
  const values = indexRows(rows);
  const out = new Map<string, NewAlert>();
  for (const t of plan.touches) {
    const buckets = values.get(`${t.counterKey}\u0000${t.scopeKey}`) ?? new Map<number, number>();
    if (t.window.type === 'rolling') {
      for (const b of t.deltas.keys()) if (!buckets.has(b)) throw missingRow(t, b);
      const starts = [...t.deltas.keys()];
      const spanMs = t.window.minutes * MINUTE_MS;
      // No minute's window can hold more than every bucket read: below the lowest level, skip.
      let all = 0;
      for (const v of buckets.values()) all += v;
      if (all < t.group.lowestThreshold) continue;
      rollingCrossings(
        t.group.rules,
        t.window.minutes,
        t.scopeKey,
        buckets,
        t.deltas,
        Math.min(...starts),
        Math.max(...starts) + spanMs,
        nowMs,
        out,
      );
      continue;
    }
    for (const [bucket, delta] of t.deltas) {
      const after = buckets.get(bucket);
      if (after === undefined) throw missingRow(t, bucket);
      if (after < t.group.lowestThreshold && !t.group.forecasts) continue;
      calendarCrossings(
        t.group.rules,
        t.scopeKey,
        t.window,
        bucket,
        after - delta,
        after,
        nowMs,
        out,
      );
    }
  }
  return [...out.values()];
}

/**
 * The alerts a rule owes as soon as it starts counting: every level its counted windows have
 * already reached. `counters` are the rule's counter buckets from `firstCountedBucket(rule)` on.
 */
export function crossingsAtStart(
  compiled: CompiledRule,
  counters: readonly RuleCounter[],
  nowMs: number,
): NewAlert[] {
  const rule = compiled.rule;
  const out = new Map<string, NewAlert>();
  const byScope = new Map<string, Map<number, number>>();
  const first = firstCountedBucket(rule);
  for (const c of counters) {
    if (c.bucketStartMs < first || c.value === 0) continue;
    let buckets = byScope.get(c.scopeKey);
    if (!buckets) {
      buckets = new Map();
      byScope.set(c.scopeKey, buckets);
    }
    buckets.set(c.bucketStartMs, (buckets.get(c.bucketStartMs) ?? 0) + c.value);
  }
  for (const [scopeKey, buckets] of byScope) {
    if (rule.window.type === 'rolling') {
      const starts = [...buckets.keys()];
      rollingCrossings(
        [compiled],
        rule.window.minutes,
        scopeKey,
        buckets,
        undefined,
        floorMinute(countingSince(rule)),
        Math.max(...starts, floorMinute(countingSince(rule))) + 1,
        nowMs,
        out,
      );
      continue;
    }
    for (const [bucket, value] of buckets)
      calendarCrossings([compiled], scopeKey, rule.window, bucket, 0, value, nowMs, out);
  }
  return [...out.values()].filter((a) => !a.forecast);
}

/**
 * The least counter value that can have reached a level when a rule starts: a store needs to
 * give `crossingsAtStart` only the counters at or past it. In a calendar window a bucket is the
 * window's value, and it has reached a level only at or past the lowest one; a rolling window's
 * value sums minute buckets, so it needs them all (undefined). Reading every scope's buckets
 * made each enable of one of 100 rules sharing a counter (user × model, 10k users) hold the
 * SQLite writer for ~100 ms (`bench:alerts`).
 */
export function startCounterFloor(compiled: CompiledRule): number | undefined {
  if (compiled.rule.window.type !== 'calendar') return undefined;
  const lowest = Math.min(...compiled.levels.map((l) => l.threshold));
  return lowest > 0 && Number.isFinite(lowest) ? lowest : undefined;
}

/** The new values of the counters of enforcing rules a batch changed (for POST /v1/check). */
export function enforcedCounters(
  plan: BatchPlan,
  rows: readonly RuleCounter[] | CounterValues,
): RuleCounter[] {
  const values = indexRows(rows);
  const out: RuleCounter[] = [];
  for (const t of plan.touches) {
    if (!t.group.enforces) continue;
    const buckets = values.get(`${t.counterKey}\u0000${t.scopeKey}`);
    for (const b of t.deltas.keys()) {
      const value = buckets?.get(b);
      if (value !== undefined)
        out.push({ ruleId: t.counterKey, scopeKey: t.scopeKey, bucketStartMs: b, value });
    }
  }
  return out;
}
