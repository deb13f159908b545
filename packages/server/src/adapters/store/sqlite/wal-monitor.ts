/** What a SQLite store reports about its write-ahead log and its folds (exported in /metrics). */
export interface WalStatus {
  /** Size of the `-wal` file at the last check. */
  walBytes: number;
  /** Checkpoints that failed or could not finish since the store opened. */
  checkpointFailures: number;
  /** Folds of the event log into the rollups and counters since the store opened. */
  folds: FoldStats;
}

/**
 * Folds of the event log, by chunk (see EventLogFold): `lastSeconds` is the time a chunk's
 * transactions held the writer, together. A request (or an alert's outbox claim) that arrives
 * meanwhile waits for one of those transactions, not for the chunk.
 */
export interface FoldStats {
  count: number;
  secondsTotal: number;
  lastSeconds: number;
  lastEvents: number;
}

export function emptyFoldStats(): FoldStats {
  return { count: 0, secondsTotal: 0, lastSeconds: 0, lastEvents: 0 };
}

/** Adds one fold to `stats`. */
export function recordFold(stats: FoldStats, seconds: number, events: number): void {
  stats.count++;
  stats.secondsTotal += seconds;
  stats.lastSeconds = seconds;
  stats.lastEvents = events;
}

/** A store that keeps a SQLite WAL bounded and reports on it. */
export interface WalMonitor {
  walStatus(): WalStatus;
  onCheckpointFailure: ((message: string, code: string | undefined) => void) | undefined;
}

export function isWalMonitor(store: object): store is WalMonitor {
  return typeof (store as Partial<WalMonitor>).walStatus === 'function';
}

/**
 * When to try a TRUNCATE checkpoint again after one could not finish. A TRUNCATE checkpoint
 * holds the write lock while it waits for readers of the WAL; a long reader (a CLI query on the
 * same file) would otherwise stall the writer for the busy timeout at every round. After a
 * failure it waits 1 s, then twice as long after each further failure, up to 30 s.
 */
export class TruncateBackoff {
  private notBeforeMs = 0;
  private delayMs = 1_000;

  due(nowMs: number): boolean {
    return nowMs >= this.notBeforeMs;
  }
  failed(nowMs: number): void {
    this.notBeforeMs = nowMs + this.delayMs;
    this.delayMs = Math.min(this.delayMs * 2, 30_000);
  }
  succeeded(): void {
    this.notBeforeMs = 0;
    this.delayMs = 1_000;
  }
}
