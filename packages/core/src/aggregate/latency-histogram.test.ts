import { describe, expect, it } from 'vitest';
import {
  addLatencyHistogram,
  emptyLatencyHistogram,
  LATENCY_BOUNDS_MS,
  LATENCY_BUCKETS,
  latencyBucketOf,
  latencyCount,
  latencyPercentile,
} from './latency-histogram.js';

function histogramOf(latencies: number[]): number[] {
  const h = emptyLatencyHistogram();
  for (const ms of latencies) {
    const i = latencyBucketOf(ms);
    h[i] = (h[i] as number) + 1;
  }
  return h;
}

describe('latency buckets', () => {
  it('are 20, log-spaced from 25 ms to 120 s, each 1.5 to 2 times the one before', () => {
    expect(LATENCY_BUCKETS).toBe(20);
    expect(LATENCY_BOUNDS_MS[0]).toBe(25);
    expect(LATENCY_BOUNDS_MS.at(-1)).toBe(120_000);
    for (let i = 1; i < LATENCY_BOUNDS_MS.length; i++) {
      const ratio = (LATENCY_BOUNDS_MS[i] as number) / (LATENCY_BOUNDS_MS[i - 1] as number);
      expect(ratio).toBeGreaterThanOrEqual(1.5);
      expect(ratio).toBeLessThanOrEqual(2);
    }
  });

  it('put a latency in the first bucket whose bound is at least it; bounds are inclusive', () => {
    expect(latencyBucketOf(0)).toBe(0);
    expect(latencyBucketOf(25)).toBe(0);
    expect(latencyBucketOf(25.01)).toBe(1);
    expect(latencyBucketOf(999)).toBe(8);
    expect(latencyBucketOf(1000)).toBe(8);
    expect(latencyBucketOf(1001)).toBe(9);
    expect(latencyBucketOf(120_000)).toBe(18);
    expect(latencyBucketOf(120_001)).toBe(19);
    expect(latencyBucketOf(86_400_000)).toBe(19);
  });

  it('add bucket by bucket', () => {
    const a = histogramOf([10, 500, 500]);
    addLatencyHistogram(a, histogramOf([10, 200_000]));
    expect(a[0]).toBe(2);
    expect(a[7]).toBe(2);
    expect(a[19]).toBe(1);
    expect(latencyCount(a)).toBe(5);
  });
});

describe('latencyPercentile', () => {
  it('is undefined for an empty histogram and refuses a quantile outside (0, 1]', () => {
    expect(latencyPercentile(emptyLatencyHistogram(), 0.5)).toBeUndefined();
    expect(() => latencyPercentile(emptyLatencyHistogram(), 0)).toThrow(RangeError);
    expect(() => latencyPercentile(emptyLatencyHistogram(), 1.5)).toThrow(RangeError);
  });

  it('interpolates linearly inside the bucket of the rank', () => {
    // 4 calls in (600, 1000]: the median's rank 2 is half way through the bucket.
    const h = histogramOf([700, 800, 900, 950]);
    expect(latencyPercentile(h, 0.5)).toBe(800);
    expect(latencyPercentile(h, 0.25)).toBe(700);
    expect(latencyPercentile(h, 1)).toBe(1000);
    // 0.95 · 4 = 3.8 → 600 + 0.95 · 400
    expect(latencyPercentile(h, 0.95)).toBe(980);
  });

  it('skips to the bucket holding the rank, across empty buckets', () => {
    // 10 calls: 5 in [0, 25], 5 in (2500, 4000]. p50 (rank 5) is the top of the first bucket,
    // p95 (rank 9.5) is 4.5 / 5 of the way through (2500, 4000].
    const h = histogramOf([1, 2, 3, 4, 5, 3000, 3000, 3000, 3000, 3000]);
    expect(latencyPercentile(h, 0.5)).toBe(25);
    expect(latencyPercentile(h, 0.95)).toBe(2500 + 0.9 * 1500);
  });

  it('clamps a rank above 120 s to 120 000 ms ("at least")', () => {
    const h = histogramOf([100, 200_000, 300_000, 400_000]);
    expect(latencyPercentile(h, 0.5)).toBe(120_000);
    expect(latencyPercentile(h, 0.95)).toBe(120_000);
    expect(latencyPercentile(h, 0.25)).toBe(100);
  });

  it('stays within the bucket of the true percentile', () => {
    const latencies = Array.from({ length: 1000 }, (_, i) => 20 + i * 7.3);
    const h = histogramOf(latencies);
    for (const q of [0.5, 0.95]) {
      const truth = latencies[Math.ceil(q * latencies.length) - 1] as number;
      const estimate = latencyPercentile(h, q) as number;
      const bucket = latencyBucketOf(truth);
      expect(estimate).toBeGreaterThanOrEqual(
        bucket === 0 ? 0 : (LATENCY_BOUNDS_MS[bucket - 1] as number),
      );
      expect(estimate).toBeLessThanOrEqual(LATENCY_BOUNDS_MS[bucket] as number);
    }
  });
});
