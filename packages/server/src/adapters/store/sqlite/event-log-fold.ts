import type Database from 'better-sqlite3';
import type { EventLog, FoldChunk } from './event-log.js';
import type { OtherWriters } from './other-writers.js';
import type { PendingCounters } from './pending-counters.js';
import type { RollupWriter } from './rollup-writer.js';
import { storeError } from './sqlite-errors.js';
import { emptyFoldStats, type FoldStats, recordFold } from './wal-monitor.js';

/**
 * Events per fold transaction by default, from the WAL limit. A transaction's pages stay in the
 * write-ahead log until it commits and the writer checkpoints only between transactions
 * (wal-bound.ts), so one fold of a large backlog (after an overload, at a restart, a read during
 * one) passed the limit by its whole size: 96.7 MiB against 64 in an overloaded hour, with folds of
 * up to 200,000 events (docs/benchmarks-history.md § Soak). A long tail of users (10k users × 10
 * apps × 8 models, time-ordered) writes ≈ 0.25 KiB of WAL per event in one large transaction
 * (fold-wal-bound.test.ts), so 2,000 events per MiB of the limit (128,000 for the default 64 MiB)
 * keep a chunk of such events near half the limit.
 *
 * Only backlogs are split. A fold at the normal pace holds about a second of events plus what
 * arrives while it runs: 60–75k at the maximum rate of `npm run bench:ingest`, one chunk. Smaller
 * chunks cost throughput, as each transaction rewrites the rollup and counter pages its events
 * touch: with the alerts benchmark's traffic (10k users, 100 rules) a chunk of ~800 events took
 * 2.4× the CPU per event of one transaction of 16k events; on a quiet machine chunks of 1,000 cut
 * the time to 202 p99 at half the maximum rate from ~700 to ~400 ms but cost ~18 % of the maximum
 * rate, a default of 400 per MiB (25,600) cost a quarter of it, and chunks sized from the WAL each
 * fold wrote (≈ 1 KiB per event with 10k users over their apps and models) cost a fifth of the
 * maximum rate of that traffic and stalled ingest while the folds fell behind
 * (docs/benchmarks-history.md § Alerts, § Soak). So a one-second fold of wide traffic still passes
 * the limit by its size.
 */
export function defaultFoldChunkEvents(maxWalMiB: number): number {
  return Math.max(1, Math.floor(maxWalMiB * FOLD_EVENTS_PER_WAL_MIB));
}

const FOLD_EVENTS_PER_WAL_MIB = 2_000;

export interface EventLogFoldParts {
  db: Database.Database;
  log: EventLog;
  rollups: RollupWriter;
  counters: PendingCounters;
  writers: OtherWriters;
  /** Inside the transaction: reads the log again if another process changed it; whether it did. */
  syncWithOtherWriters: (nowMs: number) => boolean;
  /** The connection's `synchronous` setting (a fold commits with NORMAL: the log replays it). */
  synchronous: 'FULL' | 'NORMAL';
  chunkEvents: number;
  /** How long appended events wait before a fold begins. */
  intervalMs: number;
  /** After each timed chunk (the writer checks its WAL's size). */
  afterChunk: () => void;
}

/**
 * Folds the event log into the rollups and rule counters. A fold is a run of transactions
 * (chunks), each of at most `chunkEvents` events of whole log rows, in log order: each adds
 * exactly its rows' events to the rollups and their batches' deltas to the rule counters and
 * deletes those rows, so a crash between two chunks leaves exactly the rest in the log (replayed
 * at the next start). Each chunk runs at its own turn of the event loop, so the calls (appends,
 * outbox claims) that arrived at the writer thread meanwhile run in between: they wait for one
 * chunk, not for the whole fold.
 *
 * A fold folds the log as it was when it began (`untilSeq`); batches appended meanwhile wait for
 * the next fold. The store generation is bumped by the first chunk of a fold only, and a fold
 * begins only once the previous one is done (or in a transaction that folds the whole log, which
 * leaves nothing unfolded). So when the generation is G, every batch that committed under a
 * generation of G - 2 or less is folded: it committed before the bump to G - 1 began a fold whose
 * log held it, and that fold was done before the bump to G (what EnforcedCounters relies on).
 */
export class EventLogFold {
  /** The fold in progress folds the log up to this row (undefined: none is in progress). */
  private untilSeq: number | undefined;
  /** Fold transactions that failed (their events stay in the log and are folded by a later one). */
  failures = 0;
  /** Fold transactions that committed, and how long they held the connection. */
  readonly stats: FoldStats = emptyFoldStats();
  /** Told about each fold transaction that committed. */
  onFolded: ((seconds: number, events: number) => void) | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The next chunk of the fold in progress, after the calls queued meanwhile. */
  private turn: ReturnType<typeof setImmediate> | undefined;

  constructor(private readonly parts: EventLogFoldParts) {}

  /** Events were appended: a fold begins `intervalMs` from now, unless one is due already. */
  schedule(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // A fold still running continues at its own turns.
      if (this.turn === undefined) this.nextChunk();
    }, this.parts.intervalMs);
    this.timer.unref?.();
  }

  /**
   * Folds every unfolded event now (finishing a fold in progress): what a read needs before it
   * answers, and the replay at start. In one transaction when it fits one chunk (the usual case,
   * and the cheapest); a larger backlog in chunks, back to back: in one transaction, the backlog
   * of an overloaded hour carried the WAL to 96.7 MiB (see defaultFoldChunkEvents).
   */
  all(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.turn !== undefined) {
      clearImmediate(this.turn);
      this.turn = undefined;
    }
    const { log, chunkEvents } = this.parts;
    while (log.pendingEvents > chunkEvents) {
      const pendingBefore = log.pendingEvents;
      this.step(Date.now(), false);
      this.parts.afterChunk();
      // A chunk that folded nothing (not expected): the rest is folded whole below.
      if (log.pendingEvents >= pendingBefore) break;
    }
    // What is left (another process's changes found on syncing included) in one transaction.
    this.step(Date.now(), true);
  }

  /** One chunk; the next one at a later turn of the event loop, while the fold has rows left. */
  private nextChunk(): void {
    this.turn = undefined;
    try {
      this.step(Date.now(), false);
    } catch {
      // Counted in step(); the events stay in the log, and the next write schedules again.
    }
    this.parts.afterChunk();
    // Not unref'd: an unref'd immediate does not keep the loop from blocking in its poll, so
    // each chunk would wait for the next message or timer of an idle writer.
    if (this.untilSeq !== undefined) this.turn = setImmediate(() => this.nextChunk());
  }

  /**
   * One transaction: the next chunk of the fold in progress (beginning one if none is), or with
   * `all` every unfolded event (what a read needs before it answers: every event that got its
   * 202). Another process's changes, found on syncing, are folded whole too.
   */
  private step(nowMs: number, all: boolean): void {
    const { db, log, rollups, counters, writers } = this.parts;
    if (log.pendingEvents === 0 && !writers.committedSinceSync()) {
      this.untilSeq = undefined;
      return;
    }
    let chunk: FoldChunk | undefined;
    let untilSeq = 0;
    const startedMs = performance.now();
    // The log rows make the fold replayable: its commit need not wait for the disk. Inside a
    // running transaction (a rule save's back-fill reads the rollups through a fold, which has
    // work when another process committed meanwhile) the fold is a savepoint of it: SQLite
    // refuses a change of `synchronous` there, and the outer commit decides durability anyway.
    const relaxed = this.parts.synchronous === 'FULL' && !db.inTransaction;
    try {
      if (relaxed) db.pragma('synchronous = NORMAL');
      db.transaction(() => {
        const whole = this.parts.syncWithOtherWriters(nowMs) || all;
        if (log.pendingEvents === 0) return;
        const begins = whole || this.untilSeq === undefined;
        untilSeq = whole ? log.lastRowSeq : (this.untilSeq ?? log.lastRowSeq);
        const next = whole ? log.toFold() : log.chunk(this.parts.chunkEvents, untilSeq);
        if (next.events.length === 0) return;
        rollups.write(next.events, nowMs);
        counters.fold(next.upToSeq, nowMs);
        log.deleteFolded(next.upToSeq);
        if (begins) writers.bump();
        chunk = next;
      }).immediate();
    } catch (err) {
      rollups.rolledBack();
      counters.rolledBack();
      writers.distrust();
      // The next fold syncs again (distrusted: it reads the log again) and folds it whole.
      this.untilSeq = undefined;
      this.failures++;
      if (relaxed) this.restoreSynchronous();
      throw storeError(err, 'fold');
    }
    if (chunk !== undefined) {
      const { upToSeq, events } = chunk as FoldChunk;
      rollups.committed();
      counters.foldCommitted();
      log.folded(upToSeq);
      this.untilSeq = upToSeq >= untilSeq ? undefined : untilSeq;
      const seconds = (performance.now() - startedMs) / 1000;
      recordFold(this.stats, seconds, events.length);
      this.onFolded?.(seconds, events.length);
    } else this.untilSeq = undefined;
    if (relaxed) this.restoreSynchronous();
  }

  /** Back to fsync at every commit (a failure here is the next write's to report). */
  private restoreSynchronous(): void {
    if (this.parts.synchronous !== 'FULL') return;
    try {
      this.parts.db.pragma('synchronous = FULL');
    } catch {
      // A closed or broken connection: nothing commits on it without failing first.
    }
  }
}
