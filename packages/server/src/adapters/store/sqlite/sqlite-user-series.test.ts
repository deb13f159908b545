import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PricedEvent, UsageQuery } from '@tokenwatch/core';
import { CONTRACT_T0, makePricedEvent, makeQuery } from '@tokenwatch/core/testing';
import { describe, expect, it } from 'vitest';
import { rng } from '../../../demo/traffic.js';
import { MemoryStore } from '../memory/memory-store.js';
import { SqliteStore } from './sqlite-store.js';
import { compileUsageQuery } from './sqlite-usage-queries.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;

/** Events over three days around midnights: several users, apps and models per user. */
function events(): PricedEvent[] {
  const next = rng(13);
  const pick = (n: number) => Math.floor(next() * n);
  const start = Math.floor(CONTRACT_T0 / DAY) * DAY - DAY;
  return Array.from({ length: 1500 }, () =>
    makePricedEvent({
      timestampMs: start + pick(3 * DAY),
      userId: `u${pick(5)}`,
      appId: `a${pick(4)}`,
      modelId: `m${pick(3)}`,
      inputTokens: 1 + pick(1000),
      outputTokens: pick(500),
      costNanoUsd: pick(2_000_000),
      status: pick(10) === 0 ? 'error' : 'ok',
    }),
  );
}

describe('SQLite one-user queries through the (series_id, bucket_ms) index', () => {
  const midnight = Math.floor(CONTRACT_T0 / DAY) * DAY;
  const queries: UsageQuery[] = [
    // Over time, by hour, across a midnight, not aligned on hours.
    makeQuery({
      fromMs: midnight - 30 * HOUR + 123,
      toMs: midnight + 20 * HOUR - 7,
      interval: 'hour',
      groupBy: ['model'],
      filters: { user: ['u1'] },
    }),
    // Two users, by user and model, one hour.
    makeQuery({
      fromMs: midnight - HOUR,
      toMs: midnight,
      groupBy: ['user', 'model'],
      filters: { user: ['u0', 'u3'] },
    }),
    // Day resolution, by day and by range.
    makeQuery({
      fromMs: midnight - DAY,
      toMs: midnight + 2 * DAY,
      resolution: 'day',
      interval: 'day',
      groupBy: ['app', 'model'],
      filters: { user: ['u2'] },
    }),
    makeQuery({
      fromMs: midnight - DAY,
      toMs: midnight + DAY,
      resolution: 'day',
      groupBy: ['user', 'model'],
      filters: { user: ['u4', 'u1'] },
      orderBy: 'costUsd',
    }),
    // One user by provider over time (the full rollup: no smaller one has user and provider),
    // and with an app filter too.
    makeQuery({
      fromMs: midnight - 2 * DAY,
      toMs: midnight + 2 * DAY,
      interval: 'hour',
      groupBy: ['provider'],
      filters: { user: ['u3'] },
    }),
    makeQuery({
      fromMs: midnight - 5 * HOUR,
      toMs: midnight + 5 * HOUR,
      interval: 'hour',
      groupBy: ['model'],
      filters: { user: ['u0'], app: ['a2'] },
    }),
    // A user with no events.
    makeQuery({ interval: 'hour', groupBy: ['model'], filters: { user: ['nobody'] } }),
  ];

  it('reads the index for a user filter on the full-series rollups', () => {
    for (const q of queries) {
      const { sql } = compileUsageQuery(q, { coarseRollups: true, splitCost: true });
      expect(sql).toContain(`INDEXED BY rollup_${q.resolution}_by_series`);
    }
    // A range of whole days and ragged hours keeps seeking bucket by bucket.
    const hybrid = makeQuery({
      fromMs: midnight - 30 * HOUR,
      toMs: midnight + 20 * HOUR,
      groupBy: ['model'],
      filters: { user: ['u1'] },
    });
    expect(compileUsageQuery(hybrid, { coarseRollups: true }).sql).not.toContain('INDEXED BY');
  });

  it('returns what the in-memory store computes from the events', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-sqlite-'));
    const sqlite = new SqliteStore({ path: join(dir, 'tokenwatch.db') });
    const memory = new MemoryStore();
    try {
      const batch = events();
      for (const store of [sqlite, memory]) {
        await store.migrate();
        await store.createProject({ id: 'p1', name: 'p1', createdAtMs: 0 });
        await store.applyBatch(batch, { nowMs: CONTRACT_T0 });
      }
      let compared = 0;
      for (const q of queries) {
        const want = await memory.queryUsage(q);
        const got = await sqlite.queryUsage(q);
        expect(got, JSON.stringify(q)).toEqual(want);
        compared += want.length;
      }
      // The comparison is not of empty results.
      expect(compared).toBeGreaterThan(100);
    } finally {
      await sqlite.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
