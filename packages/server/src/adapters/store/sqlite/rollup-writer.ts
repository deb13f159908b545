import type { PricedEvent } from '@tokenwatch/core';
import type Database from 'better-sqlite3';
import { GenerationalCache } from '../../../util/generational-cache.js';
import { MEASURE_COLUMNS } from '../sql-rows.js';
import { DEFAULT_ID_CACHE_BUDGET_BYTES, IdDictionary } from './id-dictionary.js';
import { ACC_MEASURE_COLUMNS, Acc } from './rollup-acc.js';
import {
  type Buckets,
  type CoarseIds,
  inKeyOrder,
  type PlannedRow,
  RollupPlan,
  type RowKey,
  rowKeyAfter,
  type TagBuckets,
} from './rollup-plan.js';
import {
  ROLLUP_TABLES,
  type RollupUpserts,
  rollupUpserts,
  TAGGED_ROLLUPS as TAGGED,
} from './rollup-upserts.js';
import { WEEK_MS } from './schema.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** Heap bytes of a coarse-ids entry (object with five small integers, and its slot). */
const COARSE_ENTRY_BYTES = 96;

function floorTo(ms: number, size: number): number {
  return ms - (((ms % size) + size) % size);
}

/** The map under `key`, created empty on first use. */
function child<K, V>(map: Map<K, Map<number, V>>, key: K): Map<number, V> {
  let inner = map.get(key);
  if (!inner) {
    inner = new Map();
    map.set(key, inner);
  }
  return inner;
}

/** The accumulator of (bucket, tag, series) in `bySeries`, created empty on first use. */
function rowOf(bySeries: Map<number, Acc>, bucketMs: number, tagId: number, seriesId: number): Acc {
  let acc = bySeries.get(seriesId);
  if (!acc) {
    acc = new Acc(bucketMs, tagId, seriesId);
    bySeries.set(seriesId, acc);
  }
  return acc;
}

function accumulate(
  buckets: Buckets,
  bucketMs: number,
  seriesId: number,
  e: PricedEvent,
  keepLatency: boolean,
): void {
  rowOf(child(buckets, bucketMs), bucketMs, 0, seriesId).addEvent(e, keepLatency);
}

/** Adds one accumulator's measures into the (bucket, series) row of a coarse rollup. */
function addTo(
  buckets: Buckets,
  bucketMs: number,
  seriesId: number,
  from: Acc,
  keepLatency: boolean,
): void {
  rowOf(child(buckets, bucketMs), bucketMs, 0, seriesId).add(from, keepLatency);
}

function accumulateTag(
  buckets: TagBuckets,
  bucketMs: number,
  tagId: number,
  seriesId: number,
  e: PricedEvent,
): void {
  const bySeries = child(child(buckets, bucketMs), tagId);
  rowOf(bySeries, bucketMs, tagId, seriesId).addEvent(e, false);
}

/** Rows `RollupWriter.finishPiece` derives or lists in one call: ~2–3 ms of work. */
const FINISH_ROWS_PER_PIECE = 2_048;

/**
 * Writes a batch's new events into the rollups, inside the caller's transaction: resolves each
 * event's series (and tags) to integer ids through cached dictionaries, pre-aggregates in
 * memory, then upserts one row per (bucket, series).
 *
 * Several granularities, so a query reads the smallest table that has its dimensions:
 * - full series (user × app × model × provider): minute, hour and day — the seed's table;
 * - app series (app × model × provider): hour and day — overview, model share, app × model;
 * - user series (user × app): hour and day — the app × user heat map;
 * - users (user alone): hour, day and 7-day buckets — top users and active users;
 * - models (model × provider) and apps (app alone): hour and day — the charts over time.
 * The coarse ones hold far fewer rows (a long tail of users makes nearly every event a full
 * series of its own). They are derived from the flush's hour and day accumulators, not per
 * event; together they cost ≈ 8 % of ingest throughput (docs/benchmarks-history.md).
 */
export class RollupWriter {
  private readonly series: IdDictionary;
  private readonly appSeries: IdDictionary;
  private readonly userSeries: IdDictionary;
  private readonly users: IdDictionary;
  private readonly models: IdDictionary;
  private readonly apps: IdDictionary;
  private readonly tags: IdDictionary;
  /** Each rollup's upserts, by the names `write` gives its accumulators. */
  private readonly upserts: Record<string, RollupUpserts>;
  /** Every dictionary (see dictionaries()). */
  private all: IdDictionary[] | undefined;
  /** Full series id → its ids in the coarse dictionaries. */
  private readonly coarse: GenerationalCache<number, CoarseIds>;

  /**
   * @param cacheBudgetBytes what the id caches hold at most together, shared out by how many
   *   distinct keys each dictionary can have (series most, models and apps a handful).
   */
  constructor(db: Database.Database, cacheBudgetBytes = DEFAULT_ID_CACHE_BUDGET_BYTES) {
    this.upserts = rollupUpserts(db);
    if (MEASURE_COLUMNS.join() !== ACC_MEASURE_COLUMNS.join()) {
      throw new Error('RollupWriter: Acc.params must bind every measure column, in order');
    }
    const share = (fraction: number) => cacheBudgetBytes * fraction;
    this.series = new IdDictionary(
      db,
      'series',
      'series_id',
      ['project_id', 'user_id', 'app_id', 'model_id', 'provider'],
      share(3 / 8),
    );
    this.coarse = new GenerationalCache(share(2 / 8), () => COARSE_ENTRY_BYTES);
    this.userSeries = new IdDictionary(
      db,
      'user_series',
      'user_series_id',
      ['project_id', 'user_id', 'app_id'],
      share(1 / 8),
    );
    this.users = new IdDictionary(
      db,
      'user_ids',
      'user_key_id',
      ['project_id', 'user_id'],
      share(1 / 16),
    );
    this.tags = new IdDictionary(
      db,
      'tags',
      'tag_id',
      ['project_id', 'tag_key', 'tag_value'],
      share(1 / 16),
    );
    this.appSeries = new IdDictionary(
      db,
      'app_series',
      'app_series_id',
      ['project_id', 'app_id', 'model_id', 'provider'],
      share(1 / 16),
    );
    this.models = new IdDictionary(
      db,
      'model_ids',
      'model_key_id',
      ['project_id', 'model_id', 'provider'],
      share(1 / 32),
    );
    this.apps = new IdDictionary(
      db,
      'app_ids',
      'app_key_id',
      ['project_id', 'app_id'],
      share(1 / 32),
    );
  }

  /**
   * Writes events into the rollups in one go, inside the caller's transaction: every part of a
   * RollupPlan at once (the fold runs the parts over several transactions; see EventLogFold).
   */
  write(fresh: readonly PricedEvent[], nowMs: number): void {
    const plan = this.newPlan();
    this.accumulate(plan, fresh, 0, fresh.length);
    this.writeRows(this.finish(plan), 0, Number.POSITIVE_INFINITY, nowMs);
  }

  /** An empty plan; `skip`: per rollup table, the last row already written (see RollupPlan). */
  newPlan(skip: ReadonlyMap<string, RowKey> = new Map()): RollupPlan {
    return new RollupPlan(skip);
  }

  /**
   * Adds events [from, to) to the plan, inside a transaction: resolves each event's series (and
   * tags) to integer ids through cached dictionaries, inserting the new ones, and accumulates it
   * per (bucket, series) of the full and tag rollups. Stops after the event that takes the ids
   * this transaction inserted to `maxNewIds` (each is a b-tree insert at a place of its own, the
   * WAL such a transaction writes); returns where it stopped. If that transaction rolls back, ids
   * it inserted do not exist (`rolledBack`): the plan must be dropped.
   */
  accumulate(
    plan: RollupPlan,
    fresh: readonly PricedEvent[],
    from: number,
    to: number,
    maxNewIds = Number.POSITIVE_INFINITY,
  ): number {
    const { plain, tagged, coarseOf } = plan;
    // Per event, only the full series; the coarse rollups are then derived from the hour and day
    // accumulators (one row per bucket × series, fewer than the events), via each series'
    // cached coarse ids.
    for (let i = from; i < to; i++) {
      const e = fresh[i] as PricedEvent;
      const p = e.projectId;
      const sid = this.series.idOf(
        `${p}\u0000${e.userId}\u0000${e.appId}\u0000${e.modelId}\u0000${e.provider}`,
        [p, e.userId, e.appId, e.modelId, e.provider],
      );
      const h = floorTo(e.timestampMs, HOUR_MS);
      const d = floorTo(e.timestampMs, DAY_MS);
      accumulate(plain.minute as Buckets, floorTo(e.timestampMs, MINUTE_MS), sid, e, false);
      accumulate(plain.hour as Buckets, h, sid, e, true);
      accumulate(plain.day as Buckets, d, sid, e, true);
      // The plan holds the series' coarse ids itself: the cache may drop an entry meanwhile.
      if (!coarseOf.has(sid)) {
        let ids = this.coarse.get(sid);
        if (ids === undefined) {
          ids = this.coarseIdsOf(e);
          this.coarse.set(sid, ids);
        }
        coarseOf.set(sid, ids);
      }
      if (e.tags) {
        for (const k of Object.keys(e.tags)) {
          const value = e.tags[k] as string;
          const tid = this.tags.idOf(`${p}\u0000${k}\u0000${value}`, [p, k, value]);
          accumulateTag(tagged.tagHour as TagBuckets, h, tid, sid, e);
          accumulateTag(tagged.tagDay as TagBuckets, d, tid, sid, e);
        }
      }
      if (this.insertedIds() >= maxNewIds) return i + 1;
    }
    return to;
  }

  /** Ids the running transaction inserted, in every dictionary. */
  private insertedIds(): number {
    let n = 0;
    for (const d of this.dictionaries()) n += d.inserted;
    return n;
  }

  /**
   * The plan's rows, once every event is accumulated (no SQL): derives the coarse rollups, then
   * lists every row in the order `writeRows` writes them, leaving out those already written.
   */
  finish(plan: RollupPlan): PlannedRow[] {
    for (;;) {
      const rows = this.finishPiece(plan);
      if (rows !== undefined) return rows;
    }
  }

  /**
   * `finish` in pieces: each call goes on with the plan's listing for about
   * `FINISH_ROWS_PER_PIECE` rows, derived or listed, and returns the rows once they are all
   * listed, so a caller can let other work run between pieces. For a one-second chunk at the
   * maximum rate (100–150k rows) the whole of it took 150–210 ms, all that time one piece of
   * the writer thread's work, which every append waited for (`npm run bench:ingest`, half-rate
   * phase). The plan holds its listing in progress: `finish` and `finishPiece` go on with it.
   */
  finishPiece(plan: RollupPlan): PlannedRow[] | undefined {
    if (plan.rows !== undefined) return plan.rows;
    plan.listing ??= this.listRows(plan);
    const next = plan.listing.next();
    return next.done ? next.value : undefined;
  }

  /** The listing of `finishPiece`: a generator that yields between pieces. */
  private *listRows(plan: RollupPlan): Generator<void, PlannedRow[]> {
    const { plain, tagged, coarseOf } = plan;
    let done = 0;
    const piece = () => ++done % FINISH_ROWS_PER_PIECE === 0;
    for (const [resolution, buckets] of [
      ['Hour', plain.hour as Buckets],
      ['Day', plain.day as Buckets],
    ] as const) {
      for (const [bucketMs, bySeries] of buckets) {
        for (const [sid, acc] of bySeries) {
          const ids = coarseOf.get(sid) as CoarseIds;
          // The per-user families keep no histogram (LATENCY_TABLES).
          addTo(plain[`app${resolution}`] as Buckets, bucketMs, ids.appModel, acc, true);
          addTo(plain[`user${resolution}`] as Buckets, bucketMs, ids.userApp, acc, false);
          addTo(plain[`perUser${resolution}`] as Buckets, bucketMs, ids.user, acc, false);
          addTo(plain[`perModel${resolution}`] as Buckets, bucketMs, ids.model, acc, true);
          addTo(plain[`perApp${resolution}`] as Buckets, bucketMs, ids.app, acc, true);
          if (piece()) yield;
        }
      }
    }
    // The users' weeks from their days: one add per (day, user).
    for (const [dayMs, byUser] of plain.perUserDay as Buckets) {
      const week = floorTo(dayMs, WEEK_MS);
      for (const [userId, acc] of byUser) {
        addTo(plain.perUserWeek as Buckets, week, userId, acc, false);
        if (piece()) yield;
      }
    }
    const rows: PlannedRow[] = [];
    const keep = (name: string, a: Acc) => {
      const written = plan.skip.get(ROLLUP_TABLES[name] as string);
      if (rowKeyAfter(a, written)) rows.push({ name, acc: a });
    };
    for (const [name, buckets] of Object.entries(plain)) {
      for (const bucketMs of inKeyOrder(buckets)) {
        const bySeries = buckets.get(bucketMs) as Map<number, Acc>;
        for (const sid of inKeyOrder(bySeries)) {
          keep(name, bySeries.get(sid) as Acc);
          if (piece()) yield;
        }
      }
    }
    for (const [name, buckets] of Object.entries(tagged)) {
      for (const bucketMs of inKeyOrder(buckets)) {
        const byTag = buckets.get(bucketMs) as Map<number, Map<number, Acc>>;
        for (const tid of inKeyOrder(byTag)) {
          const bySeries = byTag.get(tid) as Map<number, Acc>;
          for (const sid of inKeyOrder(bySeries)) {
            keep(name, bySeries.get(sid) as Acc);
            if (piece()) yield;
          }
        }
      }
    }
    plan.rows = rows;
    return rows;
  }

  /**
   * Upserts rows [from, from + count) of a finished plan, inside the caller's transaction;
   * returns, per rollup table it wrote, the last row's key (what the fold records as progress).
   */
  writeRows(
    rows: readonly PlannedRow[],
    from: number,
    count: number,
    nowMs: number,
  ): Map<string, RowKey> {
    const last = new Map<string, RowKey>();
    const to = Math.min(rows.length, from + count);
    for (let i = from; i < to; i++) {
      const { name, acc: a } = rows[i] as PlannedRow;
      if (TAGGED.has(name)) {
        const upsert = (this.upserts[name] as RollupUpserts).withoutLatency();
        upsert.run(a.bucketMs, a.tagId, a.seriesId, ...a.params(nowMs));
      } else (this.upserts[name] as RollupUpserts).add(a, nowMs);
      // An accumulator carries its row's key (no copy per row on this path).
      last.set(ROLLUP_TABLES[name] as string, a);
    }
    return last;
  }

  private coarseIdsOf(e: PricedEvent): CoarseIds {
    const p = e.projectId;
    return {
      appModel: this.appSeries.idOf(`${p}\u0000${e.appId}\u0000${e.modelId}\u0000${e.provider}`, [
        p,
        e.appId,
        e.modelId,
        e.provider,
      ]),
      userApp: this.userSeries.idOf(`${p}\u0000${e.userId}\u0000${e.appId}`, [
        p,
        e.userId,
        e.appId,
      ]),
      user: this.users.idOf(`${p}\u0000${e.userId}`, [p, e.userId]),
      model: this.models.idOf(`${p}\u0000${e.modelId}\u0000${e.provider}`, [
        p,
        e.modelId,
        e.provider,
      ]),
      app: this.apps.idOf(`${p}\u0000${e.appId}`, [p, e.appId]),
    };
  }

  /** What the id caches hold now, by their estimate (at most the budget). */
  cachedBytes(): number {
    return this.dictionaries().reduce((sum, d) => sum + d.bytes, this.coarse.bytes);
  }

  private dictionaries(): IdDictionary[] {
    this.all ??= [
      this.series,
      this.appSeries,
      this.userSeries,
      this.users,
      this.models,
      this.apps,
      this.tags,
    ];
    return this.all;
  }

  /** The transaction committed: ids cached during it are real. */
  committed(): void {
    for (const d of this.dictionaries()) d.committed();
  }

  /** The transaction rolled back: ids inserted during it do not exist; forget them. */
  rolledBack(): void {
    // Coarse ids of series seen in it may be among them: forget every mapping (rare, refilled).
    this.coarse.clear();
    for (const d of this.dictionaries()) d.rolledBack();
  }
}
