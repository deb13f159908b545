import { describe, expect, it } from 'vitest';
import type { PricedEvent } from '../event/usage-event.js';
import {
  addEventToMeasures,
  addMeasures,
  aggregateEvents,
  type BatchDeltas,
  emptyMeasures,
  type RollupDelta,
  type RollupMeasures,
  type TagRollupDelta,
} from './rollup-delta.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const T0 = Date.UTC(2026, 0, 31, 12, 34, 56, 789);

function event(overrides: Partial<PricedEvent> = {}): PricedEvent {
  return {
    projectId: 'p1',
    id: 'e1',
    timestampMs: T0,
    userId: 'alice',
    appId: 'app',
    modelId: 'gpt-4o',
    provider: 'openai',
    inputTokens: 100,
    outputTokens: 20,
    cacheReadTokens: 5,
    cacheWriteTokens: 3,
    latencyMs: undefined,
    status: 'ok',
    tags: undefined,
    costNanoUsd: 1234,
    priced: true,
    fingerprint: 'fp',
    ...overrides,
  };
}

function measuresOf(row: RollupMeasures): RollupMeasures {
  return {
    inputTokens: row.inputTokens,
    outputTokens: row.outputTokens,
    cacheReadTokens: row.cacheReadTokens,
    cacheWriteTokens: row.cacheWriteTokens,
    totalTokens: row.totalTokens,
    requests: row.requests,
    errors: row.errors,
    costNanoUsd: row.costNanoUsd,
    unpricedTokens: row.unpricedTokens,
    unpricedRequests: row.unpricedRequests,
    noUsageRequests: row.noUsageRequests,
    deniedRequests: row.deniedRequests,
  };
}

/** The reference: the measures of a set of events, summed one event at a time by hand. */
function naiveSum(events: readonly PricedEvent[]): RollupMeasures {
  const m = emptyMeasures();
  for (const e of events) {
    if (e.status === 'denied') {
      m.deniedRequests += 1;
      continue;
    }
    const total = e.inputTokens + e.outputTokens + e.cacheReadTokens + e.cacheWriteTokens;
    m.inputTokens += e.inputTokens;
    m.outputTokens += e.outputTokens;
    m.cacheReadTokens += e.cacheReadTokens;
    m.cacheWriteTokens += e.cacheWriteTokens;
    m.totalTokens += total;
    m.requests += 1;
    m.errors += e.status === 'error' ? 1 : 0;
    m.noUsageRequests += e.status === 'no_usage' ? 1 : 0;
    m.costNanoUsd += BigInt(e.costNanoUsd);
    m.unpricedTokens += e.priced ? 0 : total;
    m.unpricedRequests += e.priced ? 0 : 1;
  }
  return m;
}

function floorTo(ms: number, size: number): number {
  return Math.floor(ms / size) * size;
}

function keyOf(d: RollupDelta | TagRollupDelta): string {
  const tag = 'tagKey' in d ? [d.tagKey, d.tagValue] : [];
  return JSON.stringify([
    d.bucketMs,
    d.projectId,
    d.userId,
    d.appId,
    d.modelId,
    d.provider,
    ...tag,
  ]);
}

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomEvents(seed: number, n: number): PricedEvent[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const int = (max: number) => Math.floor(r() * (max + 1));
  const out: PricedEvent[] = [];
  for (let i = 0; i < n; i++) {
    const priced = r() < 0.7;
    const tags: Record<string, string> = Object.create(null);
    const nTags = pick([0, 0, 1, 2, 3]);
    for (let t = 0; t < nTags; t++) tags[pick(['team', 'env', 'feature'])] = pick(['a', 'b', '']);
    out.push(
      event({
        projectId: pick(['p1', 'p2']),
        id: `e${i}`,
        // Three days around T0, minutes apart, including before 1970 now and then.
        timestampMs:
          r() < 0.02 ? -int(3 * DAY_MS) : T0 + int(3 * DAY_MS) - 1.5 * DAY_MS + pick([0, 0.5]),
        userId: pick(['alice', 'bob', 'carol', 'a', 'ab']),
        appId: pick(['app', 'b', 'bapp']),
        modelId: pick(['gpt-4o', 'claude', 'x']),
        provider: pick(['openai', 'anthropic']),
        inputTokens: pick([0, int(1000), int(1_000_000_000)]),
        outputTokens: pick([0, int(1000), int(1_000_000_000)]),
        cacheReadTokens: pick([0, int(1000)]),
        cacheWriteTokens: pick([0, int(1000)]),
        status: pick(['ok', 'ok', 'ok', 'ok', 'error', 'no_usage', 'denied'] as const),
        tags: nTags === 0 ? undefined : tags,
        priced,
        costNanoUsd: priced ? pick([0, int(1_000_000), Number.MAX_SAFE_INTEGER - int(10)]) : 0,
      }),
    );
  }
  // Timestamps must be integers (they are after validation); a denied call has no tokens.
  for (const e of out) {
    e.timestampMs = Math.floor(e.timestampMs);
    if (e.status === 'denied') {
      Object.assign(e, {
        inputTokens: 0,
        outputTokens: 0,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        costNanoUsd: 0,
      });
    }
  }
  return out;
}

/** Merges several delta sets key by key, as a store would apply them one after another. */
function mergeDeltas(
  sets: readonly BatchDeltas[],
): Record<keyof BatchDeltas, Map<string, RollupMeasures>> {
  const out = {
    minute: new Map<string, RollupMeasures>(),
    hour: new Map<string, RollupMeasures>(),
    day: new Map<string, RollupMeasures>(),
    tagHour: new Map<string, RollupMeasures>(),
    tagDay: new Map<string, RollupMeasures>(),
  };
  for (const set of sets) {
    for (const table of Object.keys(out) as Array<keyof BatchDeltas>) {
      for (const d of set[table]) {
        const k = keyOf(d);
        const m = out[table].get(k) ?? emptyMeasures();
        addMeasures(m, d);
        out[table].set(k, m);
      }
    }
  }
  return out;
}

describe('emptyMeasures / addEventToMeasures / addMeasures', () => {
  it('starts at zero with a bigint cost, and returns a fresh object each time', () => {
    const a = emptyMeasures();
    expect(a).toEqual({
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
    });
    a.requests = 5;
    expect(emptyMeasures().requests).toBe(0);
  });

  it('adds one priced event', () => {
    const m = emptyMeasures();
    addEventToMeasures(m, event());
    expect(m).toEqual({
      inputTokens: 100,
      outputTokens: 20,
      cacheReadTokens: 5,
      cacheWriteTokens: 3,
      totalTokens: 128,
      requests: 1,
      errors: 0,
      costNanoUsd: 1234n,
      unpricedTokens: 0,
      unpricedRequests: 0,
      noUsageRequests: 0,
      deniedRequests: 0,
    });
  });

  it('counts an unpriced event as unpriced tokens and requests, never as cost', () => {
    const m = emptyMeasures();
    addEventToMeasures(m, event({ priced: false, costNanoUsd: 0 }));
    expect(m.unpricedTokens).toBe(128);
    expect(m.unpricedRequests).toBe(1);
    expect(m.costNanoUsd).toBe(0n);
    expect(m.requests).toBe(1);
  });

  it('counts a priced event that costs $0 as priced', () => {
    const m = emptyMeasures();
    addEventToMeasures(m, event({ priced: true, costNanoUsd: 0 }));
    expect(m.unpricedTokens).toBe(0);
    expect(m.unpricedRequests).toBe(0);
  });

  it('counts errors', () => {
    const m = emptyMeasures();
    addEventToMeasures(m, event({ status: 'error' }));
    addEventToMeasures(m, event({ status: 'ok' }));
    expect([m.requests, m.errors]).toEqual([2, 1]);
  });

  it('counts a call without usage as a request of its own kind, with the tokens it had', () => {
    const m = emptyMeasures();
    addEventToMeasures(
      m,
      event({
        status: 'no_usage',
        inputTokens: 7,
        outputTokens: 0,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        costNanoUsd: 70,
      }),
    );
    addEventToMeasures(
      m,
      event({
        status: 'no_usage',
        inputTokens: 0,
        outputTokens: 0,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        costNanoUsd: 0,
        priced: false,
      }),
    );
    expect([m.requests, m.noUsageRequests, m.errors, m.totalTokens]).toEqual([2, 2, 0, 7]);
    expect([m.unpricedRequests, m.costNanoUsd]).toEqual([1, 70n]);
  });

  it('counts a denied call only as denied: not a request, not unpriced', () => {
    const m = emptyMeasures();
    const zero = {
      inputTokens: 0,
      outputTokens: 0,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      costNanoUsd: 0,
    };
    addEventToMeasures(m, event({ status: 'denied', priced: false, ...zero }));
    expect(m).toEqual({ ...emptyMeasures(), deniedRequests: 1 });
  });

  it('adds measures field by field', () => {
    const a = emptyMeasures();
    addEventToMeasures(a, event());
    const b = emptyMeasures();
    addEventToMeasures(b, event({ priced: false, costNanoUsd: 0, status: 'error' }));
    addMeasures(a, b);
    expect(a).toEqual({
      inputTokens: 200,
      outputTokens: 40,
      cacheReadTokens: 10,
      cacheWriteTokens: 6,
      totalTokens: 256,
      requests: 2,
      errors: 1,
      costNanoUsd: 1234n,
      unpricedTokens: 128,
      unpricedRequests: 1,
      noUsageRequests: 0,
      deniedRequests: 0,
    });
  });

  it('keeps the cost exact past 2^53 nano-USD', () => {
    const m = emptyMeasures();
    for (let i = 0; i < 3; i++) {
      addEventToMeasures(m, event({ costNanoUsd: Number.MAX_SAFE_INTEGER }));
    }
    expect(typeof m.costNanoUsd).toBe('bigint');
    expect(m.costNanoUsd).toBe(3n * BigInt(Number.MAX_SAFE_INTEGER));
    expect(m.costNanoUsd).toBe(27021597764222973n);
  });
});

describe('aggregateEvents: buckets', () => {
  it('returns empty tables for no events', () => {
    expect(aggregateEvents([])).toEqual({ minute: [], hour: [], day: [], tagHour: [], tagDay: [] });
  });

  it('puts one event in its UTC minute, hour and day', () => {
    const deltas = aggregateEvents([event()]);
    expect(deltas.minute.map((d) => d.bucketMs)).toEqual([Date.UTC(2026, 0, 31, 12, 34)]);
    expect(deltas.hour.map((d) => d.bucketMs)).toEqual([Date.UTC(2026, 0, 31, 12)]);
    expect(deltas.day.map((d) => d.bucketMs)).toEqual([Date.UTC(2026, 0, 31)]);
    expect(deltas.tagHour).toEqual([]);
    expect(deltas.tagDay).toEqual([]);
    expect(deltas.hour[0]).toEqual({
      bucketMs: Date.UTC(2026, 0, 31, 12),
      projectId: 'p1',
      userId: 'alice',
      appId: 'app',
      modelId: 'gpt-4o',
      provider: 'openai',
      ...measuresOf(naiveSum([event()])),
    });
  });

  it('puts a boundary instant in the bucket it starts, and the instant before in the previous one', () => {
    const midnight = Date.UTC(2026, 1, 1);
    const deltas = aggregateEvents([
      event({ id: 'a', timestampMs: midnight }),
      event({ id: 'b', timestampMs: midnight - 1 }),
    ]);
    expect(deltas.minute.map((d) => d.bucketMs).sort()).toEqual([midnight - MINUTE_MS, midnight]);
    expect(deltas.hour.map((d) => d.bucketMs).sort()).toEqual([midnight - HOUR_MS, midnight]);
    expect(deltas.day.map((d) => d.bucketMs).sort()).toEqual([midnight - DAY_MS, midnight]);
  });

  it('floors instants before 1970', () => {
    const deltas = aggregateEvents([event({ timestampMs: -1 })]);
    expect(deltas.minute[0]?.bucketMs).toBe(-MINUTE_MS);
    expect(deltas.hour[0]?.bucketMs).toBe(-HOUR_MS);
    expect(deltas.day[0]?.bucketMs).toBe(-DAY_MS);
  });

  it('merges events of one key: same minute → one row in every table', () => {
    const deltas = aggregateEvents([
      event({ id: 'a', timestampMs: T0 }),
      event({ id: 'b', timestampMs: T0 + 1000, status: 'error' }),
    ]);
    expect(deltas.minute).toHaveLength(1);
    expect(deltas.hour).toHaveLength(1);
    expect(deltas.day).toHaveLength(1);
    expect(deltas.day[0]?.requests).toBe(2);
    expect(deltas.day[0]?.errors).toBe(1);
  });

  it('splits by minute but not by hour within one hour', () => {
    const start = Date.UTC(2026, 0, 31, 12);
    const deltas = aggregateEvents(
      Array.from({ length: 60 }, (_, i) =>
        event({ id: `e${i}`, timestampMs: start + i * MINUTE_MS }),
      ),
    );
    expect(deltas.minute).toHaveLength(60);
    expect(deltas.hour).toHaveLength(1);
    expect(deltas.hour[0]?.requests).toBe(60);
    expect(deltas.day).toHaveLength(1);
  });

  it.each([
    ['projectId', 'p2'],
    ['userId', 'bob'],
    ['appId', 'other'],
    ['modelId', 'claude'],
    ['provider', 'anthropic'],
  ] as const)('keeps a separate row per %s', (field, value) => {
    const deltas = aggregateEvents([event({ id: 'a' }), event({ id: 'b', [field]: value })]);
    expect(deltas.hour).toHaveLength(2);
    expect(deltas.hour.map((d) => d[field]).sort()).toEqual([event()[field], value].sort());
  });

  it('does not confuse keys whose concatenation is the same', () => {
    const deltas = aggregateEvents([
      event({ id: 'a', userId: 'ab', appId: 'c' }),
      event({ id: 'b', userId: 'a', appId: 'bc' }),
      event({ id: 'c', userId: 'a:b', appId: 'c' }),
      event({ id: 'd', userId: 'a', appId: 'b:c' }),
    ]);
    expect(deltas.hour).toHaveLength(4);
  });

  it('ignores the event id, latency and fingerprint: they are not rollup dimensions', () => {
    const deltas = aggregateEvents([
      event({ id: 'a', latencyMs: 5, fingerprint: 'x' }),
      event({ id: 'b', latencyMs: 900, fingerprint: 'y' }),
    ]);
    expect(deltas.hour).toHaveLength(1);
    expect(deltas.hour[0]?.requests).toBe(2);
  });

  it('does not keep references to the events nor share rows between tables', () => {
    const deltas = aggregateEvents([event()]);
    (deltas.hour[0] as RollupDelta).requests = 99;
    expect(deltas.day[0]?.requests).toBe(1);
    expect(deltas.minute[0]?.requests).toBe(1);
  });
});

describe('aggregateEvents: tags', () => {
  it('fans one event out to one tag row per tag, in the hour and day tag tables', () => {
    const tags = Object.assign(Object.create(null), { team: 'ml', env: 'prod', feature: 'chat' });
    const e = event({ tags });
    const deltas = aggregateEvents([e]);
    for (const table of [deltas.tagHour, deltas.tagDay]) {
      expect(table).toHaveLength(3);
      expect(table.map((d) => [d.tagKey, d.tagValue]).sort()).toEqual([
        ['env', 'prod'],
        ['feature', 'chat'],
        ['team', 'ml'],
      ]);
      for (const d of table) {
        expect(measuresOf(d)).toEqual(measuresOf(naiveSum([e])));
        expect([d.projectId, d.userId, d.appId, d.modelId, d.provider]).toEqual([
          'p1',
          'alice',
          'app',
          'gpt-4o',
          'openai',
        ]);
      }
    }
    expect(deltas.tagHour.every((d) => d.bucketMs === Date.UTC(2026, 0, 31, 12))).toBe(true);
    expect(deltas.tagDay.every((d) => d.bucketMs === Date.UTC(2026, 0, 31))).toBe(true);
    // The plain tables still count the event once.
    expect(deltas.hour).toHaveLength(1);
    expect(deltas.hour[0]?.requests).toBe(1);
  });

  it('has no minute tag table and no tag rows for untagged events', () => {
    const deltas = aggregateEvents([event({ tags: undefined }), event({ id: 'x', tags: {} })]);
    expect(deltas.tagHour).toEqual([]);
    expect(deltas.tagDay).toEqual([]);
    expect(Object.keys(deltas).sort()).toEqual(['day', 'hour', 'minute', 'tagDay', 'tagHour']);
  });

  it('merges equal tag values and separates different ones', () => {
    const deltas = aggregateEvents([
      event({ id: 'a', tags: { team: 'ml' } }),
      event({ id: 'b', tags: { team: 'ml' } }),
      event({ id: 'c', tags: { team: 'web' } }),
      event({ id: 'd', tags: { env: 'ml' } }),
      event({ id: 'e', tags: { team: '' } }),
    ]);
    const byTag = new Map(deltas.tagHour.map((d) => [`${d.tagKey}=${d.tagValue}`, d.requests]));
    expect(Object.fromEntries(byTag)).toEqual({
      'team=ml': 2,
      'team=web': 1,
      'env=ml': 1,
      'team=': 1,
    });
  });

  it('keeps the tag dimension apart from the other dimensions', () => {
    const deltas = aggregateEvents([
      event({ id: 'a', userId: 'u', tags: { k: 'v' } }),
      event({ id: 'b', userId: 'v', tags: { k: 'u' } }),
    ]);
    expect(deltas.tagHour).toHaveLength(2);
  });
});

describe('aggregateEvents: pre-aggregation equals per-event summation (generated)', () => {
  const SIZES = { minute: MINUTE_MS, hour: HOUR_MS, day: DAY_MS } as const;

  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`seed ${seed}: every row is the naive sum of exactly the events of its key`, () => {
      const events = randomEvents(seed, 400);
      const deltas = aggregateEvents(events);

      for (const table of ['minute', 'hour', 'day'] as const) {
        const rows = deltas[table];
        const keys = rows.map(keyOf);
        expect(new Set(keys).size).toBe(keys.length); // one row per distinct key
        let covered = 0;
        for (const row of rows) {
          const members = events.filter(
            (e) =>
              floorTo(e.timestampMs, SIZES[table]) === row.bucketMs &&
              e.projectId === row.projectId &&
              e.userId === row.userId &&
              e.appId === row.appId &&
              e.modelId === row.modelId &&
              e.provider === row.provider,
          );
          expect(members.length).toBeGreaterThan(0);
          expect(measuresOf(row)).toEqual(naiveSum(members));
          covered += members.length;
        }
        expect(covered).toBe(events.length); // every event in exactly one row
        const total = emptyMeasures();
        for (const row of rows) addMeasures(total, row);
        expect(total).toEqual(naiveSum(events));
      }

      for (const [table, size] of [
        ['tagHour', HOUR_MS],
        ['tagDay', DAY_MS],
      ] as const) {
        const rows = deltas[table];
        const keys = rows.map(keyOf);
        expect(new Set(keys).size).toBe(keys.length);
        for (const row of rows) {
          const members = events.filter(
            (e) =>
              floorTo(e.timestampMs, size) === row.bucketMs &&
              e.projectId === row.projectId &&
              e.userId === row.userId &&
              e.appId === row.appId &&
              e.modelId === row.modelId &&
              e.provider === row.provider &&
              e.tags !== undefined &&
              Object.hasOwn(e.tags, row.tagKey) &&
              e.tags[row.tagKey] === row.tagValue,
          );
          expect(measuresOf(row)).toEqual(naiveSum(members));
        }
        const fanOut = events.reduce((n, e) => n + Object.keys(e.tags ?? {}).length, 0);
        expect(rows.reduce((n, r) => n + r.requests + r.deniedRequests, 0)).toBe(fanOut);
      }
    });

    it(`seed ${seed}: aggregating a batch equals merging the aggregates of any split of it`, () => {
      const events = randomEvents(seed + 100, 300);
      const whole = mergeDeltas([aggregateEvents(events)]);
      const perEvent = mergeDeltas(events.map((e) => aggregateEvents([e])));
      const cut = Math.floor(events.length / 3);
      const halves = mergeDeltas([
        aggregateEvents(events.slice(0, cut)),
        aggregateEvents(events.slice(cut)),
      ]);
      const reversed = mergeDeltas([aggregateEvents([...events].reverse())]);
      for (const other of [perEvent, halves, reversed]) {
        for (const table of Object.keys(whole) as Array<keyof BatchDeltas>) {
          expect(Object.fromEntries(other[table])).toEqual(Object.fromEntries(whole[table]));
        }
      }
    });
  }
});

describe('the latency histogram measure', () => {
  it('counts each call with a latency in its bucket; calls without one and denied calls are not in it', () => {
    const m = emptyMeasures();
    addEventToMeasures(m, event({ latencyMs: undefined }));
    expect(m.latency).toBeUndefined();
    addEventToMeasures(m, event({ latencyMs: 700 }));
    addEventToMeasures(m, event({ latencyMs: 700, status: 'error' }));
    addEventToMeasures(m, event({ latencyMs: 0, status: 'no_usage' }));
    addEventToMeasures(
      m,
      event({ latencyMs: 5, status: 'denied', inputTokens: 0, outputTokens: 0, costNanoUsd: 0 }),
    );
    const expected = new Array(20).fill(0);
    expected[0] = 1;
    expected[8] = 2;
    expect(m.latency).toEqual(expected);
    expect(m.requests).toBe(4);
  });

  it('adds up exactly from minute to day rows, and merging copies instead of sharing', () => {
    const events = [10, 30, 30, 900, 200_000].map((ms, i) =>
      event({ id: `e${i}`, latencyMs: ms, timestampMs: T0 + i * 20 * MINUTE_MS }),
    );
    const deltas = aggregateEvents(events);
    const total = emptyMeasures();
    for (const d of deltas.minute) addMeasures(total, d);
    expect(total.latency).toEqual(deltas.day[0]?.latency);
    expect(total.latency?.[1]).toBe(2);
    const first = deltas.minute[0] as RollupDelta;
    const into = emptyMeasures();
    addMeasures(into, first);
    addMeasures(into, first);
    expect(first.latency?.[0]).toBe(1);
    expect(into.latency?.[0]).toBe(2);
  });
});
