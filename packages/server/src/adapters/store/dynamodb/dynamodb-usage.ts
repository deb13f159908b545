import {
  addMeasures,
  bucketStart,
  type RollupDelta,
  type RollupMeasures,
  type UsageQuery,
  type UsageRow,
} from '@tokenwatch/core';
import { big, type DynamoIo, type Item, mapLimit, num } from './dynamodb-io.js';
import {
  dayPk,
  daysIn,
  GSI_HOURS,
  hourIndexPk,
  minutePk,
  monthsIn,
  tagDayPk,
  tagHourPk,
} from './keys.js';

const DIM_FIELD = { user: 'userId', app: 'appId', model: 'modelId', provider: 'provider' } as const;

export interface StoredRollup extends RollupDelta {
  tagKey?: string;
  tagValue?: string;
}

export function rollupFromItem(item: Item): StoredRollup {
  const r: StoredRollup = {
    bucketMs: num(item.bucketMs),
    projectId: String(item.projectId),
    userId: String(item.userId),
    appId: String(item.appId),
    modelId: String(item.modelId),
    provider: String(item.provider),
    inputTokens: num(item.inputTokens),
    outputTokens: num(item.outputTokens),
    cacheReadTokens: num(item.cacheReadTokens),
    cacheWriteTokens: num(item.cacheWriteTokens),
    totalTokens: num(item.totalTokens),
    requests: num(item.requests),
    errors: num(item.errors),
    costNanoUsd: big(item.costNanoUsd),
    unpricedTokens: num(item.unpricedTokens),
    unpricedRequests: num(item.unpricedRequests),
  };
  if (typeof item.tagKey === 'string') r.tagKey = item.tagKey;
  if (typeof item.tagValue === 'string') r.tagValue = item.tagValue;
  return r;
}

/**
 * Reads the rollup items of a project in [fromMs, toMs) at one resolution: one Query per
 * time partition (a UTC day for minutes and hours, a month for days), all of a partition's
 * items; dimension filters are applied after reading (they cost reads, not results).
 */
export async function readRollups(
  io: DynamoIo,
  projectId: string,
  resolution: 'minute' | 'hour' | 'day',
  fromMs: number,
  toMs: number,
  tagKey?: string,
): Promise<StoredRollup[]> {
  if (toMs <= fromMs) return [];
  let requests: Array<{ pk: string; index?: string }>;
  if (tagKey !== undefined) {
    requests =
      resolution === 'day'
        ? monthsIn(fromMs, toMs).map((m) => ({ pk: tagDayPk(projectId, tagKey, m) }))
        : daysIn(fromMs, toMs).map((d) => ({ pk: tagHourPk(projectId, tagKey, d) }));
  } else if (resolution === 'minute') {
    requests = daysIn(fromMs, toMs).map((d) => ({ pk: minutePk(projectId, d) }));
  } else if (resolution === 'hour') {
    requests = daysIn(fromMs, toMs).map((d) => ({
      pk: hourIndexPk(projectId, d),
      index: GSI_HOURS,
    }));
  } else {
    requests = monthsIn(fromMs, toMs).map((m) => ({ pk: dayPk(projectId, m) }));
  }
  const pages = await mapLimit(requests, io.concurrency, (r) =>
    r.index
      ? io.query({
          IndexName: r.index,
          KeyConditionExpression: 'gsi1pk = :pk',
          ExpressionAttributeValues: { ':pk': r.pk },
        })
      : io.query({
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': r.pk },
        }),
  );
  const out: StoredRollup[] = [];
  for (const page of pages) {
    for (const item of page) {
      const r = rollupFromItem(item);
      if (r.projectId !== projectId || r.bucketMs < fromMs || r.bucketMs >= toMs) continue;
      out.push(r);
    }
  }
  return out;
}

function emptyMeasures(): RollupMeasures {
  return {
    inputTokens: 0,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    totalTokens: 0,
    requests: 0,
    errors: 0,
    costNanoUsd: 0n,
    unpricedTokens: 0,
    unpricedRequests: 0,
  };
}

/** Groups, filters, orders and limits rollup rows exactly as the in-memory twin does. */
export function groupRollups(q: UsageQuery, source: readonly StoredRollup[]): UsageRow[] {
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
  const rows = [...groups.values()].filter((g) => g.measures.requests > 0);
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
      const da = a.dims[i] as string;
      const db = b.dims[i] as string;
      if (da !== db) return Buffer.compare(Buffer.from(da), Buffer.from(db));
    }
    return (a.row.bucketMs ?? 0) - (b.row.bucketMs ?? 0);
  });
  return rows.slice(0, q.limit).map((g) => ({ ...g.row, ...g.measures }));
}

/** queryUsage: the rollup of the query's resolution (tag rollups when a tag is involved). */
export async function queryUsage(io: DynamoIo, q: UsageQuery): Promise<UsageRow[]> {
  const groupTag = q.groupBy.find((g) => g.startsWith('tag:'));
  const tagKey = groupTag ? groupTag.slice(4) : q.tagFilter?.key;
  const rows = await readRollups(io, q.projectId, q.resolution, q.fromMs, q.toMs, tagKey);
  return groupRollups(q, rows);
}
