import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoIo } from './dynamodb-io.js';
import { DynamoDbStore } from './dynamodb-store.js';
import { ruleLockKey } from './keys.js';
import { RuleLock } from './rule-lock.js';
import { type LocalDynamo, startDynalite } from './testing/dynalite.js';

/**
 * The rule lock's `rulesVersion`, which lets batches keep a project's rules cached: every way a
 * writer can have changed rules must leave a version no cache was made under. The ordinary paths
 * are covered by the store and oracle suites; this is the one they cannot reach: a writer that
 * outlived its lease while another took the lock over.
 */

let local: LocalDynamo;
beforeAll(async () => {
  local = await startDynalite();
});
afterAll(async () => {
  await local.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('DynamoDB rule lock: rules version', () => {
  it('a writer that outlived its lease leaves a version newer than the one its successor released', async () => {
    const options = {
      tableName: `tokenwatch-lock-${process.pid}`,
      endpoint: local.endpoint,
      region: local.region,
      credentials: local.credentials,
    };
    const store = new DynamoDbStore(options);
    await store.migrate();
    const io = new DynamoIo(options);
    const lock = new RuleLock(io, { leaseMs: 150, waitMs: 5_000, now: Date.now }, async () => {});
    const version = async () => (await io.get(ruleLockKey('p')))?.rulesVersion;

    let slowReleased = false;
    const slow = lock.withExclusive(
      'p',
      async () => {
        await sleep(600); // past its lease: its rule writes may land after the next writer's
        return 'slow';
      },
      () => {
        slowReleased = true;
      },
    );
    await sleep(300);
    let successorVersion: string | undefined;
    let successorPrevious: string | undefined = 'not called';
    await lock.withExclusive(
      'p',
      async (previous) => {
        successorPrevious = previous;
        return 'next';
      },
      (v) => {
        successorVersion = v;
      },
    );
    expect(successorPrevious, 'a lock taken over says nothing of the rules').toBeUndefined();
    expect(successorVersion).toBeTypeOf('string');
    expect(await version()).toBe(successorVersion);
    expect(await slow).toBe('slow');
    expect(slowReleased, 'the lock was not its to give back').toBe(false);
    const after = await version();
    expect(after).toBeTypeOf('string');
    expect(after, 'a cache made under the successor version must not survive').not.toBe(
      successorVersion,
    );
    io.close();
    await store.close();
  });
});
