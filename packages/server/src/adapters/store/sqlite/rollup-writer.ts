import {
  addEventToMeasures,
  emptyMeasures,
  type PricedEvent,
  type RollupMeasures,
} from '@tokenwatch/core';
import type Database from 'better-sqlite3';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** Dictionary caches are dropped (and refilled from the database) past this many entries. */
const MAX_CACHED_IDS = 1_000_000;

interface Acc extends RollupMeasures {
  bucketMs: number;
  seriesId: number;
  tagId: number;
}

type Statement = Database.Statement<unknown[], unknown>;

/** bucket → series → measures (or bucket → tag → series → measures for tag rollups). */
type Buckets = Map<number, Map<number, Acc>>;
type TagBuckets = Map<number, Map<number, Map<number, Acc>>>;

function floorTo(ms: number, size: number): number {
  return ms - (((ms % size) + size) % size);
}

function accumulate(buckets: Buckets, bucketMs: number, seriesId: number, e: PricedEvent): void {
  let bySeries = buckets.get(bucketMs);
  if (!bySeries) {
    bySeries = new Map();
    buckets.set(bucketMs, bySeries);
  }
  let acc = bySeries.get(seriesId);
  if (!acc) {
    acc = { bucketMs, seriesId, tagId: 0, ...emptyMeasures() };
    bySeries.set(seriesId, acc);
  }
  addEventToMeasures(acc, e);
}

function accumulateTag(
  buckets: TagBuckets,
  bucketMs: number,
  tagId: number,
  seriesId: number,
  e: PricedEvent,
): void {
  let byTag = buckets.get(bucketMs);
  if (!byTag) {
    byTag = new Map();
    buckets.set(bucketMs, byTag);
  }
  let bySeries = byTag.get(tagId);
  if (!bySeries) {
    bySeries = new Map();
    byTag.set(tagId, bySeries);
  }
  let acc = bySeries.get(seriesId);
  if (!acc) {
    acc = { bucketMs, seriesId, tagId, ...emptyMeasures() };
    bySeries.set(seriesId, acc);
  }
  addEventToMeasures(acc, e);
}

/**
 * Writes a batch's new events into the rollups, inside the caller's transaction: resolves each
 * event's series (and tags) to integer ids through a cached dictionary, pre-aggregates in
 * memory, then upserts one row per (bucket, series).
 */
export class RollupWriter {
  private readonly seriesIds = new Map<string, number>();
  private readonly tagIds = new Map<string, number>();
  /** Ids cached during the running transaction: forgotten again if it rolls back. */
  private pendingSeries: string[] = [];
  private pendingTags: string[] = [];
  private readonly st: Record<string, Statement>;

  constructor(db: Database.Database) {
    const upsert = (table: string, tagged: boolean) =>
      db.prepare(
        `INSERT INTO ${table} (bucket_ms, ${tagged ? 'tag_id, ' : ''}series_id, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, total_tokens, requests, errors, cost_nano_usd, unpriced_tokens, unpriced_requests, first_update_ms, last_update_ms)
         VALUES (?, ${tagged ? '?, ' : ''}?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (bucket_ms, ${tagged ? 'tag_id, ' : ''}series_id) DO UPDATE SET
           input_tokens = input_tokens + excluded.input_tokens,
           output_tokens = output_tokens + excluded.output_tokens,
           cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
           cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
           total_tokens = total_tokens + excluded.total_tokens,
           requests = requests + excluded.requests,
           errors = errors + excluded.errors,
           cost_nano_usd = cost_nano_usd + excluded.cost_nano_usd,
           unpriced_tokens = unpriced_tokens + excluded.unpriced_tokens,
           unpriced_requests = unpriced_requests + excluded.unpriced_requests,
           last_update_ms = excluded.last_update_ms`,
      );
    this.st = {
      findSeries: db
        .prepare(
          'SELECT series_id FROM series WHERE project_id = ? AND user_id = ? AND app_id = ? AND model_id = ? AND provider = ?',
        )
        .pluck(),
      insertSeries: db.prepare(
        'INSERT INTO series (project_id, user_id, app_id, model_id, provider) VALUES (?, ?, ?, ?, ?)',
      ),
      findTag: db
        .prepare('SELECT tag_id FROM tags WHERE project_id = ? AND tag_key = ? AND tag_value = ?')
        .pluck(),
      insertTag: db.prepare('INSERT INTO tags (project_id, tag_key, tag_value) VALUES (?, ?, ?)'),
      minute: upsert('rollup_minute', false),
      hour: upsert('rollup_hour', false),
      day: upsert('rollup_day', false),
      tagHour: upsert('rollup_tag_hour', true),
      tagDay: upsert('rollup_tag_day', true),
    };
  }

  private seriesId(e: PricedEvent): number {
    const key = `${e.projectId}\u0000${e.userId}\u0000${e.appId}\u0000${e.modelId}\u0000${e.provider}`;
    let id = this.seriesIds.get(key);
    if (id === undefined) {
      const found = this.st.findSeries?.get(
        e.projectId,
        e.userId,
        e.appId,
        e.modelId,
        e.provider,
      ) as number | undefined;
      id =
        found ??
        Number(
          this.st.insertSeries?.run(e.projectId, e.userId, e.appId, e.modelId, e.provider)
            .lastInsertRowid,
        );
      if (this.seriesIds.size >= MAX_CACHED_IDS) this.seriesIds.clear();
      this.seriesIds.set(key, id);
      if (found === undefined) this.pendingSeries.push(key);
    }
    return id;
  }

  private tagId(projectId: string, tagKey: string, tagValue: string): number {
    const key = `${projectId}\u0000${tagKey}\u0000${tagValue}`;
    let id = this.tagIds.get(key);
    if (id === undefined) {
      const found = this.st.findTag?.get(projectId, tagKey, tagValue) as number | undefined;
      id = found ?? Number(this.st.insertTag?.run(projectId, tagKey, tagValue).lastInsertRowid);
      if (this.tagIds.size >= MAX_CACHED_IDS) this.tagIds.clear();
      this.tagIds.set(key, id);
      if (found === undefined) this.pendingTags.push(key);
    }
    return id;
  }

  /** Call inside the transaction, with the events that claimed a new id. */
  write(fresh: readonly PricedEvent[], nowMs: number): void {
    const minute: Buckets = new Map();
    const hour: Buckets = new Map();
    const day: Buckets = new Map();
    const tagHour: TagBuckets = new Map();
    const tagDay: TagBuckets = new Map();
    for (const e of fresh) {
      const sid = this.seriesId(e);
      const h = floorTo(e.timestampMs, HOUR_MS);
      const d = floorTo(e.timestampMs, DAY_MS);
      accumulate(minute, floorTo(e.timestampMs, MINUTE_MS), sid, e);
      accumulate(hour, h, sid, e);
      accumulate(day, d, sid, e);
      if (e.tags) {
        for (const k of Object.keys(e.tags)) {
          const tid = this.tagId(e.projectId, k, e.tags[k] as string);
          accumulateTag(tagHour, h, tid, sid, e);
          accumulateTag(tagDay, d, tid, sid, e);
        }
      }
    }
    const run = (st: Statement | undefined, a: Acc, tagged: boolean) => {
      const measures = [
        a.inputTokens,
        a.outputTokens,
        a.cacheReadTokens,
        a.cacheWriteTokens,
        a.totalTokens,
        a.requests,
        a.errors,
        a.costNanoUsd,
        a.unpricedTokens,
        a.unpricedRequests,
        nowMs,
        nowMs,
      ];
      if (tagged) st?.run(a.bucketMs, a.tagId, a.seriesId, ...measures);
      else st?.run(a.bucketMs, a.seriesId, ...measures);
    };
    for (const [name, buckets] of [
      ['minute', minute],
      ['hour', hour],
      ['day', day],
    ] as const) {
      for (const bySeries of buckets.values())
        for (const a of bySeries.values()) run(this.st[name], a, false);
    }
    for (const [name, buckets] of [
      ['tagHour', tagHour],
      ['tagDay', tagDay],
    ] as const) {
      for (const byTag of buckets.values()) {
        for (const bySeries of byTag.values())
          for (const a of bySeries.values()) run(this.st[name], a, true);
      }
    }
  }

  /** The transaction committed: ids cached during it are real. */
  committed(): void {
    this.pendingSeries = [];
    this.pendingTags = [];
  }

  /** The transaction rolled back: ids inserted during it do not exist; forget them. */
  rolledBack(): void {
    for (const k of this.pendingSeries) this.seriesIds.delete(k);
    for (const k of this.pendingTags) this.tagIds.delete(k);
    this.pendingSeries = [];
    this.pendingTags = [];
  }
}
