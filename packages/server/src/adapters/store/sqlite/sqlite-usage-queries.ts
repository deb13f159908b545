import type { Dimension, UsageQuery } from '@tokenwatch/core';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Maps a query's dimensions to columns. Names come only from this table, never from input. */
const COLUMN: Record<string, string> = {
  user: 's.user_id',
  app: 's.app_id',
  model: 's.model_id',
  provider: 's.provider',
};

export interface CompiledQuery {
  sql: string;
  params: unknown[];
  /** Output columns, in order, for the dimensions of the rows. */
  dimensions: Dimension[];
}

/**
 * Builds the SQL for a usage query over the rollups. Shared by SQLite and (with `$n`
 * placeholders) PostgreSQL: `placeholder(i)` renders the i-th (1-based) parameter.
 */
export function compileUsageQuery(
  q: UsageQuery,
  placeholder: (index: number) => string = () => '?',
  monthBucketSql: (column: string) => string = (c) =>
    `(CAST(strftime('%s', ${c} / 1000, 'unixepoch', 'start of month') AS INTEGER) * 1000)`,
  /** Whether the schema has the coarse app × model and user × app rollups (SQLite does). */
  coarseRollups = false,
): CompiledQuery {
  const params: unknown[] = [];
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
  ];
  const within = (dims: string[]) => needed.every((d) => dims.includes(d));
  // Which rollup family: [prefix of the table, series table, series id column, has an hour table].
  let family: { table: string; join: string };
  if (usesTags) {
    family = {
      table: 'rollup_tag',
      join: 'CROSS JOIN series s ON s.series_id = r.series_id CROSS JOIN tags t ON t.tag_id = r.tag_id',
    };
  } else if (coarseRollups && q.resolution !== 'minute' && within(['app', 'model', 'provider'])) {
    family = {
      table: 'rollup_app',
      join: 'CROSS JOIN app_series s ON s.app_series_id = r.series_id',
    };
  } else if (coarseRollups && q.resolution === 'day' && within(['user', 'app'])) {
    family = {
      table: 'rollup_user',
      join: 'CROSS JOIN user_series s ON s.user_series_id = r.series_id',
    };
  } else {
    family = { table: 'rollup', join: 'CROSS JOIN series s ON s.series_id = r.series_id' };
  }

  // A long range without an interval, not aligned on days, would read every hour row. Read the
  // whole days it contains from the day rollup and only its ragged edges from the hour rollup:
  // the same buckets as the hour query (a bucket counts when its start is in [from, to)).
  const hourStart = Math.ceil(q.fromMs / HOUR_MS) * HOUR_MS;
  const hourEnd = Math.ceil(q.toMs / HOUR_MS) * HOUR_MS;
  const dayStart = Math.ceil(hourStart / DAY_MS) * DAY_MS;
  const dayEnd = Math.floor(hourEnd / DAY_MS) * DAY_MS;
  const hybrid =
    q.interval === undefined &&
    q.resolution === 'hour' &&
    family.table !== 'rollup_user' &&
    dayEnd > dayStart;
  // CROSS JOIN fixes the join order in SQLite: scan the rollup's bucket range once and look each
  // series up by its integer id. Left to itself the planner may loop over the project's series
  // and rescan the range for each (seconds at 10k series).
  let from: string;
  if (hybrid) {
    from = `(SELECT * FROM ${family.table}_day WHERE bucket_ms >= ${p(dayStart)} AND bucket_ms < ${p(dayEnd)}
      UNION ALL SELECT * FROM ${family.table}_hour WHERE (bucket_ms >= ${p(hourStart)} AND bucket_ms < ${p(dayStart)})
        OR (bucket_ms >= ${p(dayEnd)} AND bucket_ms < ${p(hourEnd)})) r ${family.join}`;
  } else {
    from = `${family.table}_${q.resolution} r ${family.join}`;
  }

  // The project is bound on the series, which every rollup row joins: no row of another
  // project can match, whatever else the query says.
  const where = [`s.project_id = ${p(q.projectId)}`];
  if (!hybrid) where.push(`r.bucket_ms >= ${p(q.fromMs)}`, `r.bucket_ms < ${p(q.toMs)}`);
  if (usesTags) where.push('t.project_id = s.project_id', `t.tag_key = ${p(tagKey)}`);
  if (q.tagFilter) where.push(`t.tag_value = ${p(q.tagFilter.value)}`);
  for (const [dim, values] of Object.entries(q.filters)) {
    const column = COLUMN[dim];
    if (!column || !values || values.length === 0) continue;
    where.push(`${column} IN (${values.map((v) => p(v)).join(', ')})`);
  }

  const select: string[] = [];
  const group: string[] = [];
  for (const dim of q.groupBy) {
    const column = dim.startsWith('tag:') ? 't.tag_value' : COLUMN[dim];
    if (!column) continue;
    select.push(`${column} AS d${select.length}`);
    group.push(column);
  }
  let bucketExpr: string | undefined;
  if (q.interval) {
    bucketExpr = q.interval === 'month' ? monthBucketSql('r.bucket_ms') : 'r.bucket_ms';
    select.push(`${bucketExpr} AS bucket`);
    group.push(bucketExpr);
  }
  select.push(
    'SUM(r.input_tokens) AS input_tokens',
    'SUM(r.output_tokens) AS output_tokens',
    'SUM(r.cache_read_tokens) AS cache_read_tokens',
    'SUM(r.cache_write_tokens) AS cache_write_tokens',
    'SUM(r.total_tokens) AS total_tokens',
    'SUM(r.requests) AS requests',
    'SUM(r.errors) AS errors',
    'SUM(r.cost_nano_usd) AS cost_nano_usd',
    'SUM(r.unpriced_tokens) AS unpriced_tokens',
    'SUM(r.unpriced_requests) AS unpriced_requests',
  );
  const orderColumn: Record<string, string> = {
    totalTokens: 'total_tokens',
    inputTokens: 'input_tokens',
    outputTokens: 'output_tokens',
    cacheReadTokens: 'cache_read_tokens',
    cacheWriteTokens: 'cache_write_tokens',
    requests: 'requests',
    errors: 'errors',
    costUsd: 'cost_nano_usd',
    unpricedTokens: 'unpriced_tokens',
    bucket: 'bucket',
  };
  const dir = q.order === 'asc' ? 'ASC' : 'DESC';
  // Ties are broken by the dimensions and the bucket so every adapter returns the same order.
  const order = [`${orderColumn[q.orderBy] ?? 'total_tokens'} ${dir}`];
  group.forEach((_, i) => {
    if (i < q.groupBy.length) order.push(`d${i} ASC`);
  });
  if (bucketExpr && q.orderBy !== 'bucket') order.push('bucket ASC');

  const sql = `SELECT ${select.join(', ')} FROM ${from} WHERE ${where.join(' AND ')}${
    group.length > 0 ? ` GROUP BY ${group.join(', ')}` : ''
  } HAVING SUM(r.requests) > 0 ORDER BY ${order.join(', ')} LIMIT ${p(q.limit)}`;
  return { sql, params, dimensions: q.groupBy };
}
