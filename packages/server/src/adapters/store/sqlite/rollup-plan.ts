import type { Acc } from './rollup-acc.js';

/** A full series' ids in the coarse dictionaries. */
export interface CoarseIds {
  appModel: number;
  userApp: number;
  user: number;
  model: number;
  app: number;
}

/** bucket → series → measures (or bucket → tag → series → measures for tag rollups). */
export type Buckets = Map<number, Map<number, Acc>>;
export type TagBuckets = Map<number, Map<number, Map<number, Acc>>>;

/** A rollup row's primary key (`tagId` 0 in the untagged rollups). */
export interface RowKey {
  bucketMs: number;
  tagId: number;
  seriesId: number;
}

/**
 * Whether `key` comes after `done` in the rollup's primary key order (bucket, then tag, then
 * series); every key comes after none.
 */
export function rowKeyAfter(key: RowKey, done: RowKey | undefined): boolean {
  if (done === undefined) return true;
  return (
    (key.bucketMs - done.bucketMs || key.tagId - done.tagId || key.seriesId - done.seriesId) > 0
  );
}

/** A row a plan will upsert: the accumulator and the name of its rollup (see ROLLUP_TABLES). */
export interface PlannedRow {
  name: string;
  acc: Acc;
}

/**
 * The rollup rows of a fold chunk, built in parts: its events are accumulated over one or more
 * transactions (each resolving its events' new series ids), then `finish` lists the rows, which
 * are upserted over one or more transactions, each of a bounded number of rows (what bounds the
 * write-ahead log; see EventLogFold). `skip` holds, per rollup table, the key of the last row an
 * earlier run of the same chunk wrote (a fold interrupted by a crash or another process): rows at
 * or before it are left out, so each is added exactly once.
 */
export class RollupPlan {
  readonly plain: Record<string, Buckets> = {
    minute: new Map(),
    hour: new Map(),
    day: new Map(),
    appHour: new Map(),
    appDay: new Map(),
    userHour: new Map(),
    userDay: new Map(),
    perUserHour: new Map(),
    perUserDay: new Map(),
    perUserWeek: new Map(),
    perModelHour: new Map(),
    perModelDay: new Map(),
    perAppHour: new Map(),
    perAppDay: new Map(),
  };
  readonly tagged: Record<string, TagBuckets> = { tagHour: new Map(), tagDay: new Map() };
  /** The chunk's series → their coarse ids, held here: the cache may drop an entry meanwhile. */
  readonly coarseOf = new Map<number, CoarseIds>();
  /** Every row to write, in order (set by `finish`). */
  rows: PlannedRow[] | undefined;
  /**
   * The listing of the rows in progress (see RollupWriter.finishPiece): deriving the coarse
   * rollups adds to this plan's maps, so it runs once per plan, however many calls it takes.
   */
  listing: Generator<void, PlannedRow[]> | undefined;

  constructor(readonly skip: ReadonlyMap<string, RowKey>) {}
}

/**
 * A map's integer keys, ascending: a plan's rows are written in their rollup's key order, so
 * the rows of one transaction are a key range of each table and resuming after the last row
 * written is a comparison of keys.
 */
export function inKeyOrder(map: Map<number, unknown>): Float64Array {
  const keys = new Float64Array(map.size);
  let i = 0;
  for (const k of map.keys()) keys[i++] = k;
  return keys.sort();
}
