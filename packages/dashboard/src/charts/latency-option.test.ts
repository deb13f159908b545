import { describe, expect, it } from 'vitest';
import { formatLatency, latencyOption, P50_OPACITY } from './latency-option.js';
import { THEMES } from './palette.js';

describe('latencyOption', () => {
  const bars = [
    { name: 'm1', p50Ms: 800, p95Ms: 2_400, timedRequests: 10 },
    { name: '<b>m2</b>', p50Ms: 90, p95Ms: 130_000, timedRequests: 3 },
  ];
  it('draws a p50 and a p95 bar per name, both in the name’s colour, p50 faded', () => {
    const theme = THEMES.light;
    const o = latencyOption(bars, { theme, slots: [3, 0] }) as {
      series: Array<{
        name: string;
        data: Array<{ value: number; itemStyle: { color: string; opacity: number } }>;
      }>;
      yAxis: { data: string[] };
    };
    expect(o.yAxis.data).toEqual(['m1', '<b>m2</b>']);
    expect(o.series.map((s) => s.name)).toEqual(['p50', 'p95']);
    expect(o.series[0]?.data.map((d) => d.value)).toEqual([800, 90]);
    expect(o.series[1]?.data.map((d) => d.value)).toEqual([2_400, 130_000]);
    expect(o.series[0]?.data[0]?.itemStyle).toEqual({
      color: theme.series[3],
      opacity: P50_OPACITY,
    });
    expect(o.series[1]?.data[1]?.itemStyle).toEqual({ color: theme.series[0], opacity: 1 });
  });

  it('escapes names in the tooltip', () => {
    const o = latencyOption(bars, { theme: THEMES.dark, slots: [0, 1] }) as {
      tooltip: { formatter: (p: unknown) => string };
    };
    const html = o.tooltip.formatter([{ dataIndex: 1 }]);
    expect(html).toContain('&lt;b&gt;m2&lt;/b&gt;');
    expect(html).toContain('≥ 120 s');
    expect(html).toContain('3 timed calls');
  });
});

describe('formatLatency', () => {
  it('reads as ms below a second, seconds above, "at least" past the last bucket', () => {
    expect(formatLatency(812.4)).toBe('812 ms');
    expect(formatLatency(2_450)).toBe('2.45 s');
    expect(formatLatency(15_000)).toBe('15.0 s');
    expect(formatLatency(120_000)).toBe('≥ 120 s');
  });
});
