import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalDynamo, startDynalite } from '../adapters/store/dynamodb/testing/dynalite.js';
import { createFirstKeys } from '../bootstrap.js';
import { createHttpAdapter, type FunctionUrlEvent, startApiApp } from '../lambda/http-handler.js';
import {
  createLambdaRuntime,
  type LambdaRuntime,
  loadLambdaConfig,
} from '../lambda/lambda-runtime.js';
import { createLogger } from '../logging/logger.js';
import { loadOtlpProtoTypes } from './otlp-protobuf.js';
import {
  encodeRequestObject,
  readFixture,
  refreshRequest,
  toOtlpJson,
  toRequestObject,
} from './testing/otlp-payloads.js';
import { expectedCost, PRICES } from './testing/otlp-usage.js';

/**
 * Issue 14 in the AWS API function: `POST /v1/traces` through the function URL adapter (binary
 * bodies arrive base64-encoded), written to DynamoDB (dynalite), answered the OTLP way.
 */

const types = loadOtlpProtoTypes();
let local: LocalDynamo;
let rt: LambdaRuntime;
let app: Awaited<ReturnType<typeof startApiApp>>;
let handle: ReturnType<typeof createHttpAdapter>;
const logged: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  local = await startDynalite();
  const config = loadLambdaConfig({
    TOKENWATCH_TABLE: `otlp-${process.pid}`,
    TOKENWATCH_DYNAMODB_ENDPOINT: local.endpoint,
    TOKENWATCH_SNS_ENDPOINT: 'http://127.0.0.1:9',
  });
  const logger = createLogger('warn', {}, (line) => logged.push(JSON.parse(line)));
  rt = await createLambdaRuntime(config, { logger });
  await rt.store.migrate();
  app = await startApiApp(rt);
  handle = createHttpAdapter(app.url);
});
afterAll(async () => {
  await app?.close();
  await rt?.close();
  await local?.close();
});

/** The keys `tokenwatch aws create-keys` prints (the functions never create or log keys). */
function keys(): Promise<{ ingestKey: string; adminKey: string }> {
  return createFirstKeys(rt.store, { projectId: 'default', nowMs: Date.now() });
}

function event(
  method: string,
  path: string,
  options: { key?: string; body?: Buffer; contentType?: string; query?: string } = {},
): FunctionUrlEvent {
  return {
    rawPath: path,
    rawQueryString: options.query ?? '',
    headers: {
      host: 'abc.lambda-url.us-east-1.on.aws',
      ...(options.key ? { authorization: `Bearer ${options.key}` } : {}),
      ...(options.contentType ? { 'content-type': options.contentType } : {}),
    },
    ...(options.body ? { body: options.body.toString('base64'), isBase64Encoded: true } : {}),
    requestContext: { http: { method, sourceIp: '203.0.113.9' } },
  };
}

describe('OTLP in the AWS API function', () => {
  it('protobuf and JSON exports are counted exactly once, with OTLP answers', async () => {
    const { ingestKey, adminKey } = await keys();
    const pb = encodeRequestObject(
      types,
      refreshRequest(toRequestObject(types, readFixture('ai-sdk-6')), Date.now()),
    );
    const first = await handle(
      event('POST', '/v1/traces', {
        key: ingestKey,
        body: pb,
        contentType: 'application/x-protobuf',
      }),
    );
    expect(first.statusCode).toBe(200);
    expect(first.headers['content-type']).toBe('application/x-protobuf');
    expect(first.isBase64Encoded).toBe(true);
    const answer = types.response.toObject(
      types.response.decode(Buffer.from(first.body, 'base64')),
      { longs: Number },
    ) as { partialSuccess?: { rejectedSpans?: number } };
    expect(answer.partialSuccess?.rejectedSpans).toBe(2); // the two AI SDK root spans
    const retry = await handle(
      event('POST', '/v1/traces', {
        key: ingestKey,
        body: pb,
        contentType: 'application/x-protobuf',
      }),
    );
    expect(retry.statusCode).toBe(200);

    const json = toOtlpJson(
      refreshRequest(toRequestObject(types, readFixture('openinference')), Date.now()),
    );
    const second = await handle(
      event('POST', '/v1/traces', {
        key: ingestKey,
        body: Buffer.from(json),
        contentType: 'application/json',
      }),
    );
    expect(second.statusCode, second.body).toBe(200);
    expect(second.body).toBe('{}');

    const refused = await handle(
      event('POST', '/v1/traces', {
        key: ingestKey,
        body: Buffer.from([0x0a, 0xff, 0xff]),
        contentType: 'application/x-protobuf',
      }),
    );
    expect(refused.statusCode).toBe(400);
    const status = types.status.toObject(
      types.status.decode(Buffer.from(refused.body, 'base64')),
    ) as {
      message: string;
    };
    expect(status.message).toMatch(/not a protobuf ExportTraceServiceRequest/);

    const usage = await handle(
      event('GET', '/v1/usage', { key: adminKey, query: 'groupBy=app,model&limit=100' }),
    );
    expect(usage.statusCode, usage.body).toBe(200);
    const rows = (JSON.parse(usage.body).rows as Array<Record<string, unknown>>).map((r) => [
      r.app,
      r.model,
      r.inputTokens,
      r.cacheReadTokens,
      r.cacheWriteTokens,
      r.outputTokens,
      r.requests,
      r.costNanoUsd,
    ]);
    const sonnet = {
      inputTokens: 10,
      cacheReadTokens: 1800,
      cacheWriteTokens: 200,
      outputTokens: 60,
    };
    const mini = { inputTokens: 476, cacheReadTokens: 1024, cacheWriteTokens: 0, outputTokens: 40 };
    expect(rows.sort()).toEqual(
      [
        [
          'search-api',
          'gpt-4o-mini-2024-07-18',
          476,
          1024,
          0,
          40,
          1,
          String(expectedCost(PRICES.gpt4oMini, mini)),
        ],
        [
          'support-bot',
          'claude-sonnet-4-5-20250929',
          10,
          1800,
          200,
          60,
          1,
          String(expectedCost(PRICES.claudeSonnet45, sonnet)),
        ],
        [
          'support-bot',
          'gpt-4o-mini-2024-07-18',
          476,
          1024,
          0,
          40,
          1,
          String(expectedCost(PRICES.gpt4oMini, mini)),
        ],
      ].sort(),
    );
  });
});
