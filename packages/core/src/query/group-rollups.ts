import { emptyLatencyHistogram } from '../aggregate/latency-histogram.js';
import {
  addMeasures,
  emptyMeasures,
  type RollupDelta,
  type RollupMeasures,
} from '../aggregate/rollup-delta.js';
import { bucketStart, type UsageQuery, type UsageRow } from './usage-query.js';

/** A rollup row as stores that aggregate in memory keep it; tag rollups carry their tag. */
export interface RollupRecord extends RollupDelta {
  tagKey?: string;
  tagValue?: string;
}

const DIM_FIELD = { user: 'userId', app: 'appId', model: 'modelId', provider: 'provider' } as const;

/**
 * Compares strings in Unicode code point order, which is UTF-8 byte order: the order SQL
 * databases use for text by default, so every adapter breaks ties the same way.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.codePointAt(i) as number;
    const cb = b.codePointAt(i) as number;
    if (ca !== cb) return ca < cb ? -1 : 1;
    if (ca > 0xffff) i++;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/**
 * Answers a usage query from rollup rows of the right resolution (and project, and time range,
 * already selected): filters, groups, buckets by interval, orders with deterministic ties and
 * limits — the same semantics as the SQL adapters. Used by the stores that aggregate in memory
 * (the in-memory twin, DynamoDB).
 */
export function groupRollups(q: UsageQuery, source: Iterable<RollupRecord>): UsageRow[] {
  const groupTag = q.groupBy.find((g) => g.startsWith('tag:'));
  const tagKey = groupTag ? groupTag.slice(4) : q.tagFilter?.key;
  const groups = new Map<string, { row: UsageRow; measures: RollupMeasures; dims: string[] }>();
  for (const r of source) {
    if (tagKey !== undefined && r.tagKey !== tagKey) continue;
    if (q.tagFilter && r.tagValue !== q.tagFilter.value) continue;
    let match = true;
    for (const [dim, values] of Object.entries(q.filters)) {
      const field = DIM_FIELD[dim as keyof typeof DIM_FIELD];
      if (values && values.length > 0 && !values.includes(r[field])) match = false;
    }
    if (!match) continue;
    if (q.userPrefix !== undefined && !r.userId.startsWith(q.userPrefix)) continue;
    const dims = q.groupBy.map((g) =>
      g.startsWith('tag:') ? (r.tagValue as string) : r[DIM_FIELD[g as keyof typeof DIM_FIELD]],
    );
    const bucket = q.interval ? bucketStart(r.bucketMs, q.interval) : undefined;
    const key = `${dims.join('\u0000')}\u0001${bucket ?? ''}`;
    let group = groups.get(key);
    if (!group) {
      const row = {} as UsageRow;
      q.groupBy.forEach((g, i) => {
        const value = dims[i] as string;
        if (g.startsWith('tag:')) row.tag = { key: g.slice(4), value };
        else row[g as keyof typeof DIM_FIELD] = value;
      });
      if (bucket !== undefined) row.bucketMs = bucket;
      group = { row, dims, measures: emptyMeasures() };
      groups.set(key, group);
    }
    addMeasures(group.measures, r);
  }
  // A group exists when a call was counted in it: made (requests) or denied by a budget guard.
  const rows = [...groups.values()].filter(
    (g) => g.measures.requests + g.measures.deniedRequests > 0,
  );
  const sortValue = (g: (typeof rows)[number]): number | bigint => {
    if (q.orderBy === 'bucket') return g.row.bucketMs ?? 0;
    return g.measures[q.orderBy === 'costUsd' ? 'costNanoUsd' : q.orderBy];
  };
  const dir = q.order === 'asc' ? 1 : -1;
  rows.sort((a, b) => {
    const va = sortValue(a);
    const vb = sortValue(b);
    if (va !== vb) return va < vb ? -dir : dir;
    for (let i = 0; i < a.dims.length; i++) {
      const c = compareCodePoints(a.dims[i] as string, b.dims[i] as string);
      if (c !== 0) return c;
    }
    return (a.row.bucketMs ?? 0) - (b.row.bucketMs ?? 0);
  });
  return rows.slice(0, q.limit).map((g) => {
    // The histogram only when asked for, as the SQL stores (which read its columns only then).
    const { latency, ...measures } = g.measures;
    return q.latency
      ? { ...g.row, ...measures, latency: latency ?? emptyLatencyHistogram() }
      : { ...g.row, ...measures };
  });
}
