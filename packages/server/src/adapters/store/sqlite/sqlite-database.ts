import {
  type ApplyOptions,
  type ApplyResult,
  type ConflictRecord,
  type PricedEvent,
  type PruneOptions,
  type PruneResult,
  type Rule,
  type RuleChange,
  type RuleCounter,
  TokenwatchError,
  type UsageQuery,
  type UsageRow,
} from '@tokenwatch/core';
import Database from 'better-sqlite3';
import { createPrivateDatabaseFile, isOnDisk } from '../../../util/private-files.js';
import { EventClaims } from './event-claims.js';
import { decodeEvents, EventLog } from './event-log.js';
import { EventLogFold } from './event-log-fold.js';
import { FoldProgress } from './fold-progress.js';
import {
  DEFAULT_FOLD_STEP_MS,
  DEFAULT_FOLD_TURN_MS,
  defaultFoldChunkEvents,
  defaultFoldSliceRows,
} from './fold-settings.js';
import { FRESH_SCHEMA } from './fresh-schema.js';
import { OtherWriters } from './other-writers.js';
import { RollupWriter } from './rollup-writer.js';
import { MIGRATIONS } from './schema.js';
import { storeError } from './sqlite-errors.js';
import {
  DEFAULT_COUNTER_CACHE_MIB,
  DEFAULT_ID_CACHE_MIB,
  DEFAULT_MAX_WAL_MIB,
  type SqliteStoreOptions,
} from './sqlite-options.js';
import { SqliteProjects } from './sqlite-projects.js';
import { conflictsOf, countUsageGroups, pruneHistory, queryUsageRows } from './sqlite-reads.js';
import { SqliteRules } from './sqlite-rules.js';
import { WalBound, walFileSize } from './wal-bound.js';
import { emptyFoldStats, type FoldStats } from './wal-monitor.js';
import { BUSY_TIMEOUT_MS, immediate } from './write-lock.js';

export { storeError };

/** A batch's result, and what a reader of the counters on another connection needs of it. */
export interface SqliteApplyResult extends ApplyResult {
  /**
   * The store generation (`store_generation`) at the batch's commit. A fold bumps it when it
   * begins, and begins only once the previous fold is done (see EventLogFold); rule saves bump
   * it by two after folding everything. So a connection that reads generation G with the
   * counters knows: the counters include every batch of generation G - 2 or lower; batches of
   * G - 1 and G may be folded in part, in log order.
   */
  counterGeneration: number;
}

/** What reads map of the file: SQLite caps it at its compiled SQLITE_MAX_MMAP_SIZE (0x7fff0000). */
const MMAP_BYTES = 0x7fff0000;

/**
 * The embedded store: one SQLite file, synchronous driver (better-sqlite3). All methods are
 * synchronous inside and wrapped in promises by `SqliteStore` so the adapter fits the port.
 */

export class SqliteDatabase {
  readonly db: Database.Database;
  private claims: EventClaims | undefined;
  private rollups: RollupWriter | undefined;
  private ruleEngine: SqliteRules | undefined;
  private projectStore: SqliteProjects | undefined;
  private log: EventLog | undefined;
  private readonly synchronous: 'FULL' | 'NORMAL';
  private readonly foldIntervalMs: number;
  private readonly foldMaxEvents: number;
  private readonly walPath: string | undefined;
  /** Keeps this connection's WAL bounded (on disk only). */
  private readonly walBound: WalBound | undefined;
  private readonly foldChunkEvents: number;
  private readonly foldSliceRows: number;
  private readonly foldTurnMs: number;
  private readonly foldStepMs: number;
  /** What a batch's transaction added to the WAL, at most of late (see applyBatch). */
  private batchWalBytes = 0;
  /** Heap budgets of the writer's id caches and folded-counter cache. */
  private readonly cacheBudgets: { ids: number; counters: number };
  private folder: EventLogFold | undefined;
  /** Told about each fold chunk that was done (the writer thread reports it to the server). */
  onFolded: ((seconds: number, events: number) => void) | undefined;
  /** Told after each fold transaction commits (a chunk is folded by several; see EventLogFold). */
  onFoldTransaction: (() => void) | undefined;
  private writers: OtherWriters | undefined;
  private readonly leaseNewDeliveriesMs: number | undefined;

  constructor(options: SqliteStoreOptions) {
    this.leaseNewDeliveriesMs = options.leaseNewDeliveriesMs;
    this.synchronous = options.synchronous === 'normal' ? 'NORMAL' : 'FULL';
    this.foldIntervalMs = options.foldIntervalMs ?? 1_000;
    this.foldMaxEvents = options.foldMaxEvents ?? 200_000;
    const maxWalMiB = options.maxWalMiB ?? DEFAULT_MAX_WAL_MIB;
    this.foldChunkEvents = options.foldChunkEvents ?? defaultFoldChunkEvents(maxWalMiB);
    this.foldSliceRows = options.foldSliceRows ?? defaultFoldSliceRows(maxWalMiB);
    this.foldTurnMs = options.foldTurnMs ?? DEFAULT_FOLD_TURN_MS;
    this.foldStepMs = options.foldStepMs ?? DEFAULT_FOLD_STEP_MS;
    const maxWalBytes = maxWalMiB * 1024 * 1024;
    this.cacheBudgets = {
      ids: (options.idCacheMiB ?? DEFAULT_ID_CACHE_MIB) * 1024 * 1024,
      counters: (options.counterCacheMiB ?? DEFAULT_COUNTER_CACHE_MIB) * 1024 * 1024,
    };
    const onDisk = isOnDisk(options.path);
    this.walPath = onDisk ? `${options.path}-wal` : undefined;
    // With a checkpointer thread the writer steps in only when that thread falls behind (a
    // starved core): the limit holds either way.
    const writerCheckpointsAboveBytes = options.externalCheckpoints
      ? maxWalBytes * 0.75
      : maxWalBytes / 2;
    try {
      if (onDisk) createPrivateDatabaseFile(options.path);
      this.db = new Database(options.path);
      this.db.pragma('journal_mode = WAL');
      // A WAL left larger (by one huge transaction) is cut back to the limit when it restarts.
      this.db.pragma(`journal_size_limit = ${maxWalBytes}`);
      this.db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
      this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      this.db.pragma('foreign_keys = ON');
      // Checkpoints run on another thread (see sqlite-checkpointer.ts) when one is attached;
      // otherwise fewer, larger ones than the default 1000 pages (a checkpoint on most commits),
      // up to a quarter of the WAL limit.
      const autoPages = Math.max(1000, Math.min(10_000, Math.floor(maxWalBytes / 4 / 4096)));
      this.db.pragma(`wal_autocheckpoint = ${options.externalCheckpoints ? 0 : autoPages}`);
      this.db.pragma('cache_size = -65536');
      // Reads map the file (up to SQLite's compiled limit, 2 GiB in better-sqlite3's build) instead
      // of copying pages into the 64 MiB cache: a 30-day query of one user's series looks up ~30k
      // rows spread over ~10k pages, more than the cache holds, and each miss was a pread (2-3x
      // slower at 10M events, docs/benchmarks-history.md). Mapped pages are the OS's file cache,
      // not a second copy; pages past the limit are read as before.
      this.db.pragma(`mmap_size = ${MMAP_BYTES}`);
    } catch (err) {
      throw storeError(err, 'open');
    }
    this.walBound =
      this.walPath === undefined
        ? undefined
        : new WalBound(this.db, this.walPath, maxWalBytes, writerCheckpointsAboveBytes);
  }

  /** Checkpoints this connection ran that failed or could not finish. */
  get checkpointFailures(): number {
    return this.walBound?.failures ?? 0;
  }
  /** Told about each failed checkpoint of this connection (the server logs it). */
  set onCheckpointFailure(listener:
    | ((message: string, code: string | undefined) => void)
    | undefined) {
    if (this.walBound !== undefined) this.walBound.onFailure = listener;
  }
  get onCheckpointFailure(): ((message: string, code: string | undefined) => void) | undefined {
    return this.walBound?.onFailure;
  }

  migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    const row = this.db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as {
      v: number | null;
    };
    const current = row.v ?? 0;
    immediate(this.db, () => {
      const recordVersion = this.db.prepare('INSERT INTO schema_version (version) VALUES (?)');
      let v = current;
      // A new file is built from the snapshot of the migrations at once (see schema-snapshot.ts),
      // then takes any migration newer than the snapshot as an older file would.
      if (v === 0 && FRESH_SCHEMA.version <= MIGRATIONS.length) {
        this.db.exec(FRESH_SCHEMA.sql);
        for (; v < FRESH_SCHEMA.version; v++) recordVersion.run(v + 1);
      }
      for (; v < MIGRATIONS.length; v++) {
        this.db.exec(MIGRATIONS[v] as string);
        recordVersion.run(v + 1);
      }
    });
    this.createParts();
    this.replay();
  }

  /** Folds what a crash left in the event log, before anything else reads or writes. */
  private replay(): void {
    this.fold().all();
  }

  /** Fold transactions that failed (their events stay in the log and are folded by a later one). */
  get foldFailures(): number {
    return this.folder?.failures ?? 0;
  }

  /** What the writer's caches hold now, by their estimate (each at most its budget). */
  cachedBytes(): { ids: number; counters: number } {
    return {
      ids: this.rollups?.cachedBytes() ?? 0,
      counters: this.ruleEngine?.pending.foldedCacheBytes ?? 0,
    };
  }

  /** Fold transactions that committed, and how long they held this connection. */
  get foldStats(): FoldStats {
    return this.folder?.stats ?? emptyFoldStats();
  }

  private fold(): EventLogFold {
    if (!this.folder) throw new TokenwatchError('internal', 'SQLite store used before migrate()');
    return this.folder;
  }

  /**
   * Reads the event log again when another process changed it (see OtherWriters); returns
   * whether it did.
   */
  private syncWithOtherWriters(nowMs: number): boolean {
    const log = this.eventLog();
    return this.otherWriters().sync(log.firstRowSeq, log.lastRowSeq, () => {
      const rules = this.rulesEngine();
      log.forget();
      rules.pending.forgetAll();
      this.folder?.forgetChunk();
      // The alerts these events fired committed with them; evaluating again restores their
      // counter deltas and inserts no alert twice. One batch of all the rows (the fold that
      // follows folds them whole), split after a fold chunk left half written (resumed first).
      for (const { events, firstSeq, upToSeq } of log.unfolded(
        FoldProgress.storedUpToSeq(this.db),
      )) {
        rules.evaluate(events, nowMs).commit(upToSeq);
        log.appended(events, upToSeq, nowMs, firstSeq);
      }
    });
  }

  private otherWriters(): OtherWriters {
    if (!this.writers) throw new TokenwatchError('internal', 'SQLite store used before migrate()');
    return this.writers;
  }

  /** The parts that write and read the file, once its schema is current. */
  private createParts(): void {
    this.claims = new EventClaims(this.db);
    this.writers = new OtherWriters(this.db);
    this.rollups = new RollupWriter(this.db, this.cacheBudgets.ids);
    this.log = new EventLog(this.db);
    this.ruleEngine = new SqliteRules(
      this.db,
      (q) => this.queryUsage(q),
      this.cacheBudgets.counters,
      this.leaseNewDeliveriesMs,
    );
    this.projectStore = new SqliteProjects(this.db);
    this.folder = new EventLogFold({
      db: this.db,
      log: this.log,
      rollups: this.rollups,
      counters: this.ruleEngine.pending,
      writers: this.writers,
      syncWithOtherWriters: (nowMs) => this.syncWithOtherWriters(nowMs),
      synchronous: this.synchronous,
      chunkEvents: this.foldChunkEvents,
      sliceRows: this.foldSliceRows,
      turnMs: this.foldTurnMs,
      stepMs: this.foldStepMs,
      intervalMs: this.foldIntervalMs,
      // Room for an append as well: one may come next.
      makeWalRoom: (headroomBytes) =>
        this.walBound?.check(Math.max(headroomBytes, this.batchWalBytes)),
    });
    this.folder.onFolded = (seconds, events) => this.onFolded?.(seconds, events);
    this.folder.onTransaction = () => this.onFoldTransaction?.();
  }

  /** Rules, counters, alerts and the outbox (see SqliteRules). */
  rulesEngine(): SqliteRules {
    if (!this.ruleEngine)
      throw new TokenwatchError('internal', 'SQLite store used before migrate()');
    return this.ruleEngine;
  }

  private eventLog(): EventLog {
    if (!this.log) throw new TokenwatchError('internal', 'SQLite store used before migrate()');
    return this.log;
  }

  private eventClaims(): EventClaims {
    if (!this.claims) throw new TokenwatchError('internal', 'SQLite store used before migrate()');
    return this.claims;
  }

  /**
   * One transaction per batch, and all a 202 needs: the id claims, the new events appended to
   * the event log, and the alerts they fire (the rule engine runs on the folded counters plus
   * the pending deltas). Rollups and rule counters follow in the next fold.
   */
  applyBatch(
    events: readonly PricedEvent[],
    options: ApplyOptions,
    /** The events as `encodeEvents` wrote them, when the caller has that text already. */
    encoded?: string,
  ): SqliteApplyResult {
    const claims = this.eventClaims();
    const log = this.eventLog();
    let seq = 0;
    let othersWrote = false;
    const walBefore = this.walBytes();
    const run = () => {
      othersWrote = this.syncWithOtherWriters(options.nowMs);
      const claimed = claims.claim(events, options.nowMs);
      const { fresh } = claimed;
      // All new (the usual case): the text the batch came in is the log row.
      if (fresh.length > 0)
        seq = log.append(fresh, fresh.length === events.length ? encoded : undefined);
      const evaluated = this.rulesEngine().evaluate(fresh, options.nowMs);
      return { ...claimed, evaluated };
    };
    let done: ReturnType<typeof run>;
    try {
      done = immediate(this.db, run);
    } catch (err) {
      this.otherWriters().distrust();
      throw storeError(err, 'applyBatch');
    }
    const { fresh, duplicates, conflicts, outcomes, evaluated } = done;
    if (fresh.length > 0) {
      evaluated.commit(seq);
      log.appended(fresh, seq, options.nowMs);
      // Room for the next batch as large as the largest of late (what a batch wrote, decaying):
      // the log is emptied before a batch could take it past its limit, not after. Only a batch
      // that grew the file is a sample: one written over the start of a log that rewound (after
      // a checkpoint copied it all) grows nothing, and the estimate must not decay to nothing
      // meanwhile, to be found too small when the writes reach the file's end again. Measured
      // before a fold below: its writes are not the batch's.
      const grew = this.walBytes() - walBefore;
      if (grew > 0) this.batchWalBytes = Math.max(grew, this.batchWalBytes * 0.99);
    }
    // Another process's events, just read into memory, are folded at once: a check reading the
    // folded counters on its own connection sees them (see counterGeneration).
    if (log.pendingEvents >= this.foldMaxEvents || (othersWrote && log.pendingEvents > 0))
      this.foldNow();
    else if (fresh.length > 0) this.scheduleFold();
    if (fresh.length > 0) this.walBound?.check(this.batchWalBytes);
    return {
      counterGeneration: this.otherWriters().currentGeneration,
      accepted: fresh.length,
      duplicates,
      conflicts,
      outcomes,
      alerts: evaluated.alerts,
      enforcedCounters: evaluated.enforcedCounters,
      ...(evaluated.leasedDeliveries.length > 0
        ? { leasedDeliveries: evaluated.leasedDeliveries }
        : {}),
    };
  }

  /**
   * `applyBatch` of a batch sent as `encodeEvents` text: what the writer thread receives, a
   * string being far cheaper to pass between threads than the events' objects.
   */
  applyEncodedBatch(encoded: string, options: ApplyOptions): SqliteApplyResult {
    return this.applyBatch(decodeEvents(encoded), options, encoded);
  }

  private scheduleFold(): void {
    this.fold().schedule();
  }

  /** Size of this store's WAL file now (0 in memory or when there is none). */
  walBytes(): number {
    return this.walPath === undefined ? 0 : walFileSize(this.walPath);
  }

  /**
   * Folds every unfolded event now, in one transaction (reads call this first, so they see
   * every event that got its 202; a fold in progress is finished by it).
   */
  foldNow(): void {
    this.fold().all();
  }

  /**
   * When another process committed since this connection last looked: reads what it changed
   * and folds it, so it reaches the folded counters (that checks read on their own connection)
   * without waiting for a write of this process. A checkpoint alone changes nothing here.
   */
  foldIfOthersWrote(): void {
    if (!this.otherWriters().committedSinceSync()) return;
    let changed = false;
    try {
      immediate(this.db, () => {
        changed = this.syncWithOtherWriters(Date.now());
      });
    } catch (err) {
      this.otherWriters().distrust();
      throw storeError(err, 'sync');
    }
    if (changed) this.foldNow();
  }

  /** Rule counters with the unfolded deltas (synced first if another process wrote). */
  readCounters(ruleId: string, fromMs: number, toMs: number, scopeKey?: string): RuleCounter[] {
    if (this.otherWriters().committedSinceSync()) this.foldNow();
    return this.rulesEngine().readCounters(ruleId, fromMs, toMs, scopeKey);
  }

  queryUsage(q: UsageQuery): UsageRow[] {
    this.foldNow();
    return queryUsageRows(this.db, q);
  }

  countGroups(q: UsageQuery): number {
    this.foldNow();
    return countUsageGroups(this.db, q);
  }

  listConflicts(projectId: string, limit: number): ConflictRecord[] {
    return conflictsOf(this.db, projectId, limit);
  }

  prune(options: PruneOptions): PruneResult {
    this.foldNow();
    try {
      const minute = this.db
        .prepare('DELETE FROM rollup_minute WHERE bucket_ms < ?')
        .run(options.nowMs - options.minuteRetentionMs);
      const ids = this.db
        .prepare('DELETE FROM event_ids WHERE event_ms < ?')
        .run(options.nowMs - options.dedupeRetentionMs);
      // Rule counters of windows that can no longer receive an event (older than the accepted
      // lateness, plus a month for the longest window).
      this.rewritingCounters(() =>
        this.db
          .prepare('DELETE FROM rule_counters WHERE bucket_start_ms < ?')
          .run(options.nowMs - options.dedupeRetentionMs - 32 * 86_400_000),
      );
      this.rulesEngine().pending.forgetFolded();
      return {
        minuteRowsDeleted: minute.changes,
        eventIdsDeleted: ids.changes,
        ...pruneHistory(this.db, options.nowMs - options.historyRetentionMs),
      };
    } catch (err) {
      throw storeError(err, 'prune');
    }
  }

  /** Projects, keys and price overrides (see SqliteProjects). */
  projects(): SqliteProjects {
    if (!this.projectStore)
      throw new TokenwatchError('internal', 'SQLite store used before migrate()');
    return this.projectStore;
  }

  /** Saving a rule rebuilds counters from the rollups: fold first, so they hold everything. */
  createRule(rule: Rule, nowMs: number): RuleChange {
    this.foldNow();
    return this.rewritingCounters(() => this.rulesEngine().createRule(rule, nowMs));
  }

  updateRule(rule: Rule, nowMs: number): RuleChange | undefined {
    this.foldNow();
    return this.rewritingCounters(() => this.rulesEngine().updateRule(rule, nowMs));
  }

  deleteRule(projectId: string, ruleId: string): boolean {
    // Counters are rewritten once everything is folded: see counterGeneration.
    this.foldNow();
    return this.rewritingCounters(() => this.rulesEngine().deleteRule(projectId, ruleId));
  }

  /** A write that rebuilds or drops rule counters: other connections must read them again. */
  private rewritingCounters<T>(write: () => T): T {
    try {
      return immediate(this.db, () => {
        const result = write();
        // By two: checks forget every counter value reported before it (see counterGeneration).
        this.otherWriters().bump(2);
        return result;
      });
    } catch (err) {
      this.otherWriters().distrust();
      throw err;
    }
  }

  close(): void {
    if (this.db.open) {
      try {
        this.foldNow();
      } finally {
        this.db.close();
      }
    }
  }
}
