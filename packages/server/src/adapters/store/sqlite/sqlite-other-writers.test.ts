import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { counterKeyOf, EventOutcome, type PricedEvent } from '@tokenwatch/core';
import { CONTRACT_T0, makePricedEvent, makeQuery, makeRule } from '@tokenwatch/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom } from '../../../testing/tokenwatch-api.js';
import { SqliteStore } from './sqlite-store.js';

/**
 * Two connections on one file, as a running server and the CLI (or two servers) are: each
 * keeps the events it appended but has not folded in memory, and either may fold. Whatever
 * the interleaving, every accepted event is counted once in the rollups and rule counters,
 * and every crossing fires once.
 */

const LEVELS = [300, 700, 1_500];
const USERS = ['ana', 'ben', 'cy'];

const dirs: string[] = [];
const open: SqliteStore[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill();
  for (const s of open.splice(0)) await s.close().catch(() => {});
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/**
 * No timed folds: the test decides when each connection folds. Or, `chunked`, timed folds in
 * chunks of a few events, which run while the test waits: a connection's fold may be part-way
 * through the log when the other one appends, folds or reads.
 */
function connect(path: string, chunked = false): SqliteStore {
  const store = new SqliteStore(
    chunked ? { path, foldIntervalMs: 1, foldChunkEvents: 3 } : { path, foldIntervalMs: 3_600_000 },
  );
  open.push(store);
  return store;
}

async function runInterleaving(seed: number, chunked = false): Promise<void> {
  const next = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
  const dir = mkdtempSync(join(tmpdir(), 'tw-sqlite-writers-'));
  dirs.push(dir);
  const path = join(dir, 'tokenwatch.db');
  const stores = [connect(path, chunked), connect(path, chunked)];
  const [first] = stores as [SqliteStore, SqliteStore];
  await first.migrate();
  await (stores[1] as SqliteStore).migrate();
  await first.createProject({ id: 'p1', name: 'p1', createdAtMs: 0 });
  const rule = makeRule({
    scope: ['user'],
    levels: LEVELS.map((value) => ({ value })),
    channels: [{ type: 'log' }],
  });
  await first.createRule(rule, CONTRACT_T0 + 60_000);

  const sent: PricedEvent[] = [];
  const expected = new Map<string, number>();
  for (let step = 0; step < 40; step++) {
    const i = Math.floor(next() * stores.length);
    const store = stores[i] as SqliteStore;
    const op = next();
    if (op < 0.55) {
      const batch: PricedEvent[] = [];
      for (let n = 1 + Math.floor(next() * 4); n > 0; n--) {
        if (sent.length > 0 && next() < 0.25)
          batch.push(pick(sent)); // a redelivery
        else {
          const e = makePricedEvent({
            userId: pick(USERS),
            inputTokens: 20 + Math.floor(next() * 180),
            outputTokens: 0,
          });
          sent.push(e);
          batch.push(e);
        }
      }
      const result = await store.applyBatch(batch, { nowMs: CONTRACT_T0 + 10 * 60_000 });
      expect(result.accepted + result.duplicates).toBe(batch.length);
      expect(result.conflicts).toBe(0);
      for (const [k, outcome] of result.outcomes.entries()) {
        if (outcome !== EventOutcome.Accepted) continue;
        const e = batch[k] as PricedEvent;
        expected.set(e.userId, (expected.get(e.userId) ?? 0) + e.inputTokens);
      }
    } else if (op < 0.7) {
      if (chunked && next() < 0.7)
        await new Promise((r) => setTimeout(r, Math.floor(next() * 4))); // timed chunks run
      else await store.queryUsage(makeQuery()); // folds first
    } else if (op < 0.85) {
      await checkCounters(store, expected);
    } else {
      // The process ends without its shutdown fold (a SIGKILL; the CLI exits): its events stay
      // in the log, and a new connection (or the other one) folds them.
      const db = (store as unknown as { database: { db: { close(): void } } }).database.db;
      db.close();
      open.splice(open.indexOf(store), 1);
      const again = connect(path, chunked);
      await again.migrate();
      stores[i] = again;
    }
  }
  for (const store of stores) {
    await checkCounters(store, expected);
    const rows = await store.queryUsage(makeQuery({ groupBy: ['user'] }));
    const got = new Map(rows.map((r) => [r.user as string, r.inputTokens]));
    expect(got, `seed ${seed}`).toEqual(expected);
  }
  const alerts = await (stores[0] as SqliteStore).listAlerts({ projectId: 'p1', limit: 1000 });
  const fired = alerts.map((a) => `${a.scopeKey} ${a.levelIndex}`).sort();
  const crossings: string[] = [];
  for (const [user, total] of expected) {
    for (const [level, value] of LEVELS.entries()) {
      if (total >= value) crossings.push(`${JSON.stringify([user])} ${level}`);
    }
  }
  expect(fired, `seed ${seed}`).toEqual(crossings.sort());

  async function checkCounters(store: SqliteStore, want: Map<string, number>): Promise<void> {
    const counters = await store.readCounters(
      counterKeyOf(rule),
      CONTRACT_T0,
      CONTRACT_T0 + 3_600_000,
    );
    const got = new Map(counters.map((c) => [c.scopeKey, c.value]));
    expect(got, `seed ${seed}`).toEqual(
      new Map([...want].map(([u, v]) => [JSON.stringify([u]), v])),
    );
  }
}

/** A migrated store on a new file with project p1, as a running server has it. */
async function serverWithProject(): Promise<{ path: string; server: SqliteStore }> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-sqlite-writers-'));
  dirs.push(dir);
  const path = join(dir, 'tokenwatch.db');
  const server = connect(path);
  await server.migrate();
  await server.createProject({ id: 'p1', name: 'p1', createdAtMs: 0 });
  return { path, server };
}

describe('SQLite: several connections on one file', () => {
  it('a second process opening the file while the first has unfolded events counts them once', async () => {
    const { path, server } = await serverWithProject();
    const e = makePricedEvent({ inputTokens: 35, outputTokens: 446 });
    expect((await server.applyBatch([e], { nowMs: CONTRACT_T0 })).accepted).toBe(1);
    const cli = connect(path);
    await cli.migrate(); // folds the server's event
    await cli.close();
    const again = await server.applyBatch([e], { nowMs: CONTRACT_T0 });
    expect(again.duplicates).toBe(1);
    const rows = await server.queryUsage(makeQuery());
    expect(rows.map((r) => [r.requests, r.inputTokens, r.outputTokens])).toEqual([[1, 35, 446]]);
  });

  it('a rule saved while another process commits (the CLI, a checkpoint) is saved, with its back-fill exact', async () => {
    // The save folds, then waits for the write lock; another process commits meanwhile. Its
    // back-fill then read the rollups through a fold that found that commit and, being inside
    // the save's transaction, failed to set its durability ("Safety level may not be changed
    // inside a transaction"): the rule was refused with a 500 under a running server's own
    // checkpoints.
    const { path, server } = await serverWithProject();
    const e = makePricedEvent({ userId: 'ana', inputTokens: 350, outputTokens: 0 });
    expect((await server.applyBatch([e], { nowMs: CONTRACT_T0 })).accepted).toBe(1);
    await server.queryUsage(makeQuery()); // folded: nothing waits in the log
    // The other process holds the write lock, adds a project as `tokenwatch projects create`
    // would, and commits 300 ms later.
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    const script = `const db = new (require(${JSON.stringify(sqlite)}))(${JSON.stringify(path)});
      db.pragma('busy_timeout = 5000');
      db.prepare('BEGIN IMMEDIATE').run();
      db.prepare("INSERT INTO projects (id, name, created_at_ms) VALUES ('p2', 'p2', 0)").run();
      console.log('locked');
      setTimeout(() => { db.prepare('COMMIT').run(); db.close(); }, 300);`;
    const cli = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(cli);
    await new Promise<void>((resolve, reject) => {
      cli.stdout?.once('data', () => resolve());
      cli.once('exit', (code) => reject(new Error(`child exited (${code}) before locking`)));
    });
    const rule = makeRule({
      scope: ['user'],
      levels: [{ value: 300 }],
      channels: [{ type: 'log' }],
    });
    const change = await server.createRule(rule, CONTRACT_T0 + 60_000);
    expect(change.rule.id).toBe(rule.id);
    // The back-fill counted the event that was there before the rule.
    const counters = await server.readCounters(
      counterKeyOf(change.rule),
      CONTRACT_T0,
      CONTRACT_T0 + 3_600_000,
    );
    expect(counters.map((c) => [c.scopeKey, c.value])).toEqual([[JSON.stringify(['ana']), 350]]);
  });

  it('any interleaving of appends, folds, reads and crashes on two connections counts each event once', async () => {
    for (let seed = 1; seed <= 60; seed++) await runInterleaving(seed);
  });

  it('the same with timed folds in chunks, part-way through the log when the other connection writes', async () => {
    for (let seed = 1; seed <= 60; seed++) await runInterleaving(seed, true);
  });
});
