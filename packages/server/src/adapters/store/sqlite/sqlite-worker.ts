import { parentPort, workerData } from 'node:worker_threads';
import { TokenwatchError } from '@tokenwatch/core';
import { SqliteDatabase } from './sqlite-database.js';
import { storeError } from './sqlite-errors.js';
import type { SqliteStoreOptions } from './sqlite-options.js';

/**
 * The SQLite writer thread: owns the database connection and runs every store call of the
 * server, so transactions (and their fsyncs) never block the thread that parses HTTP.
 */
/** What the writer reports unasked (replies to calls carry their `id` instead). */
export type WriterReport =
  | { type: 'checkpoint-failure'; message: string; code: string | undefined }
  | { type: 'fold'; seconds: number; events: number };

interface Call {
  id: number;
  method: string;
  args: unknown[];
}

const port = parentPort;
if (!port) throw new Error('sqlite-worker must run in a worker thread');
const database = new SqliteDatabase(workerData as SqliteStoreOptions);
let migrated = false;
// This connection's own checkpoints (it steps in when the WAL nears its limit, see wal-bound.ts)
// are counted and logged with the checkpointer thread's, by the store on the main thread.
database.onCheckpointFailure = (message, code) =>
  port.postMessage({ type: 'checkpoint-failure', message, code } satisfies WriterReport);
// A fold chunk (at most foldChunkEvents, over several transactions) is at least milliseconds of
// work: a message each is cheap.
database.onFolded = (seconds, events) =>
  port.postMessage({ type: 'fold', seconds, events } satisfies WriterReport);

/**
 * Checks read the folded counters on the HTTP thread's own connection (see
 * enforced-counters.ts): another process's events reach them when this thread folds them, so it
 * looks for such events a few times a second, not only when it next writes.
 */
const OTHER_WRITERS_POLL_MS = 100;
setInterval(() => {
  if (!migrated) return;
  try {
    database.foldIfOthersWrote();
  } catch {
    // The next write or poll tries again; the failure is the store's to report there.
  }
}, OTHER_WRITERS_POLL_MS).unref();

port.on('message', (call: Call) => {
  try {
    // Rules, alerts and the outbox live on the rules engine; projects and keys on projects().
    const target: object =
      call.method in database
        ? database
        : call.method in database.rulesEngine()
          ? database.rulesEngine()
          : database.projects();
    const fn = (target as Record<string, (...a: unknown[]) => unknown>)[call.method];
    if (typeof fn !== 'function') {
      throw new TokenwatchError('internal', `unknown store method ${call.method}`);
    }
    const result = fn.apply(target, call.args);
    if (call.method === 'migrate') migrated = true;
    port.postMessage({ id: call.id, ok: true, result });
    if (call.method === 'close') port.close();
  } catch (err) {
    // A driver error is classified as the store's (SQLITE_BUSY and the like retryable): as an
    // unclassified 'internal' one, a busy database dead-lettered alert deliveries.
    const e = storeError(err, call.method);
    port.postMessage({
      id: call.id,
      ok: false,
      error: {
        code: e.code,
        message: e.message,
        retryable: e.retryable,
        details: e.details,
        context: e.context,
      },
    });
  }
});
