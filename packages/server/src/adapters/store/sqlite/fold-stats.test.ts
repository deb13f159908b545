import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePricedEvent, makeQuery } from '@tokenwatch/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStore } from './sqlite-store.js';
import { ThreadedSqliteStore } from './threaded-sqlite-store.js';

/**
 * A fold holds the writer for its whole length, so the store reports each one (count, time,
 * events) for /metrics: in the calling thread, and from the writer thread to the server's. The
 * threaded store runs the compiled worker (`npm test` builds first).
 */

const WORKER_URL = new URL(
  '../../../../dist/adapters/store/sqlite/sqlite-worker.js',
  import.meta.url,
);
const dirs: string[] = [];
const stores: (SqliteStore | ThreadedSqliteStore)[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => {});
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dbPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tw-fold-stats-'));
  dirs.push(dir);
  return join(dir, 'tokenwatch.db');
}

async function ingestAndRead(store: SqliteStore | ThreadedSqliteStore, events: number) {
  await store.migrate();
  await store.createProject({ id: 'p1', name: 'p1', createdAtMs: 0 });
  const batch = Array.from({ length: events }, (_, i) =>
    makePricedEvent({ userId: `user-${i % 37}` }),
  );
  expect((await store.applyBatch(batch, { nowMs: Date.now() })).accepted).toBe(events);
  // A read folds first: every event that got its 202 is in what it returns.
  const rows = await store.queryUsage(makeQuery());
  expect(rows.reduce((n, r) => n + r.requests, 0)).toBe(events);
}

describe('fold statistics', () => {
  it('counts each fold, its time and its events (calling thread)', async () => {
    const store = new SqliteStore({ path: dbPath(), foldIntervalMs: 60_000 });
    stores.push(store);
    expect(store.walStatus().folds.count).toBe(0);
    await ingestAndRead(store, 1_000);
    const { folds } = store.walStatus();
    expect(folds.count).toBe(1);
    expect(folds.lastEvents).toBe(1_000);
    expect(folds.lastSeconds).toBeGreaterThan(0);
    expect(folds.secondsTotal).toBe(folds.lastSeconds);
  });

  it('reports the writer thread’s folds to the store on the server’s thread', async () => {
    const store = new ThreadedSqliteStore({ path: dbPath(), foldIntervalMs: 60_000 }, WORKER_URL);
    stores.push(store);
    await ingestAndRead(store, 1_500);
    // The report is a message of its own, sent as the fold commits, before the read's answer.
    const { folds } = store.walStatus();
    expect(folds.count).toBe(1);
    expect(folds.lastEvents).toBe(1_500);
    expect(folds.lastSeconds).toBeGreaterThan(0);
  });
});
