import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTokenwatch } from '../client.js';
import { LoopbackReceiver } from '../testing/loopback-receiver.js';
import { nodeFetch } from './index.js';

describe('nodeFetch with the client', () => {
  let rx: LoopbackReceiver;
  beforeEach(async () => {
    rx = await new LoopbackReceiver().start();
  });
  afterEach(() => rx.stop());

  const make = (extra = {}) =>
    createTokenwatch({
      endpoint: rx.url,
      apiKey: 'k',
      fetch: nodeFetch(),
      flushOnExit: false,
      initialBackoffMs: 5,
      maxBackoffMs: 10,
      ...extra,
    });

  it('delivers, gzips, honours Retry-After, survives a lost answer and a timeout', async () => {
    const tw = make({ requestTimeoutMs: 300 });
    rx.inject(
      { kind: 'status', status: 429, headers: { 'retry-after': '0.1' } },
      { kind: 'accept-then-disconnect' },
      { kind: 'delay', ms: 1000 },
      { kind: 'disconnect' },
    );
    for (let i = 0; i < 300; i++)
      tw.record({ userId: 'u', modelId: 'm', inputTokens: i, tags: { pad: 'x'.repeat(100) } });
    expect(await tw.flush({ timeoutMs: 10_000 })).toBe(true);
    expect(rx.accepted.size).toBe(300);
    expect(tw.stats()).toMatchObject({ sent: 300, dropped: 0 });
    expect(tw.stats().retried).toBeGreaterThanOrEqual(4); // a loaded machine may time out one more
    expect(rx.requests.at(-1)?.headers['content-encoding']).toBe('gzip');
    expect(rx.requests.at(-1)?.headers.authorization).toBe('Bearer k');
  });

  it('reports 400 details like fetch does', async () => {
    const errors: string[] = [];
    const tw = make({ onError: (e: { code: string }) => errors.push(e.code) });
    rx.inject({
      kind: 'status',
      status: 400,
      body: { error: { code: 'invalid_event', details: [{ index: 0 }] } },
    });
    tw.record({ userId: 'u', modelId: 'a' });
    tw.record({ userId: 'u', modelId: 'b' });
    await tw.flush();
    expect(errors).toEqual(['rejected']);
    expect([...rx.accepted.values()].map((e) => e.modelId)).toEqual(['b']);
  });
});
