import type { UsageQuery, UsageRow } from '@tokenwatch/core';
import type { DynamoIo } from './dynamodb-io.js';
import { queryUsage } from './dynamodb-usage.js';
import { daysIn, monthsIn } from './keys.js';

const DAY_MS = 86_400_000;

/**
 * The rows of a rule's seed query (core's `seedQueries`: one query per calendar window, summed
 * per scope without an interval) in as few Queries as the table allows. At hour resolution the
 * table has one hour-index partition per UTC day, so a month window took 31 Queries and a week
 * 7 or 8; here the window's whole UTC days are read from the day rollups instead (one partition
 * per UTC month) and only its partial days at the edges from the hour index: a month or a week
 * takes 1 to 3. The day rollups come from the same batch aggregate as the hour rollups and are
 * never pruned (only minutes are), and the seed sums per window, so the counters are the same.
 * Used only when it takes fewer requests (a single whole day stays one hour-index Query, which
 * reads a day's rows instead of a month's).
 */
export async function seedRows(io: DynamoIo, query: UsageQuery): Promise<UsageRow[]> {
  if (query.resolution !== 'hour' || query.interval !== undefined) return queryUsage(io, query);
  const wholeFrom = Math.ceil(query.fromMs / DAY_MS) * DAY_MS;
  const wholeTo = Math.floor(query.toMs / DAY_MS) * DAY_MS;
  if (wholeTo <= wholeFrom) return queryUsage(io, query);
  const parts: UsageQuery[] = [
    { ...query, toMs: wholeFrom },
    { ...query, fromMs: wholeFrom, toMs: wholeTo, resolution: 'day' as const },
    { ...query, fromMs: wholeTo },
  ].filter((q) => q.toMs > q.fromMs);
  const requests = (q: UsageQuery) =>
    q.resolution === 'day' ? monthsIn(q.fromMs, q.toMs).length : daysIn(q.fromMs, q.toMs).length;
  const split = parts.reduce((n, q) => n + requests(q), 0);
  if (split >= requests(query)) return queryUsage(io, query);
  const rows = await Promise.all(parts.map((q) => queryUsage(io, q)));
  return rows.flat();
}
