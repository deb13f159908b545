import {
  type ApplyOptions,
  type ApplyResult,
  aggregateEvents,
  EventOutcome,
  emptyLatencyHistogram,
  type PricedEvent,
  type RollupDelta,
  type TagRollupDelta,
  TokenwatchError,
} from '@tokenwatch/core';
import type pg from 'pg';
import { LATENCY_COLUMNS, MEASURE_COLUMNS } from '../sql-rows.js';
import type { PostgresRules } from './postgres-rules.js';
import type { Queryable } from './postgres-store.js';

/** Dictionary caches are dropped (and refilled from the database) past this many entries. */
const MAX_CACHED_IDS = 1_000_000;

function seriesKey(e: {
  projectId: string;
  userId: string;
  appId: string;
  modelId: string;
  provider: string;
}): string {
  return `${e.projectId}\u0000${e.userId}\u0000${e.appId}\u0000${e.modelId}\u0000${e.provider}`;
}

/**
 * The order rows are written in, the same in every worker: concurrent transactions then queue
 * on row locks instead of deadlocking. Any total order does; this one is cheap.
 */
export function byKey(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The write path of a batch in PostgreSQL (see {@link PostgresStore} for the steps): the
 * series and tag dictionaries with their caches, then, inside the caller's transaction, the id
 * claims, the rollups and the rules.
 */
export class PostgresBatchWriter {
  private readonly seriesIds = new Map<string, number>();
  private readonly tagIds = new Map<string, number>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly rules: PostgresRules,
  ) {}

  /** Upserts the series and tags this batch needs that are not cached yet. */
  async resolveDictionary(events: readonly PricedEvent[]): Promise<void> {
    const missing = new Map<string, PricedEvent>();
    const missingTags = new Map<string, [string, string, string]>();
    for (const e of events) {
      const key = seriesKey(e);
      if (!this.seriesIds.has(key)) missing.set(key, e);
      if (e.tags) {
        for (const k of Object.keys(e.tags)) {
          const v = e.tags[k] as string;
          const tagKey = `${e.projectId}\u0000${k}\u0000${v}`;
          if (!this.tagIds.has(tagKey)) missingTags.set(tagKey, [e.projectId, k, v]);
        }
      }
    }
    if (missing.size > 0) {
      // Sorted: concurrent workers lock dictionary rows in the same order.
      const keys = [...missing.keys()].sort(byKey);
      const cols: string[][] = [[], [], [], [], []];
      for (const k of keys) {
        const e = missing.get(k) as PricedEvent;
        cols[0]?.push(e.projectId);
        cols[1]?.push(e.userId);
        cols[2]?.push(e.appId);
        cols[3]?.push(e.modelId);
        cols[4]?.push(e.provider);
      }
      // DO UPDATE (a no-op) instead of DO NOTHING: RETURNING then yields rows that already
      // existed too, including ones another worker committed a moment ago.
      const res = await this.pool.query<{
        series_id: number;
        project_id: string;
        user_id: string;
        app_id: string;
        model_id: string;
        provider: string;
      }>(
        `INSERT INTO series (project_id, user_id, app_id, model_id, provider)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
         ON CONFLICT (project_id, user_id, app_id, model_id, provider) DO UPDATE SET provider = EXCLUDED.provider
         RETURNING series_id, project_id, user_id, app_id, model_id, provider`,
        cols,
      );
      if (this.seriesIds.size + res.rows.length > MAX_CACHED_IDS) this.seriesIds.clear();
      for (const r of res.rows) {
        this.seriesIds.set(
          seriesKey({
            projectId: r.project_id,
            userId: r.user_id,
            appId: r.app_id,
            modelId: r.model_id,
            provider: r.provider,
          }),
          r.series_id,
        );
      }
    }
    if (missingTags.size > 0) {
      const keys = [...missingTags.keys()].sort(byKey);
      const cols: string[][] = [[], [], []];
      for (const k of keys) {
        const [p, tk, tv] = missingTags.get(k) as [string, string, string];
        cols[0]?.push(p);
        cols[1]?.push(tk);
        cols[2]?.push(tv);
      }
      const res = await this.pool.query<{
        tag_id: number;
        project_id: string;
        tag_key: string;
        tag_value: string;
      }>(
        `INSERT INTO tags (project_id, tag_key, tag_value)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
         ON CONFLICT (project_id, tag_key, tag_value) DO UPDATE SET tag_value = EXCLUDED.tag_value
         RETURNING tag_id, project_id, tag_key, tag_value`,
        cols,
      );
      if (this.tagIds.size + res.rows.length > MAX_CACHED_IDS) this.tagIds.clear();
      for (const r of res.rows) {
        this.tagIds.set(`${r.project_id}\u0000${r.tag_key}\u0000${r.tag_value}`, r.tag_id);
      }
    }
  }

  async applyIn(
    c: pg.PoolClient,
    events: readonly PricedEvent[],
    options: ApplyOptions,
  ): Promise<ApplyResult> {
    // 0. The projects' rules, under their lock (see PostgresRules): first, before any write.
    const rules = await this.rules.rulesForBatch(c, [...new Set(events.map((e) => e.projectId))]);

    // 1. Claim ids: the first occurrence of each (project, id) of the batch, in key order.
    const firstIndex = new Map<string, number>();
    events.forEach((e, i) => {
      const key = `${e.projectId}\u0000${e.id}`;
      if (!firstIndex.has(key)) firstIndex.set(key, i);
    });
    const uniqueKeys = [...firstIndex.keys()].sort(byKey);
    const claimCols: unknown[][] = [[], [], [], []];
    for (const key of uniqueKeys) {
      const e = events[firstIndex.get(key) as number] as PricedEvent;
      claimCols[0]?.push(e.projectId);
      claimCols[1]?.push(e.id);
      claimCols[2]?.push(e.timestampMs);
      claimCols[3]?.push(e.fingerprint);
    }
    const claimedRows = await c.query<{ project_id: string; id: string }>(
      `INSERT INTO event_ids (project_id, id, event_ms, fingerprint)
       SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
       ON CONFLICT DO NOTHING RETURNING project_id, id`,
      claimCols,
    );
    const claimed = new Set(claimedRows.rows.map((r) => `${r.project_id}\u0000${r.id}`));
    // Fingerprints of ids applied before (only when the batch has any: a redelivery).
    const stored = new Map<string, string>();
    if (claimed.size < uniqueKeys.length) {
      const p: string[] = [];
      const ids: string[] = [];
      for (const key of uniqueKeys) {
        if (claimed.has(key)) continue;
        const e = events[firstIndex.get(key) as number] as PricedEvent;
        p.push(e.projectId);
        ids.push(e.id);
      }
      const res = await c.query<{ project_id: string; id: string; fingerprint: string }>(
        `SELECT e.project_id, e.id, e.fingerprint FROM event_ids e
         JOIN unnest($1::text[], $2::text[]) AS u(project_id, id) ON e.project_id = u.project_id AND e.id = u.id`,
        [p, ids],
      );
      for (const r of res.rows) stored.set(`${r.project_id}\u0000${r.id}`, r.fingerprint);
    }

    const outcomes: EventOutcome[] = new Array(events.length);
    const fresh: PricedEvent[] = [];
    let duplicates = 0;
    let conflicts = 0;
    const conflictCols: unknown[][] = [[], [], [], []];
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as PricedEvent;
      const key = `${e.projectId}\u0000${e.id}`;
      const first = firstIndex.get(key) as number;
      if (first === i && claimed.has(key)) {
        outcomes[i] = EventOutcome.Accepted;
        fresh.push(e);
        continue;
      }
      const firstFingerprint = claimed.has(key)
        ? (events[first] as PricedEvent).fingerprint
        : stored.get(key);
      if (firstFingerprint === undefined) {
        // Claimed by a transaction that has since been rolled back? Never silently count it.
        throw new TokenwatchError('unavailable', `event id ${e.id} vanished during the batch`, {
          retryAfterSeconds: 1,
        });
      }
      if (firstFingerprint === e.fingerprint) {
        outcomes[i] = EventOutcome.Duplicate;
        duplicates++;
      } else {
        outcomes[i] = EventOutcome.Conflict;
        conflicts++;
        conflictCols[0]?.push(e.projectId);
        conflictCols[1]?.push(e.id);
        conflictCols[2]?.push(firstFingerprint);
        conflictCols[3]?.push(e.fingerprint);
      }
    }
    if (conflicts > 0) {
      await c.query(
        `INSERT INTO conflicts (project_id, event_id, first_fingerprint, conflicting_fingerprint, seen_at_ms)
         SELECT p, i, f1, f2, $5 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u(p, i, f1, f2, n) ORDER BY n`,
        [...conflictCols, options.nowMs],
      );
    }

    // 2. Rollups: one statement for every table.
    if (fresh.length > 0) await this.writeRollups(c, fresh, options.nowMs);

    // 3. Rules.
    const { alerts, enforcedCounters } = await this.rules.evaluate(c, fresh, rules, options.nowMs);
    return { accepted: fresh.length, duplicates, conflicts, outcomes, alerts, enforcedCounters };
  }

  private async writeRollups(c: Queryable, fresh: PricedEvent[], nowMs: number): Promise<void> {
    const deltas = aggregateEvents(fresh);
    const params: unknown[] = [];
    const ctes: string[] = [];
    // [table, rows, tagged, keeps the latency histogram (PG_LATENCY_TABLES)]
    const tables: Array<[string, RollupDelta[], boolean, boolean]> = [
      ['rollup_minute', deltas.minute, false, false],
      ['rollup_hour', deltas.hour, false, true],
      ['rollup_day', deltas.day, false, true],
      ['rollup_tag_hour', deltas.tagHour, true, false],
      ['rollup_tag_day', deltas.tagDay, true, false],
    ];
    params.push(nowMs);
    const noLatency = emptyLatencyHistogram();
    for (const [table, rows, tagged, latency] of tables) {
      if (rows.length === 0) continue;
      const keyed = rows.map((d) => {
        const sid = this.seriesIds.get(seriesKey(d));
        const tag = d as Partial<TagRollupDelta>;
        const tid = tagged
          ? this.tagIds.get(`${d.projectId}\u0000${tag.tagKey}\u0000${tag.tagValue}`)
          : 0;
        if (sid === undefined || tid === undefined) {
          throw new TokenwatchError('unavailable', 'series dictionary changed during the batch', {
            retryAfterSeconds: 1,
          });
        }
        return { d, sid, tid };
      });
      keyed.sort((a, b) => a.d.bucketMs - b.d.bucketMs || a.tid - b.tid || a.sid - b.sid);
      const arrays: unknown[][] = [keyed.map((k) => k.d.bucketMs)];
      if (tagged) arrays.push(keyed.map((k) => k.tid));
      arrays.push(keyed.map((k) => k.sid));
      arrays.push(
        keyed.map((k) => k.d.inputTokens),
        keyed.map((k) => k.d.outputTokens),
        keyed.map((k) => k.d.cacheReadTokens),
        keyed.map((k) => k.d.cacheWriteTokens),
        keyed.map((k) => k.d.totalTokens),
        keyed.map((k) => k.d.requests),
        keyed.map((k) => k.d.errors),
        keyed.map((k) => k.d.costNanoUsd.toString()),
        keyed.map((k) => k.d.unpricedTokens),
        keyed.map((k) => k.d.unpricedRequests),
        keyed.map((k) => k.d.noUsageRequests),
        keyed.map((k) => k.d.deniedRequests),
      );
      if (latency) {
        for (let b = 0; b < LATENCY_COLUMNS.length; b++) {
          arrays.push(keyed.map((k) => (k.d.latency ?? noLatency)[b]));
        }
      }
      const columns = latency ? [...MEASURE_COLUMNS, ...LATENCY_COLUMNS] : [...MEASURE_COLUMNS];
      const costIndex = (tagged ? 3 : 2) + MEASURE_COLUMNS.indexOf('cost_nano_usd');
      const refs = arrays.map((a, i) => {
        params.push(a);
        const type =
          i === costIndex ? 'numeric[]' : i === 0 || i >= (tagged ? 3 : 2) ? 'bigint[]' : 'int[]';
        return `$${params.length}::${type}`;
      });
      const keyCols = tagged ? 'bucket_ms, tag_id, series_id' : 'bucket_ms, series_id';
      ctes.push(
        `INSERT INTO ${table} AS r (${keyCols}, ${columns.join(', ')}, first_update_ms, last_update_ms)
         SELECT *, $1::bigint, $1::bigint FROM unnest(${refs.join(', ')})
         ON CONFLICT (${keyCols}) DO UPDATE SET ${columns.map((m) => `${m} = r.${m} + EXCLUDED.${m}`).join(', ')}, last_update_ms = EXCLUDED.last_update_ms`,
      );
    }
    if (ctes.length === 0) return;
    // Unreferenced data-modifying CTEs run once each, in order: the same lock order in every worker.
    const last = ctes.pop() as string;
    const sql =
      ctes.length > 0 ? `WITH ${ctes.map((s, i) => `w${i} AS (${s})`).join(', ')} ${last}` : last;
    await c.query(sql, params);
  }
}
