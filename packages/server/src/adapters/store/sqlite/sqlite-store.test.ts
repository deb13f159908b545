import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  makePricedEvent,
  makeQuery,
  runRuleContract,
  runStoreContract,
} from '@tokenwatch/core/testing';
import { describe, expect, it } from 'vitest';
import { SqliteStore } from './sqlite-store.js';
import { ThreadedSqliteStore } from './threaded-sqlite-store.js';

function openFileStore() {
  const dir = mkdtempSync(join(tmpdir(), 'tw-sqlite-'));
  const store = new SqliteStore({ path: join(dir, 'tokenwatch.db') });
  return { dir, store };
}

runStoreContract('SQLite (file)', async () => {
  const { dir, store } = openFileStore();
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SQLite store specifics', () => {
  it('rolls back the whole batch when one statement fails', async () => {
    const { dir, store } = openFileStore();
    try {
      await store.migrate();
      await store.createProject({ id: 'p1', name: 'p1', createdAtMs: 0 });
      const good = makePricedEvent();
      // A NULL user id violates NOT NULL half-way through the transaction.
      const bad = makePricedEvent({ userId: null as unknown as string });
      await expect(store.applyBatch([good, bad], { nowMs: Date.now() })).rejects.toMatchObject({
        code: 'internal',
      });
      // Nothing of the failed batch stuck: the good event is new on retry.
      const retry = await store.applyBatch([good], { nowMs: Date.now() });
      expect(retry.accepted).toBe(1);
      // The series created inside the failed transaction was forgotten, not reused dangling.
      const rows = await store.queryUsage(makeQuery({ groupBy: ['user'] }));
      expect(rows.map((r) => [r.user, r.requests])).toEqual([[good.userId, 1]]);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps data across close and reopen', async () => {
    const { dir, store } = openFileStore();
    try {
      await store.migrate();
      await store.createProject({ id: 'p1', name: 'p1', createdAtMs: 0 });
      const e = makePricedEvent();
      await store.applyBatch([e], { nowMs: Date.now() });
      await store.close();
      const again = new SqliteStore({ path: join(dir, 'tokenwatch.db') });
      await again.migrate();
      expect((await again.applyBatch([e], { nowMs: Date.now() })).duplicates).toBe(1);
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The server runs SQLite in a worker thread; the same contract holds through it. The worker
// is the compiled one (`npm test` builds first).
runStoreContract('SQLite (worker thread)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-sqlite-thread-'));
  const workerUrl = new URL(
    '../../../../dist/adapters/store/sqlite/sqlite-worker.js',
    import.meta.url,
  );
  const store = new ThreadedSqliteStore({ path: join(dir, 'tokenwatch.db') }, workerUrl);
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

runRuleContract('SQLite (file)', async () => {
  const { dir, store } = openFileStore();
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

runRuleContract('SQLite (worker thread)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-sqlite-thread-'));
  const workerUrl = new URL(
    '../../../../dist/adapters/store/sqlite/sqlite-worker.js',
    import.meta.url,
  );
  const store = new ThreadedSqliteStore({ path: join(dir, 'tokenwatch.db') }, workerUrl);
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
