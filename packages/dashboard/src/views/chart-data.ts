import type { Matrix, Metric, Slice, TimeSeries } from '../lib/aggregate.js';
import type { Heatmap } from '../lib/heatmap.js';
import type { PanelData } from '../ui/panel.js';

/** Panel data (table + CSV) of each chart kind, with exactly the numbers the chart draws. */

export function timeSeriesData(ts: TimeSeries, metric: Metric, fileParts: string[]): PanelData {
  const valueLabel = metric === 'cost' ? 'costUsd' : 'totalTokens';
  return {
    columns: [
      { key: 'bucket', label: 'bucket' },
      ...ts.series.map((s, i) => ({ key: `s${i}`, label: `${s.name} (${valueLabel})` })),
    ],
    rows: ts.categories.map((bucket, bi) => {
      const row: Record<string, string | number> = { bucket };
      ts.series.forEach((s, si) => {
        row[`s${si}`] = s.data[bi] ?? 0;
      });
      return row;
    }),
    fileParts,
  };
}

export function matrixData(
  m: Matrix,
  rowLabel: string,
  colLabel: string,
  metric: Metric,
  fileParts: string[],
): PanelData {
  const rows: Record<string, string | number>[] = [];
  m.rows.forEach((r, ri) => {
    m.cols.forEach((c, ci) => {
      const v = m.values[ci]?.[ri] ?? 0;
      if (v !== 0) rows.push({ row: r, col: c, value: v });
    });
  });
  return {
    columns: [
      { key: 'row', label: rowLabel },
      { key: 'col', label: colLabel },
      { key: 'value', label: metric === 'cost' ? 'costUsd' : 'totalTokens' },
    ],
    rows,
    fileParts,
  };
}

export function slicesData(
  slices: Slice[],
  label: string,
  metric: Metric,
  fileParts: string[],
): PanelData {
  return {
    columns: [
      { key: 'name', label },
      { key: 'value', label: metric === 'cost' ? 'costUsd' : 'totalTokens' },
    ],
    rows: slices.map((s) => ({ name: s.name, value: s.value })),
    fileParts,
  };
}

export function heatmapData(hm: Heatmap, metric: Metric, fileParts: string[]): PanelData {
  return {
    columns: [
      { key: 'user', label: 'user' },
      { key: 'app', label: 'app' },
      { key: 'value', label: metric === 'cost' ? 'costUsd' : 'totalTokens' },
    ],
    rows: hm.cells.map(([x, y, v]) => ({
      user: hm.users[y] ?? '',
      app: hm.apps[x] ?? '',
      value: v,
    })),
    fileParts,
  };
}
