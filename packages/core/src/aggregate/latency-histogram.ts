/**
 * Latency histograms: a fixed set of log-spaced buckets, so a histogram is a vector of counts
 * that adds up exactly (minute → hour → day, per series → per model, shard → total) and p50/p95
 * can be read from any sum of them.
 *
 * Bucket i counts calls with latency in (LATENCY_BOUNDS_MS[i-1], LATENCY_BOUNDS_MS[i]] ms (the
 * first from 0); the last bucket counts everything above 120 s. The bounds are a 1 – 1.5 – 2.5 – 4
 * – 6 ladder: each is 1.5 to 1.67 times the one before (2 for the 60–120 s bucket), so a
 * percentile interpolated inside its bucket is off by less than the bucket's width — at most
 * 67 % of the true value in the worst case (every call at one edge), typically a few percent
 * (README § Latency).
 */
export const LATENCY_BOUNDS_MS: readonly number[] = [
  25, 40, 60, 100, 150, 250, 400, 600, 1_000, 1_500, 2_500, 4_000, 6_000, 10_000, 15_000, 25_000,
  40_000, 60_000, 120_000,
];

/** The number of buckets: one per bound, plus the one above the last (> 120 s). */
export const LATENCY_BUCKETS = LATENCY_BOUNDS_MS.length + 1;

/** Counts per bucket, LATENCY_BUCKETS long. */
export type LatencyHistogram = number[];

export function emptyLatencyHistogram(): LatencyHistogram {
  return new Array<number>(LATENCY_BUCKETS).fill(0);
}

/** The bucket of a latency: the first whose bound is ≥ it (the last, above 120 s, otherwise). */
export function latencyBucketOf(latencyMs: number): number {
  // A binary search would save little over 19 comparisons, and most calls stop early.
  for (let i = 0; i < LATENCY_BOUNDS_MS.length; i++) {
    if (latencyMs <= (LATENCY_BOUNDS_MS[i] as number)) return i;
  }
  return LATENCY_BOUNDS_MS.length;
}

/** Adds `from` into `into`, bucket by bucket. */
export function addLatencyHistogram(into: LatencyHistogram, from: readonly number[]): void {
  for (let i = 0; i < LATENCY_BUCKETS; i++) into[i] = (into[i] as number) + (from[i] ?? 0);
}

export function latencyCount(h: readonly number[]): number {
  let n = 0;
  for (const c of h) n += c;
  return n;
}

/**
 * The q-quantile (0 < q ≤ 1) of a histogram, in ms, or undefined when it counts nothing.
 * The rank q·n is found in its bucket and interpolated linearly between the bucket's bounds
 * (the calls of a bucket taken as evenly spread). A rank in the last bucket (> 120 s) has no upper
 * bound: the answer is 120 000 ms, read "at least".
 */
export function latencyPercentile(h: readonly number[], q: number): number | undefined {
  if (!(q > 0 && q <= 1)) throw new RangeError(`quantile must be in (0, 1], got ${q}`);
  const n = latencyCount(h);
  if (n === 0) return undefined;
  const rank = q * n;
  let below = 0;
  for (let i = 0; i < LATENCY_BUCKETS; i++) {
    const count = h[i] ?? 0;
    if (count > 0 && below + count >= rank) {
      if (i >= LATENCY_BOUNDS_MS.length) return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1];
      const lower = i === 0 ? 0 : (LATENCY_BOUNDS_MS[i - 1] as number);
      const upper = LATENCY_BOUNDS_MS[i] as number;
      const fraction = Math.min(1, Math.max(0, (rank - below) / count));
      return lower + fraction * (upper - lower);
    }
    below += count;
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1];
}
