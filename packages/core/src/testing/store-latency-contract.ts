import { expect, it } from 'vitest';
import {
  emptyLatencyHistogram,
  type LatencyHistogram,
  latencyBucketOf,
} from '../aggregate/latency-histogram.js';
import type { Store } from '../ports/project-store.js';
import type { UsageRow } from '../query/usage-query.js';
import { CONTRACT_T0, makePricedEvent, makeQuery } from './store-fixtures.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;

function histogramOf(latencies: number[]): LatencyHistogram {
  const h = emptyLatencyHistogram();
  for (const ms of latencies) {
    const i = latencyBucketOf(ms);
    h[i] = (h[i] as number) + 1;
  }
  return h;
}

/** The rows' groups and histograms, e.g. `[['m1', [...]], ...]`. */
function histograms(rows: UsageRow[], dim: 'model' | 'app' | 'user'): Array<[unknown, unknown]> {
  return rows.map((r) => [r[dim], r.latency]);
}

/**
 * The store contract's latency histograms (`UsageQuery.latency`): kept in the hour and day
 * rollups, summed per group with the usual filters and ranges, exact across batches, never
 * counting a redelivery, a denied call or a call without a latency. Part of `runStoreContract`.
 */
export function latencyContract(storeOf: () => Store, now: { nowMs: number }): void {
  const t = CONTRACT_T0 + 5 * 60_000;
  const seed = async () => {
    const e = (over: Parameters<typeof makePricedEvent>[0]) =>
      makePricedEvent({ timestampMs: t, ...over });
    const first = [
      e({ modelId: 'm1', appId: 'chat', userId: 'alice', latencyMs: 30 }),
      e({ modelId: 'm1', appId: 'chat', userId: 'bob', latencyMs: 700 }),
      e({ modelId: 'm1', appId: 'search', userId: 'alice', latencyMs: 900, status: 'error' }),
      e({ modelId: 'm2', appId: 'chat', userId: 'alice', latencyMs: 5_000 }),
      // no latency reported: a request, not in the histogram
      e({ modelId: 'm2', appId: 'chat', userId: 'carol', latencyMs: undefined }),
      // denied: never reached the provider, not in the histogram
      e({
        modelId: 'm2',
        appId: 'chat',
        userId: 'alice',
        latencyMs: 1,
        status: 'denied',
        inputTokens: 0,
        outputTokens: 0,
        costNanoUsd: 0,
      }),
      // the day before, and an hour later
      e({
        modelId: 'm1',
        appId: 'chat',
        userId: 'alice',
        latencyMs: 200_000,
        timestampMs: t - DAY,
      }),
      e({ modelId: 'm1', appId: 'chat', userId: 'bob', latencyMs: 50, timestampMs: t + HOUR }),
    ];
    await storeOf().applyBatch(first, now);
    // A redelivery of the first event and a new one in a second batch.
    await storeOf().applyBatch(
      [first[0] as never, e({ modelId: 'm3', appId: 'search', userId: 'dan', latencyMs: 2_000 })],
      now,
    );
  };
  const dayOf = (ms: number) => ms - (ms % DAY);

  it('keeps latency histograms per model and app at hour and day resolution', async () => {
    await seed();
    const perModel = await storeOf().queryUsage(
      makeQuery({ groupBy: ['model'], orderBy: 'requests', latency: true }),
    );
    expect(histograms(perModel, 'model')).toEqual([
      ['m1', histogramOf([30, 700, 900, 200_000, 50])],
      ['m2', histogramOf([5_000])],
      ['m3', histogramOf([2_000])],
    ]);
    // Whole days: the day rollup.
    const days = makeQuery({
      fromMs: dayOf(t) - DAY,
      toMs: dayOf(t) + DAY,
      resolution: 'day',
      groupBy: ['app'],
      orderBy: 'requests',
      latency: true,
    });
    expect(histograms(await storeOf().queryUsage(days), 'app')).toEqual([
      ['chat', histogramOf([30, 700, 5_000, 200_000, 50])],
      ['search', histogramOf([900, 2_000])],
    ]);
    // Per day, with an interval.
    const perDay = await storeOf().queryUsage({
      ...days,
      groupBy: [],
      interval: 'day',
      orderBy: 'bucket',
      order: 'asc',
    });
    expect(perDay.map((r) => [r.bucketMs, r.latency])).toEqual([
      [dayOf(t) - DAY, histogramOf([200_000])],
      [dayOf(t), histogramOf([30, 700, 900, 5_000, 50, 2_000])],
    ]);
  });

  it('sums latency with filters, and over a range of whole days and ragged hours', async () => {
    await seed();
    const byUser = await storeOf().queryUsage(
      makeQuery({
        groupBy: ['model'],
        filters: { user: ['alice'] },
        orderBy: 'requests',
        latency: true,
      }),
    );
    expect(histograms(byUser, 'model')).toEqual([
      ['m1', histogramOf([30, 900, 200_000])],
      ['m2', histogramOf([5_000])],
    ]);
    const chatM1 = await storeOf().queryUsage(
      makeQuery({ filters: { app: ['chat'], model: ['m1'] }, latency: true }),
    );
    expect(chatM1.map((r) => r.latency)).toEqual([histogramOf([30, 700, 200_000, 50])]);
    // Not aligned on days, longer than one: whole days from the day rollup, edges from hours.
    const ragged = await storeOf().queryUsage(
      makeQuery({
        fromMs: t - DAY - HOUR,
        toMs: t + 30 * 60_000,
        groupBy: ['model'],
        orderBy: 'requests',
        latency: true,
      }),
    );
    expect(histograms(ragged, 'model')).toEqual([
      ['m1', histogramOf([30, 700, 900, 200_000])],
      ['m2', histogramOf([5_000])],
      ['m3', histogramOf([2_000])],
    ]);
  });

  it('gives a group without a timed call an empty histogram, and no histogram unless asked', async () => {
    await storeOf().applyBatch(
      [makePricedEvent({ latencyMs: undefined }), makePricedEvent({ latencyMs: 400 })],
      now,
    );
    await storeOf().applyBatch([makePricedEvent({ userId: 'zed', latencyMs: undefined })], now);
    const rows = await storeOf().queryUsage(
      makeQuery({ groupBy: ['user'], orderBy: 'requests', latency: true }),
    );
    expect(histograms(rows, 'user')).toEqual([
      ['alice', histogramOf([400])],
      ['zed', emptyLatencyHistogram()],
    ]);
    const plain = await storeOf().queryUsage(makeQuery({ groupBy: ['user'] }));
    expect(plain.map((r) => 'latency' in r)).toEqual([false, false]);
  });
}
