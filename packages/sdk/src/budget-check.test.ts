import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTokenwatch } from './client.js';
import type { TokenwatchError } from './errors.js';

/**
 * `tokenwatch.check()` against a real HTTP server on loopback that plays `POST /v1/check`: it
 * answers, hangs, fails or refuses as each test says, and counts what it was asked. (The real
 * server's answers are checked in conformance/enforce.int.test.ts.)
 */
class FakeCheckServer {
  readonly asked: Record<string, unknown>[] = [];
  answer: (body: Record<string, unknown>) => { status: number; json?: unknown } | 'hang' = () => ({
    status: 200,
    json: { allowed: true, rules: [] },
  });
  url = '';
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  async start(): Promise<this> {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let raw = '';
      req.on('data', (c: Buffer) => {
        raw += c.toString();
      });
      req.on('end', () => {
        const body = JSON.parse(raw) as Record<string, unknown>;
        this.asked.push({ path: req.url, auth: req.headers.authorization, ...body });
        const a = this.answer(body);
        if (a === 'hang') return; // accepted, never answered
        res.writeHead(a.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(a.json ?? {}));
      });
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server?.close(() => r()));
  }
}

const rule = (used: number, limit: number, extra: Record<string, unknown> = {}) => ({
  ruleId: 'r1',
  name: 'daily tokens',
  metric: 'totalTokens',
  scope: { user: 'ann' },
  limit,
  used,
  remaining: Math.max(0, limit - used),
  windowEnd: new Date(Date.now() + 3_600_000).toISOString(),
  exceeded: used >= limit,
  ...extra,
});

describe('tokenwatch.check()', () => {
  const srv = new FakeCheckServer();
  beforeAll(() => srv.start());
  afterAll(() => srv.stop());
  afterEach(() => {
    srv.asked.length = 0;
    srv.answer = () => ({ status: 200, json: { allowed: true, rules: [] } });
  });

  // The machine is shared and loaded: where a test wants the server's answer it gives it time;
  // the tests of timeouts set their own.
  const client = (check: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) =>
    createTokenwatch({
      endpoint: srv.url,
      apiKey: 'twk_test',
      appId: 'chat',
      flushOnExit: false,
      check: { timeoutMs: 5000, ...check },
      ...extra,
    });

  it("asks the server with the client's defaults, then answers from the cache with the estimate applied again", async () => {
    srv.answer = () => ({ status: 200, json: { allowed: true, rules: [rule(90, 100)] } });
    const tw = client();
    const first = await tw.check({ modelId: 'gpt-4o', estimatedTokens: 5 });
    expect(first).toMatchObject({ allowed: true, source: 'server' });
    expect(srv.asked).toEqual([
      {
        path: '/v1/check',
        auth: 'Bearer twk_test',
        userId: 'anonymous',
        appId: 'chat',
        modelId: 'gpt-4o',
        estimatedTokens: 5,
      },
    ]);
    const big = await tw.check({ modelId: 'gpt-4o', estimatedTokens: 20 });
    expect(big).toMatchObject({ allowed: false, source: 'cache' });
    expect(big.rules[0]).toMatchObject({ ruleId: 'r1', used: 90, limit: 100, exceeded: true });
    expect(tw.checkCached({ modelId: 'gpt-4o' })).toMatchObject({ allowed: true, source: 'cache' });
    expect(srv.asked).toHaveLength(1);
    // Another user, app or model is another key.
    await tw.check({ modelId: 'gpt-4o', userId: 'bob' });
    await tw.check({ modelId: 'gpt-4o', appId: 'batch' });
    await tw.check({ modelId: 'o3' });
    expect(srv.asked).toHaveLength(4);
  });

  it('asks again once cacheMs has passed, and once a rule window has ended', async () => {
    let used = 10;
    srv.answer = () => ({ status: 200, json: { allowed: true, rules: [rule(used, 100)] } });
    let now = 1_000_000;
    const tw = client({ cacheMs: 1000 }, { now: () => now });
    await tw.check({ modelId: 'm' });
    now += 999;
    expect(tw.checkCached({ modelId: 'm' })?.rules[0]?.used).toBe(10);
    now += 1;
    expect(tw.checkCached({ modelId: 'm' })).toBeUndefined();
    used = 100;
    expect(await tw.check({ modelId: 'm' })).toMatchObject({ allowed: false, source: 'server' });
    expect(srv.asked).toHaveLength(2);

    const ending = new Date(Date.now() + 50).toISOString();
    srv.answer = () => ({
      status: 200,
      json: { allowed: false, rules: [rule(100, 100, { windowEnd: ending })] },
    });
    const real = client({ cacheMs: 60_000 });
    expect((await real.check({ modelId: 'm' })).allowed).toBe(false);
    await new Promise((r) => setTimeout(r, 80));
    expect(real.checkCached({ modelId: 'm' })).toBeUndefined(); // the window ended: stale
  });

  it('shares one request among concurrent checks of the same key', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    srv.answer = () => 'hang';
    const slow = createServer((req, res) => {
      req.resume();
      req.on('end', async () => {
        srv.asked.push({});
        await gate;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ allowed: true, rules: [rule(50, 100)] }));
      });
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const tw = createTokenwatch({
      endpoint: `http://127.0.0.1:${(slow.address() as AddressInfo).port}`,
      apiKey: 'k',
      flushOnExit: false,
      check: { timeoutMs: 5000 },
    });
    const all = Promise.all(
      Array.from({ length: 20 }, (_, i) => tw.check({ modelId: 'm', estimatedTokens: i * 5 })),
    );
    await new Promise((r) => setTimeout(r, 50));
    release();
    const answers = await all;
    expect(srv.asked).toHaveLength(1);
    expect(answers.map((a) => a.allowed)).toEqual(
      Array.from({ length: 20 }, (_, i) => 50 + i * 5 <= 100),
    );
    await new Promise<void>((r) => slow.close(() => r()));
  });

  it('a collector that never answers: fail-open by default, fail-closed when asked, never a rejection', async () => {
    srv.answer = () => 'hang';
    const errors: TokenwatchError[] = [];
    const tw = client({ timeoutMs: 50 }, { onError: (e: TokenwatchError) => errors.push(e) });
    const t0 = performance.now();
    const open = await tw.check({ modelId: 'm' });
    const waited = performance.now() - t0;
    expect(open).toMatchObject({ allowed: true, rules: [], source: 'fail-open' });
    expect(open.error?.code).toBe('timeout');
    expect(errors.map((e) => e.code)).toEqual(['timeout']);
    // Bounded by the timeout (the exact figure is in `npm run bench:sdk`).
    expect(waited).toBeLessThan(50 + 1000);
    // The failure is remembered for cacheMs: a chat loop does not wait 50 ms per call.
    expect(await tw.check({ modelId: 'm' })).toMatchObject({ allowed: true, source: 'fail-open' });
    expect(srv.asked).toHaveLength(1);
    const closed = await tw.check({ modelId: 'other' }, { failMode: 'closed' });
    expect(closed).toMatchObject({ allowed: false, source: 'fail-closed' });
    const closedClient = client({ timeoutMs: 20, failMode: 'closed' });
    expect(await closedClient.check({ modelId: 'm' })).toMatchObject({
      allowed: false,
      source: 'fail-closed',
    });
  });

  it('no collector, a refused key, a 5xx or a body that is not an answer: the fail mode decides', async () => {
    const dead = createTokenwatch({
      endpoint: 'http://127.0.0.1:9',
      apiKey: 'k',
      flushOnExit: false,
    });
    expect(await dead.check({ modelId: 'm' })).toMatchObject({
      allowed: true,
      source: 'fail-open',
    });
    for (const [status, json, code] of [
      [401, { error: { code: 'unauthorized' } }, 'check_failed'],
      [503, { error: { code: 'unavailable' } }, 'check_failed'],
      [200, { hello: 'world' }, 'check_failed'],
    ] as const) {
      srv.answer = () => ({ status, json });
      const r = await client({ failMode: 'closed' }).check({ modelId: `m${status}` });
      expect(r).toMatchObject({ allowed: false, source: 'fail-closed' });
      expect(r.error?.code).toBe(code);
    }
    const noEndpoint = createTokenwatch({
      transport: { send: async () => ({ kind: 'ok', accepted: 0, duplicates: 0 }) },
      flushOnExit: false,
    });
    expect(await noEndpoint.check({ modelId: 'm' })).toMatchObject({
      allowed: true,
      source: 'fail-open',
    });
    expect(await client().check({ modelId: '' })).toMatchObject({ source: 'fail-open' });
  });

  it("passes the server's own degraded answer through", async () => {
    srv.answer = () => ({
      status: 200,
      json: { allowed: false, degraded: 'fail-closed', rules: [] },
    });
    expect(await client().check({ modelId: 'm' })).toEqual({
      allowed: false,
      subject: { userId: 'anonymous', appId: 'chat' },
      rules: [],
      source: 'server',
      degraded: 'fail-closed',
    });
  });

  it('a disabled client allows everything without asking', async () => {
    const tw = createTokenwatch({ disabled: true });
    expect(await tw.check({ modelId: 'm' })).toMatchObject({ allowed: true });
    expect(srv.asked).toHaveLength(0);
  });
});
