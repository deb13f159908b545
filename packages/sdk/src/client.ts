import { type DeliveryContext, deliverBatch } from './batch-delivery.js';
import { createBudgetChecker } from './budget-check.js';
import type {
  DropInfo,
  FlushOptions,
  Tokenwatch,
  TokenwatchOptions,
  TokenwatchStats,
} from './client-options.js';
import { disabledClient, emptyStats } from './disabled-client.js';
import { type DropReason, TokenwatchError } from './errors.js';
import {
  type EventDefaults,
  LIMITS,
  shapeEvent,
  type UsageEvent,
  type UsageRecord,
} from './event.js';
import { onBeforeExit, unrefTimer } from './exit-hook.js';
import { createHttpTransport, type HttpTransportOptions } from './http-transport.js';
import { defaultNodeFetch } from './node-http-fetch.js';
import { RingBuffer } from './ring-buffer.js';
import type { Transport } from './transport.js';
import { createUuidV7 } from './uuid-v7.js';

interface Waiter {
  target: number;
  resolve: (done: boolean) => void;
}

/** How long a shutdown waits for sends to notice their abort. */
const ABORT_GRACE_MS = 100;

function positive(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;
}

/** Creates a client. Each client owns its buffer, timers and exit hook: no global state. */
export function createTokenwatch(options: TokenwatchOptions): Tokenwatch {
  if (options.disabled) return disabledClient;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const maxBufferSize = Math.floor(positive(options.maxBufferSize, 10_000));
  const maxBatchSize = Math.min(
    Math.floor(positive(options.maxBatchSize, 500)),
    LIMITS.maxEventsPerRequest,
    maxBufferSize,
  );
  const flushIntervalMs = positive(options.flushIntervalMs, 1000);
  const maxConcurrency = Math.floor(positive(options.maxConcurrency, 2));
  const maxAttempts = Math.floor(positive(options.maxAttempts, 10));
  const initialBackoffMs = positive(options.initialBackoffMs, 250);
  const maxBackoffMs = positive(options.maxBackoffMs, 30_000);
  const maxRetryAfterMs = positive(options.maxRetryAfterMs, 300_000);
  const requestTimeoutMs = positive(options.requestTimeoutMs, 10_000);
  const dropOldest = options.dropPolicy !== 'drop-newest';
  const defaults: EventDefaults = {
    userId: options.userId ?? 'anonymous',
    appId: options.appId,
    tags: options.tags && Object.keys(options.tags).length > 0 ? { ...options.tags } : undefined,
  };
  const nextId = createUuidV7(now);
  const exitTimeoutMs = positive(options.exitTimeoutMs, 2000);
  // On Node, requests go through node:http with unref'd sockets, so a request the collector
  // never answers cannot keep a finished process alive (see node-http-fetch.ts).
  const doFetch = options.fetch ?? defaultNodeFetch();

  let transport: Transport;
  if (options.transport) {
    transport = options.transport;
  } else {
    const http: HttpTransportOptions = {
      endpoint: options.endpoint ?? '',
      apiKey: options.apiKey ?? '',
    };
    if (doFetch) http.fetch = doFetch;
    if (options.compression) http.compression = options.compression;
    transport = createHttpTransport(http);
  }

  const budget = createBudgetChecker({
    ...options.check,
    endpoint: options.check?.endpoint ?? options.endpoint,
    apiKey: options.check?.apiKey ?? options.apiKey,
    defaults: { userId: defaults.userId, appId: defaults.appId },
    fetch: doFetch,
    now,
    onError: (error) => reportError(error),
  });

  const queue = new RingBuffer<UsageEvent>(maxBufferSize);
  const stats = emptyStats();
  let inflightEvents = 0;
  let active = 0;
  let backingOff = 0;
  let enqueuedSeq = 0; // events ever queued
  let dequeuedSeq = 0; // events ever taken off the queue (sent off or dropped)
  const activeBatches = new Set<{ firstSeq: number }>();
  let waiters: Waiter[] = [];
  let intervalTimer: unknown;
  let pumpScheduled = false;
  let flushDue = false;
  let closed = false;
  let aborting = false;
  const sleepers = new Map<() => void, unknown>(); // wake function -> its timer
  const controllers = new Set<AbortController>();

  const reportError = (error: TokenwatchError): void => {
    if (!options.onError) return;
    try {
      options.onError(error);
    } catch {
      // a throwing hook must not break the exporter
    }
  };

  const drop = (
    events: readonly UsageEvent[],
    reason: DropReason,
    error?: TokenwatchError,
    count = events.length,
  ): void => {
    stats.dropped += count;
    stats.droppedByReason[reason] += count;
    if (!options.onDrop) return;
    try {
      const info: DropInfo = { reason, count, events };
      if (error) info.error = error;
      options.onDrop(info);
    } catch {
      // ignore
    }
  };

  const settleWaiters = (): void => {
    if (waiters.length === 0) return;
    let minActive = Number.POSITIVE_INFINITY;
    for (const b of activeBatches) if (b.firstSeq < minActive) minActive = b.firstSeq;
    const keep: Waiter[] = [];
    for (const w of waiters) {
      if (dequeuedSeq >= w.target && minActive >= w.target) w.resolve(true);
      else keep.push(w);
    }
    waiters = keep;
    if (waiters.length === 0) holdTimers(false);
  };

  // Neither backoff timers nor requests in flight keep the process alive on their own, but while
  // someone awaits flush() or shutdown() the process is held: an awaited flush must not be cut
  // short by the runtime exiting.
  let holding: unknown;
  const holdTimers = (hold: boolean): void => {
    for (const t of sleepers.values()) {
      const timer = t as { ref?: () => void; unref?: () => void };
      if (hold) timer.ref?.();
      else timer.unref?.();
    }
    if (hold && holding === undefined) holding = setInterval(() => undefined, 1 << 30);
    else if (!hold && holding !== undefined) {
      clearInterval(holding as Parameters<typeof clearInterval>[0]);
      holding = undefined;
    }
  };

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        sleepers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      if (waiters.length === 0) unrefTimer(t);
      sleepers.set(done, t);
    });

  const delivery: DeliveryContext = {
    transport,
    requestTimeoutMs,
    maxAttempts,
    initialBackoffMs,
    maxBackoffMs,
    maxRetryAfterMs,
    random,
    controllers,
    isAborting: () => aborting,
    delivered(count, duplicates) {
      inflightEvents -= count;
      stats.sent += count;
      stats.duplicates += duplicates;
    },
    dropped(events, reason, error) {
      inflightEvents -= events.length;
      drop(events, reason, error);
    },
    reportError,
    async retryAfter(ms) {
      stats.retried++;
      backingOff++;
      try {
        await sleep(ms);
      } finally {
        backingOff--;
      }
    },
  };

  const startBatch = (): void => {
    const firstSeq = dequeuedSeq;
    const batch = queue.take(maxBatchSize);
    dequeuedSeq += batch.length;
    inflightEvents += batch.length;
    const handle = { firstSeq };
    activeBatches.add(handle);
    active++;
    void deliverBatch(delivery, batch)
      .catch(() => {
        // deliver never throws; keep the accounting sane if it ever does
        inflightEvents = Math.max(0, inflightEvents - batch.length);
      })
      .finally(() => {
        active--;
        activeBatches.delete(handle);
        settleWaiters();
        pump();
      });
  };

  const armInterval = (): void => {
    if (intervalTimer !== undefined || closed) return;
    intervalTimer = setTimeout(() => {
      intervalTimer = undefined;
      flushDue = true;
      pump();
    }, flushIntervalMs);
    unrefTimer(intervalTimer);
  };

  function pump(): void {
    try {
      const forced = flushDue || waiters.length > 0;
      // While a batch waits out a backoff, the collector is unwell: do not pile on.
      while (
        active < maxConcurrency &&
        backingOff === 0 &&
        !aborting &&
        (queue.length >= maxBatchSize || (forced && queue.length > 0))
      ) {
        startBatch();
      }
      if (queue.length === 0) flushDue = false;
      else armInterval();
      settleWaiters();
    } catch (err) {
      reportError(
        new TokenwatchError('transport', `exporter failed: ${(err as Error)?.message}`, {
          cause: err,
        }),
      );
    }
  }

  const schedulePump = (): void => {
    if (pumpScheduled) return;
    pumpScheduled = true;
    // Off the caller's stack: record() stays O(1), the serialising happens on a later tick.
    const t = setTimeout(() => {
      pumpScheduled = false;
      pump();
    }, 0);
    unrefTimer(t);
  };

  const flush = (opts: FlushOptions = {}): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      const waiter: Waiter = { target: enqueuedSeq, resolve };
      let timer: unknown;
      if (opts.timeoutMs !== undefined) {
        // ref'd: the awaited deadline itself holds the process
        timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== waiter);
          if (waiters.length === 0) holdTimers(false);
          resolve(false);
        }, opts.timeoutMs);
      }
      waiter.resolve = (done) => {
        if (timer !== undefined) clearTimeout(timer as Parameters<typeof clearTimeout>[0]);
        resolve(done);
      };
      waiters.push(waiter);
      holdTimers(true);
      pump();
    });

  /** Gives up on everything queued or in flight (drops it as `shutdown`), without closing. */
  const abortPending = async (): Promise<void> => {
    aborting = true;
    const left = queue.clear();
    dequeuedSeq += left.length;
    if (left.length > 0) drop(left, 'shutdown');
    for (const wake of [...sleepers.keys()]) wake();
    for (const ac of [...controllers]) ac.abort();
    // Sends notice the abort at once; a custom transport that ignores it is not waited for
    // beyond a moment (its events stay pending: counted when it ends, never twice).
    const giveUpAt = Date.now() + ABORT_GRACE_MS;
    while (active > 0 && Date.now() < giveUpAt) await new Promise((r) => setTimeout(r, 1));
    aborting = false;
    settleWaiters();
  };

  const unregisterExit =
    options.flushOnExit === false
      ? () => undefined
      : onBeforeExit(async (timeoutMs) => {
          if (queue.length + inflightEvents === 0) return;
          const done = await flush({ timeoutMs });
          if (!done) await abortPending();
        }, exitTimeoutMs);

  return {
    record(input: UsageRecord): void {
      try {
        if (closed) {
          drop([], 'shutdown', undefined, 1);
          return;
        }
        const shaped = shapeEvent(input, nextId(), now(), defaults);
        if (!shaped.ok) {
          const error = new TokenwatchError('invalid_event', `${shaped.field} ${shaped.reason}`, {
            details: { field: shaped.field, reason: shaped.reason },
          });
          reportError(error);
          drop([], 'invalid', error, 1);
          return;
        }
        if (queue.length + inflightEvents >= maxBufferSize) {
          if (dropOldest && queue.length > 0) {
            const oldest = queue.shift() as UsageEvent;
            dequeuedSeq++;
            drop([oldest], 'buffer_full');
          } else {
            drop([shaped.event], 'buffer_full');
            return;
          }
        }
        queue.push(shaped.event);
        enqueuedSeq++;
        if (queue.length >= maxBatchSize) {
          if (active < maxConcurrency && backingOff === 0) schedulePump();
        } else if (intervalTimer === undefined) {
          armInterval();
        }
      } catch (err) {
        const error = new TokenwatchError(
          'invalid_event',
          `record failed: ${(err as Error)?.message}`,
          {
            cause: err,
          },
        );
        reportError(error);
        drop([], 'invalid', error, 1);
      }
    },

    flush,

    async shutdown(opts: FlushOptions = {}): Promise<void> {
      try {
        closed = true;
        const done = await flush({ timeoutMs: opts.timeoutMs ?? exitTimeoutMs });
        if (!done) await abortPending();
        if (intervalTimer !== undefined)
          clearTimeout(intervalTimer as Parameters<typeof clearTimeout>[0]);
        intervalTimer = undefined;
        unregisterExit();
      } catch {
        // never reject
      }
    },

    stats(): TokenwatchStats {
      return {
        ...stats,
        droppedByReason: { ...stats.droppedByReason },
        pending: queue.length + inflightEvents,
      };
    },

    check: budget.check,
    checkCached: budget.checkCached,
  };
}
