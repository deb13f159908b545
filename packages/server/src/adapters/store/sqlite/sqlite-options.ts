import { DEFAULT_ID_CACHE_BUDGET_BYTES } from './id-dictionary.js';
import { DEFAULT_FOLDED_CACHE_BUDGET_BYTES } from './pending-counters.js';

export interface SqliteStoreOptions {
  /** Database file path, or ':memory:'. */
  path: string;
  /**
   * `full` (default) fsyncs the WAL at every commit: a 202 survives a power loss.
   * `normal` survives a process crash but may lose the last commits on power loss.
   */
  synchronous?: 'full' | 'normal';
  /** A checkpointer thread copies the WAL into the database; the writer then never does. */
  externalCheckpoints?: boolean;
  /**
   * How long appended events wait before they are folded into the rollups and rule counters
   * (reads fold first, so they never wait for it). Default 1 s.
   */
  foldIntervalMs?: number;
  /** Fold at once when this many events are waiting (bounds memory and replay). Default 200,000. */
  foldMaxEvents?: number;
  /**
   * Events per fold chunk (whole batches, at least one): what a fold plans at once (see
   * EventLogFold). Default from the WAL limit (`defaultFoldChunkEvents`: 128,000 for 64 MiB): a
   * fold at the normal pace is one chunk, a backlog is split.
   */
  foldChunkEvents?: number;
  /**
   * Rollup rows (and events accumulated) per fold transaction: a chunk is written in
   * transactions of this many rows, with the writes queued meanwhile in between. Default from
   * the WAL limit (`defaultFoldSliceRows`: 2,048 for 64 MiB).
   */
  foldSliceRows?: number;
  /**
   * How long one turn of a fold runs its transactions back to back before the writes queued
   * meanwhile run (default 10 ms; 0: one transaction a turn).
   */
  foldTurnMs?: number;
  /**
   * How long one fold transaction runs at most, about (default 8 ms; see EventLogFold): what an
   * append waits for. 0: the smallest steps (512 events, 256 rows), for tests of their bounds.
   */
  foldStepMs?: number;
  /** The write-ahead log is checkpointed and truncated before it passes this size. Default 64. */
  maxWalMiB?: number;
  /** Heap the writer's id caches (series, users, apps, models) may hold, by estimate. Default 64. */
  idCacheMiB?: number;
  /** Heap the writer's cache of folded rule-counter values may hold, by estimate. Default 32. */
  counterCacheMiB?: number;
  /**
   * The deliveries of a batch's alerts are created leased to this process for this long and
   * returned by `applyBatch` (`leasedDeliveries`), for its dispatcher to send at once: a claim
   * would wait behind the writer's fold (hundreds of ms at a high rate). Only for the process
   * that runs the dispatcher (`serve`); unset (other processes on the file), they wait in the
   * outbox for a claim.
   */
  leaseNewDeliveriesMs?: number;
}

export const DEFAULT_MAX_WAL_MIB = 64;
/**
 * The writer's cache budgets by default (heap bytes by estimate, see GenerationalCache and
 * PendingCounters). Past them, ids and counter values are read again from the database: exact,
 * but slower: a miss costs a query (the hot counter buckets are kept past the budget, see
 * PendingCounters' HOT_MS).
 */
export const DEFAULT_ID_CACHE_MIB = DEFAULT_ID_CACHE_BUDGET_BYTES / 1024 / 1024;
export const DEFAULT_COUNTER_CACHE_MIB = DEFAULT_FOLDED_CACHE_BUDGET_BYTES / 1024 / 1024;
