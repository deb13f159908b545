import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PricedEvent, UsageQuery } from '@tokenwatch/core';
import { CONTRACT_T0, makePricedEvent, makeQuery } from '@tokenwatch/core/testing';
import { describe, expect, it } from 'vitest';
import { rng } from '../../../demo/traffic.js';
import { MemoryStore } from '../memory/memory-store.js';
import { MIGRATIONS, WEEK_MS } from './schema.js';
import { SqliteStore } from './sqlite-store.js';
import { compileUsageQuery } from './sqlite-usage-queries.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;

/** The first instant of the 45 days of events. */
const START = Math.floor(CONTRACT_T0 / DAY) * DAY - 40 * DAY;

/**
 * 45 days of events: users with different habits (some every day, some a few days, one only
 * in the first week), costs with carries past a dollar, errors, calls without usage, denials.
 */
function events(): PricedEvent[] {
  const next = rng(29);
  const pick = (n: number) => Math.floor(next() * n);
  return Array.from({ length: 3000 }, (_, i) => {
    const user = `u${pick(12)}`;
    // u9 only in the first week; u10 only every fifth day; the others any time.
    const span = user === 'u9' ? 7 * DAY : 45 * DAY;
    let timestampMs = START + pick(span);
    if (user === 'u10') timestampMs = START + pick(9) * 5 * DAY + pick(DAY);
    return makePricedEvent({
      id: `w-${i}`,
      timestampMs,
      userId: user,
      appId: `a${pick(3)}`,
      modelId: `m${pick(2)}`,
      inputTokens: 1 + pick(2000),
      outputTokens: pick(700),
      costNanoUsd: pick(900_000_000),
      status: (['error', 'no_usage', 'denied', 'ok', 'ok', 'ok', 'ok', 'ok'] as const)[pick(8)],
    });
  });
}

/** Ranges over the events: many whole weeks, one, none; on and off day and hour boundaries. */
function ranges(): Array<[number, number]> {
  const end = START + 45 * DAY;
  return [
    [START, end],
    [end - 30 * DAY - 5 * HOUR - 17, end - 3 * HOUR + 11],
    [START + 3 * DAY + 7 * HOUR, START + 12 * DAY + 2 * HOUR],
    [START + 2 * DAY, START + 8 * DAY],
    [START + 13 * DAY + 1, START + 29 * DAY - 1],
    // Exactly one week bucket, from its first instant to its end.
    [Math.ceil(START / WEEK_MS) * WEEK_MS, Math.ceil(START / WEEK_MS) * WEEK_MS + WEEK_MS],
  ];
}

/** Per-user questions over each range: top users by each measure, filters, counts. */
function queries(): UsageQuery[] {
  const out: UsageQuery[] = [];
  for (const [fromMs, toMs] of ranges()) {
    for (const resolution of ['day', 'hour'] as const) {
      const base = { fromMs, toMs, resolution, groupBy: ['user' as const] };
      out.push(
        makeQuery({ ...base, limit: 5 }),
        makeQuery({ ...base, orderBy: 'costUsd' }),
        makeQuery({ ...base, orderBy: 'requests', order: 'asc', limit: 7 }),
        makeQuery({ ...base, orderBy: 'noUsageRequests' }),
        makeQuery({ ...base, filters: { user: ['u9', 'u10', 'nobody'] } }),
        makeQuery({ ...base, userPrefix: 'u1' }),
      );
    }
  }
  return out;
}

function openStores(): { dir: string; sqlite: SqliteStore; memory: MemoryStore } {
  const dir = mkdtempSync(join(tmpdir(), 'tw-sqlite-weeks-'));
  return {
    dir,
    sqlite: new SqliteStore({ path: join(dir, 'tokenwatch.db') }),
    memory: new MemoryStore(),
  };
}

async function load(stores: Array<SqliteStore | MemoryStore>, batch: PricedEvent[]) {
  for (const store of stores) {
    await store.migrate();
    await store.createProject({ id: 'p1', name: 'p1', createdAtMs: 0 });
    // In a few batches: a week row is added to by several folds.
    for (let i = 0; i < batch.length; i += 700) {
      await store.applyBatch(batch.slice(i, i + 700), { nowMs: CONTRACT_T0 });
    }
  }
}

/** Compares every query and count; returns how many rows were compared. */
async function compare(sqlite: SqliteStore, memory: MemoryStore): Promise<number> {
  let compared = 0;
  for (const q of queries()) {
    const want = await memory.queryUsage(q);
    expect(await sqlite.queryUsage(q), JSON.stringify(q)).toEqual(want);
    expect(await sqlite.countGroups(q), `count ${JSON.stringify(q)}`).toBe(
      await memory.countGroups(q),
    );
    compared += want.length;
  }
  return compared;
}

describe('SQLite per-user week rollup', () => {
  it('reads the whole weeks of a long per-user range from the week rollup', () => {
    const [fromMs, toMs] = ranges()[1] as [number, number];
    for (const resolution of ['day', 'hour'] as const) {
      const q = makeQuery({ fromMs, toMs, resolution, groupBy: ['user'] });
      expect(compileUsageQuery(q, { coarseRollups: true, splitCost: true }).sql).toContain(
        'rollup_per_user_week',
      );
    }
    // Six days hold no whole week.
    const short = makeQuery({
      fromMs,
      toMs: fromMs + 6 * DAY,
      resolution: 'day',
      groupBy: ['user'],
    });
    expect(compileUsageQuery(short, { coarseRollups: true }).sql).not.toContain('_week');
  });

  it('answers per-user queries as the in-memory store computes them from the events', async () => {
    const { dir, sqlite, memory } = openStores();
    try {
      await load([sqlite, memory], events());
      // The comparison is not of empty results.
      expect(await compare(sqlite, memory)).toBeGreaterThan(400);
    } finally {
      await sqlite.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is back-filled from the day rollup when an older database is migrated', async () => {
    const { dir, sqlite, memory } = openStores();
    try {
      await load([sqlite, memory], events());
      // Back to the version before the week rollup (every logged event folded), then migrated
      // again.
      sqlite.database.foldNow();
      sqlite.database.db.exec(
        `DROP TABLE rollup_per_user_week; DROP TABLE fold_progress; DELETE FROM schema_version WHERE version >= ${MIGRATIONS.length - 1};`,
      );
      await sqlite.close();
      const again = new SqliteStore({ path: join(dir, 'tokenwatch.db') });
      try {
        await again.migrate();
        const weeks = again.database.db
          .prepare('SELECT COUNT(*) FROM rollup_per_user_week')
          .pluck()
          .get() as number;
        expect(weeks).toBeGreaterThan(50);
        expect(await compare(again, memory)).toBeGreaterThan(400);
        // Later events keep adding to the back-filled rows.
        const more = [
          makePricedEvent({
            id: 'w-late',
            timestampMs: START + 20 * DAY,
            userId: 'u3',
            inputTokens: 5_000,
          }),
        ];
        await again.applyBatch(more, { nowMs: CONTRACT_T0 });
        await memory.applyBatch(more, { nowMs: CONTRACT_T0 });
        expect(await compare(again, memory)).toBeGreaterThan(400);
      } finally {
        await again.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
