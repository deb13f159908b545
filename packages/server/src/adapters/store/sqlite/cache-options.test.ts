import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PricedEvent } from '@tokenwatch/core';
import { makePricedEvent, makeQuery, makeRule } from '@tokenwatch/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../../config/config-schema.js';
import { SqliteStore, type SqliteStoreOptions } from './sqlite-store.js';

const MiB = 1024 * 1024;
const T0 = Date.UTC(2026, 2, 10, 10, 0, 0);
const dirs: string[] = [];
const stores: SqliteStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => {});
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function open(options: Omit<SqliteStoreOptions, 'path'>): Promise<SqliteStore> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-cache-options-'));
  dirs.push(dir);
  const store = new SqliteStore({ path: join(dir, 'tw.db'), synchronous: 'normal', ...options });
  stores.push(store);
  await store.migrate();
  await store.createProject({ id: 'p1', name: 'p1', createdAtMs: T0 });
  // A per-user rule, so each user has a folded counter value.
  await store.createRule(makeRule({ scope: ['user'], levels: [{ value: 1e12 }] }), T0);
  return store;
}

/** 20,000 users, each with its own series: more ids than 1 MiB of cache holds. */
function manyUsers(): PricedEvent[] {
  return Array.from({ length: 20_000 }, (_, i) =>
    makePricedEvent({
      userId: `user-with-a-longish-id-${i}`,
      inputTokens: 1 + (i % 7),
      outputTokens: 0,
      timestampMs: T0 + 60_000,
    }),
  );
}

async function load(store: SqliteStore, events: PricedEvent[]) {
  for (let i = 0; i < events.length; i += 1_000)
    await store.applyBatch(events.slice(i, i + 1_000), { nowMs: T0 + 120_000 });
  // Reads fold first: the caches are filled by then.
  const [total] = await store.queryUsage(makeQuery({ projectId: 'p1', groupBy: [] }));
  expect(total?.inputTokens).toBe(events.reduce((s, e) => s + e.inputTokens, 0));
  // Counter buckets read in the last 2 s are kept past the budget (the working set); one more
  // event after that lets the budget apply to the folded counters.
  await new Promise((r) => setTimeout(r, 2_100));
  await store.applyBatch([makePricedEvent({ userId: 'user-late', timestampMs: T0 + 60_000 })], {
    nowMs: T0 + 120_000,
  });
  return store.database.cachedBytes();
}

describe('store.idCacheMiB and store.counterCacheMiB', () => {
  it('bound the writer caches to the budgets given, totals exact', async () => {
    const events = manyUsers();
    const defaults = await load(await open({}), events);
    // With the defaults (64 and 32 MiB) these ids and counter values take more than 1 MiB.
    expect(defaults.ids).toBeGreaterThan(2 * MiB);
    expect(defaults.counters).toBeGreaterThan(1 * MiB);
    const small = await load(await open({ idCacheMiB: 1, counterCacheMiB: 1 }), events);
    expect(small.ids).toBeLessThanOrEqual(1 * MiB);
    expect(small.counters).toBeLessThanOrEqual(1 * MiB);
  });

  it('are in the config with their defaults, and validated', () => {
    const config = configSchema.parse({});
    expect(config.store).toMatchObject({ idCacheMiB: 64, counterCacheMiB: 32 });
    const custom = configSchema.parse({ store: { driver: 'sqlite', idCacheMiB: 512 } });
    expect(custom.store).toMatchObject({ idCacheMiB: 512, counterCacheMiB: 32 });
    expect(() => configSchema.parse({ store: { driver: 'sqlite', idCacheMiB: 0 } })).toThrow(
      /idCacheMiB/,
    );
  });
});
