import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenwatch } from './client.js';
import { RealServer, SERVER_CLI, serverBuilt } from './testing/real-server.js';

if (!serverBuilt) {
  console.warn(`skipping SDK ↔ server integration: ${SERVER_CLI} is not built (run npm run build)`);
}

/** Forwards to the server; the first `lose` answers are dropped after the server committed. */
function losingProxy(target: string, lose: number): Promise<{ url: string; server: Server }> {
  let left = lose;
  const t = new URL(target);
  const server = createServer((req, res) => {
    const upstream = request(
      { host: t.hostname, port: t.port, path: req.url, method: req.method, headers: req.headers },
      (up) => {
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () => {
          if (left > 0) {
            left--;
            req.socket.destroy(); // durable on the server, but the client never hears so
            return;
          }
          res.writeHead(up.statusCode ?? 502, up.headers);
          res.end(Buffer.concat(chunks));
        });
      },
    );
    req.pipe(upstream);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }),
    ),
  );
}

describe.skipIf(!serverBuilt)('SDK → real tokenwatch serve', () => {
  const srv = new RealServer();
  beforeAll(() => srv.start(), 30_000);
  afterAll(() => srv.stop());

  it('delivers every event once; totals per user × model match what was recorded', async () => {
    const tw = createTokenwatch({
      endpoint: srv.url,
      apiKey: srv.ingestKey,
      appId: 'int-app',
      flushOnExit: false,
    });
    const models = ['us.anthropic.claude-sonnet-4-5-20250929-v1:0', 'amazon.nova-lite-v1:0'];
    const expected = new Map<string, number>();
    for (let i = 0; i < 2500; i++) {
      const userId = `user-${i % 5}`;
      const modelId = models[i % 2]!;
      const e = {
        userId,
        modelId,
        provider: 'bedrock',
        inputTokens: 10 + (i % 7),
        outputTokens: 3,
        cacheReadTokens: i % 3,
      };
      tw.record(e);
      const k = `${userId}|${modelId}`;
      expected.set(k, (expected.get(k) ?? 0) + e.inputTokens + e.outputTokens + e.cacheReadTokens);
    }
    expect(await tw.flush({ timeoutMs: 20_000 })).toBe(true);
    expect(tw.stats()).toMatchObject({ sent: 2500, dropped: 0 });
    const rows = await srv.usage({ groupBy: 'user,model', app: 'int-app' });
    const got = new Map(rows.map((r) => [`${r.user}|${r.model}`, r.totalTokens]));
    expect(got).toEqual(expected);
    expect(rows.reduce((n, r) => n + (r.requests as number), 0)).toBe(2500);
    await tw.shutdown();
  });

  it('a batch whose 202 was lost is retried with the same ids and counted once', async () => {
    const proxy = await losingProxy(srv.url, 1);
    const tw = createTokenwatch({
      endpoint: proxy.url,
      apiKey: srv.ingestKey,
      appId: 'lost-ack-app',
      flushOnExit: false,
      initialBackoffMs: 10,
    });
    for (let i = 0; i < 100; i++)
      tw.record({
        userId: 'u',
        modelId: 'gpt-4o-mini',
        provider: 'openai',
        inputTokens: 1,
        outputTokens: 1,
      });
    expect(await tw.flush({ timeoutMs: 10_000 })).toBe(true);
    expect(tw.stats()).toMatchObject({ sent: 100, retried: 1, duplicates: 100 });
    const rows = await srv.usage({ app: 'lost-ack-app' });
    expect(rows[0]).toMatchObject({ requests: 100, totalTokens: 200 });
    await tw.shutdown();
    proxy.server.close();
  });

  it('the server refuses a bad key: the SDK reports it and does not retry', async () => {
    const errors: string[] = [];
    const tw = createTokenwatch({
      endpoint: srv.url,
      apiKey: 'twk_not_a_key',
      flushOnExit: false,
      onError: (e) => errors.push(e.code),
    });
    tw.record({ userId: 'u', modelId: 'm' });
    await tw.flush();
    expect(errors).toEqual(['unauthorized']);
    expect(tw.stats().droppedByReason.unauthorized).toBe(1);
  });
});
