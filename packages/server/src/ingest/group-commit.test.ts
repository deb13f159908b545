import {
  type ApplyOptions,
  type ApplyResult,
  type PricedEvent,
  TokenwatchError,
  type UsageStore,
} from '@tokenwatch/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryStore } from '../adapters/store/memory/memory-store.js';
import { createLogger } from '../logging/logger.js';
import { type Histogram, Metrics } from '../metrics/metrics.js';
import type { BatchCounts } from './event-sink.js';
import { type GroupCommitOptions, GroupCommitter } from './group-commit.js';

const T = Date.UTC(2026, 0, 31, 12);
const logger = createLogger('silent');

function ev(id: string, overrides: Partial<PricedEvent> = {}): PricedEvent {
  return {
    projectId: 'p1',
    id,
    timestampMs: T,
    userId: 'u',
    appId: 'a',
    modelId: 'gpt-4o',
    provider: 'openai',
    inputTokens: 10,
    outputTokens: 5,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    latencyMs: undefined,
    status: 'ok',
    tags: undefined,
    costNanoUsd: 100,
    priced: true,
    fingerprint: `fp-${id}`,
    ...overrides,
  };
}

function evs(prefix: string, n: number): PricedEvent[] {
  return Array.from({ length: n }, (_, i) => ev(`${prefix}${i}`));
}

/**
 * The real in-memory store, observed: records the size of every applyBatch and can hold a
 * flush "in the disk" until released, as a slow fsync would. Behaviour is MemoryStore's own.
 */
class ObservedStore implements Pick<UsageStore, 'applyBatch'> {
  readonly inner = new MemoryStore();
  readonly batchSizes: number[] = [];
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;

  hold(): void {
    this.gate = new Promise((resolve) => {
      this.open = resolve;
    });
  }

  release(): void {
    this.open?.();
    this.gate = undefined;
  }

  async applyBatch(events: readonly PricedEvent[], options: ApplyOptions): Promise<ApplyResult> {
    this.batchSizes.push(events.length);
    if (this.gate) await this.gate;
    return this.inner.applyBatch(events, options);
  }

  /** Applies directly, bypassing the committer: what a later flush will find already stored. */
  seed(events: PricedEvent[]): Promise<ApplyResult> {
    return this.inner.applyBatch(events, { nowMs: T });
  }
}

/** Tracks a promise without awaiting it, so a test can check "answered yet?". */
function track<T>(promise: Promise<T>) {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    (value) => {
      state.settled = true;
      state.value = value;
    },
    (error) => {
      state.settled = true;
      state.error = error;
    },
  );
  return state;
}

function histogramCount(h: Histogram): number {
  const line = h
    .render()
    .split('\n')
    .find((l) => l.startsWith(`${h.name}_count `));
  return Number(line?.split(' ')[1]);
}

function histogramSum(h: Histogram): number {
  const line = h
    .render()
    .split('\n')
    .find((l) => l.startsWith(`${h.name}_sum `));
  return Number(line?.split(' ')[1]);
}

const flushTick = () => vi.advanceTimersByTimeAsync(0);

describe('GroupCommitter', () => {
  let store: ObservedStore;
  let metrics: Metrics;
  let committer: GroupCommitter;

  function make(options: Partial<GroupCommitOptions> = {}): GroupCommitter {
    committer = new GroupCommitter(
      store,
      { flushMaxEvents: 100, flushMaxWaitMs: 50, maxQueuedEvents: 1000, ...options },
      metrics,
      logger,
      () => T,
    );
    return committer;
  }

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    store = new ObservedStore();
    metrics = new Metrics();
  });

  afterEach(async () => {
    store.release();
    await committer?.close();
    vi.useRealTimers();
  });

  describe('batching', () => {
    it('waits up to flushMaxWaitMs for company, then flushes', async () => {
      make({ flushMaxWaitMs: 50 });
      const r = track(committer.submit(evs('a', 3)));
      await vi.advanceTimersByTimeAsync(49);
      expect(r.settled).toBe(false);
      expect(store.batchSizes).toEqual([]);
      expect(committer.backlog).toBe(3);
      await vi.advanceTimersByTimeAsync(1);
      expect(r.settled).toBe(true);
      expect(r.value).toEqual({ accepted: 3, duplicates: 0, conflicts: 0 });
      expect(store.batchSizes).toEqual([3]);
      expect(committer.backlog).toBe(0);
    });

    it('does not restart the wait for later requests: the first waiter waits at most the max', async () => {
      make({ flushMaxWaitMs: 50 });
      const r1 = track(committer.submit(evs('a', 1)));
      await vi.advanceTimersByTimeAsync(30);
      const r2 = track(committer.submit(evs('b', 1)));
      await vi.advanceTimersByTimeAsync(20);
      expect(r1.settled).toBe(true);
      expect(r2.settled).toBe(true);
      expect(store.batchSizes).toEqual([2]);
    });

    it('flushes at once when flushMaxEvents have gathered, without waiting', async () => {
      make({ flushMaxEvents: 10, flushMaxWaitMs: 1000 });
      const r1 = track(committer.submit(evs('a', 4)));
      const r2 = track(committer.submit(evs('b', 4)));
      await flushTick();
      expect(store.batchSizes).toEqual([]);
      expect(r1.settled || r2.settled).toBe(false);
      const r3 = track(committer.submit(evs('c', 4)));
      await flushTick();
      // Whole requests: the flush holds 12 events, one transaction for all three.
      expect(store.batchSizes).toEqual([12]);
      expect([r1.value, r2.value, r3.value]).toEqual([
        { accepted: 4, duplicates: 0, conflicts: 0 },
        { accepted: 4, duplicates: 0, conflicts: 0 },
        { accepted: 4, duplicates: 0, conflicts: 0 },
      ]);
      expect(histogramCount(metrics.flushEvents)).toBe(1);
      expect(histogramSum(metrics.flushEvents)).toBe(12);
    });

    it('flushes a single oversized request at once', async () => {
      make({ flushMaxEvents: 10, flushMaxWaitMs: 1000 });
      const r = track(committer.submit(evs('a', 25)));
      await flushTick();
      expect(r.value).toEqual({ accepted: 25, duplicates: 0, conflicts: 0 });
      expect(store.batchSizes).toEqual([25]);
    });

    it('flushes each request at once when flushMaxWaitMs is 0', async () => {
      make({ flushMaxWaitMs: 0 });
      const r = track(committer.submit(evs('a', 1)));
      await flushTick();
      expect(r.settled).toBe(true);
      expect(store.batchSizes).toEqual([1]);
    });

    it('gathers the requests that arrive during a flush into the next one, without waiting', async () => {
      make({ flushMaxEvents: 100, flushMaxWaitMs: 0 });
      store.hold();
      const r1 = track(committer.submit(evs('a', 1)));
      await flushTick();
      expect(store.batchSizes).toEqual([1]);
      const r2 = track(committer.submit(evs('b', 2)));
      const r3 = track(committer.submit(evs('c', 3)));
      await flushTick();
      expect(store.batchSizes).toEqual([1]); // still one flush in flight
      expect(committer.backlog).toBe(5);
      store.release();
      await flushTick();
      expect(store.batchSizes).toEqual([1, 5]);
      expect([r1.value?.accepted, r2.value?.accepted, r3.value?.accepted]).toEqual([1, 2, 3]);
    });

    it('never splits a request across flushes, and answers each with its own counts', async () => {
      make({ flushMaxEvents: 5, flushMaxWaitMs: 0 });
      store.hold();
      const first = track(committer.submit(evs('x', 1)));
      await flushTick();
      const tracked = Array.from({ length: 7 }, (_, i) =>
        track(committer.submit(evs(`r${i}-`, 3))),
      );
      store.release();
      await flushTick();
      expect(first.value?.accepted).toBe(1);
      // 7 requests of 3 events: flushes take whole requests until they hold >= 5 events.
      expect(store.batchSizes).toEqual([1, 6, 6, 6, 3]);
      for (const t of tracked)
        expect(t.value).toEqual({ accepted: 3, duplicates: 0, conflicts: 0 });
      expect(committer.backlog).toBe(0);
    });
  });

  describe('per-request counts in a shared flush', () => {
    it('splits accepted / duplicates / conflicts by request, in order', async () => {
      make({ flushMaxWaitMs: 50 });
      await store.seed([ev('old1'), ev('old2')]);

      // One flush, four requests; ids repeat within the flush too (the first wins).
      const r1 = track(committer.submit([ev('old1'), ev('n1')]));
      const r2 = track(
        committer.submit([ev('old2', { fingerprint: 'changed' }), ev('n2'), ev('n3')]),
      );
      const r3 = track(committer.submit([ev('n1')]));
      const r4 = track(
        committer.submit([ev('n2', { fingerprint: 'other' }), ev('n4'), ev('n4'), ev('old1')]),
      );
      await vi.advanceTimersByTimeAsync(50);

      expect(store.batchSizes).toEqual([10]);
      expect(r1.value).toEqual({ accepted: 1, duplicates: 1, conflicts: 0 });
      expect(r2.value).toEqual({ accepted: 2, duplicates: 0, conflicts: 1 });
      expect(r3.value).toEqual({ accepted: 0, duplicates: 1, conflicts: 0 });
      expect(r4.value).toEqual({ accepted: 1, duplicates: 2, conflicts: 1 });

      expect(metrics.ingestedEvents.get()).toBe(4);
      expect(metrics.duplicateEvents.get()).toBe(4);
      expect(metrics.conflictEvents.get()).toBe(2);
      expect(await store.inner.listConflicts('p1', 10)).toHaveLength(2);
    });

    it('counts unpriced events only when they were accepted', async () => {
      make({ flushMaxWaitMs: 0 });
      const r1 = track(
        committer.submit([
          ev('u1', { priced: false, costNanoUsd: 0 }),
          ev('u2', { priced: false, costNanoUsd: 0 }),
          ev('p1'),
        ]),
      );
      await flushTick();
      expect(r1.value?.accepted).toBe(3);
      expect(metrics.unpricedEvents.get()).toBe(2);
      const r2 = track(committer.submit([ev('u1', { priced: false, costNanoUsd: 0 })]));
      await flushTick();
      expect(r2.value).toEqual({ accepted: 0, duplicates: 1, conflicts: 0 });
      expect(metrics.unpricedEvents.get()).toBe(2);
    });

    it('answers an empty request with zero counts', async () => {
      make({ flushMaxWaitMs: 0 });
      const r = track(committer.submit([]));
      await flushTick();
      expect(r.value).toEqual({ accepted: 0, duplicates: 0, conflicts: 0 });
    });
  });

  describe('a failed flush', () => {
    it('rejects every request of the flush with a retryable unavailable, stores nothing, and the next flush works', async () => {
      make({ flushMaxWaitMs: 50 });
      store.inner.failNextApply = new Error('disk I/O error');
      const r1 = track(committer.submit(evs('a', 2)));
      const r2 = track(committer.submit(evs('b', 3)));
      await vi.advanceTimersByTimeAsync(50);

      for (const r of [r1, r2]) {
        expect(r.settled).toBe(true);
        expect(r.value).toBeUndefined();
        const err = r.error as TokenwatchError;
        expect(err).toBeInstanceOf(TokenwatchError);
        expect(err.code).toBe('unavailable');
        expect(err.retryable).toBe(true);
        expect(err.retryAfterSeconds).toBe(1);
      }
      expect(store.batchSizes).toEqual([5]);
      expect(metrics.flushFailures.get()).toBe(1);
      expect(metrics.ingestedEvents.get()).toBe(0);
      expect(committer.backlog).toBe(0);

      // Nothing was stored: the retry of the same events is accepted, not deduplicated.
      const retry1 = track(committer.submit(evs('a', 2)));
      const retry2 = track(committer.submit(evs('b', 3)));
      await vi.advanceTimersByTimeAsync(50);
      expect(retry1.value).toEqual({ accepted: 2, duplicates: 0, conflicts: 0 });
      expect(retry2.value).toEqual({ accepted: 3, duplicates: 0, conflicts: 0 });
      expect(metrics.flushFailures.get()).toBe(1);
      expect(metrics.ingestedEvents.get()).toBe(5);
    });

    it('only fails the requests of the failed flush', async () => {
      make({ flushMaxEvents: 2, flushMaxWaitMs: 0 });
      store.hold();
      const r0 = track(committer.submit(evs('z', 1)));
      await flushTick();
      // While r0 is in flight, four requests queue up: two flushes of two requests each.
      const rs = ['a', 'b', 'c', 'd'].map((p) => track(committer.submit(evs(p, 1))));
      store.inner.failNextApply = new Error('boom'); // hits r0's flush
      store.release();
      await flushTick();
      expect(store.batchSizes).toEqual([1, 2, 2]);
      expect((r0.error as TokenwatchError).code).toBe('unavailable');
      for (const r of rs) expect(r.value).toEqual({ accepted: 1, duplicates: 0, conflicts: 0 });
    });

    it('turns a non-retryable store error into a retryable 503 answer as well', async () => {
      const failing: Pick<UsageStore, 'applyBatch'> = {
        applyBatch: async () => {
          throw new TypeError('bug in the adapter');
        },
      };
      committer = new GroupCommitter(
        failing,
        { flushMaxEvents: 1, flushMaxWaitMs: 0, maxQueuedEvents: 10 },
        metrics,
        logger,
      );
      const r = track(committer.submit(evs('a', 1)));
      await flushTick();
      const err = r.error as TokenwatchError;
      expect(err.code).toBe('unavailable');
      expect(err.retryable).toBe(true);
      expect(err.cause).toBeInstanceOf(TypeError);
    });
  });

  describe('backpressure', () => {
    it('refuses with overloaded when the waiting events would pass maxQueuedEvents', async () => {
      make({ flushMaxEvents: 100, flushMaxWaitMs: 1000, maxQueuedEvents: 10 });
      const r1 = track(committer.submit(evs('a', 6)));
      const refused = committer.submit(evs('b', 5));
      await expect(refused).rejects.toMatchObject({
        code: 'overloaded',
        retryable: true,
        retryAfterSeconds: 1,
      });
      await expect(refused).rejects.toBeInstanceOf(TokenwatchError);
      const r2 = track(committer.submit(evs('c', 4))); // exactly 10: still fits
      expect(committer.backlog).toBe(10);
      await expect(committer.submit(evs('d', 1))).rejects.toMatchObject({ code: 'overloaded' });

      await vi.advanceTimersByTimeAsync(1000);
      expect(r1.value?.accepted).toBe(6);
      expect(r2.value?.accepted).toBe(4);
      expect(store.batchSizes).toEqual([10]); // the refused events were never queued
      expect(committer.backlog).toBe(0);
      const r3 = track(committer.submit(evs('e', 10)));
      await vi.advanceTimersByTimeAsync(1000);
      expect(r3.value?.accepted).toBe(10);
    });

    it('refuses a single request larger than the queue', async () => {
      make({ maxQueuedEvents: 10 });
      await expect(committer.submit(evs('a', 11))).rejects.toMatchObject({ code: 'overloaded' });
      expect(committer.backlog).toBe(0);
    });
  });

  describe('close()', () => {
    it('resolves at once when nothing is pending', async () => {
      make();
      const closed = track(committer.close());
      await flushTick();
      expect(closed.settled).toBe(true);
    });

    it('flushes and answers every pending request without waiting for the timer, then resolves', async () => {
      make({ flushMaxWaitMs: 1000 });
      const r1 = track(committer.submit(evs('a', 2)));
      const r2 = track(committer.submit(evs('b', 1)));
      const closed = track(committer.close());
      await flushTick();
      expect(r1.value).toEqual({ accepted: 2, duplicates: 0, conflicts: 0 });
      expect(r2.value).toEqual({ accepted: 1, duplicates: 0, conflicts: 0 });
      expect(closed.settled).toBe(true);
      expect(store.batchSizes).toEqual([3]);
    });

    it('waits for the flush in flight and the requests queued behind it', async () => {
      make({ flushMaxEvents: 1, flushMaxWaitMs: 0 });
      store.hold();
      const r1 = track(committer.submit(evs('a', 1)));
      await flushTick();
      const r2 = track(committer.submit(evs('b', 1)));
      const closed = track(committer.close());
      await flushTick();
      expect(closed.settled).toBe(false);
      expect(r1.settled || r2.settled).toBe(false);
      store.release();
      await flushTick();
      expect(r1.value?.accepted).toBe(1);
      expect(r2.value?.accepted).toBe(1);
      expect(closed.settled).toBe(true);
    });

    it('refuses new work with a retryable unavailable', async () => {
      make();
      await committer.close();
      const refused = committer.submit(evs('a', 1));
      await expect(refused).rejects.toMatchObject({
        code: 'unavailable',
        retryable: true,
        retryAfterSeconds: 2,
      });
      await expect(refused).rejects.toBeInstanceOf(TokenwatchError);
      expect(committer.backlog).toBe(0);
      expect(store.batchSizes).toEqual([]);
    });

    it('still resolves when the last flush fails, having rejected its requests', async () => {
      make({ flushMaxWaitMs: 1000 });
      store.inner.failNextApply = new Error('disk full');
      const r = track(committer.submit(evs('a', 2)));
      await committer.close();
      expect(r.settled).toBe(true);
      expect((r.error as TokenwatchError).code).toBe('unavailable');
    });

    it('lets the pending timer fire harmlessly after close', async () => {
      make({ flushMaxWaitMs: 50 });
      const r = track(committer.submit(evs('a', 1)));
      await committer.close();
      expect(r.value?.accepted).toBe(1);
      await vi.advanceTimersByTimeAsync(100);
      expect(store.batchSizes).toEqual([1]);
    });

    it('can be called twice', async () => {
      make({ flushMaxWaitMs: 1000 });
      const r = track(committer.submit(evs('a', 1)));
      await Promise.all([committer.close(), committer.close()]);
      expect(r.value?.accepted).toBe(1);
    });
  });
});

describe('GroupCommitter with real timers', () => {
  it('answers 200 concurrent requests with exact totals', async () => {
    const store = new MemoryStore();
    const metrics = new Metrics();
    const committer = new GroupCommitter(
      store,
      { flushMaxEvents: 50, flushMaxWaitMs: 2, maxQueuedEvents: 100_000 },
      metrics,
      logger,
    );
    const results: BatchCounts[] = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        committer.submit([ev(`e${i}`), ev(`e${i}`), ev(`e${(i + 1) % 200}`)]),
      ),
    );
    const sum = results.reduce(
      (s, r) => ({
        accepted: s.accepted + r.accepted,
        duplicates: s.duplicates + r.duplicates,
        conflicts: s.conflicts + r.conflicts,
      }),
      { accepted: 0, duplicates: 0, conflicts: 0 },
    );
    expect(sum).toEqual({ accepted: 200, duplicates: 400, conflicts: 0 });
    expect(metrics.ingestedEvents.get()).toBe(200);
    expect(histogramSum(metrics.flushEvents)).toBe(600);
    expect(histogramCount(metrics.flushEvents)).toBeLessThan(200);
    await committer.close();
  });
});
