import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { type ApplyResult, type PricedEvent, type Store, TokenwatchError } from '@tokenwatch/core';
import type { Logger } from '../../../logging/logger.js';
import type { Metrics } from '../../../metrics/metrics.js';
import { decodeBatch } from './batch-codec.js';
import { Credits, PartitionFeed } from './partition-feed.js';

export interface JetStreamWorkerOptions {
  stream: string;
  /** Messages applied together in one store transaction, at most; the worker holds twice that. */
  fetchMaxMessages: number;
  /** The consumers' ack wait: held messages tell JetStream they are still being worked on. */
  ackWaitMs: number;
  /** Non-retryable failures of one message before it is terminated and recorded as poison. */
  poisonAfterAttempts: number;
  /** Backoff after a failure: base × 2^(failures−1), capped (a held batch's pause, a nak's delay). */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
}

/** Stores that can record a terminated message where an operator sees it (PostgreSQL: poison_messages). */
interface PoisonLog {
  recordPoison(p: {
    stream: string;
    streamSeq: number;
    msgId: string | undefined;
    deliveries: number;
    reason: string;
    payloadHead: string;
    nowMs: number;
  }): Promise<void>;
}

function hasPoisonLog(store: unknown): store is PoisonLog {
  return typeof (store as Partial<PoisonLog>).recordPoison === 'function';
}

interface Decoded {
  m: JsMsg;
  events: PricedEvent[];
}

/** A message the worker holds, and the consumer (partition) it came from. */
interface Held {
  m: JsMsg;
  feed: string;
}

const decoder = new TextDecoder();

/**
 * A stateless worker: pulls the durable consumers of the partitions it owns (see
 * PartitionBalancer; `addSource`/`removeSource`) and applies what it receives with the rules, in
 * ONE store transaction per group of messages (all messages that arrived while the previous
 * transaction ran, up to `fetchMaxMessages`). It holds at most 2 × `fetchMaxMessages` un-acked
 * messages (Credits), and tells JetStream every third of the ack wait that it is still working
 * on each of them (`+WPI`), so neither a long transaction nor the wait behind it causes a
 * redelivery. Each message is acked only after the commit, so a crash (SIGKILL) between commit
 * and ack redelivers a batch whose ids are already claimed: counted once. A retryable failure
 * (PostgreSQL down, a lock timeout) keeps the group at the head of the buffer and pauses with
 * backoff before trying it again: nothing received after it is applied before it, so a
 * partition's messages are applied in stream order (which decides which payload of a repeated
 * id wins) even across an outage. A message that fails for another reason is retried alone
 * (naked with backoff: what comes after it may be applied first), and after
 * `poisonAfterAttempts` failures — or at once when it cannot be decoded — it is terminated
 * (`+TERM`), logged, counted in tokenwatch_queue_poison_total and recorded in the store
 * (`poison_messages`), so it neither blocks the queue nor vanishes.
 */
export class JetStreamWorker {
  private readonly feeds = new Map<string, PartitionFeed>();
  private readonly credits: Credits;
  private buffer: Held[] = [];
  /** The group inside `process` right now. */
  private inProcess: Held[] = [];
  private wakeLoop: (() => void) | undefined;
  private stopped = false;
  private started = false;
  private loopDone: Promise<void> | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private pauseUntil = 0;
  /** Since when applying fails with a retryable store error (database down); cleared by a commit. */
  private storeFailingSince: number | undefined;
  /** Retryable failures in a row, for the backoff; cleared by a commit. */
  private storeFailures = 0;
  private storeFailure = '';
  poisoned = 0;
  appliedMessages = 0;

  constructor(
    private readonly js: JetStreamClient,
    private readonly store: Pick<Store, 'applyBatch'>,
    private readonly options: JetStreamWorkerOptions,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
    private readonly onCommitted: (
      result: ApplyResult,
      nowMs: number,
      events: readonly PricedEvent[],
    ) => void = () => {},
  ) {
    this.credits = new Credits(Math.max(2, options.fetchMaxMessages * 2));
    metrics.addGauge(
      'tokenwatch_queue_poison_total',
      'Queue messages this worker terminated as poison (see the poison_messages table).',
      () => this.poisoned,
    );
    metrics.addGauge(
      'tokenwatch_queue_applied_messages_total',
      'Queue messages this worker applied and acked.',
      () => this.appliedMessages,
    );
    metrics.addGauge(
      'tokenwatch_queue_consumers_owned',
      'Queue consumers (partitions) this worker pulls from now.',
      () => this.feeds.size,
    );
  }

  /** Starts the apply loop and the in-progress heartbeat; sources are added by the balancer. */
  start(): void {
    this.started = true;
    this.heartbeat = setInterval(
      () => {
        for (const h of this.inProcess) h.m.working();
        for (const h of this.buffer) h.m.working();
      },
      Math.max(250, Math.floor(this.options.ackWaitMs / 3)),
    );
    this.loopDone = this.loop();
  }

  /** Starts pulling a durable consumer (a partition this worker now owns). */
  addSource(consumerName: string): void {
    if (this.stopped || this.feeds.has(consumerName)) return;
    const feed = new PartitionFeed(
      this.js,
      this.options.stream,
      consumerName,
      this.credits,
      () => Math.ceil(this.credits.capacity / Math.max(1, this.feeds.size)),
      (m, from) => {
        this.buffer.push({ m, feed: from });
        this.wakeLoop?.();
      },
    );
    this.feeds.set(consumerName, feed);
    feed.start();
  }

  /**
   * Stops pulling a consumer and resolves once every message received from it has been applied
   * and acked (or naked): only then may another worker take the partition over. While the store
   * fails, what the worker holds of it would wait for the store: it is handed back instead (nak,
   * in order; JetStream delivers those again before anything newer), so that a partition can
   * move and a worker can stop during an outage.
   */
  async removeSource(consumerName: string): Promise<void> {
    const feed = this.feeds.get(consumerName);
    if (!feed) return;
    await feed.stop();
    this.feeds.delete(consumerName);
    const holds = (h: Held) => h.feed === consumerName;
    while (!this.stopped) {
      const applying = this.inProcess.some(holds);
      if (!applying && !this.buffer.some(holds)) return;
      if (this.storeFailingSince !== undefined && !applying) {
        const back = this.buffer.filter(holds);
        this.buffer = this.buffer.filter((h) => !holds(h));
        for (const h of back) h.m.nak();
        this.credits.give(back.length);
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  get sources(): string[] {
    return [...this.feeds.keys()];
  }

  /**
   * Why this worker is not applying batches, from what it already knows (no I/O): stopped, a
   * consumer it pulls failing or gone, or the store refusing every transaction. Empty when healthy.
   */
  get problems(): string[] {
    const out: string[] = [];
    if (this.stopped || !this.started) out.push('consumer stopped');
    for (const feed of this.feeds.values()) if (feed.trouble) out.push(feed.trouble);
    if (this.storeFailingSince !== undefined) {
      const seconds = Math.round((this.now() - this.storeFailingSince) / 1000);
      out.push(`store failing for ${seconds} s: ${this.storeFailure}`);
    }
    return out;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      if (this.buffer.length === 0) {
        await new Promise<void>((resolve) => {
          this.wakeLoop = resolve;
        });
        this.wakeLoop = undefined;
        continue;
      }
      const wait = this.pauseUntil - this.now();
      if (wait > 0) {
        await new Promise((r) => setTimeout(r, Math.min(wait, 1_000)));
        continue;
      }
      const group = this.buffer.splice(0, this.options.fetchMaxMessages);
      this.inProcess = group;
      let held = new Set<JsMsg>();
      try {
        held = await this.process(group.map((h) => h.m));
      } catch (err) {
        // Never leave a message un-answered: JetStream would only redeliver after ack wait.
        this.logger.error('worker failed to process a group; naking it', { error: err as Error });
        for (const h of group) h.m.nak(this.backoff(h.m));
      } finally {
        this.inProcess = [];
        // Held for another attempt: back at the head, in their order, still holding their credits.
        const again = group.filter((h) => held.has(h.m));
        this.buffer.unshift(...again);
        this.credits.give(group.length - again.length);
      }
    }
  }

  private backoff(m: JsMsg): number {
    return this.delayAfter(m.info.deliveryCount);
  }

  /** base × 2^(failures−1), capped, ±25 % so that workers do not retry in step. */
  private delayAfter(failures: number): number {
    const base = this.options.baseBackoffMs ?? 500;
    const max = this.options.maxBackoffMs ?? 30_000;
    const exp = Math.min(max, base * 2 ** Math.max(0, failures - 1));
    return Math.round(exp * (0.75 + Math.random() * 0.5));
  }

  /** Applies a group; returns the messages to try again after the pause (a retryable failure). */
  private async process(group: JsMsg[]): Promise<Set<JsMsg>> {
    const decoded: Decoded[] = [];
    for (const m of group) {
      try {
        decoded.push({ m, events: decodeBatch(m.data) });
      } catch (err) {
        await this.poison(m, `undecodable: ${(err as Error).message}`);
      }
    }
    if (decoded.length === 0) return new Set();
    return new Set((await this.apply(decoded)).map((d) => d.m));
  }

  /** Returns the messages held for another attempt (all of `group` on a retryable failure). */
  private async apply(group: Decoded[]): Promise<Decoded[]> {
    const events: PricedEvent[] = [];
    for (const d of group) for (const e of d.events) events.push(e);
    const nowMs = this.now();
    const started = performance.now();
    let result: ApplyResult;
    try {
      result = await this.store.applyBatch(events, { nowMs });
    } catch (err) {
      const retryable = err instanceof TokenwatchError ? err.retryable : false;
      if (retryable) {
        this.storeFailures++;
        const delay = this.delayAfter(this.storeFailures);
        this.pauseUntil = this.now() + delay;
        this.storeFailingSince ??= this.now();
        this.storeFailure = (err as Error).message;
        this.metrics.flushFailures.inc();
        this.logger.warn('store unavailable; the batches are held and tried again', {
          messages: group.length,
          retryInMs: delay,
          error: (err as Error).message,
        });
        return group;
      }
      if (group.length > 1) {
        // One message of the group may be at fault: apply each alone to find it. Once one is
        // held (the store became unavailable), the ones after it wait behind it.
        for (let i = 0; i < group.length; i++) {
          const held = await this.apply([group[i] as Decoded]);
          if (held.length > 0) return group.slice(i);
        }
        return [];
      }
      const only = group[0] as Decoded;
      if (only.m.info.deliveryCount >= this.options.poisonAfterAttempts) {
        await this.poison(
          only.m,
          `apply failed ${only.m.info.deliveryCount} times: ${(err as Error).message}`,
        );
      } else {
        this.logger.warn('batch failed; will retry', {
          streamSeq: only.m.seq,
          deliveries: only.m.info.deliveryCount,
          error: (err as Error).message,
        });
        only.m.nak(this.backoff(only.m));
      }
      return [];
    }
    // Committed: now, and only now, the messages may go.
    this.storeFailingSince = undefined;
    this.storeFailures = 0;
    for (const d of group) d.m.ack();
    this.appliedMessages += group.length;
    this.metrics.flushSeconds.observe((performance.now() - started) / 1000);
    this.metrics.flushEvents.observe(events.length);
    this.metrics.ingestedEvents.inc({}, result.accepted);
    this.metrics.duplicateEvents.inc({}, result.duplicates);
    this.metrics.conflictEvents.inc({}, result.conflicts);
    try {
      this.onCommitted(result, nowMs, events);
    } catch (err) {
      this.logger.warn('post-commit listener failed', { error: err as Error });
    }
    return [];
  }

  private async poison(m: JsMsg, reason: string): Promise<void> {
    const msgId = m.headers?.get('Nats-Msg-Id') || undefined;
    if (hasPoisonLog(this.store)) {
      try {
        await this.store.recordPoison({
          stream: this.options.stream,
          streamSeq: m.seq,
          msgId,
          deliveries: m.info.deliveryCount,
          reason,
          payloadHead: decoder.decode(m.data.subarray(0, 512)),
          nowMs: this.now(),
        });
      } catch (err) {
        // Cannot record it: keep it in the queue rather than lose it silently.
        this.logger.warn('could not record a poison message; naking it', { error: err as Error });
        m.nak(this.backoff(m));
        return;
      }
    }
    this.poisoned++;
    this.logger.error('poison message terminated', {
      stream: this.options.stream,
      streamSeq: m.seq,
      msgId,
      deliveries: m.info.deliveryCount,
      reason,
    });
    m.term();
  }

  /** Stops consuming; the group in flight is finished (committed and acked, or naked). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeLoop?.();
    await this.loopDone;
    // Every pull runs out (≤ 2 s); what they still deliver lands in the buffer, handed back below.
    await Promise.all([...this.feeds.values()].map((f) => f.stop()));
    this.feeds.clear();
    clearInterval(this.heartbeat);
    // Buffered but not started: hand them back at once instead of waiting for ack wait.
    for (const h of this.buffer.splice(0)) h.m.nak();
  }
}
