import {
  type LatencyHistogram,
  latencyCount,
  latencyPercentile,
} from '../aggregate/latency-histogram.js';
import { TokenwatchError, type ValidationIssue } from '../errors.js';
import {
  parseUsageQuery,
  type QueryParams,
  type UsageQuery,
  type UsageRow,
} from './usage-query.js';

/** Parameters of `GET /v1/usage` that `GET /v1/latency` does not take (its order is fixed). */
const NOT_FOR_LATENCY = new Set(['orderBy', 'order', 'format']);

/**
 * Parses `GET /v1/latency`: the range, filters, `groupBy`, `interval` and `limit` of a usage
 * query (same names, defaults and checks), read from the hour and day rollups that keep the
 * latency histogram. Refused with a clear reason: a tag filter or group (tag rollups keep no
 * histogram), `interval=minute` (nor do minute rollups), and the usage-only `orderBy`, `order`
 * and `format`. Rows come most calls first (`requests`), or by bucket with an interval.
 */
export function parseLatencyQuery(
  params: QueryParams,
  ctx: Parameters<typeof parseUsageQuery>[1],
): UsageQuery {
  const issues: ValidationIssue[] = [];
  for (const name of new Set(params.keys())) {
    if (name.startsWith('tag.') || name.startsWith('tag:')) {
      issues.push({ field: name.slice(0, 64), reason: 'latency is not kept per tag' });
    } else if (NOT_FOR_LATENCY.has(name)) {
      issues.push({ field: name, reason: 'is not a parameter of /v1/latency' });
    }
  }
  if (params.get('interval') === 'minute') {
    issues.push({ field: 'interval', reason: 'latency is kept at hour and day resolution' });
  }
  const groupBy = params.get('groupBy') ?? '';
  if (groupBy.split(',').some((g) => g.trim().startsWith('tag:'))) {
    issues.push({ field: 'groupBy', reason: 'latency is not kept per tag' });
  }
  let query: UsageQuery | undefined;
  try {
    query = parseUsageQuery(params, ctx);
  } catch (err) {
    if (!(err instanceof TokenwatchError)) throw err;
    // One answer naming every bad parameter, the usage parser's and ours, each field once.
    for (const i of err.details) if (!issues.some((o) => o.field === i.field)) issues.push(i);
  }
  if (issues.length > 0 || !query) {
    throw new TokenwatchError('invalid_query', 'The latency query is invalid.', {
      details: issues,
    });
  }
  return {
    ...query,
    orderBy: query.interval ? 'bucket' : 'requests',
    order: query.interval ? 'asc' : 'desc',
    latency: true,
  };
}

/** One row of `GET /v1/latency`: a group's latency histogram and its percentiles. */
export interface LatencyRow {
  user?: string;
  app?: string;
  model?: string;
  provider?: string;
  bucketMs?: number;
  /** Calls of the group that reported a latency (the histogram's total). */
  timedRequests: number;
  /** Interpolated in the histogram (see `latencyPercentile`), in ms. */
  p50Ms: number;
  p95Ms: number;
  histogram: LatencyHistogram;
}

/**
 * The latency rows of a latency query's usage rows, in their order: the groups where at least
 * one call reported a latency (a group of calls without one has no percentile to show).
 */
export function latencyRowsOf(rows: readonly UsageRow[]): LatencyRow[] {
  const out: LatencyRow[] = [];
  for (const r of rows) {
    const histogram = r.latency;
    if (!histogram) continue;
    const timedRequests = latencyCount(histogram);
    if (timedRequests === 0) continue;
    const row: LatencyRow = {
      timedRequests,
      p50Ms: latencyPercentile(histogram, 0.5) as number,
      p95Ms: latencyPercentile(histogram, 0.95) as number,
      histogram,
    };
    if (r.user !== undefined) row.user = r.user;
    if (r.app !== undefined) row.app = r.app;
    if (r.model !== undefined) row.model = r.model;
    if (r.provider !== undefined) row.provider = r.provider;
    if (r.bucketMs !== undefined) row.bucketMs = r.bucketMs;
    out.push(row);
  }
  return out;
}
