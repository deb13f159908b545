import { expect } from 'vitest';
import { makeEvent, type TokenwatchApi, wholeWindow } from './tokenwatch-api.js';

interface LatencyJson {
  rows: Array<Record<string, unknown>>;
  bucketBoundsMs: number[];
}

/**
 * `GET /v1/latency` end to end, for any deployment (serve, scale-out, the Lambda API): posts
 * timed, untimed and denied calls under unique app names, waits until they are counted (`settle`),
 * then checks p50/p95 per model and per app and the parameter errors. Apps are prefixed with
 * `tag` so several runs against one project do not meet.
 */
export async function checkLatencyEndpoint(
  api: TokenwatchApi,
  ingestKey: string,
  readKey: string,
  settle: () => Promise<void> = async () => {},
): Promise<void> {
  const app = `lat-${Math.random().toString(36).slice(2, 8)}`;
  const none = { inputTokens: 0, outputTokens: 0 };
  const events = [
    // (600, 1000]: 4 calls of m-fast
    ...[700, 800, 900, 950].map((latencyMs) =>
      makeEvent({ appId: app, modelId: 'm-fast', latencyMs }),
    ),
    // (2500, 4000]: 2 calls of m-slow, one an error
    makeEvent({ appId: app, modelId: 'm-slow', latencyMs: 3_000 }),
    makeEvent({ appId: app, modelId: 'm-slow', latencyMs: 3_500, status: 'error', ...none }),
    // not in any histogram: no latency, or denied
    makeEvent({ appId: app, modelId: 'm-slow' }),
    makeEvent({ appId: app, modelId: 'm-untimed' }),
    makeEvent({ appId: app, modelId: 'm-slow', latencyMs: 1, status: 'denied', ...none }),
  ];
  const res = await api.postEvents(ingestKey, { events });
  expect(res.status, res.text).toBe(202);
  await settle();
  const w = wholeWindow();
  const latency = async (params: string) => {
    const r = await api.get(`/v1/latency?from=${w.from}&to=${w.to}&${params}`, readKey);
    expect(r.status, r.text).toBe(200);
    return r.json<LatencyJson>();
  };
  const perModel = await latency(`groupBy=model&app=${app}`);
  expect(perModel.bucketBoundsMs).toHaveLength(19);
  expect(perModel.rows.map((r) => [r.model, r.timedRequests, r.p50Ms, r.p95Ms])).toEqual([
    // most calls first: m-fast 4 requests, m-slow 3 (the denied one is not a request)
    ['m-fast', 4, 800, 980],
    ['m-slow', 2, 2500 + 0.5 * 1500, 2500 + 0.95 * 1500],
  ]);
  const perApp = await latency(`groupBy=app&app=${app}`);
  expect(perApp.rows.map((r) => [r.app, r.timedRequests, r.p50Ms])).toEqual([[app, 6, 900]]);
  const errors = await api.get(
    '/v1/latency?groupBy=model,tag:team&interval=minute&orderBy=requests',
    readKey,
  );
  expect(errors.status).toBe(400);
  const fields = errors
    .json<{ error: { details: Array<{ field: string }> } }>()
    .error.details.map((d) => d.field)
    .sort();
  expect(fields).toEqual(['groupBy', 'interval', 'orderBy']);
  expect((await api.get('/v1/latency?limit=0', readKey)).status).toBe(400);
}
