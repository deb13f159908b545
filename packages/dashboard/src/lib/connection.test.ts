import { describe, expect, it } from 'vitest';
import { backoffMs } from './connection.js';

describe('backoffMs', () => {
  it('doubles from 500 ms and stops at the cap', () => {
    const mid = () => 0.5; // no jitter
    expect([0, 1, 2, 3, 4, 5, 6, 10].map((a) => backoffMs(a, 15_000, mid))).toEqual([
      500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000,
    ]);
  });

  it('jitters by at most a quarter either way', () => {
    expect(backoffMs(2, 15_000, () => 0)).toBe(1500);
    expect(backoffMs(2, 15_000, () => 1)).toBe(2500);
  });
});
