import type { PricedEvent } from '@tokenwatch/core';
import type Database from 'better-sqlite3';
import type { EventLog } from './event-log.js';
import { FoldProgress } from './fold-progress.js';
import {
  ACCUMULATE_EVENTS,
  ACCUMULATE_STRIDE,
  BEHIND_TURN_MS,
  inStrides,
  SLICE_BYTES_PER_ROW,
  WRITE_STRIDE,
} from './fold-settings.js';
import type { OtherWriters } from './other-writers.js';
import type { PendingCounters } from './pending-counters.js';
import type { RollupPlan, RowKey } from './rollup-plan.js';
import type { RollupWriter } from './rollup-writer.js';
import { storeError } from './sqlite-errors.js';
import { emptyFoldStats, type FoldStats, recordFold } from './wal-monitor.js';
import { immediate } from './write-lock.js';

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
  /**
   * Rollup rows (and events accumulated) per fold transaction: what bounds the WAL one of them
   * writes (see defaultFoldSliceRows).
   */
  sliceRows: number;
  /** How long appended events wait before a fold begins. */
  intervalMs: number;
  /**
   * How long a turn of the fold runs transactions back to back (see nextStep); 0: one
   * transaction a turn, whatever the backlog.
   */
  turnMs: number;
  /**
   * How long one fold transaction (accumulating, or writing rows), or a step listing a chunk's
   * rows, runs at most, about: what an append that arrives meanwhile waits for. 0: one stride
   * each (see ACCUMULATE_STRIDE and WRITE_STRIDE).
   */
  stepMs: number;
  /**
   * Before each fold transaction, with room for it (`headroomBytes`, its estimate), and after
   * the last of a turn (0): the writer checks its WAL's size (see WalBound). The check before
   * matters: the write before a turn was an append, whose check made room for an append only.
   */
  makeWalRoom: (headroomBytes: number) => void;
}

/** A fold chunk in progress: its log rows' events, their rollup plan, and how far it got. */
interface ChunkInProgress {
  upToSeq: number;
  events: PricedEvent[];
  plan: RollupPlan;
  /** Events accumulated into the plan so far (their series ids are committed). */
  accumulated: number;
  /** Rows of the finished plan written so far (the plan's `rows` once listed: see listRows). */
  written: number;
  /** The time its transactions held the connection so far. */
  seconds: number;
}

/**
 * Folds the event log into the rollups and rule counters. A fold is a run of chunks, each of at
 * most `chunkEvents` events of whole log rows, in log order, and each chunk a run of short
 * transactions. A turn of the event loop runs them back to back for up to `turnMs`; the calls
 * that arrived at the writer thread meanwhile (appends, outbox claims) run between turns, so they
 * wait for a turn, not for a fold:
 *  1. accumulate: events until `sliceRows` new series ids are inserted (ids are permanent: these
 *     transactions change no count);
 *  2. write: `sliceRows` rollup rows at a time, in key order, each transaction recording per
 *     table the key of the last row it wrote (`fold_progress`);
 *  3. finish: the chunk's counter deltas, the deletion of its log rows and of its progress.
 * So a crash (or another process) between two transactions leaves the chunk's events in the
 * log and its progress: the fold that resumes it plans the same rows from the same events and
 * skips those at or before the progress (FoldProgress), and nothing is counted twice or lost.
 * Each transaction writes at most `sliceRows` rows: what bounds the WAL at the maximum rate,
 * where one transaction per chunk of a second's events wrote 40–70 MiB (`npm run bench:fold-wal`).
 *
 * A fold folds the log as it was when it began (`untilSeq`); batches appended meanwhile wait for
 * the next fold. The store generation is bumped by the first transaction of a fold only, and a
 * fold begins only once the previous one is done (or in `all`, which leaves nothing unfolded).
 * So when the generation is G, every batch that committed under a generation of G - 2 or less is
 * folded: it committed before the bump to G - 1 began a fold whose log held it, and that fold was
 * done before the bump to G (what EnforcedCounters relies on). The rule counters of a chunk are
 * written by its last transaction at once.
 */
export class EventLogFold {
  /** The fold in progress folds the log up to this row (undefined: none is in progress). */
  private untilSeq: number | undefined;
  /** The chunk in progress (undefined: the next transaction plans one). */
  private chunk: ChunkInProgress | undefined;
  /** The next chunk planned takes the fold in progress to the log's end (see forgetChunk). */
  private toEnd = false;
  private readonly progress: FoldProgress;
  /** Fold transactions that failed (their events stay in the log and are folded by a later one). */
  failures = 0;
  /** Fold chunks that were done, and how long their transactions held the connection. */
  readonly stats: FoldStats = emptyFoldStats();
  /** Told about each fold chunk that was done: the time its transactions held the connection. */
  onFolded: ((seconds: number, events: number) => void) | undefined;
  /** Told after each fold transaction commits (tests copy the files there: a crash's image). */
  onTransaction: (() => void) | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The next transaction of the fold in progress, after the calls queued meanwhile. */
  private turn: ReturnType<typeof setImmediate> | undefined;

  constructor(private readonly parts: EventLogFoldParts) {
    this.progress = new FoldProgress(parts.db);
  }

  /**
   * What the next fold transaction may add to the WAL, by estimate: a slice of rows; or, for a
   * chunk's finish, its rule-counter rows, which it writes at once (the finish of a one-second
   * chunk of the 10k-user soak with 4 rules wrote 18 MiB, past a slice's room: the rows are
   * bounded by the pending counters, so a finish with many starts from an emptied log).
   */
  private nextTransactionBytes(): number {
    const slice = this.parts.sliceRows * SLICE_BYTES_PER_ROW;
    const chunk = this.chunk;
    const rows = chunk?.plan.rows;
    if (chunk === undefined || rows === undefined || chunk.written < rows.length) return slice;
    return Math.max(slice, this.parts.counters.pendingRows * SLICE_BYTES_PER_ROW);
  }

  /**
   * Memory was read again from the log (another process wrote it; see OtherWriters), by this
   * fold's transaction or by any other: the chunk in progress is planned again from what is
   * stored, and the fold goes on to the log's end, as the rows read are one batch (split only
   * after a chunk left half written).
   */
  forgetChunk(): void {
    this.chunk = undefined;
    this.toEnd = true;
  }

  /** Events were appended: a fold begins `intervalMs` from now, unless one is due already. */
  schedule(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // A fold still running continues at its own turns.
      if (this.turn === undefined) this.nextStep();
    }, this.parts.intervalMs);
    this.timer.unref?.();
  }

  /**
   * Folds every unfolded event now (finishing a fold in progress): what a read needs before it
   * answers, and the replay at start. Transaction after transaction, each bounded as at the
   * fold's own pace, with the WAL checked between them.
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
    for (;;) {
      this.parts.makeWalRoom(this.nextTransactionBytes());
      const more = this.step(Date.now(), true);
      if (!more) break;
    }
    // After the last one too: what follows (an append, a read) made no room of its own.
    this.parts.makeWalRoom(0);
  }

  /**
   * Fold transactions for up to a turn's budget; the next ones at a later turn of the event loop,
   * while the fold has work. The budget grows while the fold falls behind: a turn of one
   * transaction let the appends queued meanwhile (a whole flush each) take most of the writer at
   * the maximum rate, and the log grew to `foldMaxEvents`, where a batch folds it all at once.
   */
  private nextStep(): void {
    this.turn = undefined;
    const startedMs = performance.now();
    const { turnMs } = this.parts;
    const behind = turnMs > 0 && this.parts.log.pendingEvents > this.parts.chunkEvents / 2;
    const budgetMs = behind ? Math.max(turnMs, BEHIND_TURN_MS) : turnMs;
    let more = false;
    do {
      this.parts.makeWalRoom(this.nextTransactionBytes());
      try {
        more = this.step(Date.now(), false);
      } catch {
        // Counted in step(); the events stay in the log, and the next write schedules again.
        more = false;
      }
    } while (more && performance.now() - startedMs < budgetMs);
    this.parts.makeWalRoom(0);
    // Not unref'd: an unref'd immediate does not keep the loop from blocking in its poll, so
    // each transaction would wait for the next message or timer of an idle writer.
    if (more) this.turn = setImmediate(() => this.nextStep());
  }

  /**
   * Between a chunk's accumulating and its writing: lists its rows (no SQL), a piece at a time
   * for up to `stepMs` (see RollupWriter.finishPiece). Whether it was that step.
   */
  private listRows(): boolean {
    const chunk = this.chunk;
    if (chunk === undefined || chunk.plan.rows !== undefined) return false;
    if (chunk.accumulated < chunk.events.length) return false;
    const startedMs = performance.now();
    do {
      if (this.parts.rollups.finishPiece(chunk.plan) !== undefined) break;
    } while (performance.now() - startedMs < this.parts.stepMs);
    chunk.seconds += (performance.now() - startedMs) / 1000;
    return true;
  }

  /**
   * One transaction of the fold (see the class), or a step of listing a chunk's rows
   * (`listRows`): with `all`, the fold in progress goes on to the log's last row. Returns
   * whether there is more to do.
   */
  private step(nowMs: number, all: boolean): boolean {
    const { db, log, rollups, counters, writers } = this.parts;
    if (this.chunk === undefined && log.pendingEvents === 0 && !writers.committedSinceSync()) {
      this.untilSeq = undefined;
      return false;
    }
    if (this.listRows()) return true;
    const startedMs = performance.now();
    const overdue = () => performance.now() - startedMs >= this.parts.stepMs;
    let accumulated: number | undefined;
    let written = 0;
    let finished = false;
    // The log rows make the fold replayable: its commit need not wait for the disk. Inside a
    // running transaction (a rule save's back-fill reads the rollups through a fold, which has
    // work when another process committed meanwhile) the fold is a savepoint of it: SQLite
    // refuses a change of `synchronous` there, and the outer commit decides durability anyway.
    const relaxed = this.parts.synchronous === 'FULL' && !db.inTransaction;
    try {
      if (relaxed) db.pragma('synchronous = NORMAL');
      immediate(db, () => {
        // Memory read again from the log (another process wrote), or progress that is not this
        // chunk's own (another process resumed it): plan the chunk again from what is stored.
        this.parts.syncWithOtherWriters(nowMs); // calls forgetChunk when it reads the log
        if (!this.progress.unchanged()) this.chunk = undefined;
        if (this.chunk === undefined) {
          if (log.pendingEvents === 0) return;
          this.chunk = this.planChunk(all || this.toEnd);
          this.toEnd = false;
          if (this.chunk.events.length === 0) {
            // Not expected (a chunk holds at least one batch): the next plans to the log's end.
            this.forgetChunk();
            return;
          }
        }
        const chunk = this.chunk;
        const slice = this.parts.sliceRows;
        if (chunk.accumulated < chunk.events.length) {
          // Bounded by the ids it inserts, not by its events: most events resolve from the cache,
          // and each transaction rewrites the dictionary pages it touches (accumulating 2,048
          // events a transaction cost ~2.5 µs per event of a one-second fold). And by time: an
          // append waits for the whole transaction (see stepMs).
          const end = Math.min(chunk.events.length, chunk.accumulated + ACCUMULATE_EVENTS * slice);
          accumulated = inStrides(chunk.accumulated, end, ACCUMULATE_STRIDE, overdue, (at, to) =>
            rollups.accumulate(chunk.plan, chunk.events, at, to, slice),
          );
          return;
        }
        const rows = rollups.finish(chunk.plan);
        if (chunk.written < rows.length) {
          // A slice of rows at most, and by time too (see stepMs).
          const end = Math.min(rows.length, chunk.written + slice);
          const last = new Map<string, RowKey>();
          const at = inStrides(chunk.written, end, WRITE_STRIDE, overdue, (from, to) => {
            for (const [table, key] of rollups.writeRows(rows, from, to - from, nowMs))
              last.set(table, key);
            return to;
          });
          this.progress.record(chunk.upToSeq, last);
          written = at - chunk.written;
          return;
        }
        counters.fold(chunk.upToSeq, nowMs);
        log.deleteFolded(chunk.upToSeq);
        this.progress.clear();
        finished = true;
      });
    } catch (err) {
      rollups.rolledBack();
      counters.rolledBack();
      this.progress.rolledBack();
      writers.distrust();
      // The next transaction syncs again (distrusted: it reads the log again) and plans the
      // chunk again from the log and the progress stored. The fold in progress goes on (no new
      // bump of the generation: its events are not all folded yet).
      this.chunk = undefined;
      this.failures++;
      if (relaxed) this.restoreSynchronous();
      throw storeError(err, 'fold');
    }
    if (relaxed) this.restoreSynchronous();
    rollups.committed();
    this.progress.committed();
    const chunk = this.chunk;
    if (chunk === undefined) {
      // Nothing left; or a chunk that was empty (not expected), planned again to the log's end.
      if (log.pendingEvents > 0 && this.toEnd) return true;
      this.untilSeq = undefined;
      return false;
    }
    chunk.seconds += (performance.now() - startedMs) / 1000;
    this.onTransaction?.();
    if (accumulated !== undefined) chunk.accumulated = accumulated;
    chunk.written += written;
    if (!finished) return true;
    recordFold(this.stats, chunk.seconds, chunk.events.length);
    counters.foldCommitted();
    log.folded(chunk.upToSeq);
    this.chunk = undefined;
    if (this.untilSeq !== undefined && chunk.upToSeq >= this.untilSeq) this.untilSeq = undefined;
    this.onFolded?.(chunk.seconds, chunk.events.length);
    return all ? log.pendingEvents > 0 : this.untilSeq !== undefined;
  }

  /**
   * Inside the transaction: the next chunk. A chunk with progress stored (a fold a crash or
   * another process left half written) is resumed first: exactly its log rows, skipping the rows
   * written. Otherwise a new chunk of the fold in progress, or of a fold that begins here (the
   * store generation is bumped: see the class). With `toEnd`, the fold goes on to the log's last
   * row.
   */
  private planChunk(toEnd: boolean): ChunkInProgress {
    const { log, rollups, writers } = this.parts;
    const resumed = this.progress.read();
    let upToSeq: number;
    let events: PricedEvent[];
    if (resumed !== undefined) {
      const rows = log.chunk(Number.POSITIVE_INFINITY, resumed.upToSeq);
      if (rows.upToSeq !== resumed.upToSeq) {
        throw new Error(
          `fold progress is for log row ${resumed.upToSeq}, but the log's rows up to it end at ${rows.upToSeq}`,
        );
      }
      ({ upToSeq, events } = rows);
    } else {
      if (this.untilSeq === undefined) writers.bump();
      if (this.untilSeq === undefined || toEnd) this.untilSeq = log.lastRowSeq;
      ({ upToSeq, events } = log.chunk(this.parts.chunkEvents, this.untilSeq));
    }
    return {
      upToSeq,
      events,
      plan: rollups.newPlan(resumed?.written ?? new Map()),
      accumulated: 0,
      written: 0,
      seconds: 0,
    };
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
