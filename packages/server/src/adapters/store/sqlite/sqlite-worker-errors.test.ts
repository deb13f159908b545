import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenwatchError } from '@tokenwatch/core';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { ThreadedSqliteStore } from './threaded-sqlite-store.js';

/** The writer thread runs the built worker (`npm test` builds first), as in sqlite-wal.test.ts. */
const WORKER_URL = new URL(
  '../../../../dist/adapters/store/sqlite/sqlite-worker.js',
  import.meta.url,
);
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the SQLite writer thread: errors keep their class', () => {
  it('a busy database is a retryable "unavailable" error, whatever the method', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-worker-errors-'));
    dirs.push(dir);
    const path = join(dir, 'tw.db');
    const store = new ThreadedSqliteStore({ path }, WORKER_URL);
    await store.migrate();
    // Another process holds the write lock past the writer's 5 s busy timeout.
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    try {
      const err = await store
        .completeDelivery('dlv_none', { status: 'delivered' }, Date.now())
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      // Unclassified, it was 'internal' and not retryable: the dispatcher then dead-lettered a
      // delivery that had reached its webhook (dispatcher.test.ts).
      expect(err).toBeInstanceOf(TokenwatchError);
      expect((err as TokenwatchError).code).toBe('unavailable');
      expect((err as TokenwatchError).retryable).toBe(true);
      expect((err as TokenwatchError).message).toMatch(/database is locked/);
    } finally {
      other.exec('ROLLBACK');
      other.close();
      await store.close();
    }
  }, 30_000);
});
