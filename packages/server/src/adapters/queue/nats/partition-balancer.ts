import type { Logger } from '../../../logging/logger.js';

/**
 * Exclusive, crash-released ownership of partitions among the workers of one stream (PostgreSQL:
 * PgPartitionLeases; a lone worker on SQLite: LoneWorkerLeases).
 */
export interface PartitionLeases {
  /** False once the session holding the leases is gone (and its leases with it). */
  readonly connected: boolean;
  /** This worker's member slot (0-based), to spread where workers start acquiring. */
  readonly slot: number;
  /** (Re)opens the session and joins as a member. */
  connect(): Promise<void>;
  /** Workers sharing the partitions now, this one included (≥ 1). */
  members(): Promise<number>;
  tryAcquire(partition: number): Promise<boolean>;
  release(partition: number): Promise<void>;
  close(): Promise<void>;
}

/** A worker that is the only one (SQLite store): it owns every partition. */
export class LoneWorkerLeases implements PartitionLeases {
  readonly connected = true;
  readonly slot = 0;
  async connect(): Promise<void> {}
  async members(): Promise<number> {
    return 1;
  }
  async tryAcquire(): Promise<boolean> {
    return true;
  }
  async release(): Promise<void> {}
  async close(): Promise<void> {}
}

export interface PartitionSink {
  addSource(consumerName: string): void;
  /** Resolves once nothing received from the consumer is still un-answered. */
  removeSource(consumerName: string): Promise<void>;
}

/**
 * Shares the partitions among the live workers: every `intervalMs` each worker counts the
 * members and holds ⌈partitions ÷ members⌉ of them — releasing its extras when a worker joined
 * (after applying what it holds from them), taking free ones when a worker left or died. A
 * partition is pulled only by the worker holding its lease, so two workers never apply batches
 * of the same partition at the same time.
 *
 * Exactness never depends on this: ids are claimed in the store's transaction, so even two
 * workers on one partition (a lease session lost while its worker still runs) count each event
 * once; they would only wait on each other's row locks. That is why a worker whose lease session
 * dropped keeps pulling what it had while it reconnects, and then gives up what it could not
 * take back.
 */
export class PartitionBalancer {
  private readonly owned = new Set<number>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private ticking: Promise<void> | undefined;
  private stopped = false;
  private lastProblem: string | undefined;

  constructor(
    private readonly leases: PartitionLeases,
    private readonly partitions: number,
    /** The consumers that make up a partition. */
    private readonly consumersOf: (partition: number) => string[],
    private readonly sink: PartitionSink,
    private readonly logger: Logger,
    private readonly intervalMs = 1_000,
  ) {}

  /** Partitions this worker owns now. */
  get ownedPartitions(): number[] {
    return [...this.owned].sort((a, b) => a - b);
  }

  /** Why the balancer cannot share partitions (lease session down), if so. */
  get problem(): string | undefined {
    return this.lastProblem;
  }

  /**
   * Joins and takes a fair share, retrying for up to `settleMs` while other workers hand theirs
   * over, then keeps rebalancing in the background.
   */
  async start(settleMs = 5_000): Promise<void> {
    const deadline = Date.now() + settleMs;
    for (;;) {
      const target = await this.tick();
      if (this.owned.size >= target || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick().then(() => this.schedule());
    }, this.intervalMs);
  }

  /** One round; returns the share this worker aims for. */
  private async tick(): Promise<number> {
    try {
      if (!this.leases.connected) await this.reconnect();
      const members = await this.leases.members();
      const target = Math.ceil(this.partitions / members);
      if (this.owned.size > target) {
        for (const p of this.ownedPartitions.slice(target)) await this.giveUp(p, true);
      } else if (this.owned.size < target) {
        const first = (Math.max(0, this.leases.slot) * target) % this.partitions;
        for (let i = 0; i < this.partitions && this.owned.size < target && !this.stopped; i++) {
          const p = (first + i) % this.partitions;
          if (this.owned.has(p) || !(await this.leases.tryAcquire(p))) continue;
          this.owned.add(p);
          for (const c of this.consumersOf(p)) this.sink.addSource(c);
        }
      }
      this.lastProblem = undefined;
      return target;
    } catch (err) {
      this.lastProblem = `partition leases: ${(err as Error).message}`;
      this.logger.warn('partition rebalancing failed; retrying', { error: err as Error });
      return 0;
    }
  }

  /** A new session holds nothing: take back what this worker pulls, give up what it cannot. */
  private async reconnect(): Promise<void> {
    await this.leases.connect();
    if (this.owned.size === 0) return;
    for (const p of this.ownedPartitions) {
      if (!(await this.leases.tryAcquire(p))) await this.giveUp(p, false);
    }
    this.logger.info('partition lease session re-established', {
      partitions: this.ownedPartitions,
    });
  }

  private async giveUp(partition: number, release: boolean): Promise<void> {
    await Promise.all(this.consumersOf(partition).map((c) => this.sink.removeSource(c)));
    this.owned.delete(partition);
    if (release) await this.leases.release(partition);
  }

  /** Stops rebalancing (the leases go with the session, closed by the caller). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
  }
}
