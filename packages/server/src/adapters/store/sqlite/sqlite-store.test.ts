import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UsageQuery } from '@tokenwatch/core';
import { emptyLatencyHistogram } from '@tokenwatch/core';
import {
  makePricedEvent,
  makeQuery,
  runRuleContract,
  runRuleOracleContract,
  runStoreContract,
} from '@tokenwatch/core/testing';
import { describe, expect, it } from 'vitest';
import { LATENCY_COLUMNS, MEASURE_COLUMNS_ADDED } from '../sql-rows.js';
import { LATENCY_TABLES, MIGRATIONS } from './schema.js';
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
      // A NULL user id, refused half-way through the transaction (after the good event's claim):
      // the fold could not write it.
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

runRuleOracleContract(
  'SQLite (file)',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-sqlite-oracle-'));
    // The oracle checks what the rules decide; fsyncs would only make its 20k commits slow.
    const store = new SqliteStore({ path: join(dir, 'tokenwatch.db'), synchronous: 'normal' });
    return {
      store,
      cleanup: async () => {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  // 100 cases per store: a rule's back-fill reads the rollups of its range for every project of
  // the file, so the CPU per case grows with the cases sharing it (10,000 in one file: 2× the
  // CPU of 1,000 per store; 4,000 cases took 31.7 s at 1,000 per store, 24.3 s at 250, 20.5 s
  // at 100). Each store still holds 100 projects side by side.
  { cases: Number(process.env.TW_ORACLE_CASES ?? 10_000), seed: 20261204, casesPerStore: 100 },
);

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

describe('SQLite coarse rollups', () => {
  it('adds the latency histogram to an older database in place: old rows read as empty histograms', async () => {
    const { dir, store } = openFileStore();
    try {
      await store.migrate();
      await store.createProject({ id: 'p1', name: 'p1', createdAtMs: 0 });
      const old = [makePricedEvent({ latencyMs: 500 }), makePricedEvent({ appId: 'b' })];
      await store.applyBatch(old, { nowMs: Date.now() });
      const q = makeQuery({ groupBy: ['app'], orderBy: 'requests' });
      const before = await store.queryUsage(q);
      // Back to the version before the histogram: its columns gone, and the later indexes and
      // week rollup.
      store.database.db.exec(
        `DROP INDEX rollup_hour_by_series; DROP INDEX rollup_day_by_series;
         DROP TABLE rollup_per_user_week; DROP TABLE fold_progress;
         ${LATENCY_TABLES.flatMap((t) =>
           LATENCY_COLUMNS.map((c) => `ALTER TABLE ${t} DROP COLUMN ${c};`),
         ).join(' ')}
         DELETE FROM schema_version WHERE version >= ${MIGRATIONS.length - 3};`,
      );
      await store.close();
      const again = new SqliteStore({ path: join(dir, 'tokenwatch.db') });
      await again.migrate();
      expect(await again.queryUsage(q)).toEqual(before);
      const latency = await again.queryUsage({ ...q, latency: true });
      expect(latency.map((r) => [r.app, r.requests, r.latency])).toEqual([
        ['b', 1, emptyLatencyHistogram()],
        ['chat', 1, emptyLatencyHistogram()],
      ]);
      // New calls are counted in the histogram, in every family a latency query reads.
      await again.applyBatch([makePricedEvent({ latencyMs: 30 })], { nowMs: Date.now() });
      const expected = emptyLatencyHistogram();
      expected[1] = 1;
      for (const groupBy of [['app'], ['model'], ['app', 'model'], ['user']] as const) {
        const rows = await again.queryUsage({ ...q, groupBy: [...groupBy], latency: true });
        expect(rows[0]?.latency).toEqual(expected);
      }
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('back-fills every coarse rollup when an older database is migrated', async () => {
    const { dir, store } = openFileStore();
    try {
      await store.migrate();
      await store.createProject({ id: 'p1', name: 'p1', createdAtMs: 0 });
      const events = Array.from({ length: 40 }, (_, i) =>
        makePricedEvent({ userId: `u${i % 7}`, appId: `a${i % 3}`, inputTokens: i + 1 }),
      );
      await store.applyBatch(events, { nowMs: Date.now() });
      const day = makeQuery({ resolution: 'day', fromMs: 0, toMs: Date.now() + 86_400_000 });
      const hour = makeQuery({ resolution: 'hour', fromMs: 0, toMs: Date.now() + 3_600_000 });
      const shapes: UsageQuery[] = [
        { ...day, groupBy: ['app', 'model'] },
        { ...day, groupBy: ['user', 'app'] },
        { ...day, groupBy: ['user'] },
        { ...hour, groupBy: ['user'] },
        { ...hour, groupBy: ['app', 'user'], filters: { user: ['u1', 'u2'] } },
        { ...hour, groupBy: ['user'], interval: 'hour' },
        { ...hour, groupBy: ['model', 'provider'], interval: 'hour' },
        { ...day, groupBy: ['app'] },
        { ...hour, groupBy: [] },
        { ...hour, groupBy: ['model'], filters: { user: ['u3'] }, interval: 'hour' },
        { ...day, groupBy: ['user', 'model'] },
      ];
      const before = await Promise.all(shapes.map((q) => store.queryUsage(q)));
      // Turn the file back into a version-2 database: no coarse or per-user rollups yet, and
      // no measures of the later versions.
      store.database.db.exec(
        `${['rollup_minute', 'rollup_hour', 'rollup_day', 'rollup_tag_hour', 'rollup_tag_day']
          .flatMap((t) => MEASURE_COLUMNS_ADDED.map((c) => `ALTER TABLE ${t} DROP COLUMN ${c};`))
          .join(' ')}
         ${['rollup_hour', 'rollup_day']
           .flatMap((t) => LATENCY_COLUMNS.map((c) => `ALTER TABLE ${t} DROP COLUMN ${c};`))
           .join(' ')}
         DROP TABLE rollup_app_hour; DROP TABLE rollup_app_day; DROP TABLE rollup_user_day;
         DROP TABLE app_series; DROP TABLE user_series; DROP TABLE rollup_user_hour;
         DROP TABLE rollup_per_user_hour; DROP TABLE rollup_per_user_day; DROP TABLE user_ids;
         DROP TABLE rollup_per_model_hour; DROP TABLE rollup_per_model_day; DROP TABLE model_ids;
         DROP TABLE rollup_per_app_hour; DROP TABLE rollup_per_app_day; DROP TABLE app_ids;
         DROP TABLE event_log; DROP INDEX rule_counters_by_bucket; DROP TABLE store_generation;
         DROP INDEX rollup_hour_by_series; DROP INDEX rollup_day_by_series;
         DROP TABLE rollup_per_user_week; DROP TABLE fold_progress;
         ALTER TABLE rollup_minute DROP COLUMN cost_usd; ALTER TABLE rollup_hour DROP COLUMN cost_usd; ALTER TABLE rollup_day DROP COLUMN cost_usd;
         ALTER TABLE rollup_tag_hour DROP COLUMN cost_usd; ALTER TABLE rollup_tag_day DROP COLUMN cost_usd;
         DELETE FROM schema_version WHERE version >= 3;`,
      );
      await store.close();
      const again = new SqliteStore({ path: join(dir, 'tokenwatch.db') });
      await again.migrate();
      const after = await Promise.all(shapes.map((q) => again.queryUsage(q)));
      expect(after).toEqual(before);
      expect(before[2]).toHaveLength(7);
      // And later events keep adding to them.
      await again.applyBatch([makePricedEvent({ userId: 'u0', appId: 'a0', inputTokens: 1000 })], {
        nowMs: Date.now(),
      });
      const total = (await again.queryUsage({ ...day, groupBy: ['app'] })).reduce(
        (s, r) => s + r.inputTokens,
        0,
      );
      expect(total).toBe(events.reduce((s, e) => s + e.inputTokens, 0) + 1000);
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
