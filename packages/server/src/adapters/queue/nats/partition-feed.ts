import type { Consumer, ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';

/**
 * How long one pull request waits for messages. A feed being stopped lets its last pull run out
 * (JetStream cannot cancel a pull: messages it delivers to an abandoned inbox would only come
 * back after the ack wait), so this also bounds how long handing a partition over takes.
 */
const FETCH_EXPIRES_MS = 2_000;
const RETRY_MS = 1_000;

/**
 * The messages a worker may hold un-acked, across all its partitions: a feed takes credits
 * before it pulls and the worker gives one back per message it has answered (ack, nak or term).
 * Bounded so that what a worker holds is at most two transactions' worth: nothing waits in a
 * buffer past the ack wait while a slow transaction runs (which is what made JetStream redeliver
 * when a worker prefetched hundreds of messages).
 */
export class Credits {
  private available: number;
  private waiters: Array<() => void> = [];

  constructor(readonly capacity: number) {
    this.available = capacity;
  }

  /** Takes between 1 and `max` credits, waiting while none is free; 0 once `stopped()`. */
  async take(max: number, stopped: () => boolean): Promise<number> {
    while (this.available === 0) {
      if (stopped()) return 0;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (stopped()) return 0;
    const n = Math.max(1, Math.min(max, this.available));
    this.available -= n;
    return n;
  }

  give(n: number): void {
    if (n <= 0) return;
    this.available = Math.min(this.capacity, this.available + n);
    this.wakeAll();
  }

  /** Wakes every waiter (to notice it was stopped). */
  wakeAll(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }
}

/**
 * Pulls one durable consumer (one partition) into the worker for as long as the worker owns the
 * partition: bounded pulls (`fetch`) sized by the free credits, one after the other.
 */
export class PartitionFeed {
  /** Why the feed is not receiving, cleared by the next pull that works. */
  trouble: string | undefined;
  private stopped = false;
  private done: Promise<void> | undefined;
  private wakeRetry: (() => void) | undefined;

  constructor(
    private readonly js: JetStreamClient,
    private readonly stream: string,
    readonly consumerName: string,
    private readonly credits: Credits,
    /** Credits one pull may take (the capacity shared by the feeds the worker runs). */
    private readonly pullSize: () => number,
    private readonly deliver: (m: JsMsg, feed: string) => void,
  ) {}

  start(): void {
    this.done = this.run();
  }

  private async run(): Promise<void> {
    let consumer: Consumer | undefined;
    while (!this.stopped) {
      let taken = 0;
      let received = 0;
      try {
        consumer ??= await this.js.consumers.get(this.stream, this.consumerName);
        taken = await this.credits.take(this.pullSize(), () => this.stopped);
        if (taken === 0) continue;
        const batch: ConsumerMessages = await consumer.fetch({
          max_messages: taken,
          expires: FETCH_EXPIRES_MS,
        });
        for await (const m of batch) {
          received++;
          this.deliver(m, this.consumerName);
        }
        this.trouble = undefined;
      } catch (err) {
        consumer = undefined;
        this.trouble = describe(err, this.consumerName, this.stream);
        await new Promise<void>((resolve) => {
          this.wakeRetry = resolve;
          setTimeout(resolve, RETRY_MS);
        });
        this.wakeRetry = undefined;
      } finally {
        this.credits.give(taken - received);
      }
    }
  }

  /** Stops pulling; resolves once the last pull has run out (its messages delivered). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.credits.wakeAll();
    this.wakeRetry?.();
    await this.done;
  }
}

function describe(err: unknown, consumer: string, stream: string): string {
  const text = String((err as Error)?.message ?? err);
  if (/consumer (not found|deleted)/i.test(text))
    return `consumer "${consumer}" not found on stream "${stream}"`;
  if (/stream not found/i.test(text)) return `stream "${stream}" not found`;
  if (/no responders/i.test(text)) return 'JetStream did not respond to the pull request';
  return `pulling from consumer "${consumer}" failed: ${text}`;
}
