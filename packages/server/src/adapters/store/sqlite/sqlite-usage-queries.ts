import type { Dimension, UsageQuery } from '@tokenwatch/core';
import { LATENCY_COLUMNS, MEASURE_COLUMNS } from '../sql-rows.js';
import {
  bucketList,
  type Family,
  FULL,
  pickFamily,
  RESOLUTION_MS,
  type Resolution,
  rangeParts,
  USER,
  USER_APP,
} from './rollup-families.js';

/** Maps a query's dimensions to columns. Names come only from this table, never from input. */
const COLUMN: Record<string, string> = {
  user: 'user_id',
  app: 'app_id',
  model: 'model_id',
  provider: 'provider',
};

export interface CompiledQuery {
  sql: string;
  params: unknown[];
  /** Output columns, in order, for the dimensions of the rows. */
  dimensions: Dimension[];
}

export interface CompileOptions {
  /** Renders the i-th (1-based) parameter: `?` for SQLite (default), `$i` for PostgreSQL. */
  placeholder?: (index: number) => string;
  /** The start of the UTC month of an epoch-ms column. */
  monthBucketSql?: (column: string) => string;
  /**
   * Whether the schema has the coarse rollups — app × model, user × app, user alone — and
   * per-bucket seeks pay off for a user filter (SQLite).
   */
  coarseRollups?: boolean;
  /** `count`: one row, `n`, the number of rows the query returns without its limit. */
  shape?: 'rows' | 'count';
  /**
   * Rollup rows hold the cost as whole USD (`cost_usd`) + nano-USD below a dollar
   * (`cost_nano_usd`), as SQLite's do: both are summed, and ordering by cost orders by the pair.
   */
  splitCost?: boolean;
}

const ORDER_COLUMN: Record<string, string> = {
  totalTokens: 'total_tokens',
  inputTokens: 'input_tokens',
  outputTokens: 'output_tokens',
  cacheReadTokens: 'cache_read_tokens',
  cacheWriteTokens: 'cache_write_tokens',
  requests: 'requests',
  errors: 'errors',
  costUsd: 'cost_nano_usd',
  unpricedTokens: 'unpriced_tokens',
  noUsageRequests: 'no_usage_requests',
  deniedRequests: 'denied_requests',
  bucket: 'bucket',
};

/** The dimensions whose every combination is exactly one series of a family's dictionary. */
const KEY_DIMENSIONS = new Map<Family, readonly string[]>([
  [USER, ['user']],
  [USER_APP, ['user', 'app']],
]);

/** Builds the SQL for a usage query over the rollups. Shared by SQLite and PostgreSQL. */
export function compileUsageQuery(q: UsageQuery, options: CompileOptions = {}): CompiledQuery {
  const placeholder = options.placeholder ?? (() => '?');
  const monthBucketSql =
    options.monthBucketSql ??
    ((c: string) =>
      `(CAST(strftime('%s', ${c} / 1000, 'unixepoch', 'start of month') AS INTEGER) * 1000)`);
  const coarseRollups = options.coarseRollups ?? false;
  const params: unknown[] = [];
  // With `?` placeholders parameters bind in the order they appear in the text: every piece of
  // SQL below is rendered in text order, each time it appears.
  const p = (value: unknown): string => {
    params.push(value);
    return placeholder(params.length);
  };
  const groupTag = q.groupBy.find((g) => g.startsWith('tag:'));
  const tagKey = groupTag ? groupTag.slice(4) : q.tagFilter?.key;
  const usesTags = tagKey !== undefined;
  // The smallest rollup that has every dimension the query groups or filters by.
  const needed = [
    ...q.groupBy,
    ...Object.entries(q.filters)
      .filter(([, v]) => v && v.length > 0)
      .map(([k]) => k),
    ...(q.userPrefix !== undefined ? ['user'] : []),
  ];
  const within = (dims: string[]) => needed.every((d) => dims.includes(d));
  const family = pickFamily(
    usesTags ? 'tags' : coarseRollups && q.resolution !== 'minute' ? 'coarse' : 'full',
    within,
    q.latency === true,
  );

  // Whole days (and weeks) of a long range from the coarser rollups (see rangeParts).
  const parts = rangeParts(q, family);
  // With a user filter, seek each (bucket, series) of those users instead of scanning every row
  // of the range: the rollup key is (bucket, series), so a list of buckets and a list of the
  // users' series ids make exact lookups. Only SQLite's schema is laid out for it; a minute
  // range is short and holds many series per user, so it is scanned.
  const users = q.filters.user ?? [];
  const seekUsers =
    coarseRollups && !usesTags && users.length > 0 && q.resolution !== 'minute'
      ? () =>
          `SELECT ${family.idColumn} FROM ${family.seriesTable} WHERE project_id = ${p(
            q.projectId,
          )} AND user_id IN (${users.map((u) => p(u)).join(', ')})`
      : undefined;

  // One user holds ~1k full series (apps × models): seeking each (bucket, series) of a week of
  // hours is ~165k lookups, nearly all misses. The full rollups' (series_id, bucket_ms) index
  // (SERIES_INDEXES in schema.ts) reads each series' rows of the range in one seek instead.
  // Not for a range split into whole days and ragged hours: its few buckets per part are sought
  // faster (10M events, one user, 7 days: 30-40 ms by bucket against 44-48 ms by series).
  const bySeries = seekUsers !== undefined && family === FULL && parts === undefined;
  /** The rollup table of a resolution, through the by-series index when it is read that way. */
  const table = (resolution: Resolution, alias = ''): string =>
    `${family.table}_${resolution}${alias}${
      bySeries && resolution !== 'minute'
        ? ` INDEXED BY ${family.table}_${resolution}_by_series`
        : ''
    }`;

  /**
   * Rows of the buckets in the [start, end) ranges; `r` is the rollup's alias ('r.' or '').
   * `seriesSet` renders a subquery of series ids: their rows are sought bucket by bucket, or
   * series by series through the by-series index.
   */
  const bucketsIn = (
    ranges: Array<[number, number]>,
    stepMs: number,
    r: string,
    seriesSet: (() => string) | undefined,
  ): string => {
    const lists =
      seriesSet && !bySeries ? ranges.map(([start, end]) => bucketList(start, end, stepMs)) : [];
    if (!seriesSet || bySeries || lists.some((l) => l === undefined)) {
      const each = ranges.map(
        ([start, end]) => `${r}bucket_ms >= ${p(start)} AND ${r}bucket_ms < ${p(end)}`,
      );
      // Parenthesized whole: AND binds tighter than OR, and the series condition follows.
      const range = each.length === 1 ? (each[0] as string) : `((${each.join(') OR (')}))`;
      return seriesSet ? `${range} AND ${r}series_id IN (${seriesSet()})` : range;
    }
    // The buckets are integers computed here, not input: inlined, so no parameter limit.
    const list = lists.flat();
    return `${r}bucket_ms IN (${list.length === 0 ? 'NULL' : list.join(', ')}) AND ${r}series_id IN (${seriesSet()})`;
  };

  /**
   * The rollup rows of the range (alias r) and the conditions that bound them.
   */
  const rowsOfRange = (
    seriesSet: (() => string) | undefined,
    columns = '*',
  ): { rows: string; where: string[] } => {
    if (parts !== undefined) {
      // Only the columns needed: the union is copied row by row.
      const selects = parts.map(
        (part) =>
          `SELECT ${columns} FROM ${table(part.resolution)} WHERE ${bucketsIn(part.ranges, RESOLUTION_MS[part.resolution], '', seriesSet)}`,
      );
      return { rows: `(${selects.join('\n      UNION ALL ')}) r`, where: [] };
    }
    return {
      rows: table(q.resolution, ' r'),
      where: [bucketsIn([[q.fromMs, q.toMs]], RESOLUTION_MS[q.resolution], 'r.', seriesSet)],
    };
  };

  /** The project (bound on the series: no row of another project can match) and the filters. */
  const seriesConditions = (s: string): string[] => {
    const where = [`${s}project_id = ${p(q.projectId)}`];
    if (usesTags) where.push(`t.project_id = ${s}project_id`, `t.tag_key = ${p(tagKey)}`);
    if (q.tagFilter) where.push(`t.tag_value = ${p(q.tagFilter.value)}`);
    for (const [dim, values] of Object.entries(q.filters)) {
      const column = COLUMN[dim];
      if (!column || !values || values.length === 0) continue;
      where.push(`${s}${column} IN (${values.map((v) => p(v)).join(', ')})`);
    }
    if (q.userPrefix !== undefined) {
      // substr counts characters (code points) in SQLite and PostgreSQL alike, and compares
      // bytes exactly: no LIKE wildcards to escape, no collation or case folding in the way.
      const length = [...q.userPrefix].length;
      where.push(`substr(${s}user_id, 1, ${p(length)}) = ${p(q.userPrefix)}`);
    }
    return where;
  };

  const dims = q.groupBy.map((dim) =>
    dim.startsWith('tag:') ? 't.tag_value' : COLUMN[dim] && `s.${COLUMN[dim]}`,
  );
  const group = dims.filter((c): c is string => c !== undefined);
  const bucketExpr = q.interval
    ? q.interval === 'month'
      ? monthBucketSql('r.bucket_ms')
      : 'r.bucket_ms'
    : undefined;
  if (bucketExpr) group.push(bucketExpr);
  const splitCost = options.splitCost ?? false;
  const select = [
    ...group.map((c, i) => (c === bucketExpr ? `${c} AS bucket` : `${c} AS d${i}`)),
    ...MEASURE_COLUMNS.map((m) => `SUM(r.${m}) AS ${m}`),
    ...(splitCost ? ['SUM(r.cost_usd) AS cost_usd'] : []),
    ...(q.latency ? LATENCY_COLUMNS.map((c) => `SUM(r.${c}) AS ${c}`) : []),
  ];
  const orderBy = ORDER_COLUMN[q.orderBy] ?? 'total_tokens';
  const dir = q.order === 'asc' ? 'ASC' : 'DESC';
  /** The sums to order by: a split cost is whole dollars (with the carry), then the rest. */
  const orderSums = (r: string): string[] =>
    splitCost && orderBy === 'cost_nano_usd'
      ? [
          `SUM(${r}cost_usd) + SUM(${r}cost_nano_usd) / 1000000000`,
          `SUM(${r}cost_nano_usd) % 1000000000`,
        ]
      : [orderBy === 'bucket' ? 'bucket' : `SUM(${r}${orderBy})`];
  // Ties are broken by the dimensions and the bucket so every adapter returns the same order.
  const order = [
    ...orderSums('r.').map((o) => `${o} ${dir}`),
    ...q.groupBy.map((_, i) => `d${i} ASC`),
  ];
  if (bucketExpr && q.orderBy !== 'bucket') order.push('bucket ASC');

  // Top-N of a per-user family over a range: rank the series on the ordering measure alone (a
  // narrow sort), then add up every measure of the N winners only (a wide sort of few rows).
  // Valid because each group is exactly one series of the family's dictionary.
  // MATERIALIZED: the ranking is used once per part of the range; computed once.
  const keyDims = KEY_DIMENSIONS.get(family);
  const byKeyDims =
    keyDims !== undefined &&
    keyDims.length === q.groupBy.length &&
    keyDims.every((d) => q.groupBy.includes(d as Dimension));
  const rankFirst = options.shape !== 'count' && !q.interval && !seekUsers && byKeyDims;
  let ranked = '';
  let seriesSet = seekUsers;
  if (rankFirst) {
    const orderColumns =
      splitCost && orderBy === 'cost_nano_usd' ? ['cost_usd', orderBy] : [orderBy];
    const source = rowsOfRange(
      undefined,
      [...new Set(['series_id', ...orderColumns, 'requests', 'denied_requests'])].join(', '),
    );
    const sums = orderSums('r.');
    const inner = `SELECT r.series_id, ${sums.map((o, i) => `${o} AS o${i}`).join(', ')}, SUM(r.requests + r.denied_requests) AS q FROM ${source.rows}${
      source.where.length > 0 ? ` WHERE ${source.where.join(' AND ')}` : ''
    } GROUP BY r.series_id`;
    const ties = q.groupBy.map((d) => `rs.${COLUMN[d]} ASC`);
    ranked = `WITH ranked AS MATERIALIZED (SELECT g.series_id FROM (${inner}) g CROSS JOIN ${family.seriesTable} rs ON rs.${family.idColumn} = g.series_id WHERE ${seriesConditions(
      'rs.',
    ).join(
      ' AND ',
    )} AND g.q > 0 ORDER BY ${sums.map((_, i) => `g.o${i} ${dir}`).join(', ')}, ${ties.join(', ')} LIMIT ${p(q.limit)}) `;
    seriesSet = () => 'SELECT series_id FROM ranked';
  }

  // Counting groups that are each one series of the family's dictionary (active users): the
  // distinct series ids of the range's rows that hold a call, then only those looked up in the
  // dictionary for the project and filters. A sum of counts is > 0 exactly when one of its rows
  // is, so this is the HAVING below; and a temp b-tree of distinct integers costs a third of
  // sorting every row (30 days, 290k rows at 10M events: 43 ms against 150+).
  if (options.shape === 'count' && !q.interval && byKeyDims) {
    const rows = rowsOfRange(seriesSet, 'series_id, requests, denied_requests');
    const where = [...rows.where, 'r.requests + r.denied_requests > 0'];
    const sql = `SELECT COUNT(*) AS n FROM (SELECT DISTINCT r.series_id FROM ${rows.rows} WHERE ${where.join(
      ' AND ',
    )}) g CROSS JOIN ${family.seriesTable} s ON s.${family.idColumn} = g.series_id WHERE ${seriesConditions(
      's.',
    ).join(' AND ')}`;
    return { sql, params, dimensions: q.groupBy };
  }
  // A range-wide query (no interval) on a family without tags: its groups are made of whole
  // series, so the rows are added up per series id first (an integer sort) and each series is
  // looked up in the dictionary once, not once per row and bucket (~10x fewer lookups over 30
  // days). SQLite only: PostgreSQL hashes its groups and keeps the plan it was measured with.
  const perSeries = coarseRollups && !q.interval && !usesTags;
  let from: string;
  let where: string[];
  if (perSeries) {
    const columns = [
      ...MEASURE_COLUMNS,
      ...(splitCost ? ['cost_usd'] : []),
      ...(q.latency ? LATENCY_COLUMNS : []),
    ];
    const rows = rowsOfRange(seriesSet, ['series_id', ...columns].join(', '));
    from = `(SELECT r.series_id, ${columns.map((m) => `SUM(r.${m}) AS ${m}`).join(', ')} FROM ${rows.rows}${
      rows.where.length > 0 ? ` WHERE ${rows.where.join(' AND ')}` : ''
    } GROUP BY r.series_id) r`;
    where = seriesConditions('s.');
  } else {
    const source = rowsOfRange(seriesSet);
    from = source.rows;
    // In text order: the bounds of the buckets were rendered first, so they come first.
    where = [...source.where, ...seriesConditions('s.')];
  }
  // CROSS JOIN fixes the join order in SQLite: read the rollup's buckets and look each series up
  // by its integer id. Left to itself the planner may loop over the project's series and rescan
  // the range for each (seconds at 10k series). A group exists when a call was counted in it:
  // made (requests) or denied by a budget guard (denied_requests).
  const whereGroup = `FROM ${from} ${family.join} WHERE ${where.join(' AND ')}${
    group.length > 0 ? ` GROUP BY ${group.join(', ')}` : ''
  } HAVING SUM(r.requests + r.denied_requests) > 0`;
  const sql =
    options.shape === 'count'
      ? `SELECT COUNT(*) AS n FROM (SELECT SUM(r.requests) AS requests ${whereGroup}) g`
      : `${ranked}SELECT ${select.join(', ')} ${whereGroup} ORDER BY ${order.join(', ')} LIMIT ${p(q.limit)}`;
  return { sql, params, dimensions: q.groupBy };
}
