import type { RollupMeasures } from '../aggregate/rollup-delta.js';
import { TokenwatchError, type ValidationIssue } from '../errors.js';
import { type PricedEvent, totalTokens } from '../event/usage-event.js';
import type { ResolvedLevel, RuleLevel, RuleMetric } from './rule.js';
import { summary } from './rule-input-checks.js';

// A rule's levels as exact integer thresholds in base units, and the base-unit value of a
// metric for an event or a rollup row.

const NANO_PER_USD = 1_000_000_000n;

/** `value` as `mantissa × 10^exponent` exactly as its shortest decimal text reads. */
function decimalOf(value: number): { mantissa: bigint; exponent: number } {
  const m = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(value));
  if (m === null) throw new RangeError(`not a non-negative finite number: ${value}`);
  const fraction = m[2] ?? '';
  return {
    mantissa: BigInt(`${m[1] ?? '0'}${fraction}`),
    exponent: Number(m[3] ?? '0') - fraction.length,
  };
}

/** ceil(product of the decimals × 10^shift / divisor), exact. */
function ceilProduct(values: number[], shift: bigint, divisor: bigint): bigint {
  let numerator = shift;
  let exponent = 0;
  for (const v of values) {
    const d = decimalOf(v);
    numerator *= d.mantissa;
    exponent += d.exponent;
  }
  let denominator = divisor;
  if (exponent >= 0) numerator *= 10n ** BigInt(exponent);
  else denominator *= 10n ** BigInt(-exponent);
  const q = numerator / denominator;
  return q * denominator === numerator ? q : q + 1n;
}

function baseScale(metric: RuleMetric): bigint {
  return metric === 'costUsd' ? NANO_PER_USD : 1n;
}

/** The threshold of one level in base units, or a reason it has none. */
export function thresholdOf(
  metric: RuleMetric,
  level: RuleLevel,
  budget: number | undefined,
): bigint | string {
  if ('value' in level) {
    if (!(level.value > 0) || !Number.isFinite(level.value)) return 'must be a positive number';
    return ceilProduct([level.value], baseScale(metric), 1n);
  }
  if (!(level.percent > 0) || !Number.isFinite(level.percent)) return 'must be a positive number';
  if (budget === undefined || !(budget > 0) || !Number.isFinite(budget)) {
    return 'needs a positive budget';
  }
  return ceilProduct([budget, level.percent], baseScale(metric), 100n);
}

export const MAX_THRESHOLD = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The levels as integer thresholds in the metric's base unit (tokens, requests, nano-USD),
 * rounded up, ascending, without duplicate thresholds (the first level written wins). `index`
 * is the level's position in `rule.levels`. Exact: 0.1 USD is 100_000_000 nano-USD, and 80 % of
 * $200 is 160_000_000_000 nano-USD. Throws `invalid_argument` for a level without a threshold.
 */
export function resolveLevels(rule: {
  metric: RuleMetric;
  levels: readonly RuleLevel[];
  /** Optional, or `undefined` as in a stored `Rule`. */
  budget?: number | undefined;
}): ResolvedLevel[] {
  const resolved: ResolvedLevel[] = [];
  const issues: ValidationIssue[] = [];
  rule.levels.forEach((level, index) => {
    const isValue = 'value' in level;
    const threshold = thresholdOf(rule.metric, level, rule.budget);
    const field = `levels[${index}].${isValue ? 'value' : 'percent'}`;
    if (typeof threshold === 'string') {
      issues.push({ field, reason: threshold });
      return;
    }
    if (threshold > MAX_THRESHOLD) {
      issues.push({ field, reason: 'is too large' });
      return;
    }
    resolved.push({
      index,
      threshold: Number(threshold),
      value: isValue ? level.value : undefined,
      percent: isValue ? undefined : level.percent,
    });
  });
  if (issues.length > 0) {
    throw new TokenwatchError('invalid_argument', summary('invalid rule levels', issues), {
      details: issues,
    });
  }
  resolved.sort((a, b) => a.threshold - b.threshold || a.index - b.index);
  return resolved.filter((l, i) => i === 0 || resolved[i - 1]?.threshold !== l.threshold);
}

/**
 * A rollup row's value of a metric, in base units: what a rule's counter holds for the events the
 * row sums (used to seed counters from the rollups).
 */
export function rollupMeasure(metric: RuleMetric, m: RollupMeasures): number {
  if (metric === 'uncapturedTokens') return 0; // not a measure of events
  return metric === 'costUsd' ? Number(m.costNanoUsd) : m[metric];
}

/** An event's contribution to a metric, in base units (tokens, requests, nano-USD). */
export function metricOf(metric: RuleMetric, e: PricedEvent): number {
  switch (metric) {
    case 'totalTokens':
      return totalTokens(e);
    case 'inputTokens':
      return e.inputTokens;
    case 'outputTokens':
      return e.outputTokens;
    case 'cacheReadTokens':
      return e.cacheReadTokens;
    case 'cacheWriteTokens':
      return e.cacheWriteTokens;
    case 'costUsd':
      return e.costNanoUsd;
    case 'requests':
      return e.status === 'denied' ? 0 : 1; // as the rollups count: calls that reached the provider
    case 'unpricedTokens':
      return e.priced ? 0 : totalTokens(e);
    case 'uncapturedTokens':
      return 0; // reconciliation counts it, not events
  }
}

/** A base-unit amount in the unit users write: USD for cost, unchanged otherwise. */
export function toUserUnit(metric: RuleMetric, base: number): number {
  return metric === 'costUsd' ? base / 1e9 : base;
}
