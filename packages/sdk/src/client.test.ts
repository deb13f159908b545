import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTokenwatch } from './client.js';
import type { DropInfo, TokenwatchOptions } from './client-options.js';
import type { TokenwatchError } from './errors.js';
import { LoopbackReceiver } from './testing/loopback-receiver.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let rx: LoopbackReceiver;
const clients: { shutdown(o?: { timeoutMs?: number }): Promise<void> }[] = [];

beforeEach(async () => {
  rx = await new LoopbackReceiver().start();
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.shutdown({ timeoutMs: 50 });
  await rx.stop();
});

function client(extra: Partial<TokenwatchOptions> = {}) {
  const errors: TokenwatchError[] = [];
  const drops: DropInfo[] = [];
  const tw = createTokenwatch({
    endpoint: rx.url,
    apiKey: 'tw_test',
    appId: 'app-1',
    flushOnExit: false,
    initialBackoffMs: 5,
    maxBackoffMs: 20,
    onError: (e) => errors.push(e),
    onDrop: (d) => drops.push(d),
    ...extra,
  });
  clients.push(tw);
  return { tw, errors, drops };
}

const usage = (i = 0) => ({
  userId: `u-${i % 3}`,
  modelId: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
  provider: 'bedrock',
  inputTokens: 10 + i,
  outputTokens: 5,
});

describe('createTokenwatch: batching and the wire', () => {
  it('sends batches by size with UUIDv7 ids in record order and only contract fields', async () => {
    const { tw } = client({ maxBatchSize: 500 });
    for (let i = 0; i < 1200; i++) tw.record(usage(i));
    expect(await tw.flush()).toBe(true);
    // two requests run at once, so they may land in either order
    expect(rx.requests.map((r) => r.events.length).sort()).toEqual([200, 500, 500]);
    const ids = rx.requests
      .flatMap((r) => r.events)
      .sort((a, b) => (a.inputTokens as number) - (b.inputTokens as number))
      .map((e) => e.id as string);
    expect(new Set(ids).size).toBe(1200);
    for (const id of ids) expect(id).toMatch(UUID_V7);
    expect([...ids].sort()).toEqual(ids); // time-ordered, also within one millisecond
    const first = rx.requests[0]!;
    expect(first.headers.authorization).toBe('Bearer tw_test');
    expect(first.headers['content-type']).toBe('application/json');
    const e = first.events[0]!;
    expect(Object.keys(e).sort()).toEqual(
      [
        'id',
        'timestamp',
        'userId',
        'appId',
        'modelId',
        'provider',
        'inputTokens',
        'outputTokens',
        'cacheReadTokens',
        'cacheWriteTokens',
        'status',
      ].sort(),
    );
    expect(e).toMatchObject({
      appId: 'app-1',
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      status: 'ok',
    });
    expect(typeof e.timestamp).toBe('number');
    expect(tw.stats()).toMatchObject({ sent: 1200, dropped: 0, retried: 0, pending: 0 });
  });

  it('sends a partial batch after flushIntervalMs without flush()', async () => {
    const { tw } = client({ flushIntervalMs: 30 });
    tw.record(usage());
    tw.record(usage(1));
    await rx.waitFor(() => tw.stats().sent === 2, 2000);
    expect(rx.requests).toHaveLength(1);
    expect(rx.eventCount).toBe(2);
  });

  it('gzips large bodies', async () => {
    const { tw } = client();
    for (let i = 0; i < 300; i++) tw.record({ ...usage(i), tags: { feature: 'x'.repeat(100) } });
    await tw.flush();
    expect(rx.requests[0]!.headers['content-encoding']).toBe('gzip');
    expect(rx.accepted.size).toBe(300);
  });

  it('applies defaults, keeps tags within the contract, never sends extra fields', async () => {
    const { tw } = client({ userId: 'default-user', tags: { env: 'test' } });
    const tags: Record<string, string> = {};
    for (let i = 0; i < 20; i++) tags[`k${i}`] = 'v';
    tw.record({
      modelId: 'gpt-4o',
      latencyMs: 12.5,
      status: 'error',
      tags: { ...tags, 'bad key!': 'x', long: 'y'.repeat(300), team: 'core' },
      // @ts-expect-error: prompts never travel
      prompt: 'secret',
    });
    await tw.flush();
    const e = rx.requests[0]!.events[0]!;
    expect(e.userId).toBe('default-user');
    expect(e.prompt).toBeUndefined();
    expect(e.latencyMs).toBe(12.5);
    expect(e.status).toBe('error');
    const t = e.tags as Record<string, string>;
    expect(Object.keys(t)).toHaveLength(16);
    expect(t.env).toBe('test');
    expect(t['bad key!']).toBeUndefined();
  });
});

describe('createTokenwatch: faults', () => {
  it('retries a 500 with the same ids', async () => {
    const { tw, errors } = client();
    rx.inject({ kind: 'status', status: 500 });
    for (let i = 0; i < 10; i++) tw.record(usage(i));
    expect(await tw.flush()).toBe(true);
    expect(rx.requests).toHaveLength(2);
    expect(rx.requests[1]!.events.map((e) => e.id)).toEqual(
      rx.requests[0]!.events.map((e) => e.id),
    );
    expect(tw.stats()).toMatchObject({ sent: 10, retried: 1, dropped: 0 });
    expect(errors[0]).toMatchObject({ code: 'http_status', status: 500, retryable: true });
  });

  it('waits for Retry-After on 429 and 503', async () => {
    const { tw } = client({ initialBackoffMs: 1, maxBackoffMs: 1 });
    rx.inject(
      { kind: 'status', status: 429, headers: { 'retry-after': '0.3' } },
      { kind: 'status', status: 503, headers: { 'retry-after': '0.2' } },
    );
    tw.record(usage());
    await tw.flush();
    const [a, b, c] = rx.requests;
    expect(b!.at - a!.at).toBeGreaterThanOrEqual(280);
    expect(c!.at - b!.at).toBeGreaterThanOrEqual(180);
    expect(rx.accepted.size).toBe(1);
    expect(tw.stats().retried).toBe(2);
  });

  it('survives a connection dropped before the request and after the commit, without double counting', async () => {
    const { tw } = client();
    rx.inject({ kind: 'disconnect' }, { kind: 'accept-then-disconnect' });
    for (let i = 0; i < 50; i++) tw.record(usage(i));
    expect(await tw.flush()).toBe(true);
    expect(rx.requests).toHaveLength(3);
    const ids = rx.requests[2]!.events.map((e) => e.id);
    expect(rx.requests[1]!.events.map((e) => e.id)).toEqual(ids);
    expect(rx.accepted.size).toBe(50); // the lost 202 was retried and deduped by id
    expect(tw.stats()).toMatchObject({ sent: 50, duplicates: 50, retried: 2, dropped: 0 });
  });

  it('times out a slow collector and retries', async () => {
    const { tw, errors } = client({ requestTimeoutMs: 250 });
    rx.inject({ kind: 'delay', ms: 1000 });
    tw.record(usage());
    expect(await tw.flush()).toBe(true);
    expect(errors[0]?.code).toBe('timeout');
    expect(tw.stats()).toMatchObject({ sent: 1 });
    expect(tw.stats().retried).toBeGreaterThanOrEqual(1);
  });

  it('drops only the events a 400 names and resends the rest', async () => {
    const { tw, errors, drops } = client();
    rx.inject({
      kind: 'status',
      status: 400,
      body: {
        error: {
          code: 'invalid_event',
          message: 'bad',
          details: [{ index: 1, field: 'modelId', reason: 'unknown' }],
        },
      },
    });
    for (let i = 0; i < 3; i++) tw.record(usage(i));
    await tw.flush();
    expect(rx.requests).toHaveLength(2);
    expect(rx.requests[1]!.events.map((e) => e.id)).toEqual([
      rx.requests[0]!.events[0]!.id,
      rx.requests[0]!.events[2]!.id,
    ]);
    expect(tw.stats()).toMatchObject({ sent: 2, dropped: 1, retried: 0 });
    expect(drops[0]).toMatchObject({ reason: 'rejected', count: 1 });
    expect(errors[0]).toMatchObject({ code: 'rejected', status: 400, retryable: false });
  });

  it('drops the batch on 401 and reports it, without retrying', async () => {
    const { tw, errors, drops } = client();
    rx.inject({ kind: 'status', status: 401 });
    tw.record(usage());
    await tw.flush();
    expect(rx.requests).toHaveLength(1);
    expect(errors[0]?.code).toBe('unauthorized');
    expect(drops[0]?.reason).toBe('unauthorized');
  });

  it('splits the batch on 413', async () => {
    const { tw } = client();
    rx.inject({ kind: 'status', status: 413 });
    for (let i = 0; i < 10; i++) tw.record(usage(i));
    await tw.flush();
    expect(rx.requests.map((r) => r.events.length)).toEqual([10, 5, 5]);
    expect(rx.accepted.size).toBe(10);
  });

  it('gives up after maxAttempts', async () => {
    const { tw, drops } = client({ maxAttempts: 3 });
    rx.defaultFault = { kind: 'status', status: 502 };
    tw.record(usage());
    await tw.flush();
    expect(rx.requests).toHaveLength(3);
    expect(drops[0]?.reason).toBe('retries_exhausted');
    expect(tw.stats()).toMatchObject({ sent: 0, dropped: 1, retried: 2, pending: 0 });
  });

  it('never throws and stays within maxBufferSize with the collector dead', async () => {
    await rx.stop();
    const { tw, drops } = client({
      endpoint: 'http://127.0.0.1:9',
      maxBufferSize: 1000,
      maxBatchSize: 100,
    });
    for (let i = 0; i < 20_000; i++) {
      expect(() => tw.record(usage(i))).not.toThrow();
      expect(tw.stats().pending).toBeLessThanOrEqual(1000);
    }
    const s = tw.stats();
    expect(s.pending + s.dropped + s.sent).toBe(20_000);
    expect(s.droppedByReason.buffer_full).toBeGreaterThanOrEqual(19_000);
    expect(drops.every((d) => d.reason === 'buffer_full' || d.reason === 'retries_exhausted')).toBe(
      true,
    );
    await tw.shutdown({ timeoutMs: 100 });
    expect(tw.stats().pending).toBe(0);
    rx = await new LoopbackReceiver().start(); // for afterEach
  });

  it('drop-newest keeps the oldest events', async () => {
    const { tw } = client({ maxBufferSize: 5, dropPolicy: 'drop-newest', flushIntervalMs: 10_000 });
    for (let i = 0; i < 8; i++) tw.record(usage(i));
    expect(tw.stats().droppedByReason.buffer_full).toBe(3);
    await tw.flush();
    expect([...rx.accepted.values()].map((e) => e.inputTokens)).toEqual([10, 11, 12, 13, 14]);
  });

  it('drop-oldest keeps the newest events', async () => {
    const { tw } = client({ maxBufferSize: 5, flushIntervalMs: 10_000, maxBatchSize: 5 });
    // a batch of 5 starts on a later tick; until then the buffer is full and the oldest go
    for (let i = 0; i < 8; i++) tw.record(usage(i));
    await tw.flush();
    expect([...rx.accepted.values()].map((e) => e.inputTokens)).toEqual([13, 14, 15, 16, 17]);
  });

  it('rejects invalid records without throwing, and never throws on garbage', async () => {
    const { tw, drops, errors } = client();
    tw.record({ modelId: '' });
    tw.record({ modelId: 'm', inputTokens: -1 });
    tw.record({ modelId: 'm', outputTokens: 1.5 });
    tw.record({ modelId: 'm', userId: 'x'.repeat(300) });
    tw.record(null as never);
    tw.record({ modelId: 'm', tags: null as never });
    await tw.flush();
    expect(tw.stats().droppedByReason.invalid).toBe(5);
    expect(drops.filter((d) => d.reason === 'invalid')).toHaveLength(5);
    expect(errors.some((e) => e.code === 'invalid_event')).toBe(true);
    expect(rx.accepted.size).toBe(1);
  });

  it('a throwing hook does not break the exporter', async () => {
    const { tw } = client({
      onError: () => {
        throw new Error('hook');
      },
    });
    rx.inject({ kind: 'status', status: 500 });
    tw.record(usage());
    expect(await tw.flush()).toBe(true);
    expect(rx.accepted.size).toBe(1);
  });

  it('flush resolves false at its timeout; shutdown drops what is left and refuses new records', async () => {
    // A two-minute backoff: a shutdown that waited for it instead of its 50 ms deadline would
    // take minutes, so the bound can sit far from both and not measure the machine's load.
    const { tw } = client({ initialBackoffMs: 120_000, maxBackoffMs: 120_000, random: () => 0.99 });
    rx.defaultFault = { kind: 'status', status: 503 };
    tw.record(usage());
    expect(await tw.flush({ timeoutMs: 100 })).toBe(false);
    const t0 = Date.now();
    await tw.shutdown({ timeoutMs: 50 });
    expect(Date.now() - t0).toBeLessThan(15_000);
    tw.record(usage());
    expect(tw.stats()).toMatchObject({ pending: 0, sent: 0 });
    expect(tw.stats().droppedByReason.shutdown).toBe(2);
  });

  it('disabled clients do nothing', async () => {
    const tw = createTokenwatch({ disabled: true });
    tw.record(usage());
    expect(await tw.flush()).toBe(true);
    expect(tw.stats().sent).toBe(0);
  });
});
