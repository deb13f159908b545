import {
  groupRollups as coreGroupRollups,
  type RollupDelta,
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
import { latencyFromItem } from './latency-attributes.js';
import { isMinutePage, minutePageRows } from './minute-pages.js';

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
    noUsageRequests: num(item.noUsageRequests),
    deniedRequests: num(item.deniedRequests),
  };
  if (typeof item.tagKey === 'string') r.tagKey = item.tagKey;
  if (typeof item.tagValue === 'string') r.tagValue = item.tagValue;
  const latency = latencyFromItem(item);
  if (latency) r.latency = latency;
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
      for (const r of isMinutePage(item) ? minutePageRows(item) : [rollupFromItem(item)]) {
        if (r.projectId !== projectId || r.bucketMs < fromMs || r.bucketMs >= toMs) continue;
        out.push(r);
      }
    }
  }
  return out;
}

/** Groups, filters, orders and limits rollup rows exactly as the in-memory twin does. */
export const groupRollups: (q: UsageQuery, source: readonly StoredRollup[]) => UsageRow[] =
  coreGroupRollups;

/** queryUsage: the rollup of the query's resolution (tag rollups when a tag is involved). */
export async function queryUsage(io: DynamoIo, q: UsageQuery): Promise<UsageRow[]> {
  const groupTag = q.groupBy.find((g) => g.startsWith('tag:'));
  const tagKey = groupTag ? groupTag.slice(4) : q.tagFilter?.key;
  const rows = await readRollups(io, q.projectId, q.resolution, q.fromMs, q.toMs, tagKey);
  return groupRollups(q, rows);
}
