import { DynamoDBClient, GetItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import type { PricedEvent } from '@tokenwatch/core';
import { CONTRACT_T0, makePricedEvent, makeQuery, makeRule } from '@tokenwatch/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbStore } from './dynamodb-store.js';
import { hourKey } from './keys.js';
import { type LocalDynamo, startDynalite } from './testing/dynalite.js';

const MINUTE = 60_000;
let local: LocalDynamo;
let tables = 0;

beforeAll(async () => {
  local = await startDynalite();
});
afterAll(async () => {
  await local.close();
});

async function freshStore(
  tableName = `eo-${process.pid}-${++tables}`,
  options: { maxRecordEvents?: number; maxIntentPartBytes?: number } = {},
): Promise<DynamoDbStore> {
  const store = new DynamoDbStore({
    ...options,
    tableName,
    endpoint: local.endpoint,
    region: local.region,
    credentials: local.credentials,
  });
  await store.migrate();
  await store.createProject({ id: 'p1', name: 'p1', createdAtMs: CONTRACT_T0 });
  return store;
}

function tokens(n: number, overrides: Partial<PricedEvent> = {}): PricedEvent {
  return makePricedEvent({ inputTokens: n, outputTokens: 0, costNanoUsd: n, ...overrides });
}

async function totals(store: DynamoDbStore) {
  const [hour] = await store.queryUsage(makeQuery());
  const [minute] = await store.queryUsage(makeQuery({ resolution: 'minute' }));
  const [day] = await store.queryUsage(makeQuery({ resolution: 'day' }));
  const [tag] = await store.queryUsage(makeQuery({ groupBy: ['tag:team'] }));
  return [hour, minute, day, tag].map((r) => [r?.inputTokens ?? 0, r?.requests ?? 0]);
}

describe('DynamoDB store: exactly once without transactions', () => {
  it('a batch that crashes at any write is completed exactly once by its redelivery', async () => {
    const rule = makeRule({ levels: [{ value: 1_000 }] });
    const batch = [
      tokens(400, { tags: { team: 'a' } }),
      tokens(400, { tags: { team: 'a' } }),
      tokens(400, { userId: 'bob', tags: { team: 'a' } }),
      tokens(400, { tags: { team: 'a' } }),
    ];
    const now = { nowMs: CONTRACT_T0 + 20 * MINUTE };
    // Count the writes of a clean run, then crash a fresh store at each of them in turn.
    let writes = 0;
    {
      const store = await freshStore();
      await store.createRule(rule, CONTRACT_T0);
      store.injectWriteFailure(Number.MAX_SAFE_INTEGER);
      await store.applyBatch(batch, now);
      writes = (store as unknown as { io: { writes: number } }).io.writes;
      await store.close();
    }
    expect(writes).toBeGreaterThan(10);
    // The last write gives the batch's rule lease back, best effort (a lease left behind only
    // delays the next rule save until it expires): a crash there loses nothing and fails nothing.
    for (let crashAt = 1; crashAt < writes; crashAt++) {
      const store = await freshStore();
      await store.createRule(rule, CONTRACT_T0);
      store.injectWriteFailure(crashAt);
      await expect(store.applyBatch(batch, now)).rejects.toMatchObject({ code: 'unavailable' });
      store.injectWriteFailure(undefined);
      // The redelivery: same events, a later clock.
      const again = await store.applyBatch(batch, { ...now, nowMs: now.nowMs + MINUTE });
      expect(again.accepted + again.duplicates, `crash at write ${crashAt}`).toBe(4);
      // And once more: everything is a duplicate now.
      expect((await store.applyBatch(batch, now)).duplicates).toBe(4);
      expect(await totals(store), `crash at write ${crashAt}`).toEqual([
        [1_600, 4],
        [1_600, 4],
        [1_600, 4],
        [1_600, 4],
      ]);
      const alerts = await store.listAlerts({ projectId: 'p1', limit: 10 });
      expect(
        alerts.map((a) => a.value),
        `crash at write ${crashAt}`,
      ).toEqual([1_200]);
      expect(await store.listDeliveries('p1', {}, 10)).toHaveLength(2);
      await store.close();
    }
  });

  it('completes a crashed batch when its events come back in another composition', async () => {
    const store = await freshStore();
    const [a, b, c, d] = [tokens(1), tokens(10), tokens(100), tokens(1_000)] as PricedEvent[] &
      [PricedEvent, PricedEvent, PricedEvent, PricedEvent];
    store.injectWriteFailure(5); // rule lease, intent and two claims written, then the process dies
    await expect(store.applyBatch([a, b, c], { nowMs: CONTRACT_T0 })).rejects.toThrow();
    store.injectWriteFailure(undefined);
    const result = await store.applyBatch([b, d], { nowMs: CONTRACT_T0 + MINUTE });
    expect(result.accepted).toBe(2);
    // c was never claimed by the crashed batch: the roll-forward claimed it on its behalf.
    expect((await store.applyBatch([c], { nowMs: CONTRACT_T0 })).duplicates).toBe(1);
    const [row] = await store.queryUsage(makeQuery());
    expect([row?.inputTokens, row?.requests]).toEqual([1_111, 4]);
    await store.close();
  });

  it('counts events applied concurrently by two consumers once, and alerts once', async () => {
    const table = `eo-${process.pid}-${++tables}`;
    const one = await freshStore(table);
    const two = new DynamoDbStore({
      tableName: table,
      endpoint: local.endpoint,
      region: local.region,
      credentials: local.credentials,
    });
    const rule = makeRule({ scope: ['user'], levels: [{ value: 500 }, { value: 5_000 }] });
    await one.createRule(rule, CONTRACT_T0);
    const events = Array.from({ length: 60 }, (_, i) => tokens(100, { userId: `u${i % 3}` }));
    const now = { nowMs: CONTRACT_T0 + 20 * MINUTE };
    const results = await Promise.all([
      one.applyBatch(events, now),
      two.applyBatch([...events].reverse(), now),
      one.applyBatch(events.slice(10, 40), now),
    ]);
    expect(results.reduce((s, r) => s + r.accepted, 0)).toBeGreaterThanOrEqual(60);
    const byUser = await one.queryUsage(makeQuery({ groupBy: ['user'] }));
    expect(byUser.map((r) => [r.user, r.inputTokens, r.requests])).toEqual([
      ['u0', 2_000, 20],
      ['u1', 2_000, 20],
      ['u2', 2_000, 20],
    ]);
    const alerts = await one.listAlerts({ projectId: 'p1', limit: 100 });
    expect(alerts.map((a) => a.scopeKey).sort()).toEqual(['["u0"]', '["u1"]', '["u2"]']);
    await one.close();
    await two.close();
  });

  it('splits a large batch into batch records and counts it exactly', async () => {
    const store = await freshStore(undefined, { maxRecordEvents: 500 });
    const events = Array.from({ length: 1_203 }, (_, i) =>
      tokens(i, { userId: `u${i % 17}`, timestampMs: CONTRACT_T0 + (i % 50) * MINUTE }),
    );
    const first = await store.applyBatch(events, { nowMs: CONTRACT_T0 + 2 * 3_600_000 });
    expect(first.accepted).toBe(1_203);
    const again = await store.applyBatch([...events.slice(600), tokens(5)], {
      nowMs: CONTRACT_T0 + 2 * 3_600_000,
    });
    expect([again.accepted, again.duplicates]).toEqual([1, 603]);
    const [row] = await store.queryUsage(makeQuery());
    expect([row?.inputTokens, row?.requests]).toEqual([(1_202 * 1_203) / 2 + 5, 1_204]);
    await store.close();
  });

  it('rolls a crashed batch forward from an intent spread over several items', async () => {
    // 1 KB parts: this batch's gzip intent takes several items.
    const store = await freshStore(undefined, { maxIntentPartBytes: 1_024 });
    const events = Array.from({ length: 300 }, (_, i) =>
      tokens(i + 1, { userId: `u${i % 7}`, timestampMs: CONTRACT_T0 + (i % 40) * MINUTE }),
    );
    const base = { nowMs: CONTRACT_T0 + 2 * 3_600_000 };
    // Rule lease, the intent's parts and some claims are written, then the process dies.
    store.injectWriteFailure(40);
    await expect(store.applyBatch(events, base)).rejects.toThrow();
    store.injectWriteFailure(undefined);
    const client = new DynamoDBClient({
      endpoint: local.endpoint,
      region: local.region,
      credentials: local.credentials,
    });
    const scanned = await client.send(
      new ScanCommand({
        TableName: (store as unknown as { io: { table: string } }).io.table,
        FilterExpression: 'begins_with(pk, :b) AND begins_with(sk, :i)',
        ExpressionAttributeValues: { ':b': { S: 'B#' }, ':i': { S: 'I' } },
      }),
    );
    client.destroy();
    expect(scanned.Items?.length).toBeGreaterThan(2);
    // One event comes back: the roll-forward counts the crashed batch's 300 from its parts.
    const again = await store.applyBatch([events[0] as PricedEvent], base);
    expect(again.accepted).toBe(1);
    expect((await store.applyBatch(events, base)).duplicates).toBe(300);
    const [row] = await store.queryUsage(makeQuery());
    expect([row?.inputTokens, row?.requests]).toEqual([(300 * 301) / 2, 300]);
    await store.close();
  });

  it('keeps an hour item small: marks of finished batches are removed', async () => {
    const table = `eo-${process.pid}-${++tables}`;
    const store = await freshStore(table);
    for (let i = 0; i < 40; i++) await store.applyBatch([tokens(1)], { nowMs: CONTRACT_T0 });
    const e = tokens(0);
    const client = new DynamoDBClient({
      endpoint: local.endpoint,
      region: local.region,
      credentials: local.credentials,
    });
    const { gsi1pk: _a, gsi1sk: _b, ...key } = hourKey(e, CONTRACT_T0);
    const out = await client.send(
      new GetItemCommand({ TableName: table, Key: { pk: { S: key.pk }, sk: { S: key.sk } } }),
    );
    const item = out.Item ?? {};
    expect(item.requests?.N).toBe('40');
    // The seed's item: userId#modelId with a tenant prefix, sort key YYYY-MM-DD-HH.
    expect(key.pk).toBe('H#p1#alice#anthropic.claude-3-haiku-20240307-v1:0');
    expect(key.sk.startsWith('2026-03-10-10#')).toBe(true);
    const marks = Object.keys(item).filter((k) => k.startsWith('tx_'));
    expect(marks.length).toBeLessThanOrEqual(9);
    client.destroy();
    await store.close();
  });
});
