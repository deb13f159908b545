import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../logging/logger.js';
import { postgresReachable, TEST_PG_URL, uniqueSchema } from '../../../testing/services.js';
import { whenServices } from '../../../testing/when-services.js';
import { PartitionBalancer, type PartitionSink } from '../../queue/nats/partition-balancer.js';
import { PgPartitionLeases } from './partition-leases.js';

/**
 * Partition leases on the real PostgreSQL, and two balancers sharing 8 partitions through them:
 * exclusive ownership, a fair split, and a dead worker's partitions taken over.
 */
const pgUp = await postgresReachable();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const logger = createLogger('silent');

/** The worker side of a balancer: which consumers it pulls now. */
class RecordingSink implements PartitionSink {
  readonly pulling = new Set<string>();
  addSource(consumer: string): void {
    this.pulling.add(consumer);
  }
  async removeSource(consumer: string): Promise<void> {
    this.pulling.delete(consumer);
  }
}

const opened: Array<{ close(): Promise<void> }> = [];
function leases(namespace: string): PgPartitionLeases {
  const l = new PgPartitionLeases(TEST_PG_URL, namespace);
  opened.push(l);
  return l;
}

async function until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

whenServices(
  { PostgreSQL: pgUp },
  () => {
    describe('PgPartitionLeases', () => {
      afterEach(async () => {
        for (const l of opened.splice(0)) await l.close();
      });

      it('a partition is held by one session at a time and freed when that session ends', async () => {
        const ns = uniqueSchema('lease');
        const a = leases(ns);
        const b = leases(ns);
        await a.connect();
        await b.connect();
        expect(await a.members()).toBe(2);
        expect(a.slot).not.toBe(b.slot);
        expect(await a.tryAcquire(3)).toBe(true);
        expect(await b.tryAcquire(3)).toBe(false);
        expect(await b.tryAcquire(4)).toBe(true);
        await a.release(3);
        expect(await b.tryAcquire(3)).toBe(true);
        expect(await a.tryAcquire(4)).toBe(false);
        // A session that ends (a dead worker) takes its leases and its membership with it.
        await b.close();
        expect(b.connected).toBe(false);
        expect(await a.tryAcquire(4)).toBe(true);
        expect(await a.members()).toBe(1);
        // Another namespace (schema × stream) shares nothing.
        const other = leases(uniqueSchema('lease'));
        await other.connect();
        expect(await other.tryAcquire(4)).toBe(true);
        expect(await other.members()).toBe(1);
      });

      it('two balancers split 8 partitions 4 + 4 with no overlap; the survivor takes all 8', async () => {
        const ns = uniqueSchema('balance');
        const consumersOf = (p: number) => [`c-p${p}`];
        const sinkA = new RecordingSink();
        const sinkB = new RecordingSink();
        const a = new PartitionBalancer(leases(ns), 8, consumersOf, sinkA, logger, 200);
        const b = new PartitionBalancer(leases(ns), 8, consumersOf, sinkB, logger, 200);
        try {
          await a.start();
          expect(a.ownedPartitions).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
          expect(sinkA.pulling.size).toBe(8);
          await b.start();
          await until('a fair split', () => sinkA.pulling.size === 4 && sinkB.pulling.size === 4);
          const both = [...sinkA.pulling, ...sinkB.pulling];
          expect(new Set(both).size).toBe(8);
          expect(a.ownedPartitions.filter((p) => b.ownedPartitions.includes(p))).toEqual([]);
          // A dies: its session ends without releasing anything.
          await a.stop();
          await opened[0]?.close();
          await until('b owning every partition', () => sinkB.pulling.size === 8);
          expect(b.ownedPartitions).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
        } finally {
          await a.stop();
          await b.stop();
        }
      });
    });
  },
  'partition leases (PostgreSQL)',
);
