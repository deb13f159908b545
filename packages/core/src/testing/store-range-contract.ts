import { expect, it } from 'vitest';
import type { PricedEvent } from '../event/usage-event.js';
import type { Store } from '../ports/project-store.js';
import type { Dimension, UsageQuery, UsageRow } from '../query/usage-query.js';
import { CONTRACT_T0, makePricedEvent, makeQuery } from './store-fixtures.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const STEP = { minute: MINUTE, hour: HOUR, day: DAY } as const;

/** Four days of traffic from six users over three apps and two models, one event every 37 min. */
function fourDaysOfTraffic(): PricedEvent[] {
  const start = Math.floor(CONTRACT_T0 / DAY) * DAY - 2 * DAY;
  const events: PricedEvent[] = [];
  for (let i = 0; start + i * 37 * MINUTE < start + 4 * DAY; i++) {
    events.push(
      makePricedEvent({
        timestampMs: start + i * 37 * MINUTE,
        userId: `u${(i * 7) % 6}`,
        appId: `a${i % 3}`,
        modelId: i % 5 === 0 ? 'm-large' : 'm-small',
        inputTokens: 10 + ((i * 13) % 97),
        outputTokens: 5 + ((i * 7) % 31),
        costNanoUsd: 1_000 + i,
      }),
    );
  }
  return events;
}

interface Counted {
  totalTokens: number;
  inputTokens: number;
  requests: number;
  costNanoUsd: bigint;
}
type Expected = Map<string, Counted>;

function keyOf(dims: readonly Dimension[], values: (d: Dimension) => string, bucket?: number) {
  return JSON.stringify([...dims.map(values), bucket ?? null]);
}

/** What the query must answer, recounted from the events: a bucket counts when it starts in range. */
function recount(events: readonly PricedEvent[], q: UsageQuery): Expected {
  const step = STEP[q.resolution];
  const out: Expected = new Map();
  for (const e of events) {
    const bucket = Math.floor(e.timestampMs / step) * step;
    if (bucket < q.fromMs || bucket >= q.toMs) continue;
    const field = { user: e.userId, app: e.appId, model: e.modelId, provider: e.provider };
    const pass = Object.entries(q.filters).every(
      ([dim, values]) => !values || values.includes(field[dim as keyof typeof field]),
    );
    if (!pass) continue;
    const intervalBucket = q.interval ? Math.floor(e.timestampMs / step) * step : undefined;
    const key = keyOf(q.groupBy, (d) => field[d as keyof typeof field], intervalBucket);
    const acc = out.get(key) ?? { totalTokens: 0, inputTokens: 0, requests: 0, costNanoUsd: 0n };
    acc.totalTokens += e.inputTokens + e.outputTokens + e.cacheReadTokens + e.cacheWriteTokens;
    acc.inputTokens += e.inputTokens;
    acc.requests += 1;
    acc.costNanoUsd += BigInt(e.costNanoUsd);
    out.set(key, acc);
  }
  return out;
}

const MEASURE_OF: Partial<Record<UsageQuery['orderBy'], keyof Counted>> = {
  totalTokens: 'totalTokens',
  inputTokens: 'inputTokens',
  requests: 'requests',
  costUsd: 'costNanoUsd',
};

/**
 * The recount in the query's order, cut at its limit: by the measure, ties by the dimensions
 * (code-point order), then by bucket. Only the measures the recount keeps can order a shape.
 */
function topOf(expected: Expected, q: UsageQuery): Expected {
  const measure = MEASURE_OF[q.orderBy];
  const entries = [...expected.entries()];
  entries.sort(([ka, a], [kb, b]) => {
    if (!measure) throw new Error(`the range contract cannot order by ${q.orderBy}`);
    const diff = a[measure] < b[measure] ? -1 : a[measure] > b[measure] ? 1 : 0;
    if (diff !== 0) return q.order === 'asc' ? diff : -diff;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
  return new Map(entries.slice(0, q.limit));
}

function answered(rows: readonly UsageRow[], q: UsageQuery): Expected {
  const out: Expected = new Map();
  for (const r of rows) {
    const key = keyOf(q.groupBy, (d) => String(r[d as 'user'] ?? ''), r.bucketMs);
    expect(out.has(key), `row ${key} appears twice`).toBe(false);
    out.set(key, {
      totalTokens: r.totalTokens,
      inputTokens: r.inputTokens,
      requests: r.requests,
      costNanoUsd: r.costNanoUsd,
    });
  }
  return out;
}

/**
 * Per-user queries over day-aligned, hour-aligned and ragged ranges, with and without a user
 * filter and an interval: every answer equals a recount of the events. Stores may read these from
 * different rollups (per user, user × app, full series; whole days plus ragged hours), and each
 * path must add up to the same numbers, and `countGroups` must count the rows of each.
 */
export function rangeQueryContract(store: () => Store, now: { nowMs: number }): void {
  it('answers per-user queries over any range shape exactly as a recount', async () => {
    const events = fourDaysOfTraffic();
    await store().applyBatch(events, now);
    const dayStart = Math.floor(CONTRACT_T0 / DAY) * DAY - 2 * DAY;
    const ranges: Array<Pick<UsageQuery, 'fromMs' | 'toMs' | 'resolution'>> = [
      { fromMs: dayStart, toMs: dayStart + 3 * DAY, resolution: 'day' },
      {
        fromMs: dayStart + 3 * HOUR + 17 * MINUTE,
        toMs: dayStart + 3 * DAY - 5 * HOUR - 7 * MINUTE,
        resolution: 'hour',
      },
      { fromMs: dayStart + DAY + 4 * HOUR, toMs: dayStart + DAY + 9 * HOUR, resolution: 'hour' },
      {
        fromMs: dayStart + 2 * DAY + 20 * HOUR,
        toMs: dayStart + 3 * DAY + 2 * HOUR,
        resolution: 'hour',
      },
    ];
    const shapes: Array<Partial<UsageQuery>> = [
      { groupBy: ['user'] },
      { groupBy: ['app', 'user'] },
      { groupBy: ['user'], filters: { user: ['u1', 'u3'] } },
      { groupBy: ['app', 'user'], filters: { user: ['u2', 'u5', 'nobody'] } },
      { groupBy: ['app', 'model'], filters: { user: ['u4'] } },
      { groupBy: [], filters: { user: ['u0'] } },
      { groupBy: ['user'], filters: { app: ['a1'] } },
      { groupBy: ['app', 'user'], filters: { app: ['a0', 'a2'] } },
      { groupBy: ['user', 'app'], filters: { model: ['m-large'] } },
      { groupBy: ['model'], filters: { user: ['u1'] }, interval: 'hour' },
      { groupBy: ['user'], filters: { user: ['u3'] }, interval: 'day' },
      { groupBy: ['model', 'provider'] },
      { groupBy: ['app'], interval: 'hour' },
      { groupBy: [], filters: { model: ['m-large'] }, interval: 'hour' },
      { groupBy: ['app', 'model'], filters: { app: ['a1'] } },
      { groupBy: ['user', 'model'], filters: { model: ['m-small'] } },
      { groupBy: ['model', 'provider'], filters: { user: ['u5', 'u2'] } },
      // Top-N: the limit cuts, and ties (many users have equal request counts) go by name.
      { groupBy: ['user'], orderBy: 'requests', limit: 4 },
      { groupBy: ['user'], orderBy: 'costUsd', order: 'asc', limit: 2 },
      {
        groupBy: ['app', 'user'],
        orderBy: 'inputTokens',
        limit: 5,
        filters: { app: ['a0', 'a2'] },
      },
      { groupBy: ['user', 'app'], orderBy: 'requests', order: 'asc', limit: 3 },
    ];
    for (const range of ranges) {
      for (const shape of shapes) {
        if (shape.interval === 'hour' && range.resolution === 'day') continue;
        const resolution =
          shape.interval === 'hour' || shape.interval === 'day' ? shape.interval : range.resolution;
        const q = makeQuery({ ...range, ...shape, resolution });
        if (q.interval === 'day' && (q.fromMs % DAY !== 0 || q.toMs % DAY !== 0)) continue;
        const rows = await store().queryUsage(q);
        const label = JSON.stringify({ ...range, ...shape });
        const expected = recount(events, q);
        const kept = topOf(expected, q);
        expect(answered(rows, q), label).toEqual(kept);
        expect(
          rows.map((r) => keyOf(q.groupBy, (d) => String(r[d as 'user']), r.bucketMs)),
          label,
        ).toEqual([...kept.keys()]);
        // The count ignores the limit: it is how many rows there are, not how many were asked.
        expect(await store().countGroups({ ...q, limit: 1 }), label).toBe(expected.size);
      }
    }
  });
}
