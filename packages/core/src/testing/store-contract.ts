import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PricedEvent } from '../event/usage-event.js';
import type { Store } from '../ports/project-store.js';
import { EventOutcome } from '../ports/usage-store.js';
import type { UsageRow } from '../query/usage-query.js';
import { CONTRACT_T0, makePricedEvent, makeQuery } from './store-fixtures.js';
import { latencyContract } from './store-latency-contract.js';
import { measuresContract } from './store-measures-contract.js';
import { rangeQueryContract } from './store-range-contract.js';
import { userSearchContract } from './store-user-search-contract.js';

export { CONTRACT_T0, makePricedEvent, makeQuery };

export interface StoreUnderTest {
  store: Store;
  cleanup(): Promise<void>;
}

const HOUR = 3_600_000;
const DAY = 86_400_000;
function sumOf(events: PricedEvent[]) {
  let input = 0;
  let output = 0;
  let cost = 0n;
  for (const e of events) {
    input += e.inputTokens;
    output += e.outputTokens;
    cost += BigInt(e.costNanoUsd);
  }
  return { input, output, cost, requests: events.length };
}

function only(rows: UsageRow[]): UsageRow {
  expect(rows).toHaveLength(1);
  return rows[0] as UsageRow;
}

/**
 * The store contract. Every adapter of the `Store` port runs this suite unchanged (the
 * in-memory twin, SQLite, PostgreSQL, ...): what it checks is what the rest of tokenwatch
 * relies on.
 */
export function runStoreContract(name: string, open: () => Promise<StoreUnderTest>): void {
  describe(`Store contract: ${name}`, () => {
    let sut: StoreUnderTest;
    let store: Store;
    const now = { nowMs: CONTRACT_T0 + HOUR };

    beforeEach(async () => {
      sut = await open();
      store = sut.store;
      await store.migrate();
      for (const id of ['p1', 'p2']) {
        await store.createProject({ id, name: `Project ${id}`, createdAtMs: CONTRACT_T0 });
      }
    });
    afterEach(async () => {
      await sut.cleanup();
    });

    rangeQueryContract(() => store, now);
    userSearchContract(() => store, now);
    measuresContract(() => store, now);
    latencyContract(() => store, now);

    it('migrate is idempotent', async () => {
      await store.migrate();
      expect((await store.listProjects()).map((p) => p.id)).toEqual(['p1', 'p2']);
    });

    it('adds new events to the hour, day and minute rollups exactly', async () => {
      const events = [
        makePricedEvent({ inputTokens: 10, outputTokens: 5, costNanoUsd: 1_000 }),
        makePricedEvent({
          inputTokens: 7,
          outputTokens: 3,
          cacheReadTokens: 2,
          cacheWriteTokens: 1,
          costNanoUsd: 2_500,
        }),
        makePricedEvent({
          userId: 'bob',
          inputTokens: 1,
          outputTokens: 1,
          status: 'error',
          costNanoUsd: 3,
        }),
      ];
      const result = await store.applyBatch(events, now);
      expect(result).toEqual({
        accepted: 3,
        duplicates: 0,
        conflicts: 0,
        outcomes: [EventOutcome.Accepted, EventOutcome.Accepted, EventOutcome.Accepted],
        alerts: [],
        enforcedCounters: [],
      });
      for (const resolution of ['minute', 'hour', 'day'] as const) {
        const total = only(await store.queryUsage(makeQuery({ resolution })));
        expect(total).toMatchObject({
          inputTokens: 18,
          outputTokens: 9,
          cacheReadTokens: 2,
          cacheWriteTokens: 1,
          totalTokens: 30,
          requests: 3,
          errors: 1,
          unpricedTokens: 0,
        });
        expect(total.costNanoUsd).toBe(3_503n);
      }
      const byUser = await store.queryUsage(makeQuery({ groupBy: ['user'] }));
      expect(byUser.map((r) => [r.user, r.totalTokens])).toEqual([
        ['alice', 28],
        ['bob', 2],
      ]);
    });

    it('counts a batch sent three times once', async () => {
      const events = Array.from({ length: 50 }, (_, i) =>
        makePricedEvent({ userId: `u${i % 7}`, inputTokens: i, costNanoUsd: i * 10 }),
      );
      const first = await store.applyBatch(events, now);
      const second = await store.applyBatch(events, now);
      const third = await store.applyBatch(events, now);
      expect(first.accepted).toBe(50);
      expect(second).toMatchObject({ accepted: 0, duplicates: 50, conflicts: 0 });
      expect(third.outcomes.every((o) => o === EventOutcome.Duplicate)).toBe(true);
      const total = only(await store.queryUsage(makeQuery()));
      const expected = sumOf(events);
      expect(total.inputTokens).toBe(expected.input);
      expect(total.requests).toBe(expected.requests);
      expect(total.costNanoUsd).toBe(expected.cost);
    });

    it('keeps the first payload of an id and records a conflict', async () => {
      const original = makePricedEvent({ inputTokens: 10 });
      await store.applyBatch([original], now);
      const changed = {
        ...original,
        inputTokens: 99,
        fingerprint: `${original.fingerprint}-changed`,
      };
      const result = await store.applyBatch([changed], { nowMs: now.nowMs + 1 });
      expect(result).toMatchObject({
        accepted: 0,
        duplicates: 0,
        conflicts: 1,
        outcomes: [EventOutcome.Conflict],
      });
      expect(only(await store.queryUsage(makeQuery())).inputTokens).toBe(10);
      const conflicts = await store.listConflicts('p1', 10);
      expect(conflicts).toEqual([
        {
          projectId: 'p1',
          eventId: original.id,
          firstFingerprint: original.fingerprint,
          conflictingFingerprint: changed.fingerprint,
          seenAtMs: now.nowMs + 1,
        },
      ]);
      expect(await store.listConflicts('p2', 10)).toEqual([]);
    });

    it('treats a repeated id inside one batch like a later redelivery', async () => {
      const a = makePricedEvent({ inputTokens: 1 });
      const conflicting = { ...a, inputTokens: 2, fingerprint: 'other' };
      const result = await store.applyBatch([a, a, conflicting], now);
      expect(result.outcomes).toEqual([
        EventOutcome.Accepted,
        EventOutcome.Duplicate,
        EventOutcome.Conflict,
      ]);
      expect(only(await store.queryUsage(makeQuery())).requests).toBe(1);
    });

    it('scopes ids by project: the same id counts once in each project', async () => {
      const a = makePricedEvent({ projectId: 'p1', inputTokens: 5 });
      const b = { ...a, projectId: 'p2', inputTokens: 6 };
      const result = await store.applyBatch([a, b], now);
      expect(result.accepted).toBe(2);
      expect(only(await store.queryUsage(makeQuery({ projectId: 'p1' }))).inputTokens).toBe(5);
      expect(only(await store.queryUsage(makeQuery({ projectId: 'p2' }))).inputTokens).toBe(6);
      expect(await store.queryUsage(makeQuery({ projectId: 'nope' }))).toEqual([]);
    });

    it('puts a late event into its own past bucket', async () => {
      const late = makePricedEvent({
        timestampMs: CONTRACT_T0 - 3 * DAY + 30 * 60_000,
        inputTokens: 3,
      });
      const live = makePricedEvent({ inputTokens: 4 });
      await store.applyBatch([live], now);
      await store.applyBatch([late], now);
      const rows = await store.queryUsage(
        makeQuery({
          fromMs: CONTRACT_T0 - 5 * DAY,
          interval: 'hour',
          orderBy: 'bucket',
          order: 'asc',
        }),
      );
      expect(rows.map((r) => [r.bucketMs, r.inputTokens])).toEqual([
        [CONTRACT_T0 - 3 * DAY, 3],
        [CONTRACT_T0, 4],
      ]);
    });

    it('buckets by minute, hour, day and month in UTC', async () => {
      await store.applyBatch(
        [
          makePricedEvent({ timestampMs: Date.UTC(2026, 1, 28, 23, 59, 30), inputTokens: 1 }),
          makePricedEvent({ timestampMs: Date.UTC(2026, 2, 1, 0, 0, 10), inputTokens: 2 }),
          makePricedEvent({ timestampMs: Date.UTC(2026, 2, 1, 0, 0, 50), inputTokens: 4 }),
        ],
        now,
      );
      const range = { fromMs: Date.UTC(2026, 1, 1), toMs: Date.UTC(2026, 3, 1) };
      const shape = (rows: UsageRow[]) => rows.map((r) => [r.bucketMs, r.inputTokens]);
      expect(
        shape(
          await store.queryUsage(
            makeQuery({
              ...range,
              interval: 'month',
              resolution: 'day',
              orderBy: 'bucket',
              order: 'asc',
            }),
          ),
        ),
      ).toEqual([
        [Date.UTC(2026, 1, 1), 1],
        [Date.UTC(2026, 2, 1), 6],
      ]);
      expect(
        shape(
          await store.queryUsage(
            makeQuery({
              ...range,
              interval: 'day',
              resolution: 'day',
              orderBy: 'bucket',
              order: 'asc',
            }),
          ),
        ),
      ).toEqual([
        [Date.UTC(2026, 1, 28), 1],
        [Date.UTC(2026, 2, 1), 6],
      ]);
      expect(
        shape(
          await store.queryUsage(
            makeQuery({
              ...range,
              interval: 'minute',
              resolution: 'minute',
              orderBy: 'bucket',
              order: 'asc',
            }),
          ),
        ),
      ).toEqual([
        [Date.UTC(2026, 1, 28, 23, 59), 1],
        [Date.UTC(2026, 2, 1, 0, 0), 6],
      ]);
      // A bucket belongs to a range when its start lies inside it.
      expect(
        shape(
          await store.queryUsage(
            makeQuery({
              fromMs: Date.UTC(2026, 2, 1),
              toMs: Date.UTC(2026, 2, 2),
              interval: 'hour',
              orderBy: 'bucket',
              order: 'asc',
            }),
          ),
        ),
      ).toEqual([[Date.UTC(2026, 2, 1, 0), 6]]);
    });

    it('groups, filters, orders and limits (top-N)', async () => {
      const events: PricedEvent[] = [];
      const users = ['ann', 'ben', 'cat', 'dan'];
      users.forEach((userId, i) => {
        for (let k = 0; k <= i; k++) {
          events.push(
            makePricedEvent({
              userId,
              appId: k % 2 ? 'search' : 'chat',
              inputTokens: 10 * (i + 1),
              costNanoUsd: 100 * (4 - i),
            }),
          );
        }
      });
      await store.applyBatch(events, now);
      const top2 = await store.queryUsage(makeQuery({ groupBy: ['user'], limit: 2 }));
      expect(top2.map((r) => r.user)).toEqual(['dan', 'cat']);
      const byCostAsc = await store.queryUsage(
        makeQuery({ groupBy: ['user'], orderBy: 'costUsd', order: 'asc' }),
      );
      expect(byCostAsc.map((r) => [r.user, r.costNanoUsd])).toEqual([
        ['ann', 400n],
        ['dan', 400n],
        ['ben', 600n],
        ['cat', 600n],
      ]);
      const filtered = await store.queryUsage(
        makeQuery({ groupBy: ['app', 'user'], filters: { user: ['dan', 'ben'], app: ['search'] } }),
      );
      expect(filtered.map((r) => [r.app, r.user, r.requests])).toEqual([
        ['search', 'dan', 2],
        ['search', 'ben', 1],
      ]);
      const byModelProvider = only(
        await store.queryUsage(makeQuery({ groupBy: ['model', 'provider'] })),
      );
      expect(byModelProvider).toMatchObject({
        model: 'anthropic.claude-3-haiku-20240307-v1:0',
        provider: 'bedrock',
        requests: 10,
      });
    });

    it('prunes minute rollups and old event ids by their own retention', async () => {
      const old = makePricedEvent({ timestampMs: CONTRACT_T0 - 10 * DAY });
      const recent = makePricedEvent();
      await store.applyBatch([old, recent], now);
      const result = await store.prune({
        nowMs: CONTRACT_T0,
        minuteRetentionMs: 7 * DAY,
        dedupeRetentionMs: 8 * DAY,
        historyRetentionMs: 90 * DAY,
      });
      expect(result).toMatchObject({ minuteRowsDeleted: 1, eventIdsDeleted: 1 });
      const minute = await store.queryUsage(
        makeQuery({ resolution: 'minute', fromMs: CONTRACT_T0 - 20 * DAY }),
      );
      expect(only(minute).requests).toBe(1);
      // Hour and day rollups are kept.
      expect(
        only(await store.queryUsage(makeQuery({ fromMs: CONTRACT_T0 - 20 * DAY }))).requests,
      ).toBe(2);
      // The recent id is still remembered.
      expect((await store.applyBatch([recent], now)).duplicates).toBe(1);
    });

    it('stores projects, hashed keys and revocation', async () => {
      await expect(
        store.createProject({ id: 'p1', name: 'again', createdAtMs: 0 }),
      ).rejects.toMatchObject({ code: 'conflict' });
      expect(await store.getProject('p1')).toEqual({
        id: 'p1',
        name: 'Project p1',
        createdAtMs: CONTRACT_T0,
      });
      expect(await store.getProject('missing')).toBeUndefined();
      const key = {
        id: 'k1',
        projectId: 'p1',
        hash: 'a'.repeat(64),
        prefix: 'twk_abcd',
        role: 'ingest' as const,
        appId: 'chat',
        name: 'ci',
        createdAtMs: CONTRACT_T0,
        revokedAtMs: undefined,
      };
      await store.createKey(key);
      await expect(store.createKey({ ...key, id: 'k2' })).rejects.toMatchObject({
        code: 'conflict',
      });
      await expect(
        store.createKey({ ...key, id: 'k3', hash: 'b'.repeat(64), projectId: 'zzz' }),
      ).rejects.toMatchObject({ code: 'not_found' });
      expect(await store.findKeyByHash('a'.repeat(64))).toEqual(key);
      expect(await store.findKeyByHash('c'.repeat(64))).toBeUndefined();
      expect(await store.listKeys('p2')).toEqual([]);
      expect(await store.revokeKey('p2', 'k1', 5)).toBe(false);
      expect(await store.revokeKey('p1', 'k1', 5)).toBe(true);
      expect(await store.revokeKey('p1', 'k1', 9)).toBe(true);
      expect((await store.listKeys('p1'))[0]?.revokedAtMs).toBe(5);
    });

    it('stores per-project price overrides', async () => {
      const entry = {
        provider: 'bedrock',
        modelId: 'my-model',
        effectiveFrom: '2026-01-01',
        input: '1.5',
        output: '2',
        cacheRead: '0.15',
      };
      await store.putPriceOverride('p1', entry);
      await store.putPriceOverride('p1', { ...entry, input: '1.6' });
      await store.putPriceOverride('p1', { ...entry, effectiveFrom: '2026-02-01' });
      expect(await store.listPriceOverrides('p1')).toEqual([
        { ...entry, input: '1.6' },
        { ...entry, effectiveFrom: '2026-02-01' },
      ]);
      expect(await store.listPriceOverrides('p2')).toEqual([]);
      expect(await store.deletePriceOverride('p1', 'bedrock', 'my-model', '2026-02-01')).toBe(true);
      expect(await store.deletePriceOverride('p1', 'bedrock', 'my-model', '2026-02-01')).toBe(
        false,
      );
      await expect(store.putPriceOverride('nope', entry)).rejects.toMatchObject({
        code: 'not_found',
      });
    });
  });
}
