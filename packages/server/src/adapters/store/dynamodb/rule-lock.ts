import { TokenwatchError } from '@tokenwatch/core';
import { type DynamoIo, type Item, mapLimit, num } from './dynamodb-io.js';
import { UpdateBuilder } from './expression.js';
import { ruleLockKey } from './keys.js';

/** Attribute of a batch's shared lease on a project's rule lock: `r_<batchId>` = expiry ms. */
const READER_PREFIX = 'r_';
/** Attribute of the lock item that changes whenever a writer may have changed the rules. */
const VERSION_ATTR = 'rulesVersion';

const newToken = () => `w${Math.random().toString(36).slice(2)}`;

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
 *
 * The lock item also carries `rulesVersion`, a fresh random token set when a writer takes the
 * lock (before it changes any rule) and again when it gives it back. A lease's update returns
 * the item (ALL_NEW), so a batch learns the version of its projects' rules for free, and the
 * rules cannot change while it holds the lease: when the version equals the one it cached the
 * rules under, it skips reading them (DynamoRules.enabledRules). A writer that crashed changed
 * the version when it took the lock; one that outlived its lease changes it again when it gives
 * the lock back (or finds it taken over), so no cache outlives a rule change.
 */
export class RuleLock {
  constructor(
    private readonly io: DynamoIo,
    private readonly options: RuleLockOptions,
    private readonly rollForward: (batchId: string) => Promise<void>,
  ) {}

  /**
   * Takes a shared lease on each project for `holder` (a batch id); waits out a writer. Returns
   * each project's rules version (see `rulesVersion`; undefined when no writer set one yet).
   */
  async acquireShared(
    projectIds: readonly string[],
    holder: string,
  ): Promise<Map<string, string | undefined>> {
    const deadline = this.options.now() + this.options.waitMs;
    const versions = new Map<string, string | undefined>();
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
          const item = await this.io.update(ruleLockKey(projectId), u.build());
          if (item !== undefined) {
            const version = item[VERSION_ATTR];
            versions.set(projectId, typeof version === 'string' ? version : undefined);
            return;
          }
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
    return versions;
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

  /**
   * Runs `fn` holding the project's lock exclusively, once no batch holds a lease. `fn` gets the
   * rules version from before this writer took the lock (the rules are still those of that
   * version: a cache of them may be used), unless it took the lock over from an expired writer.
   * `released` gets the rules version the lock was given back with (not called when another
   * writer had taken the lock over: then the version is bumped once more instead), so the writer
   * may cache the rules it leaves under it.
   */
  async withExclusive<T>(
    projectId: string,
    fn: (previousVersion: string | undefined) => Promise<T>,
    released?: (version: string, result: T) => void,
  ): Promise<T> {
    const me = newToken();
    const deadline = this.options.now() + this.options.waitMs + this.options.leaseMs;
    let taken: Item | undefined;
    for (let wait = 10; ; wait = Math.min(wait * 2, 200)) {
      const now = this.options.now();
      const u = new UpdateBuilder()
        .set('writer', me)
        .set('writerUntil', now + this.options.leaseMs)
        .set(VERSION_ATTR, me);
      u.condition(
        `attribute_not_exists(${u.name('writer')}) OR ${u.name('writerUntil')} < ${u.value(now)}`,
      );
      // ALL_OLD: the version before this writer's; the leases are the same either way.
      taken = await this.io.update(ruleLockKey(projectId), {
        ...u.build(),
        ReturnValues: 'ALL_OLD',
      });
      if (taken !== undefined) break;
      if (now > deadline)
        throw new TokenwatchError('unavailable', 'another rule of the project is being saved', {
          retryable: true,
          retryAfterSeconds: 1,
        });
      await sleep(wait);
    }
    let outcome: { result: T } | undefined;
    try {
      await this.drainReaders(projectId, deadline, taken);
      // Taken over from a writer whose lock expired: it may still be writing, so its version
      // says nothing of the rules; `fn` reads them.
      const previous = taken.writer === undefined ? taken[VERSION_ATTR] : undefined;
      outcome = { result: await fn(typeof previous === 'string' ? previous : undefined) };
    } finally {
      // A fresh version again: a writer that outlived its lease may have changed rules after a
      // batch took a lease and cached them (see rulesVersion).
      const version = newToken();
      const u = new UpdateBuilder()
        .remove('writer')
        .remove('writerUntil')
        .set(VERSION_ATTR, version);
      u.condition(`${u.name('writer')} = ${u.value(me)}`);
      const given = await this.io.update(ruleLockKey(projectId), u.build());
      if (outcome && given !== undefined) released?.(version, outcome.result);
      // Outlived its lease and another writer took the lock over: this one may have changed
      // rules after that writer set its version, so no cache may survive it either.
      if (given === undefined) await this.bumpVersion(projectId);
    }
    return (outcome as { result: T }).result;
  }

  /** Gives projects' rules a new version (rules changed without the lock: the migration). */
  async bumpVersion(projectId: string): Promise<void> {
    await this.io.update(
      ruleLockKey(projectId),
      new UpdateBuilder().set(VERSION_ATTR, newToken()).build(),
    );
  }

  /**
   * Waits until no batch holds a lease; completes the batches whose lease expired. `taken` is
   * the lock item as the update that took the lock found it (ALL_OLD): the leases it lists are
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
