import { describe, expect, it } from 'vitest';
import { type Clock, RefreshScheduler } from './refresh-scheduler.js';

function fakeClock() {
  let now = 0;
  let timers: { at: number; fn: () => void }[] = [];
  const clock: Clock = {
    now: () => now,
    setTimeout: (fn, ms) => {
      const t = { at: now + ms, fn };
      timers.push(t);
      return t;
    },
    clearTimeout: (h) => {
      timers = timers.filter((t) => t !== h);
    },
  };
  const advance = async (ms: number) => {
    const end = now + ms;
    for (;;) {
      const next = timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      timers = timers.filter((t) => t !== next);
      now = next.at;
      next.fn();
      await Promise.resolve();
      await Promise.resolve();
    }
    now = end;
    await Promise.resolve();
  };
  return { clock, advance };
}

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
