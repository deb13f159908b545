import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

/**
 * The WAL checkpointer thread. The writer connection does not checkpoint (wal_autocheckpoint=0):
 * a checkpoint copies the write-ahead log into the database file and fsyncs it, which takes tens
 * of milliseconds and would stall every request waiting on that writer's next commit. Here a
 * second connection runs PASSIVE checkpoints on their own core; PASSIVE never blocks the writer.
 */
const { path, intervalMs } = workerData as { path: string; intervalMs: number };
const db = new Database(path);
db.pragma('busy_timeout = 1000');
let stopped = false;

function checkpoint(): void {
  if (stopped) return;
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy or transient I/O: the next round tries again; the WAL only grows meanwhile.
  }
  setTimeout(checkpoint, intervalMs);
}
checkpoint();

parentPort?.on('message', (message: unknown) => {
  if (message !== 'stop') return;
  stopped = true;
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } finally {
    db.close();
    parentPort?.postMessage('stopped');
    parentPort?.close();
  }
});
