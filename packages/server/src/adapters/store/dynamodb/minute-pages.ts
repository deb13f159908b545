import { gunzipSync, gzipSync } from 'node:zlib';
import type { RollupDelta } from '@tokenwatch/core';
import { type DynamoIo, type Item, mapLimit } from './dynamodb-io.js';
import type { StoredRollup } from './dynamodb-usage.js';
import { minutePk, TTL_ATTR, ttlSeconds } from './keys.js';

/**
 * Minute rollups as pages: one item per batch record and (project, UTC day) holding all the
 * minute rows the batch adds there (gzip), instead of one item per row. A batch's minute rows
 * are nearly as many as its events (a series rarely has two events in one minute of a batch),
 * so per-row items cost about one write unit per event; a page costs its size, a few dozen bytes
 * per row. Readers sum the pages with the rows of the day (minute queries cover short ranges:
 * they read the day partitions anyway), so a page never needs updating.
 *
 * Pages live in the minute partition `M#<project>#<day>` next to the per-row minute items
 * written before pages existed (read the same way until they expire), with sort key
 * `P#<batchId>#<n>`. Exactly once: the page's key and content follow from the batch record
 * (its owned events, in the intent's order), and it is put only if absent.
 */
export const MINUTE_PAGE_TYPE = 'minute-page';
/** Rows per page: a page stays far below the 400 KB item limit even with 256-character ids. */
const ROWS_PER_PAGE = 1_000;

type Row = [
  bucketMs: number,
  userId: string,
  appId: string,
  modelId: string,
  provider: string,
  inputTokens: number,
  outputTokens: number,
  cacheReadTokens: number,
  cacheWriteTokens: number,
  totalTokens: number,
  requests: number,
  errors: number,
  costNanoUsd: string,
  unpricedTokens: number,
  unpricedRequests: number,
  noUsageRequests: number,
  deniedRequests: number,
];

function toRow(d: RollupDelta): Row {
  return [
    d.bucketMs,
    d.userId,
    d.appId,
    d.modelId,
    d.provider,
    d.inputTokens,
    d.outputTokens,
    d.cacheReadTokens,
    d.cacheWriteTokens,
    d.totalTokens,
    d.requests,
    d.errors,
    d.costNanoUsd.toString(),
    d.unpricedTokens,
    d.unpricedRequests,
    d.noUsageRequests,
    d.deniedRequests,
  ];
}

function fromRow(projectId: string, r: Row): StoredRollup {
  return {
    bucketMs: r[0],
    projectId,
    userId: r[1],
    appId: r[2],
    modelId: r[3],
    provider: r[4],
    inputTokens: r[5],
    outputTokens: r[6],
    cacheReadTokens: r[7],
    cacheWriteTokens: r[8],
    totalTokens: r[9],
    requests: r[10],
    errors: r[11],
    costNanoUsd: BigInt(r[12]),
    unpricedTokens: r[13],
    unpricedRequests: r[14],
    noUsageRequests: r[15],
    deniedRequests: r[16],
  };
}

const DAY_MS = 86_400_000;

/** Writes a batch record's minute rows as pages (each put only if it is not there yet). */
export async function writeMinutePages(
  io: DynamoIo,
  batchId: string,
  minute: readonly RollupDelta[],
  retentionMs: number,
): Promise<void> {
  // Deterministic grouping and order: a roll-forward writes the same pages under the same keys.
  const byPartition = new Map<string, { projectId: string; rows: Row[] }>();
  for (const d of minute) {
    const pk = minutePk(d.projectId, Math.floor(d.bucketMs / DAY_MS) * DAY_MS);
    const page = byPartition.get(pk) ?? { projectId: d.projectId, rows: [] };
    byPartition.set(pk, page);
    page.rows.push(toRow(d));
  }
  const pages: Item[] = [];
  for (const [pk, { projectId, rows }] of [...byPartition].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const key = (r: Row) =>
      `${String(r[0]).padStart(15, '0')}\u0000${r.slice(1, 5).join('\u0000')}`;
    rows.sort((a, b) => (key(a) < key(b) ? -1 : 1));
    for (let at = 0, n = 0; at < rows.length; at += ROWS_PER_PAGE, n++) {
      const part = rows.slice(at, at + ROWS_PER_PAGE);
      // The page's last minute: prune and the TTL drop it once all of its rows are old.
      const lastMs = Math.max(...part.map((r) => r[0]));
      pages.push({
        pk,
        sk: `P#${batchId}#${n}`,
        type: MINUTE_PAGE_TYPE,
        projectId,
        bucketMs: lastMs,
        rows: gzipSync(JSON.stringify(part)),
        [TTL_ATTR]: ttlSeconds(lastMs + retentionMs),
      });
    }
  }
  await mapLimit(pages, io.concurrency, (page) =>
    io.put(page, { ConditionExpression: 'attribute_not_exists(pk)' }),
  );
}

/** The minute rows of a page item. */
export function minutePageRows(item: Item): StoredRollup[] {
  const rows = JSON.parse(gunzipSync(item.rows as Uint8Array).toString('utf8')) as Row[];
  const projectId = String(item.projectId);
  return rows.map((r) => fromRow(projectId, r));
}

export function isMinutePage(item: Item): boolean {
  return item.type === MINUTE_PAGE_TYPE;
}
