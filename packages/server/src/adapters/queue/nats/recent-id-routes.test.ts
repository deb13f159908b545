import { describe, expect, it } from 'vitest';
import { RecentIdRoutes } from './recent-id-routes.js';

describe('RecentIdRoutes', () => {
  it('answers the partition an id was sent to, per project, and nothing for an unknown id', () => {
    const routes = new RecentIdRoutes();
    routes.remember('p1', 'evt-1', 5);
    routes.remember('p2', 'evt-1', 2);
    expect(routes.get('p1', 'evt-1')).toBe(5);
    expect(routes.get('p2', 'evt-1')).toBe(2);
    expect(routes.get('p1', 'evt-2')).toBeUndefined();
    // The separator keeps ("p1", "xevt") and ("p1x", "evt") apart.
    routes.remember('p1x', 'evt', 7);
    expect(routes.get('p1', 'xevt')).toBeUndefined();
    routes.remember('p1', 'evt-1', 255);
    expect(routes.get('p1', 'evt-1')).toBe(255);
  });

  it('keeps the latest 100,000 of 1,000,000 ids it was told and never answers a wrong partition', () => {
    const routes = new RecentIdRoutes();
    const partitionOf = (i: number) => (i * 7) % 256;
    for (let i = 0; i < 1_000_000; i++) routes.remember('p', `e${i}`, partitionOf(i));
    let remembered = 0;
    for (let i = 900_000; i < 1_000_000; i++) {
      const p = routes.get('p', `e${i}`);
      if (p !== undefined) {
        expect(p).toBe(partitionOf(i));
        remembered++;
      }
    }
    // Each later id evicts a given entry with probability 2^-20: the oldest of these 100,000
    // survives with e^(−100,000 / 2^20) ≈ 0.91, the newest with ≈ 1 (≈ 95,400 expected in all).
    expect(remembered).toBeGreaterThan(85_000);
  });

  it('forgets an overwritten slot instead of answering another id’s partition', () => {
    const routes = new RecentIdRoutes(2);
    for (let i = 0; i < 1_000; i++) routes.remember('p', `e${i}`, i % 200);
    let answered = 0;
    for (let i = 0; i < 1_000; i++) {
      const p = routes.get('p', `e${i}`);
      if (p === undefined) continue;
      answered++;
      expect(p).toBe(i % 200);
    }
    expect(answered).toBeLessThanOrEqual(4);
  });
});
