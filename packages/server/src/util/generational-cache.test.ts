import { describe, expect, it } from 'vitest';
import { GenerationalCache } from './generational-cache.js';

const bytesOf = (key: string) => key.length + 10;

describe('GenerationalCache', () => {
  it('never holds more than its budget, however many keys pass through', () => {
    const cache = new GenerationalCache<string, number>(1_000, bytesOf);
    for (let i = 0; i < 10_000; i++) {
      cache.set(`key-${i}`, i);
      expect(cache.bytes).toBeLessThanOrEqual(1_000);
    }
    expect(cache.size).toBeGreaterThan(0);
  });

  it('keeps an entry that is read between turns, drops one that is not', () => {
    const cache = new GenerationalCache<string, number>(1_000, bytesOf);
    cache.set('hot', 1);
    cache.set('cold', 2);
    for (let i = 0; i < 1_000; i++) {
      cache.set(`tail-${i}`, i);
      expect(cache.get('hot')).toBe(1);
    }
    expect(cache.get('cold')).toBeUndefined();
  });

  it('forgets a deleted key in both generations', () => {
    const cache = new GenerationalCache<string, number>(100, bytesOf);
    cache.set('a', 1);
    // 'a' moves to the old generation when the young one fills, then is copied back by a read.
    for (let i = 0; i < 4; i++) cache.set(`fill-${i}`, i);
    expect(cache.get('a')).toBe(1);
    cache.delete('a');
    expect(cache.get('a')).toBeUndefined();
    expect(cache.has('a')).toBe(false);
  });

  it('rejects a budget that is not positive', () => {
    expect(() => new GenerationalCache<string, number>(0, bytesOf)).toThrow(/budgetBytes/);
  });
});
