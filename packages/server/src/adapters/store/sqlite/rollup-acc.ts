import {
  addLatencyHistogram,
  emptyLatencyHistogram,
  type LatencyHistogram,
  latencyBucketOf,
  type PricedEvent,
} from '@tokenwatch/core';

/**
 * One rollup row's measures for this fold. Plain numbers, not `RollupMeasures` (whose cost is a
 * bigint): the fold adds every event into three of these and derives ten more, and a bigint add
 * allocates. The cost stays exact: `costNano` holds a safe integer, and what would pass 2^53 is
 * carried into `costBig`.
 */
export class Acc {
  inputTokens = 0;
  outputTokens = 0;
  cacheReadTokens = 0;
  cacheWriteTokens = 0;
  totalTokens = 0;
  requests = 0;
  errors = 0;
  costNano = 0;
  costBig = 0n;
  unpricedTokens = 0;
  unpricedRequests = 0;
  noUsageRequests = 0;
  deniedRequests = 0;
  /**
   * The latency histogram, for the rollups that keep one (hour and day; minute and tag rows
   * never count latency). While every call counted so far fell in one bucket it is that bucket
   * and its count (`soleBucket`, `soleCount`), with no array: a long tail of users makes most
   * full-series rows one call, and an array per row was most of the histogram's cost on the
   * fold. `latency` holds the counts once calls span several buckets.
   */
  latency: LatencyHistogram | undefined = undefined;
  soleBucket = -1;
  soleCount = 0;

  /** Adds `count` calls to latency bucket `i`. */
  addLatency(i: number, count: number): void {
    if (this.latency !== undefined) {
      this.latency[i] = (this.latency[i] as number) + count;
    } else if (this.soleCount === 0 || this.soleBucket === i) {
      this.soleBucket = i;
      this.soleCount += count;
    } else {
      this.latency = emptyLatencyHistogram();
      this.latency[this.soleBucket] = this.soleCount;
      this.latency[i] = (this.latency[i] as number) + count;
    }
  }

  constructor(
    readonly bucketMs: number,
    readonly tagId: number,
    readonly seriesId: number,
  ) {}

  addCost(nano: number): void {
    const sum = this.costNano + nano;
    if (Number.isSafeInteger(sum)) this.costNano = sum;
    else {
      this.costBig += BigInt(this.costNano) + BigInt(nano);
      this.costNano = 0;
    }
  }

  /** As `addEventToMeasures` (core) does for `RollupMeasures` (the histogram if `keepLatency`). */
  addEvent(e: PricedEvent, keepLatency: boolean): void {
    if (e.status === 'denied') {
      // Never reached the provider: no tokens (validation), no request, no price question.
      this.deniedRequests += 1;
      return;
    }
    const total = e.inputTokens + e.outputTokens + e.cacheReadTokens + e.cacheWriteTokens;
    this.inputTokens += e.inputTokens;
    this.outputTokens += e.outputTokens;
    this.cacheReadTokens += e.cacheReadTokens;
    this.cacheWriteTokens += e.cacheWriteTokens;
    this.totalTokens += total;
    this.requests += 1;
    if (e.status === 'error') this.errors += 1;
    else if (e.status === 'no_usage') this.noUsageRequests += 1;
    if (e.costNanoUsd !== 0) this.addCost(e.costNanoUsd);
    if (!e.priced) {
      this.unpricedTokens += total;
      this.unpricedRequests += 1;
    }
    if (keepLatency && e.latencyMs !== undefined) this.addLatency(latencyBucketOf(e.latencyMs), 1);
  }

  /** As `addMeasures` (core); the histogram too if `keepLatency`. */
  add(from: Acc, keepLatency: boolean): void {
    this.inputTokens += from.inputTokens;
    this.outputTokens += from.outputTokens;
    this.cacheReadTokens += from.cacheReadTokens;
    this.cacheWriteTokens += from.cacheWriteTokens;
    this.totalTokens += from.totalTokens;
    this.requests += from.requests;
    this.errors += from.errors;
    this.addCost(from.costNano);
    this.costBig += from.costBig;
    this.unpricedTokens += from.unpricedTokens;
    this.unpricedRequests += from.unpricedRequests;
    this.noUsageRequests += from.noUsageRequests;
    this.deniedRequests += from.deniedRequests;
    if (!keepLatency) return;
    if (from.latency !== undefined) {
      if (this.latency === undefined) {
        this.latency = emptyLatencyHistogram();
        if (this.soleCount > 0) this.latency[this.soleBucket] = this.soleCount;
      }
      addLatencyHistogram(this.latency, from.latency);
    } else if (from.soleCount > 0) this.addLatency(from.soleBucket, from.soleCount);
  }

  /**
   * The upsert's parameters after the key: the measures in the order of MEASURE_COLUMNS (the
   * cost as its nano-USD below a dollar), then whole USD and the update times. SQLite's
   * rollups hold a cost as whole USD plus the nano-USD below a dollar (see splitCost).
   */
  params(nowMs: number): Array<number | bigint> {
    // Bound as bigints: the driver binds every JS number as a REAL, and the upsert's carry
    // (`(cost_nano_usd + excluded.cost_nano_usd) / 1000000000`) must divide integers.
    let usd: bigint;
    let nano: bigint;
    if (this.costBig === 0n) {
      // A safe integer: the division and remainder are exact.
      const below = this.costNano % 1_000_000_000;
      nano = BigInt(below);
      usd = BigInt((this.costNano - below) / 1_000_000_000);
    } else {
      const cost = this.costBig + BigInt(this.costNano);
      usd = cost / 1_000_000_000n;
      nano = cost % 1_000_000_000n;
    }
    return [
      this.inputTokens,
      this.outputTokens,
      this.cacheReadTokens,
      this.cacheWriteTokens,
      this.totalTokens,
      this.requests,
      this.errors,
      nano,
      this.unpricedTokens,
      this.unpricedRequests,
      this.noUsageRequests,
      this.deniedRequests,
      usd,
      nowMs,
      nowMs,
    ];
  }
}

/** The columns `Acc.params` binds, in its order: checked when the writer is built. */
export const ACC_MEASURE_COLUMNS = [
  'input_tokens',
  'output_tokens',
  'cache_read_tokens',
  'cache_write_tokens',
  'total_tokens',
  'requests',
  'errors',
  'cost_nano_usd',
  'unpriced_tokens',
  'unpriced_requests',
  'no_usage_requests',
  'denied_requests',
];
