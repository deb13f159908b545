import { DynamoDBClient, PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { CONTRACT_T0, makePricedEvent, makeQuery } from '@tokenwatch/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbStore } from './dynamodb-store.js';
import { type LocalDynamo, startDynalite } from './testing/dynalite.js';

const MINUTE = 60_000;
let local: LocalDynamo;
let client: DynamoDBClient;
let tables = 0;

beforeAll(async () => {
  local = await startDynalite();
  client = new DynamoDBClient({
    endpoint: local.endpoint,
    region: local.region,
    credentials: local.credentials,
  });
});
afterAll(async () => {
  client.destroy();
  await local.close();
});

async function freshStore(): Promise<{ store: DynamoDbStore; table: string }> {
  const table = `mp-${process.pid}-${++tables}`;
  const store = new DynamoDbStore({
    tableName: table,
    endpoint: local.endpoint,
    region: local.region,
    credentials: local.credentials,
  });
  await store.migrate();
  await store.createProject({ id: 'p1', name: 'p1', createdAtMs: CONTRACT_T0 });
  return { store, table };
}

async function minutePartition(table: string): Promise<Array<Record<string, unknown>>> {
  const out = await client.send(
    new QueryCommand({
      TableName: table,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': { S: 'M#p1#2026-03-10' } },
    }),
  );
  return out.Items ?? [];
}

describe('DynamoDB minute rollups as pages', () => {
  it('writes one page per batch record and day, and a minute query sums the pages', async () => {
    const { store, table } = await freshStore();
    const events = Array.from({ length: 40 }, (_, i) =>
      makePricedEvent({
        userId: `u${i % 4}`,
        inputTokens: i + 1,
        timestampMs: CONTRACT_T0 + (i % 10) * MINUTE,
      }),
    );
    await store.applyBatch(events.slice(0, 25), { nowMs: CONTRACT_T0 + 20 * MINUTE });
    await store.applyBatch(events.slice(20), { nowMs: CONTRACT_T0 + 20 * MINUTE });
    // Two batch records, each one page (the repeated five events add nothing).
    const items = await minutePartition(table);
    expect(items.map((i) => i.type?.S)).toEqual(['minute-page', 'minute-page']);
    const byUser = (resolution: 'minute' | 'hour') =>
      store
        .queryUsage(makeQuery({ resolution, groupBy: ['user'] }))
        .then((rows) => rows.map((r) => [r.user, r.inputTokens, r.requests]));
    const sum = (k: number) => events.reduce((s, e, i) => s + (i % 4 === k ? e.inputTokens : 0), 0);
    const expected = [0, 1, 2, 3]
      .map((k) => [`u${k}`, sum(k), 10])
      .sort((a, b) => Number(b[1]) - Number(a[1]));
    expect(await byUser('minute')).toEqual(expected);
    expect(await byUser('hour')).toEqual(expected);
    // A range inside the hour takes only the rows of its minutes, whatever page holds them.
    const [firstTwo] = await store.queryUsage(
      makeQuery({ resolution: 'minute', fromMs: CONTRACT_T0, toMs: CONTRACT_T0 + 2 * MINUTE }),
    );
    expect([firstTwo?.inputTokens, firstTwo?.requests]).toEqual([
      1 + 2 + 11 + 12 + 21 + 22 + 31 + 32,
      8,
    ]);
    await store.close();
  });

  it('still reads the per-row minute items written before pages (until their TTL)', async () => {
    const { store, table } = await freshStore();
    const e = makePricedEvent({ inputTokens: 7, outputTokens: 3, costNanoUsd: 70 });
    const n = (v: number) => ({ N: String(v) });
    const s = (v: string) => ({ S: v });
    // The item the store wrote for a minute row before pages (keys.ts's former minuteKey).
    await client.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          pk: s('M#p1#2026-03-10'),
          sk: s(`10:05#alice#${e.modelId}#chat#bedrock`),
          projectId: s('p1'),
          userId: s('alice'),
          appId: s('chat'),
          modelId: s(e.modelId),
          provider: s('bedrock'),
          bucketMs: n(CONTRACT_T0 + 5 * MINUTE),
          inputTokens: n(1_000),
          outputTokens: n(500),
          cacheReadTokens: n(0),
          cacheWriteTokens: n(0),
          totalTokens: n(1_500),
          requests: n(3),
          errors: n(0),
          costNanoUsd: n(9_000),
          unpricedTokens: n(0),
          unpricedRequests: n(0),
          noUsageRequests: n(0),
          deniedRequests: n(0),
          lastUpdatedMs: n(CONTRACT_T0),
        },
      }),
    );
    await store.applyBatch([e], { nowMs: CONTRACT_T0 + 20 * MINUTE });
    const [row] = await store.queryUsage(makeQuery({ resolution: 'minute', interval: 'minute' }));
    expect([row?.inputTokens, row?.outputTokens, row?.requests, row?.costNanoUsd]).toEqual([
      1_007,
      503,
      4,
      9_070n,
    ]);
    expect((await minutePartition(table)).map((i) => i.type?.S ?? 'row').sort()).toEqual([
      'minute-page',
      'row',
    ]);
    await store.close();
  });
});
