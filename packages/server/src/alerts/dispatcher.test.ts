import { TokenwatchError } from '@tokenwatch/core';
import { makePricedEvent, makeRule } from '@tokenwatch/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { createNotifiers } from '../adapters/notify/notifier-registry.js';
import { MemoryStore } from '../adapters/store/memory/memory-store.js';
import { createLogger } from '../logging/logger.js';
import { Metrics } from '../metrics/metrics.js';
import { startWebhookReceiver, type WebhookReceiver } from '../testing/webhook-receiver.js';
import { DEFAULT_DISPATCHER_OPTIONS, Dispatcher, type DispatcherOptions } from './dispatcher.js';

const T0 = Date.UTC(2026, 2, 10, 10, 0, 0);
const LEASE_MS = 30_000;
const receivers: WebhookReceiver[] = [];
afterEach(async () => {
  for (const r of receivers.splice(0)) await r.close();
});

/** A store with one alert whose delivery goes to a real webhook receiver on loopback. */
async function outboxWithOneWebhook(receiver: WebhookReceiver): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.migrate();
  await store.createProject({ id: 'p1', name: 'p1', createdAtMs: T0 });
  await store.createRule(
    makeRule({ channels: [{ type: 'webhook', url: receiver.url() }], levels: [{ value: 100 }] }),
    T0,
  );
  await store.applyBatch(
    [makePricedEvent({ inputTokens: 500, outputTokens: 0, timestampMs: T0 + 60_000 })],
    { nowMs: T0 + 60_000 },
  );
  return store;
}

/** A store where `users` users cross a per-user rule: one delivery each to the receiver. */
async function outboxWithCrossings(receiver: WebhookReceiver, users: number): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.migrate();
  await store.createProject({ id: 'p1', name: 'p1', createdAtMs: T0 });
  await store.createRule(
    makeRule({
      scope: ['user'],
      channels: [{ type: 'webhook', url: receiver.url() }],
      levels: [{ value: 100 }],
    }),
    T0,
  );
  await store.applyBatch(
    Array.from({ length: users }, (_, i) =>
      makePricedEvent({
        userId: `user-${i}`,
        inputTokens: 500,
        outputTokens: 0,
        timestampMs: T0 + 60_000,
      }),
    ),
    { nowMs: T0 + 60_000 },
  );
  return store;
}

function dispatcher(
  store: MemoryStore,
  now: () => number,
  logLines: string[],
  options: Partial<DispatcherOptions> = {},
): Dispatcher {
  const logger = createLogger('warn', {}, (line) => logLines.push(line));
  const notifiers = createNotifiers({ logger, policy: { allowPrivateNetworks: true } });
  return new Dispatcher(
    store,
    notifiers,
    new Metrics(),
    logger,
    { ...DEFAULT_DISPATCHER_OPTIONS, leaseMs: LEASE_MS, ...options },
    now,
  );
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('Dispatcher', () => {
  it('a send that succeeded is never dead-lettered because recording it failed; it is sent again after the lease', async () => {
    const receiver = await startWebhookReceiver();
    receivers.push(receiver);
    const store = await outboxWithOneWebhook(receiver);
    // The store fails the first "delivered" record as the threaded SQLite store did under a busy
    // writer: a non-retryable error (what an unclassified SQLITE_BUSY became).
    const complete = store.completeDelivery.bind(store);
    let failures = 0;
    store.completeDelivery = async (id, outcome, nowMs) => {
      if (outcome.status === 'delivered' && failures++ === 0)
        throw new TokenwatchError('internal', 'database is locked');
      return complete(id, outcome, nowMs);
    };
    let nowMs = T0 + 2 * 60_000;
    const logLines: string[] = [];
    const d = dispatcher(store, () => nowMs, logLines);

    expect(await d.runOnce()).toBe(1);
    expect(receiver.hits).toHaveLength(1);
    const [first] = await store.listDeliveries('p1', {}, 10);
    // Not dead, not retried as if the send had failed: still leased ('sending'), as it was.
    expect(first?.status).toBe('sending');
    expect(logLines.join('')).toContain('could not record a delivery outcome');

    // The lease expires: sent again (at least once) and recorded.
    nowMs += LEASE_MS;
    expect(await d.runOnce()).toBe(1);
    expect(receiver.hits).toHaveLength(2);
    expect(new Set(receiver.hits.map((h) => h.id)).size).toBe(1); // the same webhook-id
    const [after] = await store.listDeliveries('p1', {}, 10);
    expect(after?.status).toBe('delivered');
  });

  it('a send that failed for good is dead-lettered', async () => {
    const receiver = await startWebhookReceiver({ kind: 'fail', status: 410 });
    receivers.push(receiver);
    const store = await outboxWithOneWebhook(receiver);
    const d = dispatcher(store, () => T0 + 2 * 60_000, []);
    expect(await d.runOnce()).toBe(1);
    const [delivery] = await store.listDeliveries('p1', {}, 10);
    expect(delivery?.status).toBe('dead');
  });

  it('leases no more than maxInFlight deliveries while a destination is slow, and sends each once', async () => {
    const receiver = await startWebhookReceiver({ kind: 'hang' });
    receivers.push(receiver);
    // 40 users cross the rule: 40 deliveries to one destination.
    const store = await outboxWithCrossings(receiver, 40);
    const started = Date.now();
    const d = dispatcher(store, () => T0 + 2 * 60_000 + (Date.now() - started), [], {
      batchSize: 5,
      maxInFlight: 10,
      perDestinationConcurrency: 2,
      pollMs: 20,
      // The two held sends time out and are retried soon after.
      sendTimeoutMs: 1_000,
      baseBackoffMs: 10,
    });
    const leased = async () =>
      (await store.listDeliveries('p1', {}, 100)).filter((x) => x.status === 'sending').length;
    d.start();
    try {
      // The receiver holds the first two sends; the others wait for the destination's slots.
      await waitFor(() => receiver.hangingCount() === 2);
      await new Promise((r) => setTimeout(r, 300)); // many poll intervals
      // Unbounded, every poll leased a full batch while nothing finished: all 40.
      expect(await leased()).toBe(10);

      receiver.setMode({ kind: 'ok' });
      await waitFor(async () =>
        (await store.listDeliveries('p1', {}, 100)).every((x) => x.status === 'delivered'),
      );
    } finally {
      await d.stop();
    }
    // Each delivery answered once (the two held ones were sent again after their timeout).
    const accepted = receiver.hits.filter((h) => h.status >= 200 && h.status < 300);
    expect(accepted).toHaveLength(40);
    expect(new Set(accepted.map((h) => h.id)).size).toBe(40);
  });

  it('a slow record of one outcome does not hold up the next sends to the same destination', async () => {
    const receiver = await startWebhookReceiver();
    receivers.push(receiver);
    // 3 users cross the rule: 3 deliveries to one destination, one request at a time.
    const store = await outboxWithCrossings(receiver, 3);
    // The store records outcomes only once the test lets it, as a SQLite writer busy with a
    // fold answers after it: the sends must not wait for those records.
    const complete = store.completeDelivery.bind(store);
    let release: () => void = () => {};
    const recordsHeld = new Promise<void>((resolve) => {
      release = resolve;
    });
    let recordsWaiting = 0;
    store.completeDelivery = async (id, outcome, nowMs) => {
      recordsWaiting++;
      await recordsHeld;
      return complete(id, outcome, nowMs);
    };
    const d = dispatcher(store, () => T0 + 2 * 60_000, [], { perDestinationConcurrency: 1 });
    const pass = d.runOnce();
    try {
      // All three reach the webhook while not one outcome is recorded yet.
      await waitFor(() => receiver.hits.length === 3 && recordsWaiting === 3);
      expect((await store.listDeliveries('p1', {}, 10)).map((x) => x.status)).toEqual([
        'sending',
        'sending',
        'sending',
      ]);
    } finally {
      release();
    }
    expect(await pass).toBe(3);
    const delivered = await store.listDeliveries('p1', {}, 10);
    expect(delivered.map((x) => x.status)).toEqual(['delivered', 'delivered', 'delivered']);
    expect(new Set(receiver.hits.map((h) => h.id)).size).toBe(3);
  });

  it('never sends a delivery whose lease could end during the send: a slow destination causes no repeats', async () => {
    // Each send takes 150 ms and one runs at a time: 12 deliveries take 1.8 s, far past an 800 ms
    // lease. Before, those still waiting for the destination when their lease ended were leased
    // again by the next poll and then sent by both copies.
    const receiver = await startWebhookReceiver({ kind: 'ok', delayMs: 150 });
    receivers.push(receiver);
    const store = await outboxWithCrossings(receiver, 12);
    const started = Date.now();
    const metrics = new Metrics();
    const logger = createLogger('warn', {}, () => {});
    const d = new Dispatcher(
      store,
      createNotifiers({ logger, policy: { allowPrivateNetworks: true } }),
      metrics,
      logger,
      {
        ...DEFAULT_DISPATCHER_OPTIONS,
        leaseMs: 800,
        sendTimeoutMs: 300,
        batchSize: 12,
        maxInFlight: 30,
        perDestinationConcurrency: 1,
        pollMs: 20,
      },
      () => T0 + 2 * 60_000 + (Date.now() - started),
    );
    d.start();
    try {
      await waitFor(
        async () =>
          (await store.listDeliveries('p1', {}, 100)).every((x) => x.status === 'delivered'),
        20_000,
      );
    } finally {
      await d.stop();
    }
    expect(receiver.accepted.size).toBe(12);
    // Each delivery reached the endpoint once: none was sent by two lease holders.
    expect(receiver.repeats).toEqual([]);
    expect(receiver.hits).toHaveLength(12);
    // Some waited past what their lease allowed and were sent under a later lease.
    expect(metrics.render()).toMatch(/outcome="lease_expired"[^\n]* [1-9]/);
  });

  it('sends deliveries handed over already leased without claiming them; past maxInFlight they go back to the outbox, due now', async () => {
    const receiver = await startWebhookReceiver({ kind: 'hang' });
    receivers.push(receiver);
    const store = await outboxWithCrossings(receiver, 5);
    const nowMs = T0 + 2 * 60_000;
    // Leased as SQLite leases a batch's deliveries for the process that applied it.
    const leased = await store.claimDeliveries(nowMs, 10, LEASE_MS);
    expect(leased).toHaveLength(5);
    let claims = 0;
    const claim = store.claimDeliveries.bind(store);
    store.claimDeliveries = (...args) => {
      claims++;
      return claim(...args);
    };
    const started = Date.now();
    const d = dispatcher(store, () => nowMs + (Date.now() - started), [], {
      maxInFlight: 2,
      // The two held sends time out and are retried soon after.
      sendTimeoutMs: 1_000,
      baseBackoffMs: 10,
      pollMs: 20,
    });
    d.sendLeased(leased);
    try {
      await waitFor(() => receiver.hangingCount() === 2);
      await waitFor(
        async () =>
          (await store.listDeliveries('p1', {}, 10)).filter((x) => x.status === 'pending')
            .length === 3,
      );
      const back = (await store.listDeliveries('p1', {}, 10)).filter((x) => x.status === 'pending');
      expect(back.every((x) => x.nextAttemptMs <= nowMs + (Date.now() - started))).toBe(true);
      expect(claims).toBe(0);
      // The two in flight finish; the three put back are leased and sent by the poller.
      receiver.setMode({ kind: 'ok' });
      d.start();
      await waitFor(async () =>
        (await store.listDeliveries('p1', {}, 10)).every((x) => x.status === 'delivered'),
      );
    } finally {
      await d.stop();
    }
    expect(receiver.accepted.size).toBe(5);
  });
});
