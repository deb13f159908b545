import { nanoToUsd } from './format.js';
import type { UsageRow } from './usage-api.js';

/**
 * Pure transforms from API rows to what a panel shows. Every number shown is either an API row's
 * value or an exact sum / difference of them (integers; cost summed in nano-USD as bigint), so a
 * chart's points can be checked against the API.
 */

export type Metric = 'tokens' | 'cost';

export interface Totals {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  totalTokens: number;
  requests: number;
  errors: number;
  costNano: bigint;
  unpricedTokens: number;
  unpricedRequests: number;
  noUsageRequests: number;
  deniedRequests: number;
}

export function emptyTotals(): Totals {
  return {
    inputTokens: 0,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    totalTokens: 0,
    requests: 0,
    errors: 0,
    costNano: 0n,
    unpricedTokens: 0,
    unpricedRequests: 0,
    noUsageRequests: 0,
    deniedRequests: 0,
  };
}

export function addRow(t: Totals, r: UsageRow): Totals {
  t.inputTokens += r.inputTokens;
  t.outputTokens += r.outputTokens;
  t.cacheReadTokens += r.cacheReadTokens;
  t.cacheWriteTokens += r.cacheWriteTokens;
  t.totalTokens += r.totalTokens;
  t.requests += r.requests;
  t.errors += r.errors;
  t.costNano += BigInt(r.costNanoUsd);
  t.unpricedTokens += r.unpricedTokens;
  t.unpricedRequests += r.unpricedRequests;
  // Absent from a server older than these counts.
  t.noUsageRequests += r.noUsageRequests ?? 0;
  t.deniedRequests += r.deniedRequests ?? 0;
  return t;
}

export function sumRows(rows: readonly UsageRow[]): Totals {
  const t = emptyTotals();
  for (const r of rows) addRow(t, r);
  return t;
}

/** A metric's value of a row in exact units: tokens, or nano-USD. */
export function exactValue(r: UsageRow, metric: Metric): bigint {
  return metric === 'cost' ? BigInt(r.costNanoUsd) : BigInt(r.totalTokens);
}

/** Exact units → the number a chart shows (USD for cost). */
export function displayValue(v: bigint, metric: Metric): number {
  return metric === 'cost' ? nanoToUsd(v) : Number(v);
}

export interface Series {
  name: string;
  /** True for the aggregated remainder ("Other …"). */
  other: boolean;
  data: number[];
}

export interface TimeSeries {
  /** Bucket starts (ISO, as the API's `bucket`). */
  categories: string[];
  series: Series[];
}

/**
 * Stacked series over time: one series per key in `keys` (values from `keyedRows`, grouped by
 * `dim` with an interval), plus "other" = the unfiltered total (`totalRows`, same interval) minus
 * the keyed series, when it is not zero everywhere.
 */
export function stackedOverTime(options: {
  buckets: readonly number[];
  keys: readonly string[];
  keyOf: (r: UsageRow) => string | undefined;
  keyedRows: readonly UsageRow[];
  totalRows: readonly UsageRow[];
  metric: Metric;
  otherName: string;
}): TimeSeries {
  const { buckets, keys, keyOf, keyedRows, totalRows, metric } = options;
  const index = new Map<number, number>();
  buckets.forEach((b, i) => {
    index.set(b, i);
  });
  const byKey = new Map<string, bigint[]>(keys.map((k) => [k, buckets.map(() => 0n)]));
  const keyedSum = buckets.map(() => 0n);
  for (const r of keyedRows) {
    const key = keyOf(r);
    const i = r.bucket === undefined ? undefined : index.get(Date.parse(r.bucket));
    const arr = key === undefined ? undefined : byKey.get(key);
    if (i === undefined || !arr) continue;
    const v = exactValue(r, metric);
    arr[i] = (arr[i] as bigint) + v;
    keyedSum[i] = (keyedSum[i] as bigint) + v;
  }
  const total = buckets.map(() => 0n);
  for (const r of totalRows) {
    const i = r.bucket === undefined ? undefined : index.get(Date.parse(r.bucket));
    if (i !== undefined) total[i] = (total[i] as bigint) + exactValue(r, metric);
  }
  const series: Series[] = keys.map((k) => ({
    name: k,
    other: false,
    data: (byKey.get(k) as bigint[]).map((v) => displayValue(v, metric)),
  }));
  const rest = total.map((t, i) => t - (keyedSum[i] as bigint));
  if (rest.some((v) => v !== 0n)) {
    series.push({
      name: options.otherName,
      other: true,
      data: rest.map((v) => displayValue(v, metric)),
    });
  }
  return { categories: buckets.map((b) => new Date(b).toISOString()), series };
}

export interface Slice {
  name: string;
  other: boolean;
  value: number;
  /** Exact value: tokens, or nano-USD. */
  exact: bigint;
}

/** The first `n` rows by `metric` as slices, the rest summed into one "other" slice. */
export function topWithOther(
  rows: readonly UsageRow[],
  keyOf: (r: UsageRow) => string,
  n: number,
  metric: Metric,
  otherName: string,
): Slice[] {
  const sorted = [...rows].sort((a, b) => {
    const d = exactValue(b, metric) - exactValue(a, metric);
    return d > 0n ? 1 : d < 0n ? -1 : keyOf(a) < keyOf(b) ? -1 : 1;
  });
  const out: Slice[] = sorted.slice(0, n).map((r) => {
    const exact = exactValue(r, metric);
    return { name: keyOf(r), other: false, value: displayValue(exact, metric), exact };
  });
  let rest = 0n;
  for (const r of sorted.slice(n)) rest += exactValue(r, metric);
  if (rest !== 0n) {
    out.push({ name: otherName, other: true, value: displayValue(rest, metric), exact: rest });
  }
  return out.filter((s) => s.exact !== 0n || !s.other);
}

/** Keys ordered by the summed metric, largest first (ties by name). */
export function rankKeys(
  rows: readonly UsageRow[],
  keyOf: (r: UsageRow) => string | undefined,
  metric: Metric,
): string[] {
  const sums = new Map<string, bigint>();
  for (const r of rows) {
    const k = keyOf(r);
    if (k === undefined) continue;
    sums.set(k, (sums.get(k) ?? 0n) + exactValue(r, metric));
  }
  return [...sums.entries()]
    .sort((a, b) => (b[1] > a[1] ? 1 : b[1] < a[1] ? -1 : a[0] < b[0] ? -1 : 1))
    .map(([k]) => k);
}

export interface Matrix {
  /** Row categories (e.g. apps), largest first; the last is "other" when `otherRow`. */
  rows: string[];
  /** Column categories = series (e.g. models). */
  cols: string[];
  otherRow: boolean;
  otherCol: boolean;
  /** values[col][row] */
  values: number[][];
}

/**
 * A two-dimensional breakdown (e.g. app × model) of rows grouped by both: the top `maxRows` row
 * keys and `maxCols` column keys, with the remainders in an "other" row and column.
 */
export function matrix(
  data: readonly UsageRow[],
  rowOf: (r: UsageRow) => string,
  colOf: (r: UsageRow) => string,
  maxRows: number,
  maxCols: number,
  metric: Metric,
  names: { otherRow: string; otherCol: string },
): Matrix {
  const rowKeys = rankKeys(data, rowOf, metric);
  const colKeys = rankKeys(data, colOf, metric);
  const rows = rowKeys.slice(0, maxRows);
  const cols = colKeys.slice(0, maxCols);
  const otherRow = rowKeys.length > maxRows;
  const otherCol = colKeys.length > maxCols;
  const rIndex = new Map(rows.map((k, i) => [k, i]));
  const cIndex = new Map(cols.map((k, i) => [k, i]));
  const nr = rows.length + (otherRow ? 1 : 0);
  const nc = cols.length + (otherCol ? 1 : 0);
  const exact: bigint[][] = Array.from({ length: nc }, () => Array.from({ length: nr }, () => 0n));
  for (const r of data) {
    const ri = rIndex.get(rowOf(r)) ?? (otherRow ? rows.length : undefined);
    const ci = cIndex.get(colOf(r)) ?? (otherCol ? cols.length : undefined);
    if (ri === undefined || ci === undefined) continue;
    const col = exact[ci] as bigint[];
    col[ri] = (col[ri] as bigint) + exactValue(r, metric);
  }
  return {
    rows: otherRow ? [...rows, names.otherRow] : rows,
    cols: otherCol ? [...cols, names.otherCol] : cols,
    otherRow,
    otherCol,
    values: exact.map((col) => col.map((v) => displayValue(v, metric))),
  };
}

/** Per key, the metric in each bucket (zero-filled), for sparklines. */
export function seriesByKey(
  rows: readonly UsageRow[],
  keyOf: (r: UsageRow) => string | undefined,
  buckets: readonly number[],
  metric: Metric,
): Map<string, number[]> {
  const index = new Map(buckets.map((b, i) => [b, i]));
  const out = new Map<string, bigint[]>();
  for (const r of rows) {
    const k = keyOf(r);
    const i = r.bucket === undefined ? undefined : index.get(Date.parse(r.bucket));
    if (k === undefined || i === undefined) continue;
    let arr = out.get(k);
    if (!arr) {
      arr = buckets.map(() => 0n);
      out.set(k, arr);
    }
    arr[i] = (arr[i] as bigint) + exactValue(r, metric);
  }
  return new Map([...out].map(([k, arr]) => [k, arr.map((v) => displayValue(v, metric))]));
}

/**
 * Rows grouped by more dimensions summed up to one of them (e.g. app × model → app), exactly:
 * the same numbers the API gives when grouped by that dimension alone, without another query.
 */
export function rollUpBy(rows: readonly UsageRow[], dim: 'app' | 'model' | 'user'): UsageRow[] {
  const sums = new Map<string, Totals>();
  for (const r of rows) {
    const key = r[dim];
    if (key === undefined) continue;
    addRow(sums.get(key) ?? (sums.set(key, emptyTotals()).get(key) as Totals), r);
  }
  return [...sums].map(([key, t]) => {
    const row: UsageRow = {
      inputTokens: t.inputTokens,
      outputTokens: t.outputTokens,
      cacheReadTokens: t.cacheReadTokens,
      cacheWriteTokens: t.cacheWriteTokens,
      totalTokens: t.totalTokens,
      requests: t.requests,
      errors: t.errors,
      costUsd: nanoToUsd(t.costNano),
      costNanoUsd: t.costNano.toString(),
      unpricedTokens: t.unpricedTokens,
      unpricedRequests: t.unpricedRequests,
      noUsageRequests: t.noUsageRequests,
      deniedRequests: t.deniedRequests,
    };
    row[dim] = key;
    return row;
  });
}
