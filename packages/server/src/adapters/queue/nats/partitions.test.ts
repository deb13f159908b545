import { describe, expect, it } from 'vitest';
import { Credits } from './partition-feed.js';
import { partitionConsumer, partitionOf, partitionSubject } from './partitions.js';

describe('partitions', () => {
  it('puts a (project, user) in one partition, the same in every process, within range', () => {
    for (let u = 0; u < 1_000; u++) {
      const p = partitionOf('proj', `u${u}`, 8);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(8);
      expect(partitionOf('proj', `u${u}`, 8)).toBe(p);
    }
    // Pinned: serve and workers of different versions must agree (FNV-1a of "project\0user").
    expect([
      partitionOf('p', 'alice', 8),
      partitionOf('p', 'bob', 8),
      partitionOf('q', 'alice', 8),
    ]).toEqual([7, 4, 4]);
    expect(partitionOf('any', 'user', 1)).toBe(0);
  });

  it('spreads 10,000 users over the partitions (each within 20 % of an even share)', () => {
    const counts = new Array<number>(8).fill(0);
    for (let u = 0; u < 10_000; u++) {
      const p = partitionOf('bench', `u${u}`, 8);
      counts[p] = (counts[p] ?? 0) + 1;
    }
    for (const n of counts) expect(Math.abs(n - 1_250)).toBeLessThan(250);
  });

  it('names subjects and consumers after the partition', () => {
    expect(partitionSubject('tokenwatch.events', 3)).toBe('tokenwatch.events.3');
    expect(partitionConsumer('tokenwatch-workers', 3)).toBe('tokenwatch-workers-p3');
  });
});

describe('Credits', () => {
  it('never hands out more than its capacity and wakes a waiter when credits come back', async () => {
    const credits = new Credits(4);
    expect(await credits.take(3, () => false)).toBe(3);
    expect(await credits.take(3, () => false)).toBe(1);
    let got = 0;
    const waiting = credits
      .take(2, () => false)
      .then((n) => {
        got = n;
      });
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toBe(0);
    credits.give(2);
    await waiting;
    expect(got).toBe(2);
  });

  it('answers 0 to a waiter once it is stopped', async () => {
    const credits = new Credits(1);
    await credits.take(1, () => false);
    let stopped = false;
    const waiting = credits.take(1, () => stopped);
    stopped = true;
    credits.wakeAll();
    expect(await waiting).toBe(0);
  });
});
