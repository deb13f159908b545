import { TokenwatchError } from '@tokenwatch/core';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type ReceivedRequest,
  type Receiver,
  sampleDelivery,
  sampleMessage,
  startReceiver,
} from '../testing/receiver.js';
import {
  createWebhookNotifier,
  generateWebhookSecret,
  signWebhook,
  WEBHOOK_BODY_MAX_BYTES,
  webhookBody,
  webhookSecretKey,
} from './webhook-notifier.js';

/**
 * Issue 3, webhook channel against a real loopback receiver; signatures are verified with the
 * official `standardwebhooks` package, an implementation of the spec independent of ours.
 */

const ALLOW = { allowPrivateNetworks: true };
let receiver: Receiver;

beforeAll(async () => {
  receiver = await startReceiver(() => ({ status: 204 }), '127.0.0.1');
});
afterAll(async () => {
  await receiver.close();
});
beforeEach(() => {
  receiver.requests.length = 0;
  receiver.reply(() => ({ status: 204 }));
});

function headersOf(r: ReceivedRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) if (typeof v === 'string') out[k] = v;
  return out;
}

async function failure(p: Promise<unknown>): Promise<TokenwatchError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(TokenwatchError);
    return err as TokenwatchError;
  }
  throw new Error('expected the send to fail');
}

describe('generateWebhookSecret', () => {
  it('is whsec_ + base64 of 32 random bytes, different every time', () => {
    const a = generateWebhookSecret();
    const b = generateWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(webhookSecretKey(a)).toHaveLength(32);
    expect(a).not.toBe(b);
  });

  it('refuses secrets that are not base64 of 24–64 bytes', () => {
    for (const bad of [
      'whsec_',
      'whsec_short',
      'whsec_!!!notbase64!!!',
      `whsec_${'A'.repeat(200)}`,
    ])
      expect(() => webhookSecretKey(bad), bad).toThrow(TokenwatchError);
  });
});

describe('Standard Webhooks signature, verified by the standardwebhooks package', () => {
  it('a delivery verifies and its payload is the alert with type and delivery id', async () => {
    const secret = generateWebhookSecret();
    const delivery = sampleDelivery({ type: 'webhook', url: `${receiver.url}/hook`, secret });
    await createWebhookNotifier({ policy: ALLOW }).send(delivery, AbortSignal.timeout(5_000));
    expect(receiver.requests).toHaveLength(1);
    const req = receiver.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['webhook-id']).toBe(delivery.id);
    expect(Math.abs(Number(req.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(5);
    expect(req.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);

    const payload = new Webhook(secret).verify(req.body, headersOf(req));
    expect(payload).toEqual({
      type: 'tokenwatch.alert',
      deliveryId: delivery.id,
      ...delivery.message,
    });
  });

  it('a tampered body, a wrong secret and an old timestamp do not verify', async () => {
    const secret = generateWebhookSecret();
    const url = `${receiver.url}/hook`;
    await createWebhookNotifier({ policy: ALLOW }).send(
      sampleDelivery({ type: 'webhook', url, secret }),
      AbortSignal.timeout(5_000),
    );
    const req = receiver.requests[0]!;
    const headers = headersOf(req);
    const tampered = req.body.replace('"value":12345', '"value":1');
    expect(tampered).not.toBe(req.body);
    expect(() => new Webhook(secret).verify(tampered, headers)).toThrow(WebhookVerificationError);
    expect(() => new Webhook(generateWebhookSecret()).verify(req.body, headers)).toThrow(
      WebhookVerificationError,
    );

    // A sender whose clock says ten minutes ago: outside the receiver's ±5 min tolerance.
    const old = createWebhookNotifier({ policy: ALLOW, now: () => Date.now() - 10 * 60_000 });
    await old.send(sampleDelivery({ type: 'webhook', url, secret }), AbortSignal.timeout(5_000));
    const oldReq = receiver.requests[1]!;
    expect(() => new Webhook(secret).verify(oldReq.body, headersOf(oldReq))).toThrow(/too old/);
  });

  it('signWebhook matches the package for the same id, timestamp and body', () => {
    const secret = generateWebhookSecret();
    const at = new Date(Math.floor(Date.now() / 1000) * 1000);
    const body = webhookBody(sampleDelivery({ type: 'webhook', url: 'http://x/' }));
    expect(signWebhook(secret, 'msg_1', at.getTime() / 1000, body)).toBe(
      new Webhook(secret).sign('msg_1', at, body),
    );
  });

  it('retries of one delivery carry the same webhook-id and the same body, each freshly signed', async () => {
    const secret = generateWebhookSecret();
    const channel = { type: 'webhook' as const, url: `${receiver.url}/hook`, secret };
    const first = sampleDelivery(channel);
    const retry = { ...first, attempt: 2 };
    let t = Date.now() - 30_000;
    const notifier = createWebhookNotifier({ policy: ALLOW, now: () => t });
    await notifier.send(first, AbortSignal.timeout(5_000));
    t += 29_000;
    await notifier.send(retry, AbortSignal.timeout(5_000));
    const [a, b] = receiver.requests;
    expect(a!.headers['webhook-id']).toBe(first.id);
    expect(b!.headers['webhook-id']).toBe(first.id);
    expect(a!.body).toBe(b!.body);
    expect(Number(b!.headers['webhook-timestamp']) - Number(a!.headers['webhook-timestamp'])).toBe(
      29,
    );
    for (const r of [a!, b!])
      expect(() => new Webhook(secret).verify(r.body, headersOf(r))).not.toThrow();
  });

  it('without a secret the delivery carries id and timestamp but no signature', async () => {
    await createWebhookNotifier({ policy: ALLOW }).send(
      sampleDelivery({ type: 'webhook', url: `${receiver.url}/hook` }),
      AbortSignal.timeout(5_000),
    );
    const req = receiver.requests[0]!;
    expect(req.headers['webhook-id']).toBeDefined();
    expect(req.headers['webhook-signature']).toBeUndefined();
  });
});

describe('payload size', () => {
  it('a typical alert is far under 20 KB; an oversized one fails without being sent', async () => {
    const body = webhookBody(sampleDelivery({ type: 'webhook', url: 'http://x/' }));
    expect(Buffer.byteLength(body)).toBeLessThan(2_000);
    const huge = sampleMessage({ scope: { user: 'u'.repeat(WEBHOOK_BODY_MAX_BYTES) } });
    const err = await failure(
      createWebhookNotifier({ policy: ALLOW }).send(
        sampleDelivery({ type: 'webhook', url: `${receiver.url}/hook` }, huge),
        AbortSignal.timeout(5_000),
      ),
    );
    expect(err.retryable).toBe(false);
    expect(receiver.requests).toHaveLength(0);
  });
});

describe('receiver answers', () => {
  const notifier = createWebhookNotifier({ policy: ALLOW });
  const send = () =>
    notifier.send(
      sampleDelivery({ type: 'webhook', url: `${receiver.url}/hook` }),
      AbortSignal.timeout(5_000),
    );

  it('2xx is success', async () => {
    for (const status of [200, 201, 202, 204]) {
      receiver.reply(() => ({ status, body: 'ok' }));
      await expect(send()).resolves.toBeUndefined();
    }
  });

  it('408, 429 and 5xx are retryable and honour Retry-After', async () => {
    receiver.reply(() => ({ status: 429, headers: { 'retry-after': '7' } }));
    let err = await failure(send());
    expect([err.retryable, err.retryAfterSeconds, err.context.status]).toEqual([true, 7, 429]);

    const at = new Date(Date.now() + 120_000).toUTCString();
    receiver.reply(() => ({ status: 503, headers: { 'retry-after': at } }));
    err = await failure(send());
    expect(err.retryable).toBe(true);
    expect(err.retryAfterSeconds).toBeGreaterThanOrEqual(118);
    expect(err.retryAfterSeconds).toBeLessThanOrEqual(121);

    for (const status of [408, 500, 502, 504]) {
      receiver.reply(() => ({ status, body: 'busy' }));
      err = await failure(send());
      expect(err.retryable, String(status)).toBe(true);
      expect(err.retryAfterSeconds).toBeUndefined();
    }
  });

  it('410 Gone and other 4xx are not retryable', async () => {
    receiver.reply(() => ({ status: 410, body: 'endpoint deleted' }));
    let err = await failure(send());
    expect(err.retryable).toBe(false);
    expect(err.context.gone).toBe(true);
    expect(err.message).toContain('endpoint deleted');
    for (const status of [400, 401, 403, 404, 413, 422]) {
      receiver.reply(() => ({ status }));
      err = await failure(send());
      expect(err.retryable, String(status)).toBe(false);
    }
  });

  it('a refused connection is retryable', async () => {
    const gone = await startReceiver(() => ({ status: 204 }), '127.0.0.1');
    const url = `${gone.url}/hook`;
    await gone.close();
    const err = await failure(
      notifier.send(sampleDelivery({ type: 'webhook', url }), AbortSignal.timeout(5_000)),
    );
    expect(err.code).toBe('unavailable');
    expect(err.retryable).toBe(true);
    expect(err.context.networkCode).toBe('ECONNREFUSED');
  });
});

describe('timeouts', () => {
  it('a receiver that never answers fails retryably when the signal fires, on time', async () => {
    const hang = await startReceiver(() => 'hang', '127.0.0.1');
    try {
      const started = Date.now();
      const err = await failure(
        createWebhookNotifier({ policy: ALLOW }).send(
          sampleDelivery({ type: 'webhook', url: `${hang.url}/hook` }),
          AbortSignal.timeout(300),
        ),
      );
      const took = Date.now() - started;
      expect(err.retryable).toBe(true);
      expect(err.context.timeout).toBe(true);
      expect(took).toBeGreaterThanOrEqual(290);
      // Far below the notifier's own 30 s cap, the wait this would be if the signal were ignored;
      // a tight bound would time the machine's load instead (CI has stalled a process 7 s).
      expect(took).toBeLessThan(15_000);
      expect(hang.requests).toHaveLength(1);
    } finally {
      await hang.close();
    }
  });

  it("the notifier's own timeout caps an attempt whose signal never fires", async () => {
    const hang = await startReceiver(() => 'hang', '127.0.0.1');
    try {
      const started = Date.now();
      const err = await failure(
        createWebhookNotifier({ policy: ALLOW, timeoutMs: 250 }).send(
          sampleDelivery({ type: 'webhook', url: `${hang.url}/hook` }),
          new AbortController().signal,
        ),
      );
      expect(err.retryable).toBe(true);
      expect(Date.now() - started).toBeLessThan(15_000); // the default cap is 30 s
    } finally {
      await hang.close();
    }
  });

  it('a hanging receiver does not delay a delivery to another one', async () => {
    const hang = await startReceiver(() => 'hang', '127.0.0.1');
    try {
      const notifier = createWebhookNotifier({ policy: ALLOW });
      const stopSlow = new AbortController();
      const slow = notifier
        .send(sampleDelivery({ type: 'webhook', url: `${hang.url}/hook` }), stopSlow.signal)
        .catch((e: unknown) => e);
      const started = Date.now();
      await notifier.send(
        sampleDelivery({ type: 'webhook', url: `${receiver.url}/hook` }),
        AbortSignal.timeout(20_000),
      );
      // Queued behind the hanging one, this send would wait for its 30 s cap.
      expect(Date.now() - started).toBeLessThan(15_000);
      stopSlow.abort();
      expect(await slow).toBeInstanceOf(TokenwatchError);
    } finally {
      await hang.close();
    }
  });
});
