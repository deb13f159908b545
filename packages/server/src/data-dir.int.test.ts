import { chmodSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import {
  killStartedServers,
  makeDataDir,
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from './testing/server-process.js';
import { makeEvent, metricValue, TokenwatchApi } from './testing/tokenwatch-api.js';

/**
 * Issue 11 items 1 and 8, on `tokenwatch serve` as users run it: the data dir is the owner's
 * only (0700, files 0600), and a WAL checkpoint that cannot finish is logged and counted in
 * /metrics next to the WAL's size.
 */

const roots: string[] = [];
afterAll(async () => {
  await killStartedServers();
  for (const dir of roots) removeDataDir(dir);
});

function modeOf(path: string): string {
  return (statSync(path).mode & 0o777).toString(8);
}

/** A data dir that does not exist yet, and a config file (outside it) for the server. */
function freshDataDir(config: object): { dataDir: string; env: Record<string, string> } {
  const root = makeDataDir('data-dir');
  roots.push(root);
  const configFile = join(root, 'config.json');
  writeFileSync(configFile, JSON.stringify(config));
  return { dataDir: join(root, 'nested', 'data'), env: { TOKENWATCH_CONFIG: configFile } };
}

async function postMany(api: TokenwatchApi, key: string, events: number): Promise<void> {
  for (let sent = 0; sent < events; sent += 500) {
    const batch = Array.from({ length: 500 }, (_, i) => makeEvent({ userId: `u-${i % 50}` }));
    const res = await api.postEvents(key, { events: batch });
    expect(res.status).toBe(202);
  }
}

describe('data dir', () => {
  it('is created 0700 with its files 0600', async () => {
    const { dataDir, env } = freshDataDir({});
    const server: ServerProcess = await startServerProcess({ dataDir, env });
    const api = new TokenwatchApi(server.url);
    await postMany(api, server.ingestKey as string, 1_000);

    expect(modeOf(dataDir)).toBe('700');
    for (const file of ['tokenwatch.db', 'tokenwatch.db-wal', 'tokenwatch.db-shm', 'server.json']) {
      expect([file, modeOf(join(dataDir, file))]).toEqual([file, '600']);
    }
    expect(await server.kill('SIGTERM')).toEqual({ code: 0, signal: null });
  }, 60_000);

  it('tightens the database files an older version left world-readable', async () => {
    const root = makeDataDir('data-dir-old');
    roots.push(root);
    const path = join(root, 'tokenwatch.db');
    const old = new Database(path);
    old.pragma('journal_mode = WAL');
    old.exec('CREATE TABLE leftover (x)');
    for (const suffix of ['', '-wal', '-shm']) chmodSync(`${path}${suffix}`, 0o644);
    const server = await startServerProcess({ dataDir: root });
    old.close();
    for (const file of ['tokenwatch.db', 'tokenwatch.db-wal', 'tokenwatch.db-shm', 'server.json']) {
      expect([file, modeOf(join(root, file))]).toEqual([file, '600']);
    }
    expect(await server.kill('SIGTERM')).toEqual({ code: 0, signal: null });
  }, 60_000);
});

describe('WAL checkpoints in /metrics', () => {
  it('counts and logs a checkpoint a long reader keeps from finishing, and shows the WAL size', async () => {
    const { dataDir, env } = freshDataDir({ store: { driver: 'sqlite', maxWalMiB: 1 } });
    const server = await startServerProcess({ dataDir, env });
    const api = new TokenwatchApi(server.url);
    const key = server.ingestKey as string;
    const before = (await api.get('/metrics')).text;
    expect(before).toMatch(/^# TYPE tokenwatch_sqlite_checkpoint_failures_total counter$/m);
    expect(metricValue(before, 'tokenwatch_sqlite_checkpoint_failures_total')).toBe(0);
    expect(before).toMatch(/^tokenwatch_sqlite_wal_bytes \d+$/m);

    // A reader (a CLI query, say) holding a snapshot in the WAL: no checkpoint can rewind it.
    const reader = new Database(join(dataDir, 'tokenwatch.db'));
    reader.prepare('BEGIN').run();
    reader.prepare('SELECT count(*) FROM projects').get();
    let metrics = '';
    try {
      const deadline = Date.now() + 30_000;
      do {
        await postMany(api, key, 2_000);
        await new Promise((r) => setTimeout(r, 300));
        metrics = (await api.get('/metrics')).text;
        // Both, as the reader keeps the log from starting over: the first failure can come from
        // the writer's own check (which counts the next transaction's room, so it may try below
        // a quarter of the limit), before the checkpointer's next round reports the size.
      } while (
        (metricValue(metrics, 'tokenwatch_sqlite_checkpoint_failures_total') === 0 ||
          metricValue(metrics, 'tokenwatch_sqlite_wal_bytes') <= 256 * 1024) &&
        Date.now() < deadline
      );
    } finally {
      reader.prepare('COMMIT').run();
      reader.close();
    }
    expect(metricValue(metrics, 'tokenwatch_sqlite_checkpoint_failures_total')).toBeGreaterThan(0);
    expect(metricValue(metrics, 'tokenwatch_sqlite_wal_bytes')).toBeGreaterThan(256 * 1024);
    // The folds of those events: counted, timed, and the size of the last one.
    expect(before).toMatch(/^# TYPE tokenwatch_sqlite_folds_total counter$/m);
    const foldDeadline = Date.now() + 10_000;
    while (
      metricValue(metrics, 'tokenwatch_sqlite_folds_total') === 0 &&
      Date.now() < foldDeadline
    ) {
      await new Promise((r) => setTimeout(r, 200));
      metrics = (await api.get('/metrics')).text;
    }
    expect(metricValue(metrics, 'tokenwatch_sqlite_folds_total')).toBeGreaterThan(0);
    expect(metricValue(metrics, 'tokenwatch_sqlite_fold_seconds_total')).toBeGreaterThan(0);
    expect(metricValue(metrics, 'tokenwatch_sqlite_fold_last_events')).toBeGreaterThan(0);
    expect(server.output().stderr).toMatch(/SQLite WAL checkpoint failed/);
    expect(await server.kill('SIGTERM')).toEqual({ code: 0, signal: null });
  }, 90_000);
});
