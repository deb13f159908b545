import { TokenwatchError } from '@tokenwatch/core';
import { type DynamoIo, type Item, mapLimit, num } from './dynamodb-io.js';
import { UpdateBuilder } from './expression.js';
import { ruleLockKey } from './keys.js';

/** Attribute of a batch's shared lease on a project's rule lock: `r_<batchId>` = expiry ms. */
const READER_PREFIX = 'r_';

export interface RuleLockOptions {
  /**
   * How long a lease lasts: longer than any batch may run (the SQS function's timeout). A lease
   * that outlives it belongs to a batch that crashed; the rule writer completes that batch.
   */
  leaseMs: number;
  /** How long to wait for the other side before giving up with a retryable error. */
  waitMs: number;
  now: () => number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A readers–writer lock per project, made of conditional updates of one item, that serialises
 * saving a rule with applying batches on DynamoDB (which has no multi-item transactions):
 *
 * - A batch holds a SHARED lease on each of its projects from before it reads the rules until it
 *   is done; it cannot take one while a writer holds the lock.
 * - Saving a rule takes the lock EXCLUSIVE (no new batch may start), then waits for the batches
 *   holding leases to finish. A lease that expired belongs to a batch that crashed: the writer
 *   completes that batch itself (`rollForward`, the batch's own idempotent protocol) before
 *   going on. Only then does it save the rule and rebuild its counters from the rollups.
 *
 * So every batch either finished (all its rollups written) before a rule's counters were rebuilt,
 * or read the rules after the rule was saved: each event counts once for the rule.
 */
export class RuleLock {
  constructor(
    private readonly io: DynamoIo,
    private readonly options: RuleLockOptions,
    private readonly rollForward: (batchId: string) => Promise<void>,
  ) {}

  /** Takes a shared lease on each project for `holder` (a batch id); waits out a writer. */
  async acquireShared(projectIds: readonly string[], holder: string): Promise<void> {
    const deadline = this.options.now() + this.options.waitMs;
    try {
      await mapLimit(projectIds, this.io.concurrency, async (projectId) => {
        for (let wait = 10; ; wait = Math.min(wait * 2, 200)) {
          const now = this.options.now();
          const u = new UpdateBuilder().set(
            `${READER_PREFIX}${holder}`,
            now + this.options.leaseMs,
          );
          u.condition(
            `attribute_not_exists(${u.name('writer')}) OR ${u.name('writerUntil')} < ${u.value(now)}`,
          );
          if ((await this.io.update(ruleLockKey(projectId), u.build())) !== undefined) return;
          if (now > deadline)
            throw new TokenwatchError('unavailable', 'a rule of the project is being saved', {
              retryable: true,
              retryAfterSeconds: 1,
            });
          await sleep(wait);
        }
      });
    } catch (err) {
      await this.releaseShared(projectIds, holder).catch(() => {});
      throw err;
    }
  }

  /** Ends the leases (a lease left behind only delays the next rule change until it expires). */
  async releaseShared(projectIds: readonly string[], holder: string): Promise<void> {
    await mapLimit(projectIds, this.io.concurrency, async (projectId) => {
      await this.io.update(
        ruleLockKey(projectId),
        new UpdateBuilder().remove(`${READER_PREFIX}${holder}`).build(),
      );
    });
  }

  /** Runs `fn` holding the project's lock exclusively, once no batch holds a lease. */
  async withExclusive<T>(projectId: string, fn: () => Promise<T>): Promise<T> {
    const me = `w${Math.random().toString(36).slice(2)}`;
    const deadline = this.options.now() + this.options.waitMs + this.options.leaseMs;
    let taken: Item | undefined;
    for (let wait = 10; ; wait = Math.min(wait * 2, 200)) {
      const now = this.options.now();
      const u = new UpdateBuilder()
        .set('writer', me)
        .set('writerUntil', now + this.options.leaseMs);
      u.condition(
        `attribute_not_exists(${u.name('writer')}) OR ${u.name('writerUntil')} < ${u.value(now)}`,
      );
      taken = await this.io.update(ruleLockKey(projectId), u.build());
      if (taken !== undefined) break;
      if (now > deadline)
        throw new TokenwatchError('unavailable', 'another rule of the project is being saved', {
          retryable: true,
          retryAfterSeconds: 1,
        });
      await sleep(wait);
    }
    try {
      await this.drainReaders(projectId, deadline, taken);
      return await fn();
    } finally {
      const u = new UpdateBuilder().remove('writer').remove('writerUntil');
      u.condition(`${u.name('writer')} = ${u.value(me)}`);
      await this.io.update(ruleLockKey(projectId), u.build());
    }
  }

  /**
   * Waits until no batch holds a lease; completes the batches whose lease expired. `taken` is
   * the lock item as the update that took the lock left it (ALL_NEW): the leases it lists are
   * the ones held at that instant, and no new one can be added while the writer holds the lock,
   * so the first round needs no read of its own (one GetItem less per rule save).
   */
  private async drainReaders(projectId: string, deadline: number, taken?: Item): Promise<void> {
    let known = taken;
    for (let wait = 10; ; wait = Math.min(wait * 2, 200)) {
      const item: Item = known ?? (await this.io.get(ruleLockKey(projectId))) ?? {};
      known = undefined;
      const now = this.options.now();
      let live = 0;
      for (const [attr, value] of Object.entries(item)) {
        if (!attr.startsWith(READER_PREFIX)) continue;
        const expiry = num(value);
        if (expiry >= now) {
          live++;
          continue;
        }
        await this.rollForward(attr.slice(READER_PREFIX.length));
        const u = new UpdateBuilder().remove(attr);
        u.condition(`${u.name(attr)} = ${u.value(expiry)}`);
        await this.io.update(ruleLockKey(projectId), u.build());
      }
      if (live === 0) return;
      if (now > deadline)
        throw new TokenwatchError('unavailable', 'batches of the project are still running', {
          retryable: true,
          retryAfterSeconds: 1,
        });
      await sleep(wait);
    }
  }
}
