import { describe, expect, it } from 'vitest';
import { fakeClock } from '../testing/fake-clock.js';
import { RefreshScheduler } from './refresh-scheduler.js';

describe('RefreshScheduler', () => {
  it('coalesces a burst into one refresh now and one trailing refresh', async () => {
    const { clock, advance } = fakeClock();
    let runs = 0;
    const s = new RefreshScheduler(
      async () => {
        runs++;
      },
      { minGapMs: 1000, factor: 3 },
      clock,
    );
    s.request();
    await advance(0);
    expect(runs).toBe(1);
    for (let i = 0; i < 100; i++) s.request();
    await advance(500);
    expect(runs).toBe(1);
    await advance(600);
    expect(runs).toBe(2);
    await advance(5000);
    expect(runs).toBe(2);
  });

  it('spaces refreshes by 3× the last duration when queries are slow', async () => {
    const { clock, advance } = fakeClock();
    const starts: number[] = [];
    const s = new RefreshScheduler(
      () => {
        starts.push(clock.now());
        return new Promise<void>((resolve) => clock.setTimeout(resolve, 2000));
      },
      { minGapMs: 1000, factor: 3 },
      clock,
    );
    s.request();
    await advance(100);
    s.request();
    await advance(20_000);
    expect(starts).toEqual([0, 6000]);
    s.stop();
    s.request();
    await advance(20_000);
    expect(starts).toHaveLength(2);
  });
});
