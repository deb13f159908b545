import type { PricedEvent } from '../event/usage-event.js';
import {
  addLatencyHistogram,
  emptyLatencyHistogram,
  type LatencyHistogram,
  latencyBucketOf,
} from './latency-histogram.js';

/**
 * The additive measures every rollup row carries. What each request count counts, by the
 * event's `status` (see `EventStatus`):
 * - `requests`: calls that reached the provider (`ok`, `error`, `no_usage`), not `denied`;
 * - `errors`: `error` only;
 * - `noUsageRequests`: `no_usage` (their tokens, if any were known, are in the token measures);
 * - `deniedRequests`: `denied` (blocked by a budget guard, no tokens, not in `requests`);
 * - `unpricedRequests`: of `requests`, those whose model had no price.
 *
 * `latency`, the latency histogram (see LATENCY_BOUNDS_MS), counts the calls of `requests` that
 * reported a `latencyMs`; a `denied` call never reached the provider and is not in it. Absent
 * while no call had a latency (most rows of a store that is not asked for it never need one).
 */
export interface RollupMeasures {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  totalTokens: number;
  requests: number;
  errors: number;
  /** Exact: a batch of expensive events can pass 2^53 nano-USD. */
  costNanoUsd: bigint;
  unpricedTokens: number;
  unpricedRequests: number;
  noUsageRequests: number;
  deniedRequests: number;
  latency?: LatencyHistogram;
}

export interface RollupKey {
  bucketMs: number;
  projectId: string;
  userId: string;
  appId: string;
  modelId: string;
  provider: string;
}

export interface RollupDelta extends RollupKey, RollupMeasures {}

export interface TagRollupDelta extends RollupDelta {
  tagKey: string;
  tagValue: string;
}

/** What one batch adds to each rollup, pre-aggregated: one entry per distinct key. */
export interface BatchDeltas {
  minute: RollupDelta[];
  hour: RollupDelta[];
  day: RollupDelta[];
  tagHour: TagRollupDelta[];
  tagDay: TagRollupDelta[];
}

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

export function emptyMeasures(): RollupMeasures {
  return {
    inputTokens: 0,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    totalTokens: 0,
    requests: 0,
    errors: 0,
    costNanoUsd: 0n,
    unpricedTokens: 0,
    unpricedRequests: 0,
    noUsageRequests: 0,
    deniedRequests: 0,
  };
}

export function addEventToMeasures(m: RollupMeasures, e: PricedEvent): void {
  if (e.status === 'denied') {
    // Never reached the provider: no tokens (validation), no request, no price question.
    m.deniedRequests += 1;
    return;
  }
  const total = e.inputTokens + e.outputTokens + e.cacheReadTokens + e.cacheWriteTokens;
  m.inputTokens += e.inputTokens;
  m.outputTokens += e.outputTokens;
  m.cacheReadTokens += e.cacheReadTokens;
  m.cacheWriteTokens += e.cacheWriteTokens;
  m.totalTokens += total;
  m.requests += 1;
  if (e.status === 'error') m.errors += 1;
  else if (e.status === 'no_usage') m.noUsageRequests += 1;
  if (e.costNanoUsd !== 0) m.costNanoUsd += BigInt(e.costNanoUsd);
  if (!e.priced) {
    m.unpricedTokens += total;
    m.unpricedRequests += 1;
  }
  if (e.latencyMs !== undefined) {
    if (!m.latency) m.latency = emptyLatencyHistogram();
    const i = latencyBucketOf(e.latencyMs);
    m.latency[i] = (m.latency[i] as number) + 1;
  }
}

export function addMeasures(into: RollupMeasures, from: RollupMeasures): void {
  into.inputTokens += from.inputTokens;
  into.outputTokens += from.outputTokens;
  into.cacheReadTokens += from.cacheReadTokens;
  into.cacheWriteTokens += from.cacheWriteTokens;
  into.totalTokens += from.totalTokens;
  into.requests += from.requests;
  into.errors += from.errors;
  into.costNanoUsd += from.costNanoUsd;
  into.unpricedTokens += from.unpricedTokens;
  into.unpricedRequests += from.unpricedRequests;
  into.noUsageRequests += from.noUsageRequests;
  into.deniedRequests += from.deniedRequests;
  if (from.latency) {
    // Copied, never shared: `into` is added to later, `from` may be a stored row.
    if (!into.latency) into.latency = emptyLatencyHistogram();
    addLatencyHistogram(into.latency, from.latency);
  }
}

function floorTo(ms: number, size: number): number {
  return ms - (((ms % size) + size) % size);
}

class DeltaMap<T extends RollupDelta> {
  private readonly rows = new Map<string, T>();
  add(key: string, make: () => T, e: PricedEvent): void {
    let row = this.rows.get(key);
    if (!row) {
      row = make();
      this.rows.set(key, row);
    }
    addEventToMeasures(row, e);
  }
  values(): T[] {
    return [...this.rows.values()];
  }
}

/**
 * Pre-aggregates the NEW events of a batch into one delta per rollup key. Writing one row per
 * distinct key instead of one per event is what makes group commit fast: with a long tail of
 * users most events of a flush share their (hour, user, app, model) with others.
 */
export function aggregateEvents(events: readonly PricedEvent[]): BatchDeltas {
  const minute = new DeltaMap<RollupDelta>();
  const hour = new DeltaMap<RollupDelta>();
  const day = new DeltaMap<RollupDelta>();
  const tagHour = new DeltaMap<TagRollupDelta>();
  const tagDay = new DeltaMap<TagRollupDelta>();
  for (const e of events) {
    const dims = `\u0000${e.projectId}\u0000${e.userId}\u0000${e.appId}\u0000${e.modelId}\u0000${e.provider}`;
    const m = floorTo(e.timestampMs, MINUTE_MS);
    const h = floorTo(e.timestampMs, HOUR_MS);
    const d = floorTo(e.timestampMs, DAY_MS);
    const make = (bucketMs: number) => (): RollupDelta => ({
      bucketMs,
      projectId: e.projectId,
      userId: e.userId,
      appId: e.appId,
      modelId: e.modelId,
      provider: e.provider,
      ...emptyMeasures(),
    });
    minute.add(m + dims, make(m), e);
    hour.add(h + dims, make(h), e);
    day.add(d + dims, make(d), e);
    if (e.tags) {
      for (const tagKey of Object.keys(e.tags)) {
        const tagValue = e.tags[tagKey] as string;
        const tagDims = `\u0000${tagKey}\u0000${tagValue}${dims}`;
        const makeTag = (bucketMs: number) => (): TagRollupDelta => ({
          ...make(bucketMs)(),
          tagKey,
          tagValue,
        });
        tagHour.add(h + tagDims, makeTag(h), e);
        tagDay.add(d + tagDims, makeTag(d), e);
      }
    }
  }
  return {
    minute: minute.values(),
    hour: hour.values(),
    day: day.values(),
    tagHour: tagHour.values(),
    tagDay: tagDay.values(),
  };
}
