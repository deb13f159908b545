import { statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { TruncateBackoff } from './wal-monitor.js';
import { BUSY_TIMEOUT_MS } from './write-lock.js';

/** Size of a WAL file now (0 when there is none: not yet, or truncated by the last close). */
export function walFileSize(walPath: string): number {
  try {
    return statSync(walPath).size;
  } catch {
    return 0;
  }
}

/** A row of `PRAGMA wal_checkpoint`: `log` is -1 when another connection's checkpoint ran. */
type CheckpointRow = { busy: number; log: number; checkpointed: number };

/** How long the writer waits, at the limit, for another connection's checkpoint to end. */
const WAIT_FOR_OTHER_CHECKPOINT_MS = 5_000;
/**
 * How long the writer waits, at the limit, for readers to leave the log, when its backoff is due
 * (after a failure, one short attempt per commit until it is due again: a long reader does not
 * stall every write).
 */
const WAIT_FOR_READERS_MS = 1_000;
const RETRY_PAUSE_MS = 5;
const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * The writer connection's own bound on the write-ahead log, checked after each of its commits.
 *
 * Below `checksAboveBytes` it does nothing (the checkpointer thread, or SQLite's automatic
 * PASSIVE checkpoints without one, keep the log small). Past it, a TRUNCATE checkpoint waits for
 * readers (a short busy timeout) and empties the log; one that a reader kept from finishing is
 * counted and the next attempt backs off (a long reader would otherwise stall every write).
 *
 * At the limit the bound comes first. The writer aims a sixteenth under it (`targetBytes`): its
 * room for the next transaction is an estimate, and a write a little larger than the largest of
 * late must still fit. There every commit tries, backoff or not, and waits while it cannot
 * finish: for another connection's checkpoint (the checkpointer thread's: SQLite runs one at a
 * time and fails the second at once), and, when the backoff is due, for readers. The writer
 * writes nothing meanwhile, so the checkpoint finds the gap it needs. Without the first wait,
 * under sustained ingest the writer's attempt kept landing on the checkpointer's copy and the
 * log grew to twice its limit.
 */
export class WalBound {
  private readonly backoff = new TruncateBackoff();
  /** Where the writer empties the log at the latest (see the class). */
  private readonly targetBytes: number;
  /** Checkpoints this connection ran that failed or could not finish. */
  failures = 0;
  onFailure: ((message: string, code: string | undefined) => void) | undefined;

  constructor(
    private readonly db: Database.Database,
    private readonly walPath: string,
    maxWalBytes: number,
    private readonly checksAboveBytes: number,
  ) {
    this.targetBytes = maxWalBytes - maxWalBytes / 16;
  }

  /**
   * Between two transactions. `headroomBytes`: what the next one may add at most, by the
   * caller's estimate (a fold slice, an append): the log is emptied before that would take it
   * past the limit.
   */
  check(headroomBytes = 0): void {
    // Inside a transaction (a rule save reads the rollups through a fold) no checkpoint can run:
    // SQLite refuses it ("database table is locked"), which is no failure of the bound. The
    // check after the next commit makes the room.
    if (this.db.inTransaction) return;
    const size = () => walFileSize(this.walPath) + headroomBytes;
    const atLimit = () => size() >= this.targetBytes;
    if (size() <= this.checksAboveBytes) return;
    const due = this.backoff.due(Date.now());
    if (!due && !atLimit()) return;
    // This thread is the writer: wait for readers briefly, not the writer's 5 s.
    this.db.pragma('busy_timeout = 100');
    try {
      const startedMs = Date.now();
      for (;;) {
        const row = (this.db.pragma('wal_checkpoint(TRUNCATE)') as CheckpointRow[])[0];
        if (row === undefined || row.busy === 0) {
          this.backoff.succeeded();
          return;
        }
        const waitedMs = Date.now() - startedMs;
        if (row.log !== -1) {
          // A reader stayed busy: below the limit, or waited for long enough, a failure.
          if (!due || !atLimit() || waitedMs >= WAIT_FOR_READERS_MS) {
            this.failed(
              'TRUNCATE checkpoint could not finish (a reader stayed busy)',
              'SQLITE_BUSY',
            );
            return;
          }
        } else {
          // Another connection is checkpointing: below the limit, leave the log to it.
          if (!atLimit()) return;
          if (waitedMs >= WAIT_FOR_OTHER_CHECKPOINT_MS) {
            this.failed(
              'TRUNCATE checkpoint could not start (another one ran for 5 s)',
              'SQLITE_BUSY',
            );
            return;
          }
        }
        Atomics.wait(pause, 0, 0, RETRY_PAUSE_MS);
      }
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      this.failed(String((err as Error).message), typeof code === 'string' ? code : undefined);
    } finally {
      this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
  }

  private failed(message: string, code: string | undefined): void {
    this.backoff.failed(Date.now());
    this.failures++;
    this.onFailure?.(message, code);
  }
}
