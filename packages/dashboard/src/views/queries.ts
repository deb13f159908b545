import { addRow, emptyTotals, type Totals } from '../lib/aggregate.js';
import type { ResolvedRange } from '../lib/time-range.js';
import type { Filters } from '../lib/url-state.js';
import type { UsageRow } from '../lib/usage-api.js';
import type { AppContext } from './context.js';

/** How many series a chart over time stacks before the rest becomes "other". */
export const MAX_STACKED = 8;

export interface StackedData {
  keys: string[];
  keyedRows: UsageRow[];
  totalRows: UsageRow[];
}

/**
 * Data of a stacked chart over time: the top keys of `dim` over the range, their series (one
 * query filtered to those keys, so the rows stay bounded at 10k users), and the unfiltered total
 * series (also the KPIs' source), so "other" is exact.
 */
export async function stackedData(
  ctx: AppContext,
  r: ResolvedRange,
  dim: 'model' | 'app',
  filters: Filters,
): Promise<StackedData> {
  const [ranked, total] = await Promise.all([
    ctx.api.usage({
      fromMs: r.aggFromMs,
      toMs: r.toMs,
      groupBy: [dim],
      filters,
      orderBy: 'totalTokens',
      order: 'desc',
      limit: MAX_STACKED,
    }),
    ctx.api.usage({ fromMs: r.fromMs, toMs: r.toMs, interval: r.interval, filters }),
  ]);
  const keys = ranked.rows.map((row) => row[dim]).filter((k): k is string => k !== undefined);
  const keyed =
    keys.length === 0
      ? { rows: [] }
      : await ctx.api.usage({
          fromMs: r.fromMs,
          toMs: r.toMs,
          interval: r.interval,
          groupBy: [dim],
          filters,
          only: { [dim]: keys },
        });
  return { keys, keyedRows: keyed.rows, totalRows: total.rows };
}

export async function periodTotals(
  ctx: AppContext,
  fromMs: number,
  toMs: number,
  interval: ResolvedRange['interval'],
  filters: Filters,
): Promise<Totals> {
  const res = await ctx.api.usage({ fromMs, toMs, interval, filters });
  const t = emptyTotals();
  for (const row of res.rows) addRow(t, row);
  return t;
}

/** Distinct users over the range-wide span and the one before, counted by the server. */
export async function activeUsers(
  ctx: AppContext,
  r: ResolvedRange,
  filters: Filters,
): Promise<{ current: number; previous: number }> {
  const [current, previous] = await Promise.all([
    ctx.api.count({ fromMs: r.aggFromMs, toMs: r.toMs, groupBy: ['user'], filters }),
    ctx.api.count({ fromMs: r.prevAggFromMs, toMs: r.aggFromMs, groupBy: ['user'], filters }),
  ]);
  return { current, previous };
}
