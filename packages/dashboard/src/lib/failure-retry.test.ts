import { describe, expect, it } from 'vitest';
import { fakeClock } from '../testing/fake-clock.js';
import { FailureRetry } from './failure-retry.js';

/** Jitter at its middle: each wait is exactly the backoff's base. */
const noJitter = () => 0.5;

describe('FailureRetry', () => {
  it('asks again 2 s after a failed refresh, then 4, 8, 16 s, capped at maxMs', async () => {
    const { clock, advance } = fakeClock();
    const asked: number[] = [];
    const retry = new FailureRetry(() => asked.push(clock.now()), 10_000, clock, noJitter);
    for (let i = 0; i < 5; i++) {
      retry.settled(true);
      await advance(60_000);
    }
    // Each failure is reported at the start of a 60 s step; its retry is asked that long after.
    expect(asked.map((t, i) => t - i * 60_000)).toEqual([2_000, 4_000, 8_000, 10_000, 10_000]);
  });

  it('a refresh without failure resets the backoff and cancels a waiting retry', async () => {
    const { clock, advance } = fakeClock();
    let asked = 0;
    const retry = new FailureRetry(() => asked++, 30_000, clock, noJitter);
    retry.settled(true);
    await advance(2_000);
    retry.settled(true); // the retry failed again: 4 s now
    expect(retry.waiting).toBe(true);
    retry.settled(false); // a live notice's refresh got through meanwhile
    expect(retry.waiting).toBe(false);
    await advance(60_000);
    expect(asked).toBe(1);
    retry.settled(true);
    await advance(1_999);
    expect(asked).toBe(1);
    await advance(1);
    expect(asked).toBe(2);
  });

  it('one retry waits at a time, and none after stop()', async () => {
    const { clock, advance } = fakeClock();
    let asked = 0;
    const retry = new FailureRetry(() => asked++, 30_000, clock, noJitter);
    retry.settled(true);
    retry.settled(true);
    retry.settled(true);
    await advance(10_000);
    expect(asked).toBe(1);
    retry.settled(true);
    retry.stop();
    await advance(60_000);
    expect(asked).toBe(1);
    retry.settled(true);
    await advance(60_000);
    expect(asked).toBe(1);
  });

  it('waits vary by ±25 % so many open pages do not retry in step', async () => {
    const waits: number[] = [];
    for (const r of [0, 0.9999]) {
      const { clock, advance } = fakeClock();
      const retry = new FailureRetry(
        () => waits.push(clock.now()),
        30_000,
        clock,
        () => r,
      );
      retry.settled(true);
      await advance(10_000);
    }
    expect(waits).toEqual([1_500, 2_500]);
  });
});
