import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createKey,
  killStartedServers,
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from '../../testing/server-process.js';
import { openStream } from '../../testing/sse-stream.js';
import { makeEvent, metricValue, TokenwatchApi } from '../../testing/tokenwatch-api.js';

/**
 * `GET /v1/live` against the real `tokenwatch serve`: a committed event reaches an open stream
 * within 2 s, the key works in the header or (this route only) in `?key=`, ingest keys and
 * missing keys are refused, closed streams unsubscribe, and an open stream does not hold up
 * shutdown.
 */

let server: ServerProcess;
let api: TokenwatchApi;
let adminKey: string;
let ingestKey: string;

beforeAll(async () => {
  server = await startServerProcess();
  api = new TokenwatchApi(server.url);
  adminKey = server.adminKey as string;
  ingestKey = server.ingestKey as string;
});

afterAll(async () => {
  if (server) {
    await server.kill('SIGTERM');
    removeDataDir(server.dataDir);
  }
  await killStartedServers();
});

describe('GET /v1/live', () => {
  it('streams a usage notice within 2 s of the commit (key in ?key=)', async () => {
    const stream = await openStream(`${server.url}/v1/live?key=${encodeURIComponent(adminKey)}`);
    try {
      expect(stream.status).toBe(200);
      expect(stream.contentType).toBe('text/event-stream; charset=utf-8');
      await stream.next('ready');
      const event = makeEvent({
        userId: 'live-user',
        appId: 'live-app',
        inputTokens: 700,
        outputTokens: 50,
      });
      const sentAt = Date.now();
      const usage = stream.next('usage', 2000);
      expect((await api.postEvents(ingestKey, event)).status).toBe(202);
      const notice = JSON.parse((await usage).data) as Record<string, unknown>;
      expect(Date.now() - sentAt).toBeLessThan(2000);
      expect(notice).toMatchObject({
        type: 'usage',
        events: 1,
        totalTokens: 750,
        users: ['live-user'],
        apps: ['live-app'],
      });
      // A duplicate adds nothing and announces nothing.
      const before = stream.events.length;
      expect((await api.postEvents(ingestKey, event)).status).toBe(202);
      await new Promise((r) => setTimeout(r, 300));
      expect(stream.events.slice(before).filter((e) => e.event === 'usage')).toHaveLength(0);
    } finally {
      stream.close();
    }
  });

  it('takes a read key in the Authorization header; refuses ingest and missing keys', async () => {
    const read = await createKey(server.dataDir, { role: 'read' });
    const stream = await openStream(`${server.url}/v1/live`, {
      authorization: `Bearer ${read.key}`,
    });
    expect(stream.status).toBe(200);
    await stream.next('ready');
    stream.close();

    const ingest = await api.get(`/v1/live?key=${encodeURIComponent(ingestKey)}`);
    expect(ingest.status).toBe(403);
    expect((await api.get('/v1/live')).status).toBe(401);
    expect((await api.get('/v1/live?key=twk_nope')).status).toBe(401);
    expect((await api.get(`/v1/live?key=${adminKey}&project=x`)).status).toBe(400);
  });

  it('accepts ?key= on this route only', async () => {
    // Elsewhere `key` is an unknown parameter: refused (400, naming it) before any key is read.
    for (const path of ['/v1/usage', '/v1/keys']) {
      const res = await api.get(`${path}?key=${encodeURIComponent(adminKey)}`);
      expect(res.status).toBe(400);
      expect(res.json().error.details).toContainEqual({
        field: 'key',
        reason: 'is not a known query parameter',
      });
    }
  });

  it('a closed stream unsubscribes', async () => {
    const metrics = async () =>
      metricValue((await api.get('/metrics')).text, 'tokenwatch_live_subscribers');
    const stream = await openStream(`${server.url}/v1/live?key=${encodeURIComponent(adminKey)}`);
    await stream.next('ready');
    expect(await metrics()).toBe(1);
    stream.close();
    const deadline = Date.now() + 3000;
    while ((await metrics()) !== 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(await metrics()).toBe(0);
  });

  it('an open stream does not hold up shutdown', async () => {
    const other = await startServerProcess();
    try {
      const stream = await openStream(
        `${other.url}/v1/live?key=${encodeURIComponent(other.adminKey as string)}`,
      );
      await stream.next('ready');
      const t0 = Date.now();
      const exit = await other.kill('SIGTERM');
      expect(exit.code).toBe(0);
      expect(Date.now() - t0).toBeLessThan(4000);
      await stream.ended;
    } finally {
      await other.kill('SIGKILL');
      removeDataDir(other.dataDir);
    }
  });
});
