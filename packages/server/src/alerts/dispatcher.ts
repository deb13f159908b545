import {
  type ChannelConfig,
  type DeliveryRecord,
  type Notifier,
  type RuleStore,
  TokenwatchError,
} from '@tokenwatch/core';
import type { Logger } from '../logging/logger.js';
import type { Metrics } from '../metrics/metrics.js';

export interface DispatcherOptions {
  /** Per-attempt timeout of one channel send. */
  sendTimeoutMs: number;
  /** A delivery older than this is dead-lettered instead of retried. */
  maxAgeMs: number;
  /** First retry delay; doubles per attempt (with ±50 % jitter) up to `maxBackoffMs`. */
  baseBackoffMs: number;
  maxBackoffMs: number;
  /**
   * How long a claimed delivery is ours; after a crash it is resumed when the lease ends. At
   * least twice `sendTimeoutMs` is used: a delivery is sent only while the send, timeout
   * included, can end before its lease does.
   */
  leaseMs: number;
  /** Deliveries leased per poll, and concurrent sends per destination (host or channel type). */
  batchSize: number;
  perDestinationConcurrency: number;
  /**
   * Leased deliveries held at once (sending, or waiting for their destination's slot): no more
   * are leased until some finish. Unbounded, a slow destination let the leased ones pile up
   * (each polling for a slot), their leases expire and the same ones be leased again.
   */
  maxInFlight: number;
  /** Poll interval when idle (new alerts wake the dispatcher at once). */
  pollMs: number;
}

export const DEFAULT_DISPATCHER_OPTIONS: DispatcherOptions = {
  sendTimeoutMs: 10_000,
  maxAgeMs: 24 * 3_600_000,
  baseBackoffMs: 1_000,
  maxBackoffMs: 15 * 60_000,
  leaseMs: 60_000,
  batchSize: 100,
  perDestinationConcurrency: 4,
  maxInFlight: 200,
  pollMs: 1_000,
};

/** The lease a dispatcher takes: `leaseMs`, or twice the send timeout when that is longer. */
export function dispatcherLeaseMs(options: Pick<DispatcherOptions, 'leaseMs' | 'sendTimeoutMs'>) {
  return Math.max(options.leaseMs, 2 * options.sendTimeoutMs);
}

/** Deliveries to one destination share its concurrency cap, so one slow endpoint only slows itself. */
function destinationOf(channel: ChannelConfig): string {
  if (channel.type === 'webhook' || channel.type === 'slack') {
    try {
      return `${channel.type}:${new URL(channel.url).host}`;
    } catch {
      return channel.type;
    }
  }
  return channel.type;
}

/** How a send ended: recorded in the outbox after the destination's slot is free. */
type SendOutcome = { sent: true } | { sent: false; error: unknown };

/**
 * Sends the outbox. Each delivery is sent on its own (never waiting for another), with a
 * timeout; success marks it delivered; a retryable failure schedules the next attempt with
 * exponential backoff and jitter (or Retry-After); a permanent failure, or one past the max age,
 * dead-letters it (visible in GET /v1/deliveries?status=dead). Leases make a crashed
 * dispatcher's deliveries resume, and stop two dispatchers from sending the same one.
 */
export class Dispatcher {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  private wakeRequested = false;
  private readonly inFlight = new Set<Promise<void>>();
  /** Sends in progress per destination, and the deliveries waiting for one of its slots. */
  private readonly perDestination = new Map<string, number>();
  private readonly slotWaiters = new Map<string, (() => void)[]>();
  /** The last poll left deliveries in the outbox (a full batch, or no room to lease them). */
  private backlog = false;
  /** Set by runOnce: a process without a poller (a Lambda invocation) never sets timers. */
  private timersOff = false;
  /** `options.leaseMs`, or twice the send timeout when that is longer (see leaseMs). */
  private readonly leaseMs: number;

  constructor(
    private readonly store: Pick<RuleStore, 'claimDeliveries' | 'completeDelivery'>,
    private readonly notifiers: ReadonlyMap<string, Notifier>,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    private readonly options: DispatcherOptions = DEFAULT_DISPATCHER_OPTIONS,
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {
    this.leaseMs = dispatcherLeaseMs(options);
  }

  start(): void {
    this.stopped = false;
    this.wake();
  }

  /** New alerts were committed: look at the outbox now instead of at the next poll. */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.wakeRequested = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    void this.poll();
  }

  private schedule(delayMs: number): void {
    if (this.stopped || this.timer || this.timersOff) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.poll();
    }, delayMs);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    if (this.running || this.stopped) return;
    const room = this.options.maxInFlight - this.inFlight.size;
    if (room <= 0) {
      // Full: the next delivery to finish polls again.
      this.backlog = true;
      return;
    }
    this.running = true;
    let claimed: DeliveryRecord[] = [];
    const limit = Math.min(this.options.batchSize, room);
    const claimedAtMs = this.now();
    try {
      this.wakeRequested = false;
      claimed = await this.store.claimDeliveries(claimedAtMs, limit, this.leaseMs);
    } catch (err) {
      this.logger.warn('outbox poll failed; retrying', { error: err as Error });
    } finally {
      this.running = false;
    }
    const leaseEndMs = claimedAtMs + this.leaseMs;
    for (const delivery of claimed) this.track(this.deliver(delivery, leaseEndMs));
    this.backlog = claimed.length === limit;
    if (this.backlog && this.inFlight.size >= this.options.maxInFlight) return;
    this.schedule(this.backlog || this.wakeRequested ? 0 : this.options.pollMs);
  }

  /**
   * Deliveries the store created already leased to this process (a batch's alerts, see
   * ApplyResult.leasedDeliveries): sent now, without a claim. Those past `maxInFlight` are put
   * back in the outbox, due now, for the poller to lease as room frees.
   */
  sendLeased(deliveries: readonly DeliveryRecord[]): void {
    if (this.stopped) return; // their leases expire and the next start resumes them
    for (const delivery of deliveries) {
      if (this.inFlight.size < this.options.maxInFlight) {
        this.track(this.deliver(delivery, delivery.nextAttemptMs));
        continue;
      }
      this.backlog = true;
      const nowMs = this.now();
      this.store
        .completeDelivery(
          delivery.id,
          { status: 'retry', nextAttemptMs: nowMs, error: 'not sent yet: the dispatcher was full' },
          nowMs,
        )
        .catch((err: unknown) =>
          // Its lease expires and it is claimed then: later, never lost.
          this.logger.warn('could not return a delivery to the outbox', {
            deliveryId: delivery.id,
            error: err as Error,
          }),
        );
    }
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => {
      this.inFlight.delete(p);
      // Room again for what the outbox still holds.
      if (this.backlog && !this.timersOff) this.schedule(0);
    });
  }

  private async deliver(delivery: DeliveryRecord, leaseEndMs: number): Promise<void> {
    const destination = destinationOf(delivery.channel);
    // Over the destination's cap: wait for a slot without holding up anyone else.
    await this.acquireSlot(destination);
    let outcome: SendOutcome;
    try {
      if (this.stopped) return; // the lease expires and another run resumes it
      // Behind a slow destination the wait can outlast the lease; by then the delivery may be
      // leased again (by this process or another) and sent twice. Sent only when the send can
      // end, timeout included, before the lease does; otherwise left for its next lease.
      const margin = this.leaseMs / 10;
      if (this.now() + this.options.sendTimeoutMs + margin > leaseEndMs) {
        this.metrics.alertDeliveries.inc({
          channel: delivery.channel.type,
          outcome: 'lease_expired',
        });
        this.logger.debug('delivery lease too short to send; left for its next lease', {
          deliveryId: delivery.id,
        });
        return;
      }
      outcome = await this.send(delivery);
    } finally {
      // The slot bounds the requests to the destination, so it is free once the send is over:
      // held while the outcome was recorded, a store write waiting behind the SQLite writer's
      // fold (hundreds of milliseconds under load) held up the next alerts to the same webhook.
      this.releaseSlot(destination);
    }
    if (outcome.sent) await this.recordDelivered(delivery);
    else await this.fail(delivery, outcome.error);
  }

  private async acquireSlot(destination: string): Promise<void> {
    const busy = this.perDestination.get(destination) ?? 0;
    if (busy < this.options.perDestinationConcurrency) {
      this.perDestination.set(destination, busy + 1);
      return;
    }
    // The slot is handed over by releaseSlot (the count stays as it is).
    await new Promise<void>((resolve) => {
      const waiters = this.slotWaiters.get(destination);
      if (waiters) waiters.push(resolve);
      else this.slotWaiters.set(destination, [resolve]);
    });
  }

  private releaseSlot(destination: string): void {
    const next = this.slotWaiters.get(destination)?.shift();
    if (next) {
      next();
      return;
    }
    this.slotWaiters.delete(destination);
    const busy = (this.perDestination.get(destination) ?? 1) - 1;
    if (busy > 0) this.perDestination.set(destination, busy);
    else this.perDestination.delete(destination);
  }

  /** Sends one delivery (within its destination's slot); what happened is recorded after. */
  private async send(delivery: DeliveryRecord): Promise<SendOutcome> {
    const started = performance.now();
    try {
      const notifier = this.notifiers.get(delivery.channel.type);
      if (!notifier) {
        throw new TokenwatchError(
          'invalid_config',
          `no "${delivery.channel.type}" channel is configured on this server`,
          { retryable: false },
        );
      }
      const controller = new AbortController();
      const timeout = setTimeout(() => controller.abort(), this.options.sendTimeoutMs);
      try {
        await notifier.send(
          {
            id: delivery.id,
            attempt: delivery.attempts,
            channel: delivery.channel,
            message: delivery.message,
          },
          controller.signal,
        );
      } finally {
        clearTimeout(timeout);
      }
    } catch (err) {
      return { sent: false, error: err };
    }
    this.metrics.alertDeliveries.inc({ channel: delivery.channel.type, outcome: 'delivered' });
    this.metrics.alertDeliverySeconds.observe((performance.now() - started) / 1000);
    return { sent: true };
  }

  /** Records a send that succeeded: the send's failure and the record's are apart. */
  private async recordDelivered(delivery: DeliveryRecord): Promise<void> {
    try {
      await this.store.completeDelivery(delivery.id, { status: 'delivered' }, this.now());
    } catch (storeErr) {
      // Sent, but not recorded (a busy or unreachable store): not a failure of the send, so never
      // a retry or a dead letter from here. The lease expires and it is sent again: at least
      // once, as documented. Handled as a send failure, a busy SQLite writer marked alerts that
      // had reached their webhook as dead (docs/benchmarks-history.md § Soak).
      this.logger.warn('could not record a delivery outcome', {
        deliveryId: delivery.id,
        outcome: 'delivered',
        error: storeErr as Error,
      });
    }
  }

  private async fail(delivery: DeliveryRecord, err: unknown): Promise<void> {
    const message = err instanceof Error ? err.message : String(err);
    const retryable = err instanceof TokenwatchError ? err.retryable : true;
    const nowMs = this.now();
    const tooOld = nowMs - delivery.createdAtMs >= this.options.maxAgeMs;
    try {
      if (!retryable || tooOld) {
        await this.store.completeDelivery(
          delivery.id,
          {
            status: 'dead',
            error: tooOld ? `gave up after ${delivery.attempts} attempts: ${message}` : message,
          },
          nowMs,
        );
        this.metrics.alertDeliveries.inc({ channel: delivery.channel.type, outcome: 'dead' });
        this.logger.warn('alert delivery dead-lettered', {
          deliveryId: delivery.id,
          channel: delivery.channel.type,
          error: message,
        });
        return;
      }
      const retryAfterMs =
        err instanceof TokenwatchError && err.retryAfterSeconds !== undefined
          ? err.retryAfterSeconds * 1000
          : 0;
      const backoff = Math.min(
        this.options.maxBackoffMs,
        this.options.baseBackoffMs * 2 ** Math.max(0, delivery.attempts - 1),
      );
      const delay = Math.max(retryAfterMs, Math.round(backoff * (0.5 + this.random())));
      await this.store.completeDelivery(
        delivery.id,
        { status: 'retry', nextAttemptMs: nowMs + delay, error: message },
        nowMs,
      );
      this.metrics.alertDeliveries.inc({ channel: delivery.channel.type, outcome: 'retry' });
      this.schedule(delay);
    } catch (storeErr) {
      // The lease will expire and the delivery will be tried again: at least once, never lost.
      this.logger.warn('could not record a delivery outcome', {
        deliveryId: delivery.id,
        error: storeErr as Error,
      });
    }
  }

  /**
   * One pass without timers, for a process that cannot keep a poller (an AWS Lambda invocation
   * sends what its batch made due before it returns): leases up to `batchSize` due deliveries,
   * sends them and records every outcome; retries stay in the outbox for a later pass.
   */
  async runOnce(): Promise<number> {
    this.timersOff = true;
    const claimedAtMs = this.now();
    const claimed = await this.store.claimDeliveries(
      claimedAtMs,
      this.options.batchSize,
      this.leaseMs,
    );
    const leaseEndMs = claimedAtMs + this.leaseMs;
    await Promise.allSettled(claimed.map((d) => this.deliver(d, leaseEndMs)));
    return claimed.length;
  }

  /** Stops polling and waits for the sends in flight (bounded by their timeouts). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.allSettled([...this.inFlight]);
  }
}
