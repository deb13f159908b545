import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BUSY_TIMEOUT_MS, immediate } from './write-lock.js';

let dir: string;
let path: string;
let db: Database.Database;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tw-write-lock-'));
  path = join(dir, 'tw.db');
  db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.exec('CREATE TABLE t (n INTEGER NOT NULL)');
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const rows = () => (db.prepare('SELECT count(*) AS c FROM t').get() as { c: number }).c;
const busyTimeout = () => db.pragma('busy_timeout', { simple: true });

/** Another thread takes the write lock, says so, and commits `holdMs` later. */
function holdWriteLock(holdMs: number): Promise<{ released: Promise<void> }> {
  const worker = new Worker(
    `const { workerData, parentPort } = require('node:worker_threads');
     const Database = require('better-sqlite3');
     const db = new Database(workerData.path);
     db.exec('BEGIN IMMEDIATE');
     db.exec('INSERT INTO t (n) VALUES (0)');
     parentPort.postMessage('locked');
     Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, workerData.holdMs);
     db.exec('COMMIT');
     db.close();`,
    { eval: true, workerData: { path, holdMs } },
  );
  const released = new Promise<void>((resolve, reject) => {
    worker.once('exit', () => resolve());
    worker.once('error', reject);
  });
  return new Promise((resolve, reject) => {
    worker.once('message', () => resolve({ released }));
    worker.once('error', reject);
  });
}

describe('immediate: a write transaction that waits for the write lock', () => {
  it('waits while another connection holds the lock, then runs its body once and commits', async () => {
    const { released } = await holdWriteLock(150);
    let runs = 0;
    const startedMs = performance.now();
    const result = immediate(db, () => {
      runs++;
      db.prepare('INSERT INTO t (n) VALUES (1)').run();
      return 'done';
    });
    const waitedMs = performance.now() - startedMs;
    await released;
    expect(result).toBe('done');
    expect(runs).toBe(1);
    // Both writes are there: it waited for the other's commit instead of failing.
    expect(rows()).toBe(2);
    expect(waitedMs).toBeGreaterThan(100);
    // The body and what follows run with the connection's own busy timeout again.
    expect(busyTimeout()).toBe(BUSY_TIMEOUT_MS);
  });

  it('gives up after its wait with SQLITE_BUSY, its body never run', () => {
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    try {
      let runs = 0;
      let caught: unknown;
      try {
        immediate(
          db,
          () => {
            runs++;
          },
          50,
        );
      } catch (err) {
        caught = err;
      }
      expect((caught as { code?: string }).code).toBe('SQLITE_BUSY');
      expect(runs).toBe(0);
      expect(busyTimeout()).toBe(BUSY_TIMEOUT_MS);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
  });

  it('does not run its body again when the body throws, even a BUSY error', () => {
    let runs = 0;
    const busy = Object.assign(new Error('busy inside'), { code: 'SQLITE_BUSY' });
    expect(() =>
      immediate(db, () => {
        runs++;
        db.prepare('INSERT INTO t (n) VALUES (1)').run();
        throw busy;
      }),
    ).toThrow(busy);
    expect(runs).toBe(1);
    expect(rows()).toBe(0); // rolled back
    expect(db.inTransaction).toBe(false);
  });

  it('inside a running transaction, is a savepoint of it', () => {
    db.transaction(() => {
      db.prepare('INSERT INTO t (n) VALUES (1)').run();
      expect(() =>
        immediate(db, () => {
          db.prepare('INSERT INTO t (n) VALUES (2)').run();
          throw new Error('undo the inner part only');
        }),
      ).toThrow('undo the inner part only');
      immediate(db, () => db.prepare('INSERT INTO t (n) VALUES (3)').run());
    })();
    expect(db.prepare('SELECT n FROM t ORDER BY n').pluck().all()).toEqual([1, 3]);
  });
});
