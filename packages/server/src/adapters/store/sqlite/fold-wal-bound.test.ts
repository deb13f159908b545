import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PricedEvent } from '@tokenwatch/core';
import { makePricedEvent, makeQuery, makeRule } from '@tokenwatch/core/testing';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultFoldChunkEvents, defaultFoldSliceRows } from './fold-settings.js';
import { SqliteStore } from './sqlite-store.js';
import { walFileSize } from './wal-bound.js';

/**
 * A backlog folded at once — what a read does after an overload, and the replay at start — is
 * folded in chunks sized from the WAL limit, so the write-ahead log stays within it. In one
 * transaction the fold's pages all stay in the log until it commits: the 1-hour overloaded soak saw
 * 96.7 MiB against a 64 MiB limit (docs/benchmarks-history.md § Soak). What fits one chunk stays
 * one transaction (the cheapest fold).
 */

const MiB = 1024 * 1024;
const FOUR_HOURS = 4 * 3_600_000;
/**
 * Users of the rule-counter test: a counter row each, which the chunk's finish writes at once:
 * 1.76 MiB of WAL from an emptied log, 2.09 MiB over what the slices before it left.
 */
const USERS_WITH_COUNTERS = 18_000;
const dirs: string[] = [];
const stores: SqliteStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => {});
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/**
 * A backlog as traffic makes one: in time order over four hours, a long tail of 10,000 users ×
 * 10 apps × 8 models, so the fold writes many rows.
 */
function backlog(count: number): PricedEvent[] {
  const start = makePricedEvent().timestampMs - FOUR_HOURS;
  const events: PricedEvent[] = [];
  for (let i = 0; i < count; i++) {
    events.push(
      makePricedEvent({
        userId: `user-${(i * 7919) % 10_000}`,
        appId: `app-${i % 10}`,
        modelId: `model-${(i * 31) % 8}`,
        timestampMs: start + Math.floor((i * FOUR_HOURS) / count),
        inputTokens: 1 + (i % 97),
        outputTokens: i % 13,
      }),
    );
  }
  return events;
}

async function openStore(
  path: string,
  maxWalMiB: number,
  foldChunkEvents?: number,
): Promise<SqliteStore> {
  // No timed fold while the backlog builds: only the read below folds it.
  const store = new SqliteStore({
    path,
    synchronous: 'normal',
    foldIntervalMs: 3_600_000,
    foldMaxEvents: 1_000_000,
    maxWalMiB,
    ...(foldChunkEvents === undefined ? {} : { foldChunkEvents }),
  });
  stores.push(store);
  await store.migrate();
  return store;
}

async function appendBacklog(store: SqliteStore, events: PricedEvent[]): Promise<void> {
  for (let i = 0; i < events.length; i += 500) {
    await store.applyBatch(events.slice(i, i + 500), { nowMs: Date.now() });
  }
}

function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tw-fold-wal-'));
  dirs.push(dir);
  return join(dir, 'tw.db');
}

async function expectTotals(store: SqliteStore, events: PricedEvent[]): Promise<void> {
  const rows = await store.queryUsage(makeQuery({ groupBy: [] }));
  expect(rows).toHaveLength(1);
  expect(rows[0]?.requests).toBe(events.length);
  expect(rows[0]?.inputTokens).toBe(events.reduce((sum, e) => sum + e.inputTokens, 0));
  expect(rows[0]?.outputTokens).toBe(events.reduce((sum, e) => sum + e.outputTokens, 0));
}

describe('SQLite fold of a backlog: the WAL stays within its limit', () => {
  it('derives the chunk from the WAL limit (2,000 events per MiB)', () => {
    expect(defaultFoldChunkEvents(64)).toBe(128_000);
    expect(defaultFoldChunkEvents(4)).toBe(8_000);
    expect(defaultFoldChunkEvents(1)).toBe(2_000);
  });

  it('a read folds 40,000 waiting events in chunks: the log stays near its 2 MiB limit, totals exact', async () => {
    const path = tempPath();
    // Chunks of 1,000 (≈ 0.55 MiB of WAL each for this traffic): a quarter of the 2 MiB limit.
    const store = await openStore(path, 2, 1_000);
    const events = backlog(40_000);
    await appendBacklog(store, events);
    // The WAL as each fold transaction commits, before the writer's bound may checkpoint it.
    const walAtCommit: number[] = [];
    store.database.onFolded = () => walAtCommit.push(walFileSize(`${path}-wal`));
    await expectTotals(store, events);

    // Folded in one transaction, these 40,000 events left 12.4 MiB in the log (six times its
    // limit). In chunks the writer's bound checkpoints between them: the log passes its limit
    // by at most one chunk (wal-bound.ts), and at the limit it is emptied before the next one.
    expect(Math.max(...walAtCommit)).toBeLessThanOrEqual(3 * MiB);
    expect(walAtCommit.length).toBeGreaterThanOrEqual(40);
  });

  it('one chunk of 40,000 events is written a slice of rows at a time: the log stays near its 2 MiB limit, totals exact', async () => {
    const path = tempPath();
    // One chunk (as a fold at the normal pace is); 64 rows per transaction for a 2 MiB limit.
    const store = await openStore(path, 2, 1_000_000);
    expect(defaultFoldSliceRows(2)).toBe(64);
    const events = backlog(40_000);
    await appendBacklog(store, events);
    const walAtCommit: number[] = [];
    let chunks = 0;
    store.database.onFoldTransaction = () => walAtCommit.push(walFileSize(`${path}-wal`));
    store.database.onFolded = () => chunks++;
    await expectTotals(store, events);
    // In one transaction, this chunk left 12.4 MiB in the log; in slices the writer's bound
    // checkpoints between them, and the log passes its limit by at most one slice.
    expect(chunks).toBe(1);
    expect(walAtCommit.length).toBeGreaterThan(1_000);
    expect(Math.max(...walAtCommit)).toBeLessThanOrEqual(3 * MiB);
  });

  it('derives the rows per fold transaction from the WAL limit (a quarter of it, two pages a row)', () => {
    expect(defaultFoldSliceRows(64)).toBe(2_048);
    expect(defaultFoldSliceRows(2)).toBe(64);
    expect(defaultFoldSliceRows(0.1)).toBe(64);
  });

  it('a backlog of one chunk is folded as one chunk, a larger one is split', async () => {
    // The WAL budget (half of 64 MiB) is far above what these chunks write: they stay 8,000.
    const store = await openStore(tempPath(), 64, 8_000);
    const folded: number[] = [];
    store.database.onFolded = (_seconds, events) => folded.push(events);
    const first = backlog(8_000);
    await appendBacklog(store, first);
    await store.queryUsage(makeQuery({ groupBy: [] }));
    expect(folded).toEqual([8_000]);

    folded.length = 0;
    const second = backlog(20_000).map((e) => ({ ...e, id: `second-${e.id}` }));
    await appendBacklog(store, second);
    await expectTotals(store, [...first, ...second]);
    // Whole batches of 500 per chunk: two chunks of 8,000, then the rest whole.
    expect(folded).toEqual([8_000, 8_000, 4_000]);
  });
  it('a fold makes room in the log before its first transaction, not only after it', async () => {
    const path = tempPath();
    const store = await openStore(path, 2, 1_000_000);
    // A reader holds a snapshot while appends fill the log: the appends' own checks fail on it
    // and back off, so the log grows past three quarters of its limit.
    const reader = new Database(path);
    reader.prepare('BEGIN').run();
    reader.prepare('SELECT count(*) FROM sqlite_master').get();
    const events = backlog(40_000);
    let appended = 0;
    while (walFileSize(`${path}-wal`) < 1.45 * MiB && appended < events.length) {
      await store.applyBatch(events.slice(appended, appended + 100), { nowMs: Date.now() });
      appended += 100;
    }
    expect(walFileSize(`${path}-wal`)).toBeGreaterThanOrEqual(1.45 * MiB);
    reader.prepare('COMMIT').run();
    reader.close();
    const walAtCommit: number[] = [];
    store.database.onFoldTransaction = () => walAtCommit.push(walFileSize(`${path}-wal`));

    await expectTotals(store, events.slice(0, appended));

    // Over 1.45 MiB plus a slice's room (0.5 MiB) is past where the writer empties the log (15/16
    // of the 2 MiB limit): it was emptied before the fold's first transaction.
    expect(walAtCommit[0]).toBeLessThan(0.6 * MiB);
  });
  it('a chunk whose finish writes many rule-counter rows at once starts it from an emptied log', async () => {
    const path = tempPath();
    const store = await openStore(path, 2, 1_000_000);
    await store.createProject({ id: 'p1', name: 'p1', createdAtMs: 0 });
    // One counter row per user and hour: the chunk's finish writes them all in one transaction.
    const hour = Math.floor(makePricedEvent().timestampMs / 3_600_000) * 3_600_000;
    await store.createRule(makeRule({ scope: ['user'], levels: [{ value: 1e12 }] }), hour);
    const events = Array.from({ length: USERS_WITH_COUNTERS }, (_, i) =>
      makePricedEvent({ userId: `user-${i}`, timestampMs: hour + (i % 1_000), inputTokens: 1 + i }),
    );
    await appendBacklog(store, events);
    const walAtCommit: number[] = [];
    store.database.onFoldTransaction = () => walAtCommit.push(walFileSize(`${path}-wal`));

    await expectTotals(store, events);

    // With a slice's room (0.5 MiB) made before it, the finish wrote its rows over what the
    // slices before it left, past the 2 MiB limit.
    expect(Math.max(...walAtCommit)).toBeLessThanOrEqual(2 * MiB);
  });
});
