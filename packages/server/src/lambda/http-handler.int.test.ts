import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalDynamo, startDynalite } from '../adapters/store/dynamodb/testing/dynalite.js';
import { createFirstKeys } from '../bootstrap.js';
import { createLogger } from '../logging/logger.js';
import { createHttpAdapter, type FunctionUrlEvent, startApiApp } from './http-handler.js';
import { createLambdaRuntime, type LambdaRuntime, loadLambdaConfig } from './lambda-runtime.js';

let local: LocalDynamo;
let rt: LambdaRuntime;
let app: Awaited<ReturnType<typeof startApiApp>>;
let handle: ReturnType<typeof createHttpAdapter>;
const logged: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  local = await startDynalite();
  const config = loadLambdaConfig({
    TOKENWATCH_TABLE: `api-${process.pid}`,
    TOKENWATCH_DYNAMODB_ENDPOINT: local.endpoint,
    TOKENWATCH_SNS_ENDPOINT: 'http://127.0.0.1:9',
  });
  // Every level: no line of any level may carry a key.
  const logger = createLogger('debug', {}, (line) => logged.push(JSON.parse(line)));
  rt = await createLambdaRuntime(config, { logger });
  await rt.store.migrate();
  app = await startApiApp(rt);
  handle = createHttpAdapter(app.url);
});
afterAll(async () => {
  await app.close();
  await rt.close();
  await local.close();
});

function request(
  method: string,
  path: string,
  options: { key?: string; body?: unknown; query?: string; base64?: boolean } = {},
): FunctionUrlEvent {
  const json = options.body === undefined ? undefined : JSON.stringify(options.body);
  return {
    rawPath: path,
    rawQueryString: options.query ?? '',
    headers: {
      host: 'abc.lambda-url.us-east-1.on.aws',
      ...(options.key ? { authorization: `Bearer ${options.key}` } : {}),
      ...(json ? { 'content-type': 'application/json' } : {}),
    },
    ...(json
      ? options.base64
        ? { body: Buffer.from(json).toString('base64'), isBase64Encoded: true }
        : { body: json, isBase64Encoded: false }
      : {}),
    requestContext: { http: { method, sourceIp: '203.0.113.9' } },
  };
}

let firstKeys: ReturnType<typeof createFirstKeys> | undefined;
/** The keys `tokenwatch aws create-keys` would print (created once per table). */
function keys() {
  firstKeys ??= createFirstKeys(rt.store, { projectId: 'default', nowMs: Date.now(), force: true });
  return firstKeys;
}

describe('Lambda function URL handler (the HTTP app over DynamoDB)', () => {
  it('never writes a key to the log: the first start says how to create keys instead', async () => {
    expect(logged.some((l) => String(l.msg).includes('tokenwatch aws create-keys'))).toBe(true);
    // The first request after `aws create-keys`: still no key in any log line.
    const { adminKey } = await createFirstKeys(rt.store, {
      projectId: 'default',
      nowMs: Date.now(),
    });
    expect((await handle(request('GET', '/v1/usage', { key: adminKey }))).statusCode).toBe(200);
    const created = await handle(
      request('POST', '/v1/keys', { key: adminKey, body: { role: 'ingest', name: 'more' } }),
    );
    expect(created.statusCode, created.body).toBe(201);
    const more = String(JSON.parse(created.body).key);
    expect(more).toMatch(/^twk_/);
    expect(JSON.stringify(logged)).not.toContain(more);
    expect(logged.length).toBeGreaterThan(0);
    for (const line of logged) expect(JSON.stringify(line)).not.toContain('twk_');
    expect(JSON.stringify(logged)).not.toContain(adminKey);
  });

  it('does not serve /metrics on the public function URL, with or without a key', async () => {
    const { adminKey } = await keys();
    for (const path of ['/metrics', '/metrics/', '//metrics']) {
      const anonymous = await handle(request('GET', path));
      expect(anonymous.body).not.toContain('tokenwatch_');
      const admin = await handle(request('GET', path, { key: adminKey }));
      expect(admin.body).not.toContain('tokenwatch_');
    }
    expect((await handle(request('GET', '/metrics'))).statusCode).toBe(404);
  });

  it('takes the key from x-tokenwatch-authorization (function URL with AWS_IAM auth)', async () => {
    const { adminKey } = await keys();
    const signed = request('GET', '/v1/usage');
    signed.headers = {
      ...signed.headers,
      authorization:
        'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261203/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=abc',
      'x-tokenwatch-authorization': `Bearer ${adminKey}`,
    };
    expect((await handle(signed)).statusCode).toBe(200);
    signed.headers['x-tokenwatch-authorization'] = 'Bearer twk_wrong';
    expect((await handle(signed)).statusCode).toBe(401);
  });

  it('serves ingest and the query API from the function URL event', async () => {
    const { ingestKey, adminKey } = await keys();

    const health = await handle(request('GET', '/healthz'));
    expect(health.statusCode).toBe(200);

    expect((await handle(request('GET', '/v1/usage'))).statusCode).toBe(401);

    const now = Date.now();
    const events = ['alice', 'alice', 'bob'].map((userId, i) => ({
      id: `evt-api-${i}`,
      timestamp: new Date(now - 60_000).toISOString(),
      userId,
      appId: 'support-bot',
      modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
      provider: 'bedrock',
      inputTokens: 100,
      outputTokens: 10,
    }));
    const posted = await handle(
      request('POST', '/v1/events', { key: ingestKey, body: { events }, base64: true }),
    );
    expect(posted.statusCode).toBe(202);
    expect(JSON.parse(posted.body)).toMatchObject({ accepted: 3, duplicates: 0 });
    const again = await handle(request('POST', '/v1/events', { key: ingestKey, body: { events } }));
    expect(JSON.parse(again.body)).toMatchObject({ accepted: 0, duplicates: 3 });

    const usage = await handle(
      request('GET', '/v1/usage', { key: adminKey, query: 'groupBy=user' }),
    );
    expect(usage.statusCode, usage.body).toBe(200);
    expect(usage.isBase64Encoded).toBe(false);
    expect(usage.headers['x-request-id']).toBeTruthy();
    const rows = JSON.parse(usage.body).rows as Array<{ user: string; totalTokens: number }>;
    expect(rows.map((r) => [r.user, r.totalTokens])).toEqual([
      ['alice', 220],
      ['bob', 110],
    ]);
  });

  it('compresses a large answer for the function URL only when the client accepts it', async () => {
    const { adminKey } = await keys();
    const plain = await handle(request('GET', '/v1/prices', { key: adminKey }));
    const asked = request('GET', '/v1/prices', { key: adminKey });
    asked.headers = { ...asked.headers, 'accept-encoding': 'br;q=0, gzip;q=0.5' };
    const zipped = await handle(asked);
    expect(plain.statusCode).toBe(200);
    expect(plain.isBase64Encoded).toBe(false);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.isBase64Encoded).toBe(true);
    expect(gunzipSync(Buffer.from(zipped.body, 'base64')).toString('utf8')).toBe(plain.body);
    expect(zipped.headers.vary).toMatch(/accept-encoding/i);
    const refused = request('GET', '/v1/prices', { key: adminKey });
    refused.headers = { ...refused.headers, 'accept-encoding': 'gzip;q=0, identity' };
    expect((await handle(refused)).headers['content-encoding']).toBeUndefined();
  });
});
