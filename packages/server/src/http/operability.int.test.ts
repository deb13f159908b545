import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { HttpResponse } from '../testing/http-client.js';
import {
  createKey,
  killStartedServers,
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from '../testing/server-process.js';
import {
  makeEvent,
  metricValue,
  sumEvents,
  TokenwatchApi,
  type WireEvent,
} from '../testing/tokenwatch-api.js';

/**
 * Issue 2, operability of `tokenwatch serve`: health and readiness, the Prometheus counters
 * (ingested, duplicates, conflicts, unpriced, rejected by reason) against what was sent, and a
 * graceful SIGTERM that answers what it accepted, flushes it, and exits 0.
 */

const dataDirs: string[] = [];

afterAll(async () => {
  await killStartedServers();
  for (const dir of dataDirs) removeDataDir(dir);
});

async function start(env: Record<string, string> = {}, dataDir?: string): Promise<ServerProcess> {
  const server = await startServerProcess({ env, ...(dataDir ? { dataDir } : {}) });
  if (!dataDirs.includes(server.dataDir)) dataDirs.push(server.dataDir);
  return server;
}

describe('health, readiness and metrics', () => {
  it('/healthz and /readyz answer 200 without a key', async () => {
    const server = await start();
    const api = new TokenwatchApi(server.url);
    const health = await api.get('/healthz');
    expect(health.status).toBe(200);
    expect(health.json()).toEqual({ status: 'ok' });
    const ready = await api.get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready' });
    expect(await server.kill('SIGTERM')).toEqual({ code: 0, signal: null });
  });

  it('/metrics counts ingested, duplicate, conflicting, unpriced and rejected events', async () => {
    const server = await start();
    const api = new TokenwatchApi(server.url);
    const ingestKey = server.ingestKey as string;
    const read = await createKey(server.dataDir, { role: 'read' });

    const batch = Array.from({ length: 30 }, (_, i) =>
      makeEvent({ userId: `metrics-user-${i % 4}` }),
    );
    const conflicted = makeEvent({ userId: 'metrics-conflict' });
    const unpriced = makeEvent({ userId: 'metrics-unpriced', modelId: 'nope-1', provider: 'acme' });
    const accepted: HttpResponse[] = [
      await api.postEvents(ingestKey, { events: batch }),
      await api.postEvents(ingestKey, { events: batch }),
      await api.postEvents(ingestKey, conflicted),
      await api.postEvents(ingestKey, { ...conflicted, outputTokens: 1 }),
      await api.postEvents(ingestKey, unpriced),
    ];
    for (const res of accepted) expect(res.status).toBe(202);

    const rejected: Array<[number, () => Promise<HttpResponse>]> = [
      [400, () => api.postEvents(ingestKey, { ...makeEvent(), inputTokens: -1 })],
      [400, () => api.postEvents(ingestKey, { events: [makeEvent(), { id: 'x' }] })],
      [400, () => api.postEvents(ingestKey, '{"events": [')],
      [401, () => api.postEvents(undefined, makeEvent())],
      [401, () => api.postEvents('twk_unknown', makeEvent())],
      [403, () => api.postEvents(read.key, makeEvent())],
      [413, () => api.postEvents(ingestKey, `{"x":"${'a'.repeat(1024 * 1024)}"}`)],
      [415, () => api.postEvents(ingestKey, '{}', { headers: { 'content-encoding': 'br' } })],
    ];
    for (const [status, send] of rejected) expect((await send()).status).toBe(status);

    const res = await api.get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = res.text;
    expect(metricValue(m, 'tokenwatch_events_ingested_total')).toBe(30 + 1 + 1);
    expect(metricValue(m, 'tokenwatch_events_duplicate_total')).toBe(30);
    expect(metricValue(m, 'tokenwatch_events_conflict_total')).toBe(1);
    expect(metricValue(m, 'tokenwatch_events_unpriced_total')).toBe(1);
    const rejectedBy = (reason: string) =>
      metricValue(m, `tokenwatch_requests_rejected_total{reason="${reason}"}`);
    expect(rejectedBy('invalid_event')).toBe(2);
    expect(rejectedBy('invalid_body')).toBe(1);
    expect(rejectedBy('unauthenticated')).toBe(2);
    expect(rejectedBy('forbidden')).toBe(1);
    expect(rejectedBy('payload_too_large')).toBe(1);
    expect(rejectedBy('unsupported_media_type')).toBe(1);
    // Every event of every accepted request went through a flush.
    expect(metricValue(m, 'tokenwatch_flush_events_sum')).toBe(30 + 30 + 1 + 1 + 1);
    expect(metricValue(m, 'tokenwatch_flush_failures_total')).toBe(0);
    expect(
      metricValue(m, 'tokenwatch_http_requests_total{route="POST /v1/events",status="202"}'),
    ).toBe(5);
    // Low cardinality: no user, app, model or key in the exposition.
    for (const secret of ['metrics-user', 'metrics-unpriced', 'nope-1', 'twk_', 'chat']) {
      expect(m).not.toContain(secret);
    }
    // And the usage agrees with the counters.
    const totals = await api.storedTotals(server.adminKey as string);
    expect(totals.requests).toBe(32);
    expect(totals).toEqual(sumEvents([...batch, conflicted, unpriced]));
    expect(await server.kill('SIGTERM')).toEqual({ code: 0, signal: null });
  });
});

describe('backpressure', () => {
  it('a full ingest queue answers 503 with Retry-After, stores nothing of it, and fails /readyz', async () => {
    // The smallest queue (1000 events) and the longest flush wait (1 s): one full batch fills it.
    const server = await start({
      TOKENWATCH_MAX_QUEUED_EVENTS: '1000',
      TOKENWATCH_FLUSH_MAX_WAIT_MS: '1000',
    });
    const api = new TokenwatchApi(server.url);
    const ingestKey = server.ingestKey as string;
    const adminKey = server.adminKey as string;
    const stored: WireEvent[] = [];
    let observed = false;
    // The queue is full for about a second; on a loaded machine try again if we missed it.
    for (let attempt = 0; attempt < 3 && !observed; attempt++) {
      const fill = Array.from({ length: 1000 }, (_, i) => makeEvent({ userId: `bp-${i % 5}` }));
      const filling = api.postEvents(ingestKey, { events: fill });
      for (let i = 0; ; i++) {
        const metrics = (await api.get('/metrics')).text;
        if (metricValue(metrics, 'tokenwatch_ingest_backlog_events') >= 1000) break;
        if (i > 500) throw new Error('the batch never reached the ingest queue');
        await new Promise((r) => setTimeout(r, 2));
      }
      const extra = makeEvent({ userId: 'bp-overflow' });
      const [refused, ready] = await Promise.all([
        api.postEvents(ingestKey, extra),
        api.get('/readyz'),
      ]);
      const filled = await filling;
      expect(filled.status).toBe(202);
      expect(filled.json()).toEqual({ accepted: 1000, duplicates: 0, conflicts: 0 });
      stored.push(...fill);
      if (refused.status === 202) {
        stored.push(extra); // the flush came first; the event is counted, nothing was shown
        continue;
      }
      observed = true;
      expect(refused.status, refused.text).toBe(503);
      expect(refused.json<{ error: { code: string } }>().error.code).toBe('overloaded');
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      if (ready.status !== 200) {
        expect(ready.status).toBe(503);
        expect(ready.text).toContain('backlog');
      }
      // Nothing of the refused request was stored: re-sent, it is new.
      const retried = await api.postEvents(ingestKey, extra);
      expect(retried.json()).toEqual({ accepted: 1, duplicates: 0, conflicts: 0 });
      stored.push(extra);
    }
    expect(observed, 'never saw the full queue').toBe(true);
    expect(await api.storedTotals(adminKey)).toEqual(sumEvents(stored));
    const m = (await api.get('/metrics')).text;
    expect(metricValue(m, 'tokenwatch_requests_rejected_total{reason="overloaded"}')).toBe(1);
    expect(await server.kill('SIGTERM')).toEqual({ code: 0, signal: null });
  });
});

describe('graceful shutdown', () => {
  it('SIGTERM answers the requests waiting for a flush, flushes them, and exits 0', async () => {
    // A long flush wait keeps accepted requests queued, so SIGTERM meets them in flight.
    const server = await start({ TOKENWATCH_FLUSH_MAX_WAIT_MS: '1000' });
    const api = new TokenwatchApi(server.url);
    const ingestKey = server.ingestKey as string;
    const adminKey = server.adminKey as string;

    const first = Array.from({ length: 100 }, (_, i) => makeEvent({ userId: `sigterm-${i % 3}` }));
    const pending = api.postEvents(ingestKey, { events: first });
    // Wait until the server holds the batch in its group-commit queue.
    for (let i = 0; ; i++) {
      const metrics = (await api.get('/metrics')).text;
      if (metricValue(metrics, 'tokenwatch_ingest_backlog_events') >= 100) break;
      if (i > 500) throw new Error('the batch never reached the ingest queue');
      await new Promise((r) => setTimeout(r, 2));
    }
    const exited = server.kill('SIGTERM');
    // A request after the signal is refused (503 or connection refused) or, if taken, counted.
    const late: WireEvent[] = [makeEvent({ userId: 'sigterm-late' })];
    const lateAnswer = await api
      .postEvents(ingestKey, { events: late })
      .then((r) => r.status)
      .catch(() => 'connection refused');

    const answer = await pending;
    expect(answer.status, answer.text).toBe(202);
    expect(answer.json()).toEqual({ accepted: 100, duplicates: 0, conflicts: 0 });
    expect(await exited).toEqual({ code: 0, signal: null });
    expect([202, 503, 'connection refused']).toContain(lateAnswer);

    const again = await start({}, server.dataDir);
    const api2 = new TokenwatchApi(again.url);
    const expected = lateAnswer === 202 ? [...first, ...late] : first;
    expect(await api2.storedTotals(adminKey)).toEqual(sumEvents(expected));
    expect(await again.kill('SIGINT')).toEqual({ code: 0, signal: null });
  });

  it('SIGTERM on an idle server exits 0 and removes server.json', async () => {
    const server = await start();
    expect(await server.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(existsSync(join(server.dataDir, 'server.json'))).toBe(false);
  });
});
