import type { RollupMeasures } from '../aggregate/rollup-delta.js';
import { TokenwatchError, type ValidationIssue } from '../errors.js';
import { parseTimestampParam } from './timestamp.js';

export type BaseDimension = 'user' | 'app' | 'model' | 'provider';
/** `tag:<key>` groups by the value of one tag. */
export type Dimension = BaseDimension | `tag:${string}`;
export type Interval = 'minute' | 'hour' | 'day' | 'month';
/** The rollup a query is answered from. */
export type Resolution = 'minute' | 'hour' | 'day';

export const ORDER_FIELDS = [
  'totalTokens',
  'inputTokens',
  'outputTokens',
  'cacheReadTokens',
  'cacheWriteTokens',
  'requests',
  'errors',
  'costUsd',
  'unpricedTokens',
  'noUsageRequests',
  'deniedRequests',
  'bucket',
] as const;
export type OrderField = (typeof ORDER_FIELDS)[number];

export interface UsageQuery {
  projectId: string;
  /** Inclusive start, epoch ms. A bucket belongs to the range when its START is in [from, to). */
  fromMs: number;
  /** Exclusive end, epoch ms. */
  toMs: number;
  /** Undefined: one row per group over the whole range. */
  interval: Interval | undefined;
  resolution: Resolution;
  groupBy: Dimension[];
  /** Values per dimension; a row matches when its value is one of them. */
  filters: Partial<Record<BaseDimension, string[]>>;
  /** At most one tag filter: rows whose tag `key` has `value`. */
  tagFilter: { key: string; value: string } | undefined;
  orderBy: OrderField;
  order: 'asc' | 'desc';
  limit: number;
  /**
   * Only users whose id starts with this (case-sensitive, compared by code point; user search).
   * Absent: every user.
   */
  userPrefix?: string;
  /**
   * Also sum the latency histogram: every row then has `latency` (all zeros when none of its
   * calls reported one). Kept at hour and day resolution, without tags (`parseLatencyQuery`).
   */
  latency?: boolean;
}

/**
 * One aggregated row: the rollup measures (what each request count counts: `RollupMeasures`).
 * Dimension fields are present only when grouped by them.
 */
export interface UsageRow extends RollupMeasures {
  user?: string;
  app?: string;
  model?: string;
  provider?: string;
  /** `tag:<key>` → value, when grouped by a tag. */
  tag?: { key: string; value: string };
  /** Bucket start, epoch ms (UTC), when the query has an interval. */
  bucketMs?: number;
}

export const MAX_QUERY_ROWS = 10_000;
const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const DIMENSIONS: readonly BaseDimension[] = ['user', 'app', 'model', 'provider'];
const FILTER_ALIASES: Record<string, BaseDimension> = {
  user: 'user',
  userId: 'user',
  app: 'app',
  appId: 'app',
  model: 'model',
  modelId: 'model',
  provider: 'provider',
};
const TAG_KEY = /^[A-Za-z0-9_.:-]{1,64}$/;
const KNOWN_PARAMS = new Set([
  'from',
  'to',
  'interval',
  'groupBy',
  'orderBy',
  'order',
  'limit',
  'format',
]);

/** Reads query parameters as `URLSearchParams` gives them. */
export interface QueryParams {
  get(name: string): string | null;
  getAll(name: string): string[];
  keys(): IterableIterator<string>;
}

export interface ParseContext {
  projectId: string;
  nowMs: number;
  /** Minute rollups are kept this long; older minute queries are refused rather than empty. */
  minuteRetentionMs: number;
}

/**
 * Parses and validates `GET /v1/usage` parameters. Every name comes from an allowlist; an
 * unknown parameter is an error, not silently ignored, so a typo never widens a query.
 */
export function parseUsageQuery(params: QueryParams, ctx: ParseContext): UsageQuery {
  const issues: ValidationIssue[] = [];
  const filters: Partial<Record<BaseDimension, string[]>> = {};
  let tagFilter: UsageQuery['tagFilter'];

  for (const name of new Set(params.keys())) {
    if (KNOWN_PARAMS.has(name)) continue;
    const dim = Object.hasOwn(FILTER_ALIASES, name) ? FILTER_ALIASES[name] : undefined;
    if (dim) {
      const values = params.getAll(name);
      // An empty value would silently drop the filter and widen the query: refuse it.
      if (values.some((v) => v.length === 0))
        issues.push({ field: name, reason: 'must not be empty' });
      if (values.length > 100) issues.push({ field: name, reason: 'at most 100 values' });
      filters[dim] = [...(filters[dim] ?? []), ...values];
      continue;
    }
    if (name.startsWith('tag.') || name.startsWith('tag:')) {
      const key = name.slice(4);
      const value = params.get(name) ?? '';
      if (!TAG_KEY.test(key)) issues.push({ field: name, reason: 'invalid tag key' });
      else if (tagFilter) issues.push({ field: name, reason: 'only one tag filter is supported' });
      else tagFilter = { key, value };
      continue;
    }
    issues.push({ field: name.slice(0, 64), reason: 'is not a known query parameter' });
  }

  const toRaw = params.get('to');
  const fromRaw = params.get('from');
  const toMs = toRaw ? parseTimestampParam(toRaw, 'to', issues) : ctx.nowMs;
  let fromMs = fromRaw ? parseTimestampParam(fromRaw, 'from', issues) : undefined;
  if (fromMs === undefined && !fromRaw && toMs !== undefined) fromMs = toMs - DAY_MS;
  if (fromMs !== undefined && toMs !== undefined && fromMs >= toMs) {
    issues.push({ field: 'from', reason: 'must be before "to"' });
  }

  const intervalRaw = params.get('interval');
  let interval: Interval | undefined;
  if (intervalRaw !== null && intervalRaw !== '' && intervalRaw !== 'none') {
    if (['minute', 'hour', 'day', 'month'].includes(intervalRaw))
      interval = intervalRaw as Interval;
    else issues.push({ field: 'interval', reason: 'must be one of minute, hour, day, month' });
  }

  const groupBy: Dimension[] = [];
  const groupRaw = params.get('groupBy');
  if (groupRaw) {
    for (const part of groupRaw
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)) {
      const dim = Object.hasOwn(FILTER_ALIASES, part) ? FILTER_ALIASES[part] : undefined;
      if (dim && !groupBy.includes(dim)) groupBy.push(dim);
      else if (part.startsWith('tag:') && TAG_KEY.test(part.slice(4))) {
        if (groupBy.some((g) => g.startsWith('tag:'))) {
          issues.push({ field: 'groupBy', reason: 'only one tag dimension is supported' });
        } else groupBy.push(part as Dimension);
      } else if (!dim) {
        issues.push({
          field: 'groupBy',
          reason: `"${part.slice(0, 64)}" is not one of user, app, model, provider, tag:<key>`,
        });
      }
    }
  }
  const groupTag = groupBy.find((g) => g.startsWith('tag:'));
  if (groupTag && tagFilter && groupTag.slice(4) !== tagFilter.key) {
    issues.push({ field: 'groupBy', reason: 'a tag group and a tag filter must use the same key' });
  }

  const orderRaw = params.get('orderBy');
  let orderBy: OrderField = interval ? 'bucket' : 'totalTokens';
  if (orderRaw) {
    const normalised = orderRaw === 'cost' ? 'costUsd' : orderRaw;
    if ((ORDER_FIELDS as readonly string[]).includes(normalised))
      orderBy = normalised as OrderField;
    else issues.push({ field: 'orderBy', reason: `must be one of ${ORDER_FIELDS.join(', ')}` });
  }
  if (orderBy === 'bucket' && !interval) {
    issues.push({ field: 'orderBy', reason: '"bucket" needs an interval' });
  }
  const orderRawDir = params.get('order');
  let order: 'asc' | 'desc' = orderBy === 'bucket' ? 'asc' : 'desc';
  if (orderRawDir) {
    if (orderRawDir === 'asc' || orderRawDir === 'desc') order = orderRawDir;
    else issues.push({ field: 'order', reason: 'must be asc or desc' });
  }
  let limit = 1000;
  const limitRaw = params.get('limit');
  if (limitRaw) {
    const n = Number(limitRaw);
    if (!/^\d+$/.test(limitRaw) || n < 1 || n > MAX_QUERY_ROWS) {
      issues.push({ field: 'limit', reason: `must be an integer from 1 to ${MAX_QUERY_ROWS}` });
    } else limit = n;
  }

  const usesTags = groupTag !== undefined || tagFilter !== undefined;
  let resolution: Resolution = 'hour';
  if (interval === 'minute') resolution = 'minute';
  else if (interval === 'day' || interval === 'month') resolution = 'day';
  else if (interval === undefined && fromMs !== undefined && toMs !== undefined) {
    resolution = fromMs % DAY_MS === 0 && toMs % DAY_MS === 0 ? 'day' : 'hour';
  }
  if (resolution === 'minute') {
    if (usesTags)
      issues.push({ field: 'interval', reason: 'tags are kept at hour and day resolution' });
    if (fromMs !== undefined && fromMs < ctx.nowMs - ctx.minuteRetentionMs) {
      issues.push({
        field: 'from',
        reason: `minute resolution is kept for ${Math.round(ctx.minuteRetentionMs / DAY_MS)} days; use interval=hour`,
      });
    }
    if (fromMs !== undefined && toMs !== undefined && (toMs - fromMs) / MINUTE_MS > 50_000) {
      issues.push({ field: 'interval', reason: 'too many minute buckets; use interval=hour' });
    }
  }
  if (
    resolution === 'hour' &&
    interval === 'hour' &&
    fromMs !== undefined &&
    toMs !== undefined &&
    (toMs - fromMs) / HOUR_MS > 24 * 400
  ) {
    issues.push({ field: 'interval', reason: 'too many hour buckets; use interval=day' });
  }

  if (issues.length > 0 || fromMs === undefined || toMs === undefined) {
    throw new TokenwatchError('invalid_query', 'The usage query is invalid.', { details: issues });
  }
  return {
    projectId: ctx.projectId,
    fromMs,
    toMs,
    interval,
    resolution,
    groupBy,
    filters,
    tagFilter,
    orderBy,
    order,
    limit,
  };
}

/** Start of the bucket of `ms` for an interval, in UTC. */
export function bucketStart(ms: number, interval: Interval): number {
  switch (interval) {
    case 'minute':
      return ms - (((ms % MINUTE_MS) + MINUTE_MS) % MINUTE_MS);
    case 'hour':
      return ms - (((ms % HOUR_MS) + HOUR_MS) % HOUR_MS);
    case 'day':
      return ms - (((ms % DAY_MS) + DAY_MS) % DAY_MS);
    case 'month': {
      const d = new Date(ms);
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    }
  }
}

export const RESOLUTION_MS: Record<Resolution, number> = {
  minute: MINUTE_MS,
  hour: HOUR_MS,
  day: DAY_MS,
};

export { DIMENSIONS as BASE_DIMENSIONS };

/** `GET /v1/users`: users of a project with usage in a range whose id starts with a prefix. */
export interface UserSearch {
  projectId: string;
  fromMs: number;
  toMs: number;
  /** The rollup the range is read from (as `parseUsageQuery` picks it). */
  resolution: Resolution;
  /** Non-empty; compared case-sensitively, code point by code point. */
  prefix: string;
  limit: number;
}

/**
 * The usage query a user search is: one row per matching user over the range, most tokens
 * first, ties by id. Every store answers `searchUsers` with it, so all agree on the order.
 */
export function userSearchQuery(search: UserSearch): UsageQuery {
  return {
    projectId: search.projectId,
    fromMs: search.fromMs,
    toMs: search.toMs,
    interval: undefined,
    resolution: search.resolution,
    groupBy: ['user'],
    filters: {},
    tagFilter: undefined,
    orderBy: 'totalTokens',
    order: 'desc',
    limit: search.limit,
    userPrefix: search.prefix,
  };
}
