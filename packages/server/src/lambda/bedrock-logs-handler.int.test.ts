import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { CONTRACT_T0, makeQuery, makeRule } from '@tokenwatch/core/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LocalDynamo, startDynalite } from '../adapters/store/dynamodb/testing/dynalite.js';
import {
  type LogRecord,
  loadFixtureRecords,
  loggedTokens,
  redate,
} from '../bedrock/testing/log-fixtures.js';
import {
  createCloudWatchLogsHandler,
  createS3Handler,
  s3ObjectReader,
} from './bedrock-logs-handler.js';
import { createLambdaRuntime, type LambdaRuntime, loadLambdaConfig } from './lambda-runtime.js';
import { type SnsPublish, startSnsEndpoint } from './testing/sns-endpoint.js';

/**
 * Issue 15: the AWS stack's CloudWatch Logs subscription function, given the payload CloudWatch
 * Logs delivers (`{"awslogs":{"data": base64(gzip(JSON))}}`, the shape of AWS's documented
 * example), writes into DynamoDB (dynalite) through the real store, counts a redelivery once and
 * runs the project's rules; and the S3 function reads the object with the real AWS SDK client.
 */

const MINUTE = 60_000;
const NOW = CONTRACT_T0 + 50 * MINUTE;
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:tokenwatch-alerts';
const fixtures = loadFixtureRecords();
const fixture = (name: string) => fixtures.get(name) as LogRecord;

let local: LocalDynamo;
let sns: Awaited<ReturnType<typeof startSnsEndpoint>>;
let tables = 0;
beforeAll(async () => {
  local = await startDynalite();
  sns = await startSnsEndpoint();
});
afterAll(async () => {
  await sns?.close();
  await local?.close();
});

let rt: LambdaRuntime;
beforeEach(async () => {
  sns.publishes.length = 0;
  rt = await createLambdaRuntime(
    loadLambdaConfig({
      TOKENWATCH_TABLE: `bedrock-logs-${process.pid}-${++tables}`,
      TOKENWATCH_DYNAMODB_ENDPOINT: local.endpoint,
      TOKENWATCH_SNS_ENDPOINT: sns.url,
      TOKENWATCH_LOG_LEVEL: 'silent',
      TOKENWATCH_BEDROCK: JSON.stringify({
        invocationLogs: {
          principals: [{ arn: 'arn:aws:iam::123456789012:role/rag-worker', appId: 'rag' }],
        },
      }),
    }),
    { now: () => NOW },
  );
  await rt.store.migrate();
  await rt.store.createProject({ id: 'default', name: 'default', createdAtMs: CONTRACT_T0 });
  return () => rt.close();
});

/** The payload a subscription filter delivers, as in AWS's example of the `awslogs` format. */
function awslogs(messages: readonly string[], messageType = 'DATA_MESSAGE') {
  const payload = {
    messageType,
    owner: '123456789012',
    logGroup: '/aws/bedrock/modelinvocations',
    logStream: 'aws/bedrock/modelinvocations',
    subscriptionFilters: ['tokenwatch-bedrock-usage'],
    logEvents: messages.map((message, i) => ({
      id: `3719534981234567890123456789012345678901234567890123456${String(i).padStart(2, '0')}`,
      timestamp: NOW - 5 * MINUTE + i,
      message,
    })),
  };
  return { awslogs: { data: gzipSync(JSON.stringify(payload)).toString('base64') } };
}

async function totals() {
  const rows = await rt.store.queryUsage(
    makeQuery({ projectId: 'default', groupBy: ['app', 'model'], orderBy: 'inputTokens' }),
  );
  return rows.map((r) => ({
    app: r.app,
    model: r.model,
    inputTokens: r.inputTokens,
    outputTokens: r.outputTokens,
    cacheReadTokens: r.cacheReadTokens,
    cacheWriteTokens: r.cacheWriteTokens,
    requests: r.requests,
  }));
}

describe('CloudWatch Logs subscription function', () => {
  it('imports a real-shaped awslogs payload once, however often it is delivered', async () => {
    const converse = redate(fixture('converse-haiku-metadata'), NOW - 10 * MINUTE);
    const invoke = redate(fixture('invoke-model-claude-cache'), NOW - 9 * MINUTE);
    const event = awslogs([
      JSON.stringify(converse),
      JSON.stringify(invoke),
      '{"schemaType":"ModelInvocationLog","schemaVersion":"1.0"}',
      'not json at all',
    ]);
    const handle = createCloudWatchLogsHandler(rt);
    const first = await handle(event);
    expect(first).toMatchObject({
      records: 4,
      imported: 2,
      duplicates: 0,
      skipped: 2,
      skippedByReason: { missing_request_id: 1, unreadable: 1 },
    });
    // Lambda retries an asynchronous invocation that failed or timed out: same payload again.
    const again = await handle(event);
    expect(again).toMatchObject({ imported: 0, duplicates: 2 });
    expect(await totals()).toEqual([
      {
        app: 'rag', // the principal table: the role's sessions are the rag app
        model: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
        ...loggedTokens(invoke),
        requests: 1,
      },
      {
        app: 'support-bot', // requestMetadata.appId
        model: 'anthropic.claude-3-haiku-20240307-v1:0',
        ...loggedTokens(converse),
        requests: 1,
      },
    ]);
  });

  it("runs the project's rules: the crossing alerts once, through SNS", async () => {
    await rt.store.createRule(
      makeRule({
        id: 'hourly',
        projectId: 'default',
        name: 'app tokens per hour',
        scope: ['app'],
        levels: [{ value: 3_000 }],
        channels: [{ type: 'sns', topicArn: TOPIC }],
      }),
      CONTRACT_T0,
    );
    const handle = createCloudWatchLogsHandler(rt);
    const a = redate(fixture('invoke-model-claude-cache'), NOW - 3 * MINUTE); // 4,060 tokens
    await handle(awslogs([JSON.stringify(a)]));
    await handle(awslogs([JSON.stringify(a)]));
    const published: SnsPublish[] = sns.publishes.filter((p) => p.topicArn === TOPIC);
    expect(published).toHaveLength(1);
    expect(published[0]?.attributes.app).toBe('rag');
  });

  it('a control message and a payload that is not awslogs do not fail the function', async () => {
    const handle = createCloudWatchLogsHandler(rt);
    expect(
      await handle(
        awslogs(['CWL CONTROL MESSAGE: Checking health of destination'], 'CONTROL_MESSAGE'),
      ),
    ).toBeUndefined();
    expect(await handle({ awslogs: { data: 'bm90IGd6aXA=' } })).toBeUndefined();
    expect(await totals()).toEqual([]);
  });
});

describe('S3 object-created function', () => {
  let s3: Server;
  let s3Url: string;
  const objects = new Map<string, Buffer>();
  beforeAll(async () => {
    // A loopback stand-in for S3's GetObject (path-style), driven by the real @aws-sdk/client-s3.
    s3 = createServer((req, res) => {
      const body =
        req.method === 'GET'
          ? objects.get(decodeURIComponent(req.url?.split('?')[0] ?? ''))
          : undefined;
      if (!body) {
        res.writeHead(404, { 'content-type': 'application/xml' });
        res.end(
          '<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>',
        );
        return;
      }
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': body.length,
      });
      res.end(body);
    });
    await new Promise<void>((r) => s3.listen(0, '127.0.0.1', r));
    s3Url = `http://127.0.0.1:${(s3.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => s3.close(() => r())));

  /** The S3 function with the real client, pointed at the stand-in. */
  const s3Handler = async () => {
    const config = {
      ...rt.config,
      s3Endpoint: s3Url,
      localCredentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      region: 'us-east-1',
    };
    return createS3Handler(rt, await s3ObjectReader({ ...rt, config }));
  };

  it('reads the delivered .json.gz and imports it once', async () => {
    const key =
      'AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/01/01/12/20260101T120000Z_0a1b2c3d4e5f6a7b.json.gz';
    const records = [
      redate(fixture('converse-stream-nova'), NOW - 20 * MINUTE),
      redate(fixture('invoke-model-stream-titan'), NOW - 19 * MINUTE),
    ];
    objects.set(
      `/bedrock-logs/${key}`,
      gzipSync(`${records.map((r) => JSON.stringify(r)).join('\n')}\n`),
    );
    const handle = await s3Handler();
    const event = {
      Records: [
        {
          eventName: 'ObjectCreated:Put',
          s3: {
            bucket: { name: 'bedrock-logs' },
            object: { key: encodeURIComponent(key).replace(/%2F/g, '/') },
          },
        },
      ],
    };
    expect(await handle(event)).toMatchObject([{ records: 2, imported: 2, skipped: 0 }]);
    expect(await handle(event)).toMatchObject([{ imported: 0, duplicates: 2 }]);
    const rows = await totals();
    expect(rows.reduce((s, r) => s + r.outputTokens, 0)).toBe(38 + 11);
  });

  it('an object that cannot be read fails the invocation (Lambda retries it)', async () => {
    const handle = await s3Handler();
    await expect(
      handle({
        Records: [{ s3: { bucket: { name: 'bedrock-logs' }, object: { key: 'missing.json.gz' } } }],
      }),
    ).rejects.toThrow();
  });
});
