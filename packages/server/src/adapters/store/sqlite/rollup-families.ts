import type { UsageQuery } from '@tokenwatch/core';
import { WEEK_MS } from './schema.js';

/**
 * The rollup families a usage query can read, which one a query reads, and how a range is split
 * over their resolutions (see compileUsageQuery in sqlite-usage-queries.ts).
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
export const RESOLUTION_MS = { minute: 60_000, hour: HOUR_MS, day: DAY_MS, week: WEEK_MS } as const;
export type Resolution = keyof typeof RESOLUTION_MS;
/** Past this many buckets a user filter scans the range instead of seeking each bucket. */
const MAX_SEEK_BUCKETS = 800;

export interface Family {
  /** Table prefix: `${table}_${resolution}`. */
  table: string;
  /** The dictionary its `series_id` refers to, and that dictionary's id column. */
  seriesTable: string;
  idColumn: string;
  join: string;
  /** It has a week rollup too (`${table}_week`, see WEEK_MS). */
  weeks: boolean;
}

function family(
  table: string,
  seriesTable: string,
  idColumn: string,
  { tags = false, weeks = false } = {},
): Family {
  return {
    table,
    seriesTable,
    idColumn,
    weeks,
    join: `CROSS JOIN ${seriesTable} s ON s.${idColumn} = r.series_id${
      tags ? ' CROSS JOIN tags t ON t.tag_id = r.tag_id' : ''
    }`,
  };
}

export const FULL = family('rollup', 'series', 'series_id');
const TAGGED = family('rollup_tag', 'series', 'series_id', { tags: true });
const APP = family('rollup_app', 'app_series', 'app_series_id');
export const USER_APP = family('rollup_user', 'user_series', 'user_series_id');
export const USER = family('rollup_per_user', 'user_ids', 'user_key_id', { weeks: true });
const MODEL = family('rollup_per_model', 'model_ids', 'model_key_id');
const APP_ONLY = family('rollup_per_app', 'app_ids', 'app_key_id');

/**
 * The smallest rollup family holding every dimension the query needs. `coarse`: the schema has
 * the coarse families (SQLite) and the resolution is hour or day (they keep no minutes).
 */
export function pickFamily(
  kind: 'tags' | 'coarse' | 'full',
  within: (dims: string[]) => boolean,
  latency: boolean,
): Family {
  if (kind === 'tags') return TAGGED;
  if (kind === 'full') return FULL;
  if (within(['model', 'provider'])) return MODEL;
  if (within(['app'])) return APP_ONLY;
  if (within(['app', 'model', 'provider'])) return APP;
  // The per-user families keep no latency histogram (LATENCY_TABLES): the full one has it.
  if (latency) return FULL;
  if (within(['user'])) return USER;
  if (within(['user', 'app'])) return USER_APP;
  return FULL;
}

/** A part of a range read from one resolution's rollup: the buckets starting in its ranges. */
export interface RangePart {
  resolution: Resolution;
  ranges: Array<[number, number]>;
}

/**
 * How a range-wide query (no interval) reads its buckets when not from one rollup. An hour query
 * over a long range, not aligned on days, would read every hour row: it reads the whole days it
 * contains from the day rollup and only its ragged edges from the hour rollup. On a family with
 * week rollups, the whole weeks of those days come from the week rollup. The same buckets as the
 * query's own resolution (a bucket counts when its start is in [from, to); a week only when its 7
 * days all are). Undefined: one rollup, the query's own.
 */
export function rangeParts(q: UsageQuery, family: Family): RangePart[] | undefined {
  if (q.interval !== undefined) return undefined;
  let hours: Array<[number, number]> = [];
  let days: [number, number];
  const hourStart = Math.ceil(q.fromMs / HOUR_MS) * HOUR_MS;
  const hourEnd = Math.ceil(q.toMs / HOUR_MS) * HOUR_MS;
  const dayStart = Math.ceil(hourStart / DAY_MS) * DAY_MS;
  const dayEnd = Math.floor(hourEnd / DAY_MS) * DAY_MS;
  const hybrid = q.resolution === 'hour' && dayEnd > dayStart;
  if (hybrid) {
    hours = [
      [hourStart, dayStart],
      [dayEnd, hourEnd],
    ];
    days = [dayStart, dayEnd];
  } else if (q.resolution === 'day' && family.weeks) {
    // The day buckets whose start is in [from, to).
    days = [Math.ceil(q.fromMs / DAY_MS) * DAY_MS, Math.ceil(q.toMs / DAY_MS) * DAY_MS];
  } else {
    return undefined;
  }
  const weekStart = Math.ceil(days[0] / WEEK_MS) * WEEK_MS;
  const weekEnd = Math.floor(days[1] / WEEK_MS) * WEEK_MS;
  const weeks = family.weeks && weekEnd > weekStart;
  if (!weeks && !hybrid) return undefined;
  const nonEmpty = (ranges: Array<[number, number]>) => ranges.filter(([a, b]) => b > a);
  const parts: RangePart[] = [
    {
      resolution: 'day',
      ranges: nonEmpty(
        weeks
          ? [
              [days[0], weekStart],
              [weekEnd, days[1]],
            ]
          : [days],
      ),
    },
    { resolution: 'hour', ranges: nonEmpty(hours) },
  ];
  if (weeks) parts.unshift({ resolution: 'week', ranges: [[weekStart, weekEnd]] });
  return parts.filter((part) => part.ranges.length > 0);
}

/** Bucket starts in [startMs, endMs) on a `stepMs` grid, or undefined when there are too many. */
export function bucketList(startMs: number, endMs: number, stepMs: number): number[] | undefined {
  const first = Math.ceil(startMs / stepMs) * stepMs;
  if ((endMs - first) / stepMs > MAX_SEEK_BUCKETS) return undefined;
  const list: number[] = [];
  for (let b = first; b < endMs; b += stepMs) list.push(b);
  return list;
}
