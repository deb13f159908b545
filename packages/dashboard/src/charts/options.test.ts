import { describe, expect, it } from 'vitest';
import {
  appModelOption,
  heatmapOption,
  PARTIAL_OPACITY,
  pieOption,
  timeSeriesOption,
} from './options.js';
import { THEMES } from './palette.js';

const EVIL = '<img src=x onerror="window.__xss=1">';
const theme = THEMES.light;

type Fmt = (p: unknown) => string;
function tooltipOf(option: unknown): Fmt {
  return (option as { tooltip: { formatter: Fmt } }).tooltip.formatter;
}

describe('chart options', () => {
  it('time series: the bucket still filling is faded and keeps its value', () => {
    const ts = {
      categories: ['2026-01-06T10:00:00.000Z', '2026-01-06T11:00:00.000Z'],
      series: [{ name: 'm', other: false, data: [5, 2] }],
    };
    const o = timeSeriesOption(ts, { interval: 'hour', metric: 'tokens', theme, partialIndex: 1 });
    expect((o.series as { data: unknown[] }[])[0]?.data).toEqual([
      5,
      { value: 2, itemStyle: { opacity: PARTIAL_OPACITY } },
    ]);
    const tip = tooltipOf(o)([
      { seriesName: 'm', seriesIndex: 0, dataIndex: 1, value: 2, color: '#000', name: '' },
    ]);
    expect(tip).toContain('so far');
  });

  it('time series: categories are bucket starts, data as given, tooltip escaped', () => {
    const ts = {
      categories: ['2026-01-06T10:00:00.000Z', '2026-01-06T11:00:00.000Z'],
      series: [
        { name: EVIL, other: false, data: [1, 2] },
        { name: 'Other', other: true, data: [3, 0] },
      ],
    };
    const o = timeSeriesOption(ts, { interval: 'hour', metric: 'tokens', theme, timeZone: 'UTC' });
    expect((o.xAxis as { data: string[] }).data).toEqual(ts.categories);
    expect((o.series as { data: number[] }[]).map((s) => s.data)).toEqual([
      [1, 2],
      [3, 0],
    ]);
    expect((o.color as string[])[1]).toBe(theme.other);
    const html = tooltipOf(o)([
      { seriesName: EVIL, seriesIndex: 0, dataIndex: 0, value: 1, color: '#000', name: '' },
      { seriesName: 'Other', seriesIndex: 1, dataIndex: 0, value: 3, color: '#000', name: '' },
    ]);
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;');
    expect(html).toContain('Total <b>4</b>');
  });

  it('app × model bars, pie and heat map escape names in tooltips', () => {
    const m = { rows: [EVIL], cols: ['m'], otherRow: false, otherCol: false, values: [[5]] };
    const bar = appModelOption(m, { metric: 'cost', theme });
    expect(
      tooltipOf(bar)([
        { seriesName: EVIL, seriesIndex: 0, dataIndex: 0, value: 5, color: '', name: '' },
      ]),
    ).not.toContain('<img');
    const pie = pieOption([{ name: EVIL, other: false, value: 2, exact: 2n }], {
      metric: 'tokens',
      theme,
    });
    expect(tooltipOf(pie)({ name: EVIL, value: 2, dataIndex: 0 })).not.toContain('<img');
    const hm = heatmapOption(
      { apps: [EVIL], users: [EVIL], otherUsers: false, cells: [[0, 0, 7]] },
      { metric: 'tokens', theme },
    );
    const html = tooltipOf(hm)({ value: [0, 0, 7] });
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img');
  });
});
