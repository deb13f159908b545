import { describe, expect, it } from 'vitest';
import { appUserHeatmap, heatmapScaleMax } from './heatmap.js';
import type { UsageRow } from './usage-api.js';

function row(fields: Partial<UsageRow> & { totalTokens: number }): UsageRow {
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

const names = { otherName: 'Other users', otherAppsName: 'Other apps', metric: 'tokens' } as const;

describe('appUserHeatmap', () => {
  it('top users\' cells plus an exact "other users" row per app', () => {
    const hm = appUserHeatmap({
      ...names,
      maxApps: 12,
      topUsers: ['u1', 'u2'],
      cellRows: [
        row({ app: 'chat', user: 'u1', totalTokens: 100 }),
        row({ app: 'chat', user: 'u2', totalTokens: 50 }),
        row({ app: 'code', user: 'u1', totalTokens: 30 }),
      ],
      appTotals: [
        row({ app: 'chat', totalTokens: 175 }),
        row({ app: 'code', totalTokens: 30 }),
        row({ app: 'rare', totalTokens: 9 }),
      ],
    });
    expect(hm.apps).toEqual(['chat', 'code', 'rare']);
    expect(hm.otherApps).toBe(false);
    expect(hm.users).toEqual(['u1', 'u2', 'Other users']);
    expect(hm.cells).toEqual([
      [0, 0, 100],
      [0, 1, 50],
      [0, 2, 25],
      [1, 0, 30],
      [2, 2, 9],
    ]);
  });

  it('apps past maxApps add up in an "Other apps" column; the scale ignores both "other"s', () => {
    const hm = appUserHeatmap({
      ...names,
      maxApps: 2,
      topUsers: ['u1'],
      cellRows: [
        row({ app: 'a', user: 'u1', totalTokens: 40 }),
        row({ app: 'c', user: 'u1', totalTokens: 7 }),
        row({ app: 'd', user: 'u1', totalTokens: 3 }),
      ],
      appTotals: [
        row({ app: 'a', totalTokens: 1000 }),
        row({ app: 'b', totalTokens: 500 }),
        row({ app: 'c', totalTokens: 300 }),
        row({ app: 'd', totalTokens: 200 }),
      ],
    });
    expect(hm.apps).toEqual(['a', 'b', 'Other apps']);
    expect(hm.otherApps).toBe(true);
    expect(hm.cells).toEqual([
      [0, 0, 40],
      [0, 1, 960],
      [1, 1, 500],
      [2, 0, 10],
      [2, 1, 490],
    ]);
    // Every column still sums to the API's totals: a + b + (c + d).
    expect(hm.cells.reduce((s, c) => s + c[2], 0)).toBe(2000);
    expect(heatmapScaleMax(hm)).toBe(40);
  });
});
