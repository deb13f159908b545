import { describe, expect, it } from 'vitest';
import {
  matrix,
  rollUpBy,
  seriesByKey,
  stackedOverTime,
  sumRows,
  topWithOther,
} from './aggregate.js';
import type { UsageRow } from './usage-api.js';

function row(fields: Partial<UsageRow> & { totalTokens: number; costNanoUsd?: string }): UsageRow {
  return {
    inputTokens: fields.totalTokens,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    requests: 1,
    errors: 0,
    costUsd: 0,
    unpricedTokens: 0,
    unpricedRequests: 0,
    costNanoUsd: '0',
    ...fields,
  };
}

const H = 3_600_000;
const b = (i: number) => new Date(i * H).toISOString();

describe('stackedOverTime', () => {
  it('keyed series from their rows, "other" = total − keyed, zero-filled', () => {
    const ts = stackedOverTime({
      buckets: [0, H, 2 * H],
      keys: ['m1', 'm2'],
      keyOf: (r) => r.model,
      keyedRows: [
        row({ model: 'm1', bucket: b(0), totalTokens: 10 }),
        row({ model: 'm2', bucket: b(0), totalTokens: 5 }),
        row({ model: 'm1', bucket: b(2), totalTokens: 7 }),
        row({ model: 'zzz', bucket: b(2), totalTokens: 1000 }),
      ],
      totalRows: [row({ bucket: b(0), totalTokens: 20 }), row({ bucket: b(2), totalTokens: 7 })],
      metric: 'tokens',
      otherName: 'Other',
    });
    expect(ts.categories).toEqual([b(0), b(1), b(2)]);
    expect(ts.series).toEqual([
      { name: 'm1', other: false, data: [10, 0, 7] },
      { name: 'm2', other: false, data: [5, 0, 0] },
      { name: 'Other', other: true, data: [5, 0, 0] },
    ]);
  });

  it('cost sums exactly in nano-USD', () => {
    const ts = stackedOverTime({
      buckets: [0],
      keys: ['a'],
      keyOf: (r) => r.app,
      keyedRows: [row({ app: 'a', bucket: b(0), totalTokens: 1, costNanoUsd: '100000001' })],
      totalRows: [row({ bucket: b(0), totalTokens: 2, costNanoUsd: '300000003' })],
      metric: 'cost',
      otherName: 'Other',
    });
    expect(ts.series.map((s) => s.data[0])).toEqual([0.100000001, 0.200000002]);
  });

  it('no "other" series when the keys cover everything', () => {
    const ts = stackedOverTime({
      buckets: [0],
      keys: ['a'],
      keyOf: (r) => r.app,
      keyedRows: [row({ app: 'a', bucket: b(0), totalTokens: 3 })],
      totalRows: [row({ bucket: b(0), totalTokens: 3 })],
      metric: 'tokens',
      otherName: 'Other',
    });
    expect(ts.series.map((s) => s.name)).toEqual(['a']);
  });
});

describe('topWithOther', () => {
  it('keeps the first n by the metric and sums the rest', () => {
    const rows = [
      row({ model: 'a', totalTokens: 5 }),
      row({ model: 'b', totalTokens: 50 }),
      row({ model: 'c', totalTokens: 1 }),
      row({ model: 'd', totalTokens: 2 }),
    ];
    expect(
      topWithOther(rows, (r) => r.model ?? '', 2, 'tokens', 'Other').map((s) => [s.name, s.value]),
    ).toEqual([
      ['b', 50],
      ['a', 5],
      ['Other', 3],
    ]);
  });
});

describe('matrix', () => {
  it('top rows and columns, the rest in "other" row and column', () => {
    const rows = [
      row({ app: 'x', model: 'm1', totalTokens: 10 }),
      row({ app: 'x', model: 'm2', totalTokens: 1 }),
      row({ app: 'y', model: 'm1', totalTokens: 4 }),
      row({ app: 'z', model: 'm2', totalTokens: 2 }),
    ];
    const m = matrix(
      rows,
      (r) => r.app ?? '',
      (r) => r.model ?? '',
      2,
      1,
      'tokens',
      {
        otherRow: 'Other apps',
        otherCol: 'Other models',
      },
    );
    expect(m.rows).toEqual(['x', 'y', 'Other apps']);
    expect(m.cols).toEqual(['m1', 'Other models']);
    expect(m.values).toEqual([
      [10, 4, 0],
      [1, 0, 2],
    ]);
  });
});

describe('seriesByKey and sumRows', () => {
  it('zero-filled per key', () => {
    const m = seriesByKey(
      [
        row({ user: 'a', bucket: b(1), totalTokens: 3 }),
        row({ user: 'b', bucket: b(0), totalTokens: 4 }),
      ],
      (r) => r.user,
      [0, H],
      'tokens',
    );
    expect(m.get('a')).toEqual([0, 3]);
    expect(m.get('b')).toEqual([4, 0]);
  });

  it('sums every measure; cost as bigint', () => {
    const t = sumRows([
      row({ totalTokens: 1, costNanoUsd: '9007199254740993' }),
      row({ totalTokens: 2, costNanoUsd: '1', unpricedTokens: 2 }),
    ]);
    expect(t.totalTokens).toBe(3);
    expect(t.requests).toBe(2);
    expect(t.unpricedTokens).toBe(2);
    expect(t.costNano).toBe(9007199254740994n);
  });
});

describe('rollUpBy', () => {
  it('sums rows of finer groups into one dimension, cost exactly', () => {
    const rows = rollUpBy(
      [
        row({ app: 'a', model: 'm1', totalTokens: 3, costNanoUsd: '1' }),
        row({ app: 'a', model: 'm2', totalTokens: 4, costNanoUsd: '2000000000' }),
        row({ app: 'b', model: 'm1', totalTokens: 5 }),
      ],
      'app',
    );
    expect(rows.map((r) => [r.app, r.totalTokens, r.requests, r.costNanoUsd, r.costUsd])).toEqual([
      ['a', 7, 2, '2000000001', 2.000000001],
      ['b', 5, 1, '0', 0],
    ]);
  });
});
