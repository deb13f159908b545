import type { RuleCounter } from '../ports/rule-store.js';
import type { BaseDimension, UsageQuery, UsageRow } from '../query/usage-query.js';
import { countingSince, firstCountedBucket } from './counter-buckets.js';
import { counterKeyOf } from './evaluate.js';
import { rollupMeasure } from './parse-rule.js';
import type { Rule } from './rule.js';
import { windowFor } from './windows.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
/** Events are accepted up to this far ahead of the server clock (see the event contract). */
export const MAX_FUTURE_MS = 5 * MINUTE_MS;

/** A rule as the store keeps it, and whether its counters must be rebuilt from the rollups. */
export interface Activation {
  rule: Rule;
  /** True when the rule starts counting now and no other enabled rule keeps its counters. */
  seed: boolean;
  /** True when the rule starts counting now: the levels its current window reached fire. */
  starts: boolean;
}

/**
 * How a store saves a new or changed rule: a rule starts counting when it is created, re-enabled,
 * or changes what it measures (scope, filters, metric, window); then `countingSinceMs` is now and
 * its counters are rebuilt from the rollups, unless another enabled rule of the same counter key
 * keeps them current already. A rename, new levels or channels change nothing of the counting.
 */
export function activate(
  previous: Rule | undefined,
  next: Rule,
  nowMs: number,
  sharedWithEnabledRule: boolean,
): Activation {
  if (!next.enabled) {
    const rule = { ...next };
    if (previous?.countingSinceMs !== undefined) rule.countingSinceMs = previous.countingSinceMs;
    return { rule, seed: false, starts: false };
  }
  if (previous?.enabled && counterKeyOf(previous) === counterKeyOf(next)) {
    return {
      rule: { ...next, countingSinceMs: countingSince(previous) },
      seed: false,
      starts: false,
    };
  }
  return { rule: { ...next, countingSinceMs: nowMs }, seed: !sharedWithEnabledRule, starts: true };
}

/** A usage query that reads what a rule's counters must hold, and where each row's value goes. */
export interface SeedQuery {
  query: UsageQuery;
  /** The counter bucket of a row of the query. */
  bucketOf(row: UsageRow): number;
}

function isWholeHours(startMs: number, endMs: number): boolean {
  return startMs % HOUR_MS === 0 && endMs % HOUR_MS === 0;
}

/**
 * The rollup queries whose rows rebuild a rule's counters, from `firstCountedBucket(rule)` to the
 * latest event the store can hold (`nowMs` + the 5 minutes events may be ahead): one query per
 * calendar window (answered from hour or day rollups when the window is made of whole UTC hours,
 * from minute rollups otherwise), or one minute query for a rolling window.
 */
export function seedQueries(rule: Rule, nowMs: number): SeedQuery[] {
  const base = {
    projectId: rule.projectId,
    groupBy: [...rule.scope],
    filters: rule.filters,
    tagFilter: undefined,
    orderBy: 'bucket' as const,
    order: 'asc' as const,
    limit: Number.MAX_SAFE_INTEGER,
  };
  const lastMs = nowMs + MAX_FUTURE_MS;
  const first = firstCountedBucket(rule);
  if (rule.window.type === 'rolling') {
    return [
      {
        query: {
          ...base,
          fromMs: first,
          toMs: Math.floor(lastMs / MINUTE_MS) * MINUTE_MS + MINUTE_MS,
          interval: 'minute',
          resolution: 'minute',
        },
        bucketOf: (row) => row.bucketMs as number,
      },
    ];
  }
  const out: SeedQuery[] = [];
  for (let start = first; start <= lastMs; ) {
    const win = windowFor(start, rule.window);
    out.push({
      query: {
        ...base,
        orderBy: 'totalTokens',
        order: 'desc',
        fromMs: win.startMs,
        toMs: win.endMs,
        interval: undefined,
        resolution: isWholeHours(win.startMs, win.endMs) ? 'hour' : 'minute',
      },
      bucketOf: () => win.startMs,
    });
    start = win.endMs;
  }
  return out;
}

const ROW_FIELD: Record<BaseDimension, 'user' | 'app' | 'model' | 'provider'> = {
  user: 'user',
  app: 'app',
  model: 'model',
  provider: 'provider',
};

/** The counter buckets (key `counterKeyOf(rule)`) that the rows of one seed query make. */
export function countersFromRows(
  rule: Rule,
  seed: SeedQuery,
  rows: readonly UsageRow[],
): RuleCounter[] {
  const counterKey = counterKeyOf(rule);
  const sums = new Map<string, RuleCounter>();
  for (const row of rows) {
    const value = rollupMeasure(rule.metric, row);
    if (value === 0) continue;
    const scopeKey = JSON.stringify(rule.scope.map((d) => row[ROW_FIELD[d]] ?? ''));
    const bucketStartMs = seed.bucketOf(row);
    const key = `${scopeKey}\u0000${bucketStartMs}`;
    const existing = sums.get(key);
    if (existing) existing.value += value;
    else sums.set(key, { ruleId: counterKey, scopeKey, bucketStartMs, value });
  }
  return [...sums.values()];
}
