import { afterAll, describe, expect, it } from 'vitest';
import {
  createScaleOutEnv,
  killStartedWorkers,
  startWorkerProcess,
  waitDrained,
} from '../testing/scale-out-harness.js';
import { killStartedServers, startServerProcess } from '../testing/server-process.js';
import { natsReachable, postgresReachable } from '../testing/services.js';
import { TokenwatchApi } from '../testing/tokenwatch-api.js';
import { whenServices } from '../testing/when-services.js';
import { loadOtlpProtoTypes } from './otlp-protobuf.js';
import {
  encodeRequestObject,
  readFixture,
  refreshRequest,
  toOtlpJson,
  toRequestObject,
} from './testing/otlp-payloads.js';
import { PRICES, storedUsage, times, usage, usageKey } from './testing/otlp-usage.js';

/**
 * Issue 14 in scale-out mode: `serve --queue nats://…` publishes the usage of `POST /v1/traces`
 * to JetStream like `POST /v1/events`, and a `tokenwatch worker` applies it to PostgreSQL.
 * Retried exports (same spans) are counted once.
 */
const pgUp = await postgresReachable();
const natsUp = await natsReachable();
const types = loadOtlpProtoTypes();

whenServices({ PostgreSQL: pgUp, NATS: natsUp }, () => {
  describe('OTLP in scale-out: serve → JetStream → worker → PostgreSQL', () => {
    afterAll(async () => {
      await killStartedWorkers();
      await killStartedServers();
    });

    it('fixtures posted as protobuf and JSON, each twice, are counted exactly once', async () => {
      const env = await createScaleOutEnv('otlp');
      try {
        const serve = await startServerProcess({ dataDir: env.dataDir });
        const worker = await startWorkerProcess(env);
        const api = new TokenwatchApi(serve.url);
        const post = (body: Buffer | string, contentType: string) =>
          api.request('/v1/traces', {
            method: 'POST',
            headers: { 'content-type': contentType, authorization: `Bearer ${serve.ingestKey}` },
            body,
          });
        const bodies: Array<[Buffer | string, string]> = [];
        for (let i = 0; i < 3; i++) {
          bodies.push([
            encodeRequestObject(
              types,
              refreshRequest(toRequestObject(types, readFixture('openllmetry')), Date.now()),
            ),
            'application/x-protobuf',
          ]);
          bodies.push([
            toOtlpJson(refreshRequest(toRequestObject(types, readFixture('ai-sdk-6')), Date.now())),
            'application/json',
          ]);
        }
        for (const [body, type] of [...bodies, ...bodies]) {
          const res = await post(body, type);
          expect(res.status, res.text).toBe(200);
        }
        await waitDrained(env);
        const sonnet = usage(PRICES.claudeSonnet45, {
          inputTokens: 10,
          cacheReadTokens: 1800,
          cacheWriteTokens: 200,
          outputTokens: 60,
        });
        const mini = usage(PRICES.gpt4oMini, {
          inputTokens: 476,
          cacheReadTokens: 1024,
          outputTokens: 40,
        });
        // OpenLLMetry's OpenAI span carries no cache attribute (otlp-fixtures/README.md).
        const miniNoCacheInfo = usage(PRICES.gpt4oMini, { inputTokens: 1500, outputTokens: 40 });
        expect(Object.fromEntries(await storedUsage(api, serve.adminKey as string))).toEqual({
          [usageKey('anonymous', 'billing-api', 'claude-sonnet-4-5-20250929')]: times(sonnet, 3),
          [usageKey('anonymous', 'billing-api', 'gpt-4o-mini-2024-07-18')]: times(
            miniNoCacheInfo,
            3,
          ),
          [usageKey('user-ai-sdk', 'support-bot', 'claude-sonnet-4-5-20250929')]: times(sonnet, 3),
          [usageKey('user-ai-sdk', 'support-bot', 'gpt-4o-mini-2024-07-18')]: times(mini, 3),
        });
        await worker.kill('SIGTERM');
        await serve.kill('SIGTERM');
      } finally {
        await env.cleanup();
      }
    }, 120_000);
  });
});
