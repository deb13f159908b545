import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { counterKeyOf, type PricedEvent, type Rule } from '@tokenwatch/core';
import { CONTRACT_T0, makePricedEvent, makeQuery, makeRule } from '@tokenwatch/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStore } from './sqlite-store.js';
import { ThreadedSqliteStore } from './threaded-sqlite-store.js';

/**
 * The fold runs in chunks (foldChunkEvents), each over several transactions (foldSliceRows: see
 * EventLogFold) that together add exactly its log rows' events to the rollups and their batches'
 * deltas to the rule counters, and delete those rows; the thread is yielded between
 * transactions, so writes queued meanwhile run in between.
 */

const USERS = ['ana', 'ben', 'cy', 'dee'];
const NOW = CONTRACT_T0 + 10 * 60_000;
const LEVELS = [2_000, 5_000, 9_000];

/** The compiled worker (`npm test` builds first). */
const WORKER_URL = new URL(
  '../../../../dist/adapters/store/sqlite/sqlite-worker.js',
  import.meta.url,
);
const dirs: string[] = [];
const open: (SqliteStore | ThreadedSqliteStore)[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => {});
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tw-chunk-fold-'));
  dirs.push(dir);
  return dir;
}

async function openStore(
  path: string,
  foldChunkEvents: number,
  foldSliceRows?: number,
  foldStepMs?: number,
): Promise<SqliteStore> {
  // One fold transaction a turn: the tests below see the appends queued meanwhile run between.
  const store = new SqliteStore({
    path,
    foldIntervalMs: 5,
    foldTurnMs: 0,
    foldChunkEvents,
    ...(foldSliceRows === undefined ? {} : { foldSliceRows }),
    ...(foldStepMs === undefined ? {} : { foldStepMs }),
  });
  open.push(store);
  await store.migrate();
  return store;
}

/**
 * Batches of `size` events, users in turn, input tokens 1..50: their per-user sums differ. With
 * `spread`, over 3 apps, 2 models and 3 minutes: more rows per rollup for a fold to write.
 */
function batches(
  count: number,
  size: number,
  expected: Map<string, number>,
  spread = false,
): PricedEvent[][] {
  const out: PricedEvent[][] = [];
  let n = 0;
  for (let b = 0; b < count; b++) {
    const batch: PricedEvent[] = [];
    for (let i = 0; i < size; i++, n++) {
      const userId = USERS[n % USERS.length] as string;
      const e = makePricedEvent({
        userId,
        inputTokens: 1 + (n % 50),
        outputTokens: 0,
        ...(spread
          ? {
              appId: `app-${n % 3}`,
              modelId: n % 2 === 0 ? 'gpt-4o' : 'gpt-4o-mini',
              timestampMs: NOW - 3 * 60_000 + (n % 3) * 60_000,
            }
          : {}),
      });
      expected.set(userId, (expected.get(userId) ?? 0) + e.inputTokens);
      batch.push(e);
    }
    out.push(batch);
  }
  return out;
}

/** Totals, rule counters and alerts all equal what was accepted. */
async function expectExact(store: SqliteStore, rule: Rule, expected: Map<string, number>) {
  const counters = await store.readCounters(counterKeyOf(rule), 0, Number.MAX_SAFE_INTEGER);
  expect(new Map(counters.map((c) => [c.scopeKey, c.value]))).toEqual(
    new Map([...expected].map(([u, v]) => [JSON.stringify([u]), v])),
  );
  const rows = await store.queryUsage(makeQuery({ groupBy: ['user'] }));
  expect(new Map(rows.map((r) => [r.user as string, r.inputTokens]))).toEqual(expected);
  const alerts = await store.listAlerts({ projectId: 'p1', limit: 1_000 });
  const crossings: string[] = [];
  for (const [user, total] of expected) {
    for (const [level, value] of LEVELS.entries())
      if (total >= value) crossings.push(`${JSON.stringify([user])} ${level}`);
  }
  expect(alerts.map((a) => `${a.scopeKey} ${a.levelIndex}`).sort()).toEqual(crossings.sort());
}

async function setup(
  path: string,
  foldChunkEvents: number,
  foldSliceRows?: number,
  foldStepMs?: number,
) {
  const store = await openStore(path, foldChunkEvents, foldSliceRows, foldStepMs);
  await store.createProject({ id: 'p1', name: 'p1', createdAtMs: 0 });
  const rule = makeRule({
    scope: ['user'],
    levels: LEVELS.map((value) => ({ value })),
    channels: [{ type: 'log' }],
  });
  await store.createRule(rule, CONTRACT_T0 + 60_000);
  return { store, rule };
}

/**
 * A crash image (see crashImage) right after each fold transaction commits, until `chunks` chunks
 * are folded; and how many of them left a chunk half written (its progress stored).
 */
async function crashImagesOfEachTransaction(
  store: SqliteStore,
  dir: string,
  path: string,
  chunks: number,
): Promise<{ images: string[]; halfWritten: number }> {
  const images: string[] = [];
  let halfWritten = 0;
  const progressRows = store.database.db.prepare('SELECT COUNT(*) FROM fold_progress').pluck();
  store.database.onFoldTransaction = () => {
    images.push(crashImage(dir, path, images.length));
    if ((progressRows.get() as number) > 0) halfWritten++;
  };
  while (store.database.foldStats.count < chunks) await new Promise((r) => setTimeout(r, 2));
  store.database.onFoldTransaction = undefined;
  return { images, halfWritten };
}

/** Each image, opened as a restart would (the same fold settings), is exact and fully folded. */
async function expectEachImageExact(
  images: readonly string[],
  rule: Rule,
  expected: Map<string, number>,
  ...fold: [foldChunkEvents: number, foldSliceRows?: number, foldStepMs?: number]
): Promise<void> {
  for (const image of images) {
    const again = await openStore(join(image, 'tokenwatch.db'), ...fold);
    await expectExact(again, rule, expected);
    expect(again.database.db.prepare('SELECT COUNT(*) FROM fold_progress').pluck().get()).toBe(0);
    await again.close();
  }
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A copy of the database files as they are now (what a SIGKILL at this moment leaves); its dir. */
function crashImage(dir: string, path: string, n: number): string {
  const image = join(dir, `crash-${n}`);
  mkdirSync(image);
  for (const suffix of ['', '-wal'])
    if (existsSync(`${path}${suffix}`))
      copyFileSync(`${path}${suffix}`, join(image, `tokenwatch.db${suffix}`));
  return image;
}

describe('SQLite fold in chunks', () => {
  it('folds many events as several chunk transactions, with appends run between them', async () => {
    const { store, rule } = await setup(join(tempDir(), 'tokenwatch.db'), 100);
    const expected = new Map<string, number>();
    // 1,000 events in the log (no timer fires before this loop yields: the store is synchronous).
    for (const batch of batches(20, 50, expected))
      expect((await store.applyBatch(batch, { nowMs: NOW })).accepted).toBe(50);
    const order: string[] = [];
    const folded: number[] = [];
    const sum = () => folded.reduce((a, b) => a + b, 0);
    // Resumed in a microtask right after the first chunk commits: before the second one's turn.
    await new Promise<void>((resolve) => {
      store.database.onFolded = (_seconds, events) => {
        // This fold's transactions only (the appends below are folded by a later one).
        if (sum() >= 1_000) return;
        order.push('fold');
        folded.push(events);
        resolve();
      };
    });
    // Then one append per turn of the event loop until the fold is done.
    let appended = 0;
    while (sum() < 1_000) {
      const [batch] = batches(1, 1, expected) as [PricedEvent[]];
      expect((await store.applyBatch(batch, { nowMs: NOW })).accepted).toBe(1);
      appended++;
      order.push('append');
      await nextTurn();
    }
    // Ten chunks of two whole batches each, and the appends ran between them.
    expect(folded).toEqual(Array(10).fill(100));
    const pattern = order.join(' ');
    expect(pattern).not.toContain('fold fold');
    expect(appended).toBeGreaterThanOrEqual(9);
    // The counters the rule engine reads hold everything, as do reads.
    await expectExact(store, rule, expected);
  });

  it('a crash between any two chunks leaves totals, counters and alerts exact after replay', async () => {
    const dir = tempDir();
    const path = join(dir, 'tokenwatch.db');
    const { store, rule } = await setup(path, 120);
    const expected = new Map<string, number>();
    // Batches of 40: a chunk of 120 events is three whole batches; the levels are crossed
    // during the appends, so their alerts are in the log's transactions, not the fold's.
    for (const batch of batches(25, 40, expected))
      expect((await store.applyBatch(batch, { nowMs: NOW })).accepted).toBe(40);
    // Right after each chunk commits, the files are what a SIGKILL at that moment leaves.
    const images: string[] = [];
    store.database.onFolded = () => images.push(crashImage(dir, path, images.length));
    while (store.database.foldStats.count < 9) await new Promise((r) => setTimeout(r, 2));
    expect(images.length).toBe(9); // 1,000 events, 120 a chunk
    store.database.onFolded = undefined;
    for (const image of images) {
      const again = await openStore(join(image, 'tokenwatch.db'), 120);
      await expectExact(again, rule, expected);
      await again.close();
    }
    await expectExact(store, rule, expected);
  });

  it('a crash between any two fold transactions (accumulating, each slice of rows, the finish) leaves totals, counters and alerts exact after replay', async () => {
    const dir = tempDir();
    const path = join(dir, 'tokenwatch.db');
    // Chunks of 120 events written 8 rollup rows a transaction: each chunk takes a transaction per
    // 8 new series ids to accumulate its events, several to write its rows, and one to finish.
    const { store, rule } = await setup(path, 120, 8);
    const expected = new Map<string, number>();
    for (const batch of batches(15, 40, expected, true))
      expect((await store.applyBatch(batch, { nowMs: NOW })).accepted).toBe(40);
    // Right after each transaction commits, the files are what a SIGKILL at that moment leaves.
    const { images, halfWritten } = await crashImagesOfEachTransaction(store, dir, path, 5);
    // 600 events, 120 a chunk: 5 chunks, each over more than 10 transactions, most of them
    // leaving a chunk with some of its rows written and the rest not.
    expect(images.length).toBeGreaterThan(50);
    expect(halfWritten).toBeGreaterThanOrEqual(10);
    await expectEachImageExact(images, rule, expected, 120, 8);
    await expectExact(store, rule, expected);
  });

  it('a crash between any two transactions that time cut short (foldStepMs 0: 512 events or 256 rows each) leaves totals, counters and alerts exact after replay', async () => {
    const dir = tempDir();
    const path = join(dir, 'tokenwatch.db');
    // Slices far larger than a chunk's rows: only the time bound cuts its transactions.
    const { store, rule } = await setup(path, 1_200, 100_000, 0);
    const expected = new Map<string, number>();
    // 1,200 events, each of a series of its own (400 users × 3 apps × 2 models, over 3 minutes):
    // thousands of rollup rows for one chunk.
    let n = 0;
    for (let b = 0; b < 12; b++) {
      const batch: PricedEvent[] = [];
      for (let i = 0; i < 100; i++, n++) {
        const userId = `u${n % 400}`;
        const e = makePricedEvent({
          userId,
          appId: `app-${n % 3}`,
          modelId: n % 2 === 0 ? 'gpt-4o' : 'gpt-4o-mini',
          timestampMs: NOW - 3 * 60_000 + (n % 3) * 60_000,
          inputTokens: 1 + (n % 50),
          outputTokens: 0,
        });
        expected.set(userId, (expected.get(userId) ?? 0) + e.inputTokens);
        batch.push(e);
      }
      expect((await store.applyBatch(batch, { nowMs: NOW })).accepted).toBe(100);
    }
    const { images, halfWritten } = await crashImagesOfEachTransaction(store, dir, path, 1);
    // Three accumulating transactions (512 + 512 + 176 events), thousands of rows written 256 a
    // transaction, and the finish.
    expect(images.length).toBeGreaterThan(10);
    expect(halfWritten).toBeGreaterThanOrEqual(5);
    await expectEachImageExact(images, rule, expected, 1_200, 100_000, 0);
    await expectExact(store, rule, expected);
  });

  it('reads fold everything before they answer: a fold in progress is finished by them', async () => {
    const { store, rule } = await setup(join(tempDir(), 'tokenwatch.db'), 30);
    const expected = new Map<string, number>();
    for (const batch of batches(10, 10, expected)) await store.applyBatch(batch, { nowMs: NOW });
    const folded: number[] = [];
    // Resumed in a microtask right after the first chunk commits: before the second one's turn.
    await new Promise<void>((resolve) => {
      store.database.onFolded = (_s, events) => {
        folded.push(events);
        resolve();
      };
    });
    for (const batch of batches(3, 10, expected)) await store.applyBatch(batch, { nowMs: NOW });
    const rows = await store.queryUsage(makeQuery({ groupBy: ['user'] }));
    expect(new Map(rows.map((r) => [r.user as string, r.inputTokens]))).toEqual(expected);
    // The first chunk; then the read folds the rest of the log (100 events, more than a chunk)
    // in chunks too, back to back before it answers: the fold in progress goes on to the log's
    // end (70 events left of its 100, then the 30 appended since), chunk after chunk.
    expect(folded).toEqual([30, 30, 30, 30, 10]);
    await expectExact(store, rule, expected);
  });

  it('on the writer thread, calls that arrive during a fold are answered between its chunks', async () => {
    const path = join(tempDir(), 'tokenwatch.db');
    const store = new ThreadedSqliteStore(
      { path, synchronous: 'normal', foldIntervalMs: 2_000, foldChunkEvents: 100 },
      WORKER_URL,
    );
    open.push(store);
    await store.migrate();
    await store.createProject({ id: 'p1', name: 'p1', createdAtMs: 0 });
    // What reaches this thread from the writer, in order: fold reports and call replies.
    const order: string[] = [];
    const folded: number[] = [];
    let firstFold: () => void = () => {};
    const foldBegan = new Promise<void>((resolve) => {
      firstFold = resolve;
    });
    const worker = (store as unknown as { worker: import('node:worker_threads').Worker }).worker;
    worker.on('message', (m: { type?: string; events?: number }) => {
      if (m.type === 'fold') {
        order.push(`fold ${folded.reduce((a, b) => a + b, 0) + (m.events as number)}`);
        folded.push(m.events as number);
        firstFold();
      } else if (m.type === undefined) order.push('reply');
    });
    // 100 log rows of 100 events: a fold of 100 chunks, begun by the timer after these.
    const expected = new Map<string, number>();
    for (const batch of batches(100, 100, expected)) await store.applyBatch(batch, { nowMs: NOW });
    await foldBegan;
    const since = order.length;
    // Twenty calls sent at once while the fold runs: each is answered before the fold ends.
    await Promise.all(
      batches(20, 1, expected).map((batch) => store.applyBatch(batch, { nowMs: NOW })),
    );
    while (folded.reduce((a, b) => a + b, 0) < 10_000) await new Promise((r) => setTimeout(r, 10));
    const after = order.slice(since);
    const foldEnds = after.indexOf('fold 10000');
    expect(foldEnds).toBeGreaterThan(0);
    expect(after.slice(0, foldEnds).filter((x) => x === 'reply')).toHaveLength(20);
    expect(folded.slice(0, 100)).toEqual(Array(100).fill(100));
    const rows = await store.queryUsage(makeQuery({ groupBy: ['user'] }));
    expect(new Map(rows.map((r) => [r.user as string, r.inputTokens]))).toEqual(expected);
  });
});
