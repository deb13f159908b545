import type { EChartsOption } from 'echarts';
import { formatInteger } from '../lib/format.js';
import { escapeHtml } from '../lib/html.js';
import { nameAxis } from './options.js';
import { type ChartTheme, seriesColor } from './palette.js';

/** One bar pair of the latency chart: a model or an app and its percentiles. */
export interface LatencyBar {
  name: string;
  p50Ms: number;
  p95Ms: number;
  timedRequests: number;
}

/** Opacity of the p50 bar: the same colour as its p95 bar, visibly the lesser of the pair. */
export const P50_OPACITY = 0.5;

/** A latency in ms as people read it: "850 ms", "2.4 s", "≥ 120 s" past the last bucket. */
export function formatLatency(ms: number): string {
  if (ms >= 120_000) return '≥ 120 s';
  if (ms < 1000) return `${formatInteger(Math.round(ms))} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/**
 * p50 and p95 per model or app: horizontal bars, one pair per name in that name's colour (the
 * p50 bar faded), so a model has the same colour here as in every other chart. Pure (unit-tested).
 */
export function latencyOption(
  bars: readonly LatencyBar[],
  opts: { theme: ChartTheme; slots: readonly number[] },
): EChartsOption {
  const { theme } = opts;
  const colors: string[] = bars.map((_b, i) => seriesColor(theme, opts.slots[i] ?? i, false));
  const series = (name: 'p50' | 'p95', opacity: number) => ({
    type: 'bar' as const,
    name,
    barMaxWidth: 14,
    barGap: '10%',
    data: bars.map((b, i) => ({
      value: name === 'p50' ? b.p50Ms : b.p95Ms,
      itemStyle: { color: colors[i] as string, opacity },
    })),
    emphasis: { focus: 'self' as const },
  });
  return {
    backgroundColor: 'transparent',
    textStyle: { color: theme.text, fontFamily: 'inherit', fontSize: theme.fontSize },
    animationDuration: 250,
    animationDurationUpdate: 250,
    aria: { enabled: true },
    grid: { left: 8, right: 16, top: 8, bottom: 4 },
    tooltip: {
      confine: true,
      trigger: 'axis',
      axisPointer: { type: 'shadow' },
      backgroundColor: theme.tooltipBg,
      borderColor: theme.tooltipBorder,
      textStyle: { color: theme.tooltipText, fontSize: theme.fontSize },
      extraCssText: 'max-width:420px;white-space:normal;overflow-wrap:anywhere;',
      formatter: (raw: unknown) => {
        const first = (Array.isArray(raw) ? raw[0] : raw) as { dataIndex: number } | undefined;
        const bar = first ? bars[first.dataIndex] : undefined;
        if (!bar) return '';
        const swatch = `<span class="tt-swatch" style="background:${escapeHtml(colors[first?.dataIndex ?? 0] ?? '')}"></span>`;
        return `<div class="tt-head">${swatch}${escapeHtml(bar.name)}</div><div class="tt-row"><span class="tt-name">p50</span><b>${escapeHtml(formatLatency(bar.p50Ms))}</b></div><div class="tt-row"><span class="tt-name">p95</span><b>${escapeHtml(formatLatency(bar.p95Ms))}</b></div><div class="tt-total">${escapeHtml(formatInteger(bar.timedRequests))} timed calls</div>`;
      },
    },
    yAxis: nameAxis(
      theme,
      bars.map((b) => b.name),
    ),
    xAxis: {
      type: 'value',
      splitLine: { lineStyle: { color: theme.splitLine } },
      axisLabel: {
        color: theme.subtleText,
        fontSize: theme.fontSize,
        formatter: (v: number) => formatLatency(v),
        hideOverlap: true,
      },
    },
    series: [series('p50', P50_OPACITY), series('p95', 1)],
  };
}
