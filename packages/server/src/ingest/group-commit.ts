import {
  type ApplyResult,
  EventOutcome,
  type PricedEvent,
  TokenwatchError,
  type UsageStore,
} from '@tokenwatch/core';
import type { Logger } from '../logging/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { BatchCounts, EventSink } from './event-sink.js';

export interface GroupCommitOptions {
  /** A flush takes whole requests until it holds at least this many events. */
  flushMaxEvents: number;
  /** How long the first waiting request waits for others to share its transaction. */
  flushMaxWaitMs: number;
  /** Backpressure: above this many waiting events, `submit` refuses with `overloaded`. */
  maxQueuedEvents: number;
}

interface Pending {
  events: readonly PricedEvent[];
  resolve: (counts: BatchCounts) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit: requests hand in validated, priced events and wait; a single flusher applies
 * what has gathered (up to `flushMaxEvents`, or whatever arrived within `flushMaxWaitMs`) in
 * ONE store transaction, then answers every request of that flush. A request is answered
 * only after its events are committed, so a 202 always means durable, and a failed flush
 * answers each of its requests with a retryable error — never a 202 and then a drop.
 */
export class GroupCommitter implements EventSink {
  private queue: Pending[] = [];
  private queuedEvents = 0;
  private flushing = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly store: Pick<UsageStore, 'applyBatch'>,
    private readonly options: GroupCommitOptions,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
    /** Called after each successful commit with the events that were newly counted. */
    private readonly onCommitted: (
      accepted: PricedEvent[],
      nowMs: number,
      result: ApplyResult,
    ) => void = () => {},
  ) {}

  /** Events waiting for a flush (for /metrics and /readyz). */
  get backlog(): number {
    return this.queuedEvents;
  }

  submit(events: readonly PricedEvent[]): Promise<BatchCounts> {
    if (this.closed) {
      return Promise.reject(
        new TokenwatchError('unavailable', 'The server is shutting down.', {
          retryAfterSeconds: 2,
        }),
      );
    }
    if (this.queuedEvents + events.length > this.options.maxQueuedEvents) {
      return Promise.reject(
        new TokenwatchError(
          'overloaded',
          'Too many events are waiting to be written; retry shortly.',
          {
            retryAfterSeconds: 1,
          },
        ),
      );
    }
    return new Promise<BatchCounts>((resolve, reject) => {
      this.queue.push({ events, resolve, reject });
      this.queuedEvents += events.length;
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.flushing) return; // the running flush loops until the queue is empty
    if (this.queuedEvents >= this.options.flushMaxEvents || this.options.flushMaxWaitMs === 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      void this.flushLoop();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flushLoop();
      }, this.options.flushMaxWaitMs);
    }
  }

  private takeFlush(): Pending[] {
    const taken: Pending[] = [];
    let count = 0;
    while (this.queue.length > 0 && count < this.options.flushMaxEvents) {
      const next = this.queue.shift() as Pending;
      taken.push(next);
      count += next.events.length;
    }
    this.queuedEvents -= count;
    return taken;
  }

  private async flushLoop(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        await this.flushOnce(this.takeFlush());
      }
    } finally {
      this.flushing = false;
      if (this.queue.length > 0) this.schedule();
      else for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  private async flushOnce(requests: Pending[]): Promise<void> {
    const events: PricedEvent[] = [];
    for (const r of requests) for (const e of r.events) events.push(e);
    const started = performance.now();
    try {
      const nowMs = this.now();
      const result = await this.store.applyBatch(events, { nowMs });
      this.metrics.flushSeconds.observe((performance.now() - started) / 1000);
      this.metrics.flushEvents.observe(events.length);
      this.metrics.ingestedEvents.inc({}, result.accepted);
      this.metrics.duplicateEvents.inc({}, result.duplicates);
      this.metrics.conflictEvents.inc({}, result.conflicts);
      let unpriced = 0;
      let offset = 0;
      for (const r of requests) {
        const counts: BatchCounts = { accepted: 0, duplicates: 0, conflicts: 0 };
        for (let i = 0; i < r.events.length; i++) {
          const outcome = result.outcomes[offset + i];
          if (outcome === EventOutcome.Accepted) {
            counts.accepted++;
            if (!(r.events[i] as PricedEvent).priced) unpriced++;
          } else if (outcome === EventOutcome.Duplicate) counts.duplicates++;
          else counts.conflicts++;
        }
        offset += r.events.length;
        r.resolve(counts);
      }
      if (unpriced > 0) this.metrics.unpricedEvents.inc({}, unpriced);
      if (result.accepted > 0) {
        try {
          this.onCommitted(
            events.filter((_, i) => result.outcomes[i] === EventOutcome.Accepted),
            nowMs,
            result,
          );
        } catch (err) {
          this.logger.warn('post-commit listener failed', { error: err as Error });
        }
      }
    } catch (err) {
      this.metrics.flushFailures.inc();
      const retryable = err instanceof TokenwatchError ? err.retryable : false;
      this.logger.error('flush failed; requests answered with 503', {
        events: events.length,
        error: err instanceof Error ? err.message : String(err),
        retryable,
      });
      const answer = new TokenwatchError(
        'unavailable',
        'The events could not be stored; nothing of this request was counted. Retry.',
        { retryAfterSeconds: 1, cause: err },
      );
      for (const r of requests) r.reject(answer);
    }
  }

  /** Stops taking requests and resolves when every accepted request has been answered. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.queue.length > 0 && !this.flushing) void this.flushLoop();
    if (this.queue.length === 0 && !this.flushing) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }
}
