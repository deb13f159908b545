/**
 * Time ranges. A preset ("last 24 hours") is relative and moves with the clock; a custom range is
 * fixed. Ranges are aligned to bucket boundaries so every chart shows whole buckets and the
 * range-wide queries (tables, shares) read the same rollup buckets as the charts over time.
 */

export type Interval = 'minute' | 'hour' | 'day';
export type IntervalChoice = 'auto' | Interval;

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

export const INTERVAL_MS: Record<Interval, number> = {
  minute: MINUTE_MS,
  hour: HOUR_MS,
  day: DAY_MS,
};

export const PRESETS = {
  '1h': { label: 'Last hour', spanMs: HOUR_MS },
  '6h': { label: 'Last 6 hours', spanMs: 6 * HOUR_MS },
  '24h': { label: 'Last 24 hours', spanMs: DAY_MS },
  '7d': { label: 'Last 7 days', spanMs: 7 * DAY_MS },
  '30d': { label: 'Last 30 days', spanMs: 30 * DAY_MS },
  '90d': { label: 'Last 90 days', spanMs: 90 * DAY_MS },
} as const;
export type PresetId = keyof typeof PRESETS;
export const DEFAULT_PRESET: PresetId = '24h';

export function isPreset(value: string): value is PresetId {
  return Object.hasOwn(PRESETS, value);
}

export type RangeSpec = { preset: PresetId } | { fromMs: number; toMs: number };

export interface ResolveOptions {
  interval: IntervalChoice;
  /** Tags are kept at hour and day resolution only. */
  hasTagFilter: boolean;
  /** Minute rollups are kept this long (server default 7 days). */
  minuteRetentionMs?: number;
}

export interface ResolvedRange {
  /** Inclusive start, aligned to `interval`. */
  fromMs: number;
  /** Exclusive end, aligned to `interval` (the end of the current bucket for presets). */
  toMs: number;
  interval: Interval;
  /** Start of every bucket in [from, to), for zero-filled series. */
  buckets: number[];
  /** The same span right before, for "change vs previous period". */
  prevFromMs: number;
  prevToMs: number;
  /**
   * Start for range-wide queries (no interval): the API answers them from hour or day rollups,
   * so a minute-aligned start is widened to its hour. Equal to `fromMs` unless `interval` is
   * minute.
   */
  aggFromMs: number;
  /** The previous period for range-wide queries, widened like `aggFromMs`. */
  prevAggFromMs: number;
  /** Human description, e.g. "Last 24 hours". */
  label: string;
}

export function floorTo(ms: number, interval: Interval): number {
  const step = INTERVAL_MS[interval];
  return ms - (((ms % step) + step) % step);
}

export function ceilTo(ms: number, interval: Interval): number {
  const f = floorTo(ms, interval);
  return f === ms ? ms : f + INTERVAL_MS[interval];
}

/** The finest interval that keeps a chart readable (≤ ~400 bars). */
export function autoInterval(spanMs: number): Interval {
  if (spanMs <= 6 * HOUR_MS) return 'minute';
  if (spanMs <= 8 * DAY_MS) return 'hour';
  return 'day';
}

const MAX_BUCKETS: Record<Interval, number> = { minute: 1440, hour: 24 * 100, day: 3660 };

export function resolveRange(spec: RangeSpec, nowMs: number, opts: ResolveOptions): ResolvedRange {
  const rawFrom = 'preset' in spec ? nowMs - PRESETS[spec.preset].spanMs : spec.fromMs;
  const rawTo = 'preset' in spec ? nowMs : spec.toMs;
  const span = Math.max(MINUTE_MS, rawTo - rawFrom);
  let interval: Interval = opts.interval === 'auto' ? autoInterval(span) : opts.interval;
  const minuteRetention = opts.minuteRetentionMs ?? 7 * DAY_MS;
  // Fall back to a coarser interval the server can answer (or a readable bucket count).
  for (;;) {
    const tooOld = interval === 'minute' && rawFrom < nowMs - minuteRetention + MINUTE_MS;
    const noTags = interval === 'minute' && opts.hasTagFilter;
    const tooMany = span / INTERVAL_MS[interval] > MAX_BUCKETS[interval];
    if (interval !== 'day' && (tooOld || noTags || tooMany)) {
      interval = interval === 'minute' ? 'hour' : 'day';
      continue;
    }
    break;
  }

  let fromMs: number;
  let toMs: number;
  if ('preset' in spec) {
    const step = INTERVAL_MS[interval];
    const count = Math.max(1, Math.ceil(PRESETS[spec.preset].spanMs / step));
    toMs = floorTo(nowMs, interval) + step;
    fromMs = toMs - count * step;
  } else {
    fromMs = floorTo(rawFrom, interval);
    toMs = Math.max(ceilTo(rawTo, interval), fromMs + INTERVAL_MS[interval]);
  }
  const buckets: number[] = [];
  for (let t = fromMs; t < toMs; t += INTERVAL_MS[interval]) buckets.push(t);
  const spanMs = toMs - fromMs;
  return {
    fromMs,
    toMs,
    interval,
    buckets,
    prevFromMs: fromMs - spanMs,
    prevToMs: fromMs,
    aggFromMs: interval === 'minute' ? floorTo(fromMs, 'hour') : fromMs,
    prevAggFromMs: interval === 'minute' ? floorTo(fromMs - spanMs, 'hour') : fromMs - spanMs,
    label: 'preset' in spec ? PRESETS[spec.preset].label : 'Custom range',
  };
}

/** Index of the bucket of `range` that holds `nowMs` (still filling), if one does. */
export function partialBucketIndex(range: ResolvedRange, nowMs: number): number | undefined {
  const step = INTERVAL_MS[range.interval];
  const i = range.buckets.findIndex((b) => b <= nowMs && nowMs < b + step);
  return i === -1 ? undefined : i;
}
