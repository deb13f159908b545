import { closeSync, fdatasyncSync, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { walFileSize } from './wal-bound.js';
import { TruncateBackoff } from './wal-monitor.js';

/**
 * The WAL checkpointer thread. The writer connection does not checkpoint (wal_autocheckpoint=0):
 * a checkpoint copies the write-ahead log into the database file and fsyncs it, which takes tens
 * of milliseconds and would stall every request waiting on that writer's next commit. Here a
 * second connection checkpoints on its own core.
 *
 * A PASSIVE checkpoint never blocks the writer, but it never lets the WAL start over either: the
 * writer rewinds the log only when every frame has been copied back, and under steady ingest new
 * frames always arrive while one is copied. So each round copies PASSIVE first (the bulk, without
 * blocking anyone) and, when the WAL file has passed a quarter of its limit (leaving room for
 * the writes of the next round), runs a TRUNCATE checkpoint (see `truncate`): in a gap between
 * the writer's transactions, it copies the few frames the PASSIVE one missed and truncates the
 * log to zero bytes. The writer waits for that short copy only. Failures are reported to the
 * parent, which logs and counts them, and make the next TRUNCATE attempt wait (see
 * TruncateBackoff) while the WAL is under half its limit; past it, every round tries (a writer
 * transaction longer than the wait, a big fold under load, fails one attempt too, and the bound
 * matters more than the stall a long reader then causes).
 */
export interface CheckpointerData {
  path: string;
  intervalMs: number;
  /** The WAL size the checkpointer keeps the log under. */
  maxWalBytes: number;
}

/** What the checkpointer reports to its parent after each round. */
export type CheckpointReport =
  | { type: 'wal'; walBytes: number }
  | { type: 'failure'; message: string; code: string | undefined }
  | { type: 'stopped' };

const { path, intervalMs, maxWalBytes } = workerData as CheckpointerData;
const walPath = `${path}-wal`;
const db = new Database(path);
// Long enough to find a gap between the writer's transactions, short enough not to stall it.
const TRUNCATE_WAIT_MS = 1_000;
const RETRY_PAUSE_MS = 1;
db.pragma(`busy_timeout = ${TRUNCATE_WAIT_MS}`);
const pause = new Int32Array(new SharedArrayBuffer(4));
let stopped = false;
const backoff = new TruncateBackoff();

type CheckpointRow = { busy: number; log: number; checkpointed: number };

function report(message: CheckpointReport): void {
  parentPort?.postMessage(message);
}

function run(mode: 'PASSIVE' | 'TRUNCATE'): CheckpointRow {
  let row = (db.pragma(`wal_checkpoint(${mode})`) as CheckpointRow[])[0] as CheckpointRow;
  if (row.log === -1) {
    // This connection opened the file before the writer switched it to WAL (a first start)
    // and has not read it since, so it still believes it is a rollback journal and every
    // checkpoint is a no-op. Reading the schema makes it see the WAL.
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    row = (db.pragma(`wal_checkpoint(${mode})`) as CheckpointRow[])[0] as CheckpointRow;
  }
  return row;
}

/**
 * A TRUNCATE checkpoint that takes the write lock in a gap between the writer's transactions and
 * has little left to copy there. SQLite's busy handler would wait in sleeps of 1 to 100 ms and
 * then copy (and fsync) everything the writer committed meanwhile, a fold's slice of megabytes,
 * while the writer waits for it: appends waited 35–80 ms for such a checkpoint under
 * `npm run bench:ingest`. So each attempt fails at once while the writer holds the lock, as a
 * PASSIVE checkpoint that copies what it committed so far without blocking it, and the next
 * attempt follows a millisecond later, for up to `TRUNCATE_WAIT_MS`. An attempt that got the
 * lock but met readers of the log fails at once too, and the writer is free meanwhile.
 *
 * Before each attempt the files are flushed to disk (see openForSync) outside the lock: a PASSIVE
 * checkpoint that did not reach the log's end (the writer wrote meanwhile, as under load it
 * always does) copies pages into the database without an fsync, and the one that does reach it,
 * this one, holding the writer's lock, then flushed all of them: 36–49 ms of the writer's wait.
 */
function truncate(): CheckpointRow {
  const startedMs = performance.now();
  const files = openForSync();
  db.pragma('busy_timeout = 0');
  try {
    for (;;) {
      for (const fd of files) fdatasyncSync(fd);
      const row = run('TRUNCATE');
      const waitedMs = performance.now() - startedMs;
      if (row.busy === 0 || row.log === -1 || waitedMs >= TRUNCATE_WAIT_MS) return row;
      Atomics.wait(pause, 0, 0, RETRY_PAUSE_MS);
    }
  } finally {
    db.pragma(`busy_timeout = ${TRUNCATE_WAIT_MS}`);
    for (const fd of files) closeSync(fd);
  }
}

/**
 * Descriptors of the database file and the log of their own, to flush them to disk before each
 * TRUNCATE attempt (an fsync flushes a file's pages, whoever wrote them): durability is
 * unchanged, SQLite syncs as before, and finds less to flush. A file that cannot be opened (no
 * log yet) is left out: SQLite syncs what it needs anyway.
 */
function openForSync(): number[] {
  const fds: number[] = [];
  for (const file of [path, walPath]) {
    try {
      fds.push(openSync(file, 'r'));
    } catch {
      // Not there (no log yet): nothing of it to flush.
    }
  }
  return fds;
}

function round(): void {
  try {
    run('PASSIVE');
    const wal = walFileSize(walPath);
    // Past half the limit the bound comes first: try every round, backoff or not.
    if (wal > maxWalBytes / 4 && (backoff.due(Date.now()) || wal > maxWalBytes / 2)) {
      const row = truncate();
      if (row.busy === 0) backoff.succeeded();
      else if (row.log !== -1) {
        backoff.failed(Date.now());
        report({
          type: 'failure',
          message: `TRUNCATE checkpoint could not finish (the writer or a reader stayed busy for ${TRUNCATE_WAIT_MS} ms); ${row.checkpointed} of ${row.log} WAL frames copied`,
          code: 'SQLITE_BUSY',
        });
      }
      // log -1: the writer's own checkpoint was running (it steps in at the limit, see
      // wal-bound.ts), which is not a failure.
    }
  } catch (err) {
    backoff.failed(Date.now());
    const e = err as { message?: string; code?: unknown };
    report({
      type: 'failure',
      message: String(e.message ?? err),
      code: typeof e.code === 'string' ? e.code : undefined,
    });
  }
  report({ type: 'wal', walBytes: walFileSize(walPath) });
}

function loop(): void {
  if (stopped) return;
  round();
  setTimeout(loop, intervalMs);
}
loop();

parentPort?.on('message', (message: unknown) => {
  if (message !== 'stop') return;
  stopped = true;
  try {
    run('PASSIVE');
  } catch {
    // Closing: the writer's close checkpoints too.
  } finally {
    db.close();
    report({ type: 'stopped' });
    parentPort?.close();
  }
});
