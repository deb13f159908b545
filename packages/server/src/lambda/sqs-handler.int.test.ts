import { CONTRACT_T0, makeQuery, makeRule } from '@tokenwatch/core/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DynamoDbStore } from '../adapters/store/dynamodb/dynamodb-store.js';
import { type LocalDynamo, startDynalite } from '../adapters/store/dynamodb/testing/dynalite.js';
import { createLambdaRuntime, type LambdaRuntime, loadLambdaConfig } from './lambda-runtime.js';
import { createSqsHandler, type SqsRecord } from './sqs-handler.js';
import { type SnsPublish, startSnsEndpoint } from './testing/sns-endpoint.js';

const MINUTE = 60_000;
const NOW = CONTRACT_T0 + 20 * MINUTE;
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:tokenwatch-alerts';
const MODEL = 'us.anthropic.claude-3-5-haiku-20241022-v1:0';

let local: LocalDynamo;
let sns: Awaited<ReturnType<typeof startSnsEndpoint>>;
let tables = 0;

beforeAll(async () => {
  local = await startDynalite();
  sns = await startSnsEndpoint();
});
afterAll(async () => {
  await sns.close();
  await local.close();
});

let rt: LambdaRuntime;
let handle: ReturnType<typeof createSqsHandler>;

beforeEach(async () => {
  sns.publishes.length = 0;
  const config = loadLambdaConfig({
    TOKENWATCH_TABLE: `sqs-${process.pid}-${++tables}`,
    TOKENWATCH_DYNAMODB_ENDPOINT: local.endpoint,
    TOKENWATCH_SNS_ENDPOINT: sns.url,
    TOKENWATCH_LOG_LEVEL: 'silent',
  });
  rt = await createLambdaRuntime(config, { now: () => NOW });
  await rt.store.migrate();
  await rt.store.createProject({ id: 'default', name: 'default', createdAtMs: CONTRACT_T0 });
  // The seed's rule: 10,000 tokens per user × model per hour, to an SNS topic.
  await rt.store.createRule(
    makeRule({
      id: 'seed-hourly',
      projectId: 'default',
      name: 'seed: 10k tokens per user and model per hour',
      channels: [{ type: 'sns', topicArn: TOPIC }],
    }),
    CONTRACT_T0,
  );
  handle = createSqsHandler(rt);
  return () => rt.close();
});

let seq = 0;
/** A wire event as the SDK sends it. */
function ev(userId: string, tokens: number) {
  seq++;
  return {
    id: `0190c2a5-0000-7000-8000-${String(seq).padStart(12, '0')}`,
    timestamp: new Date(CONTRACT_T0 + 5 * MINUTE + seq).toISOString(),
    userId,
    appId: 'support-bot',
    modelId: MODEL,
    provider: 'bedrock',
    inputTokens: tokens,
    outputTokens: 0,
  };
}
/** An SQS record whose body is exactly what @tokenwatch/sdk/sqs sends. */
function record(messageId: string, events: unknown[], receiveCount = 1): SqsRecord {
  return {
    messageId,
    body: JSON.stringify({ events }),
    attributes: { ApproximateReceiveCount: String(receiveCount) },
    messageAttributes: { 'tokenwatch-contract': { stringValue: 'v1', dataType: 'String' } },
  };
}

async function byUser(store: DynamoDbStore) {
  const rows = await store.queryUsage(makeQuery({ projectId: 'default', groupBy: ['user'] }));
  return Object.fromEntries(rows.map((r) => [r.user, [r.inputTokens, r.requests]]));
}

describe('Lambda SQS handler', () => {
  it('counts duplicates and redeliveries once, reports only the poison record, alerts once', async () => {
    const a = [ev('alice', 3_000), ev('alice', 3_000), ev('bob', 500)];
    const b = [ev('alice', 3_000), ev('bob', 600)];
    const c = [ev('alice', 2_000), ev('bob', 9_000)];
    const first = await handle({
      Records: [
        record('m-a', a),
        record('m-poison', [{ ...ev('mallory', 1), inputTokens: -5 }]),
        record('m-b', b),
        record('m-a-again', a), // SQS standard queues may deliver a message twice
        { messageId: 'm-not-json', body: '{"events": [' },
      ],
    });
    expect(first.batchItemFailures).toEqual([
      { itemIdentifier: 'm-poison' },
      { itemIdentifier: 'm-not-json' },
    ]);
    expect(await byUser(rt.store)).toEqual({ alice: [9_000, 3], bob: [1_100, 2] });
    expect(sns.publishes).toHaveLength(0);

    // Redelivery of a message whose ack was lost, the poison again, and new usage that crosses.
    const second = await handle({
      Records: [
        record('m-b', b, 2),
        record('m-poison', [{ ...ev('x', 1), inputTokens: -5 }], 2),
        record('m-c', c),
      ],
    });
    expect(second.batchItemFailures).toEqual([{ itemIdentifier: 'm-poison' }]);
    expect(await byUser(rt.store)).toEqual({ alice: [11_000, 4], bob: [10_100, 3] });
    // One alert per rule × scope key × window × level, published to SNS before returning.
    const alerts = await rt.store.listAlerts({ projectId: 'default', limit: 10 });
    expect(alerts.map((x) => x.scopeKey).sort()).toEqual([
      JSON.stringify(['alice', MODEL]),
      JSON.stringify(['bob', MODEL]),
    ]);
    expect(
      sns.publishes
        .map((p: SnsPublish) => [p.topicArn, p.attributes.user, p.attributes.rule])
        .sort(),
    ).toEqual([
      [TOPIC, 'alice', 'seed-hourly'],
      [TOPIC, 'bob', 'seed-hourly'],
    ]);
    expect(sns.publishes[0]?.subject).toMatch(
      /^\[tokenwatch\] (alice|bob) exceeded 10,000 tokens\/hour/,
    );
    const deliveries = await rt.store.listDeliveries('default', {}, 10);
    expect(deliveries.map((d) => d.status)).toEqual(['delivered', 'delivered']);

    // Everything once more, as SQS would after a lost batch response: nothing changes.
    const third = await handle({
      Records: [record('m-a', a, 3), record('m-b', b, 3), record('m-c', c, 2)],
    });
    expect(third.batchItemFailures).toEqual([]);
    expect(await byUser(rt.store)).toEqual({ alice: [11_000, 4], bob: [10_100, 3] });
    expect(await rt.store.listAlerts({ projectId: 'default', limit: 10 })).toHaveLength(2);
    expect(sns.publishes).toHaveLength(2);
  });

  it('reports every good record when the store fails, and the redelivery counts them once', async () => {
    const a = [ev('carol', 6_000), ev('carol', 6_000)];
    const b = [ev('dave', 1)];
    rt.store.injectWriteFailure(6); // the batch dies half-way through its writes
    const failed = await handle({ Records: [record('m-a', a), record('m-b', b)] });
    expect(failed.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['m-a', 'm-b']);
    rt.store.injectWriteFailure(undefined);
    const redelivered = await handle({ Records: [record('m-b', b, 2), record('m-a', a, 2)] });
    expect(redelivered.batchItemFailures).toEqual([]);
    expect(await byUser(rt.store)).toEqual({ carol: [12_000, 2], dave: [1, 1] });
    expect(await rt.store.listAlerts({ projectId: 'default', limit: 10 })).toHaveLength(1);
    expect(sns.publishes.map((p) => p.attributes.user)).toEqual(['carol']);
  });
});
