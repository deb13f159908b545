import { emptyLatencyHistogram, LATENCY_BUCKETS, type LatencyHistogram } from '@tokenwatch/core';
import { type Item, num } from './dynamodb-io.js';
import type { UpdateBuilder } from './expression.js';

/**
 * A rollup item's latency histogram (see LATENCY_BOUNDS_MS) is sparse: one number attribute
 * per bucket a call fell in (`lat00` … `lat19`), added by the batch's update like the other
 * measures (ADD is atomic and the batch's mark makes it count once). An item without any (older
 * items, calls without a latency) has an empty histogram.
 */
const LATENCY_ATTRIBUTES: readonly string[] = Array.from(
  { length: LATENCY_BUCKETS },
  (_, i) => `lat${String(i).padStart(2, '0')}`,
);

/** ADDs the histogram's non-empty buckets to the item. */
export function addLatency(u: UpdateBuilder, h: LatencyHistogram): void {
  for (let i = 0; i < LATENCY_BUCKETS; i++) {
    const count = h[i] ?? 0;
    if (count !== 0) u.add(LATENCY_ATTRIBUTES[i] as string, count);
  }
}

/** The item's histogram, or undefined when it has none. */
export function latencyFromItem(item: Item): LatencyHistogram | undefined {
  let h: LatencyHistogram | undefined;
  for (let i = 0; i < LATENCY_BUCKETS; i++) {
    const value = item[LATENCY_ATTRIBUTES[i] as string];
    if (value === undefined) continue;
    if (!h) h = emptyLatencyHistogram();
    h[i] = num(value);
  }
  return h;
}
