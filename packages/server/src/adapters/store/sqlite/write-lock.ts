import type Database from 'better-sqlite3';

/** How long a statement of a store connection waits for a lock at most (its busy timeout). */
export const BUSY_TIMEOUT_MS = 5_000;
/** Between two attempts at the write lock. */
const NAP_MS = 0.5;
const nap = new Int32Array(new SharedArrayBuffer(4));

/**
 * Sets the connection's busy timeout. A prepared statement would not do: SQLite applies this
 * pragma when it compiles it, and running the statement again only reads the setting.
 */
function setBusyTimeout(db: Database.Database, ms: number): void {
  db.pragma(`busy_timeout = ${ms}`);
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

/**
 * Runs `body` in a BEGIN IMMEDIATE transaction of `db` (a savepoint inside a running one) and
 * returns what it returns. While another connection holds the write lock (the checkpointer
 * thread's TRUNCATE checkpoint, another process), the BEGIN is tried again every half
 * millisecond, for up to `waitMs` (the busy timeout), and then fails with SQLITE_BUSY as before.
 *
 * Why not SQLite's busy handler: it sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, … ms between
 * its tries, so a writer that found the lock taken woke up to 25 ms after it was free. Under
 * `npm run bench:ingest` the appends that met a TRUNCATE checkpoint waited 33.6, 53.7 and
 * 78.8 ms: the sums of those sleeps, not the checkpoint's length.
 *
 * Only the BEGIN is tried again: `body` runs once, and an error it throws (BUSY or not) rolls the
 * transaction back and is thrown as it is. The body runs with the connection's busy timeout.
 */
export function immediate<T>(
  db: Database.Database,
  body: () => T,
  waitMs: number = BUSY_TIMEOUT_MS,
): T {
  if (db.inTransaction) return db.transaction(body).immediate();
  let entered = false;
  const transaction = db.transaction(() => {
    entered = true;
    setBusyTimeout(db, BUSY_TIMEOUT_MS);
    return body();
  });
  const startedMs = performance.now();
  setBusyTimeout(db, 0);
  try {
    for (;;) {
      try {
        return transaction.immediate();
      } catch (err) {
        if (entered || !isBusy(err) || performance.now() - startedMs >= waitMs) throw err;
      }
      Atomics.wait(nap, 0, 0, NAP_MS);
    }
  } finally {
    if (!entered) setBusyTimeout(db, BUSY_TIMEOUT_MS);
  }
}
