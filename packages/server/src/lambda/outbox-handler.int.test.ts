import { CONTRACT_T0, makeRule } from '@tokenwatch/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalDynamo, startDynalite } from '../adapters/store/dynamodb/testing/dynalite.js';
import { createLambdaRuntime, type LambdaRuntime, loadLambdaConfig } from './lambda-runtime.js';
import { isScheduledEvent } from './outbox-handler.js';
import { createSqsHandler, handler } from './sqs-handler.js';
import { startSnsEndpoint } from './testing/sns-endpoint.js';

const MINUTE = 60_000;
const NOW = CONTRACT_T0 + 20 * MINUTE;
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:tokenwatch-alerts';
/** What EventBridge sends for the stack's OutboxSchedule rule. */
const SCHEDULED = {
  version: '0',
  id: '53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa',
  'detail-type': 'Scheduled Event',
  source: 'aws.events',
  account: '123456789012',
  time: '2026-12-03T10:00:00Z',
  region: 'us-east-1',
  resources: ['arn:aws:events:us-east-1:123456789012:rule/Tokenwatch-OutboxSchedule'],
  detail: {},
} as const;

let local: LocalDynamo;
let sns: Awaited<ReturnType<typeof startSnsEndpoint>>;
const table = `outbox-${process.pid}`;
const saved = { ...process.env };

beforeAll(async () => {
  local = await startDynalite();
  sns = await startSnsEndpoint();
});
afterAll(async () => {
  process.env = saved;
  await sns.close();
  await local.close();
});

describe('the ingest function on the EventBridge schedule (outbox retries without traffic)', () => {
  it('recognises only the scheduled event', () => {
    expect(isScheduledEvent(SCHEDULED)).toBe(true);
    expect(isScheduledEvent({ Records: [] })).toBe(false);
    expect(isScheduledEvent({ source: 'aws.s3', 'detail-type': 'Scheduled Event' })).toBe(false);
    expect(isScheduledEvent(null)).toBe(false);
  });

  it('sends a delivery that failed while SNS was unreachable, once, with no usage arriving', async () => {
    // An invocation whose SNS publish fails (nothing listens on port 9): the alert's delivery
    // stays in the outbox with its backoff.
    const down: LambdaRuntime = await createLambdaRuntime(
      loadLambdaConfig({
        TOKENWATCH_TABLE: table,
        TOKENWATCH_DYNAMODB_ENDPOINT: local.endpoint,
        TOKENWATCH_SNS_ENDPOINT: 'http://127.0.0.1:9',
        TOKENWATCH_LOG_LEVEL: 'silent',
      }),
      { now: () => NOW },
    );
    try {
      await down.store.migrate();
      await down.store.createProject({ id: 'default', name: 'default', createdAtMs: CONTRACT_T0 });
      await down.store.createRule(
        makeRule({ id: 'r', projectId: 'default', channels: [{ type: 'sns', topicArn: TOPIC }] }),
        CONTRACT_T0,
      );
      const event = {
        id: 'evt-outbox-1',
        timestamp: new Date(CONTRACT_T0 + 5 * MINUTE).toISOString(),
        userId: 'alice',
        appId: 'a',
        modelId: 'm',
        provider: 'bedrock',
        inputTokens: 20_000,
        outputTokens: 0,
      };
      const result = await createSqsHandler(down)({
        Records: [{ messageId: 'm-1', body: JSON.stringify({ events: [event] }) }],
      });
      expect(result.batchItemFailures).toEqual([]);
      const [pending] = await down.store.listDeliveries('default', {}, 10);
      expect(pending?.status).toBe('pending');
      expect(pending?.attempts).toBe(1);
    } finally {
      await down.close();
    }
    expect(sns.publishes).toHaveLength(0);

    // Later, SNS is back and no usage arrives: only the schedule invokes the function.
    Object.assign(process.env, {
      TOKENWATCH_TABLE: table,
      TOKENWATCH_DYNAMODB_ENDPOINT: local.endpoint,
      TOKENWATCH_SNS_ENDPOINT: sns.url,
      TOKENWATCH_LOG_LEVEL: 'silent',
    });
    expect(await handler(SCHEDULED)).toEqual({ attempted: 1, passes: 1 });
    expect(sns.publishes.map((p) => [p.topicArn, p.attributes.user, p.attributes.rule])).toEqual([
      [TOPIC, 'alice', 'r'],
    ]);
    // The next tick finds nothing due: sent once.
    expect(await handler(SCHEDULED)).toEqual({ attempted: 0, passes: 1 });
    expect(sns.publishes).toHaveLength(1);

    const check = await createLambdaRuntime(
      loadLambdaConfig({
        TOKENWATCH_TABLE: table,
        TOKENWATCH_DYNAMODB_ENDPOINT: local.endpoint,
        TOKENWATCH_SNS_ENDPOINT: sns.url,
        TOKENWATCH_LOG_LEVEL: 'silent',
      }),
    );
    try {
      const deliveries = await check.store.listDeliveries('default', {}, 10);
      expect(deliveries.map((d) => [d.status, d.attempts])).toEqual([['delivered', 2]]);
    } finally {
      await check.close();
    }
  });

  it('refuses an event that is neither an SQS batch nor the schedule', async () => {
    await expect(handler({ source: 'aws.s3' } as never)).rejects.toThrow(/SQS batch|scheduled/);
  });
});
