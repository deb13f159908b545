import { describe, expect, it } from 'vitest';
import { emptyLatencyHistogram } from '../aggregate/latency-histogram.js';
import { emptyMeasures } from '../aggregate/rollup-delta.js';
import { TokenwatchError } from '../errors.js';
import { latencyRowsOf, parseLatencyQuery } from './latency-query.js';

const NOW = Date.UTC(2026, 2, 10, 12, 0, 0);
const ctx = { projectId: 'p1', nowMs: NOW, minuteRetentionMs: 7 * 86_400_000 };
const parse = (q: string) => parseLatencyQuery(new URLSearchParams(q), ctx);

function issuesOf(q: string): Array<{ field: string; reason: string }> {
  try {
    parse(q);
  } catch (err) {
    expect(err).toBeInstanceOf(TokenwatchError);
    expect((err as TokenwatchError).code).toBe('invalid_query');
    return (err as TokenwatchError).details;
  }
  throw new Error(`accepted: ${q}`);
}

describe('parseLatencyQuery', () => {
  it('reads a usage range, filters and groups, asks for the histogram, most calls first', () => {
    const q = parse('groupBy=model&app=chat&from=2026-03-09&to=2026-03-10');
    expect(q).toMatchObject({
      projectId: 'p1',
      groupBy: ['model'],
      filters: { app: ['chat'] },
      resolution: 'day',
      orderBy: 'requests',
      order: 'desc',
      latency: true,
    });
    expect(parse('interval=hour').orderBy).toBe('bucket');
    expect(parse('').toMs).toBe(NOW);
  });

  it('refuses tags, minutes and the usage-only parameters, naming each', () => {
    expect(issuesOf('tag.team=ml')).toEqual([
      { field: 'tag.team', reason: 'latency is not kept per tag' },
    ]);
    expect(issuesOf('groupBy=model,tag:team')).toEqual([
      { field: 'groupBy', reason: 'latency is not kept per tag' },
    ]);
    expect(issuesOf('interval=minute')).toEqual([
      { field: 'interval', reason: 'latency is kept at hour and day resolution' },
    ]);
    expect(
      issuesOf('orderBy=requests&format=csv')
        .map((i) => i.field)
        .sort(),
    ).toEqual(['format', 'orderBy']);
  });

  it('passes on the usage parser’s reasons for the other parameters', () => {
    expect(
      issuesOf('groupBy=colour&limit=0')
        .map((i) => i.field)
        .sort(),
    ).toEqual(['groupBy', 'limit']);
    expect(issuesOf('from=2026-03-10&to=2026-03-09')[0]?.field).toBe('from');
  });
});

describe('latencyRowsOf', () => {
  it('keeps groups with a timed call, with their percentiles, in order', () => {
    const timed = emptyLatencyHistogram();
    timed[8] = 4; // (600, 1000]
    const rows = latencyRowsOf([
      { ...emptyMeasures(), model: 'a', requests: 9, latency: timed },
      { ...emptyMeasures(), model: 'b', requests: 5, latency: emptyLatencyHistogram() },
      { ...emptyMeasures(), app: 'x', bucketMs: 5, requests: 1 },
    ]);
    expect(rows).toEqual([
      { model: 'a', timedRequests: 4, p50Ms: 800, p95Ms: 980, histogram: timed },
    ]);
  });
});
