import type { EChartsOption } from 'echarts';
import type { Matrix, Metric, Slice, TimeSeries } from '../lib/aggregate.js';
import {
  type BucketInterval,
  formatBucket,
  formatBucketLong,
  formatInteger,
  formatPercent,
  formatTokens,
  formatUsd,
} from '../lib/format.js';
import { type Heatmap, heatmapScaleMax } from '../lib/heatmap.js';
import { escapeHtml } from '../lib/html.js';
import { partialBucketIndex, type ResolvedRange } from '../lib/time-range.js';
import { type ChartTheme, seriesColor } from './palette.js';

/**
 * ECharts options, built from the panel data only (pure; unit-tested). Every tooltip is a custom
 * formatter that escapes names: user, app and model ids come from API callers.
 */

export function formatMetric(v: number, metric: Metric, exact = false): string {
  if (metric === 'cost') return formatUsd(v);
  return exact ? formatInteger(v) : formatTokens(v);
}

function base(theme: ChartTheme): EChartsOption {
  return {
    backgroundColor: 'transparent',
    textStyle: { color: theme.text, fontFamily: 'inherit', fontSize: theme.fontSize },
    animationDuration: 250,
    animationDurationUpdate: 250,
    aria: { enabled: true },
    tooltip: {
      confine: true,
      backgroundColor: theme.tooltipBg,
      borderColor: theme.tooltipBorder,
      textStyle: { color: theme.tooltipText, fontSize: theme.fontSize },
      extraCssText: 'max-width:420px;white-space:normal;overflow-wrap:anywhere;',
    },
  };
}

function swatch(color: string): string {
  return `<span class="tt-swatch" style="background:${escapeHtml(color)}"></span>`;
}

type LegendOption = Exclude<EChartsOption['legend'], unknown[] | undefined>;

/** A horizontal bar chart's axis of names, top to bottom, long names cut to 12 characters' width. */
export function nameAxis(theme: ChartTheme, names: string[]) {
  return {
    type: 'category' as const,
    inverse: true,
    data: names,
    axisLine: { lineStyle: { color: theme.axisLine } },
    axisLabel: {
      color: theme.subtleText,
      fontSize: theme.fontSize,
      width: theme.fontSize * 12,
      overflow: 'truncate' as const,
    },
  };
}

function legend(theme: ChartTheme, names: string[]): LegendOption {
  return {
    type: 'scroll',
    top: 0,
    data: names,
    textStyle: {
      color: theme.subtleText,
      fontSize: theme.fontSize,
      width: theme.fontSize * 15,
      overflow: 'truncate',
    },
    pageTextStyle: { color: theme.subtleText, fontSize: theme.fontSize },
    pageIconColor: theme.text,
    pageIconInactiveColor: theme.axisLine,
    // Names in the legend's own tooltip are escaped by our formatter below.
    tooltip: { show: true, formatter: (p: unknown) => escapeHtml((p as { name: string }).name) },
  };
}

interface AxisParam {
  seriesName: string;
  seriesIndex: number;
  dataIndex: number;
  value: unknown;
  color: unknown;
  name: string;
}

/** Opacity of the bars of the bucket still filling: visibly not a finished bucket. */
export const PARTIAL_OPACITY = 0.45;

/**
 * A series' values, the bucket still filling drawn faded: a half-done hour next to whole ones
 * otherwise reads as a drop in usage. The value stays the API's.
 */
function withPartial(
  data: readonly number[],
  index: number | undefined,
): (number | { value: number; itemStyle: { opacity: number } })[] {
  return data.map((value, i) =>
    i === index ? { value, itemStyle: { opacity: PARTIAL_OPACITY } } : value,
  );
}

/** Stacked bars over time, one series per key (+ "other"). x categories are ISO bucket starts. */
export function timeSeriesOption(
  ts: TimeSeries,
  opts: {
    interval: BucketInterval;
    metric: Metric;
    theme: ChartTheme;
    timeZone?: string;
    /** Palette slot of each series (`SeriesColors`): one colour per name across charts. */
    slots?: readonly number[];
    /** Index of the bucket still filling (the current one): drawn faded, "so far" in its tooltip. */
    partialIndex?: number;
  },
): EChartsOption {
  const { theme, metric, interval } = opts;
  const colors = ts.series.map((s, i) => seriesColor(theme, opts.slots?.[i] ?? i, s.other));
  return {
    ...base(theme),
    color: colors,
    legend: legend(
      theme,
      ts.series.map((s) => s.name),
    ),
    grid: {
      left: 8,
      right: 12,
      top: theme.fontSize * 3,
      bottom: 4,
    },
    tooltip: {
      ...(base(theme).tooltip as object),
      trigger: 'axis',
      axisPointer: { type: 'shadow' },
      formatter: (raw: unknown) => {
        const params = (Array.isArray(raw) ? raw : [raw]) as AxisParam[];
        const first = params[0];
        if (!first) return '';
        const bucket = Date.parse(ts.categories[first.dataIndex] ?? '');
        let total = 0;
        const lines = params
          .filter((p) => Number(p.value) !== 0)
          .sort((a, b) => Number(b.value) - Number(a.value))
          .map((p) => {
            total += Number(p.value);
            return `<div class="tt-row">${swatch(colors[p.seriesIndex] ?? theme.other)}<span class="tt-name">${escapeHtml(p.seriesName)}</span><b>${escapeHtml(formatMetric(Number(p.value), metric, true))}</b></div>`;
          });
        const head = formatBucketLong(bucket, interval, opts.timeZone);
        const inProgress = first.dataIndex === opts.partialIndex ? ' (in progress, so far)' : '';
        return `<div class="tt-head">${escapeHtml(head + inProgress)}</div>${lines.join('')}<div class="tt-total">Total <b>${escapeHtml(formatMetric(total, metric, true))}</b></div>`;
      },
    },
    xAxis: {
      type: 'category',
      data: ts.categories,
      axisLine: { lineStyle: { color: theme.axisLine } },
      axisLabel: {
        color: theme.subtleText,
        fontSize: theme.fontSize,
        hideOverlap: true,
        formatter: (value: string) => formatBucket(Date.parse(value), interval, opts.timeZone),
      },
      axisTick: { alignWithLabel: true },
    },
    yAxis: {
      type: 'value',
      splitLine: { lineStyle: { color: theme.splitLine } },
      axisLabel: {
        color: theme.subtleText,
        fontSize: theme.fontSize,
        formatter: (v: number) => formatMetric(v, metric),
      },
    },
    series: ts.series.map((s) => ({
      type: 'bar',
      name: s.name,
      stack: 'total',
      data: withPartial(s.data, opts.partialIndex),
      barMaxWidth: 48,
      emphasis: { focus: 'series' },
      itemStyle: {
        borderColor: theme.segmentBorder,
        borderWidth: ts.categories.length > 120 ? 0 : 0.5,
      },
      large: ts.categories.length > 400,
    })),
  };
}

/** Horizontal stacked bars: one bar per application, stacked by model (the seed's first chart). */
export function appModelOption(
  m: Matrix,
  opts: { metric: Metric; theme: ChartTheme; slots?: readonly number[] },
): EChartsOption {
  const { theme, metric } = opts;
  const colors = m.cols.map((_c, i) =>
    seriesColor(theme, opts.slots?.[i] ?? i, m.otherCol && i === m.cols.length - 1),
  );
  return {
    ...base(theme),
    color: colors,
    legend: legend(theme, m.cols),
    grid: { left: 8, right: 16, top: theme.fontSize * 3, bottom: 4 },
    tooltip: {
      ...(base(theme).tooltip as object),
      trigger: 'axis',
      axisPointer: { type: 'shadow' },
      formatter: (raw: unknown) => {
        const params = (Array.isArray(raw) ? raw : [raw]) as AxisParam[];
        const first = params[0];
        if (!first) return '';
        let total = 0;
        const lines = params
          .filter((p) => Number(p.value) !== 0)
          .sort((a, b) => Number(b.value) - Number(a.value))
          .map((p) => {
            total += Number(p.value);
            return `<div class="tt-row">${swatch(colors[p.seriesIndex] ?? theme.other)}<span class="tt-name">${escapeHtml(p.seriesName)}</span><b>${escapeHtml(formatMetric(Number(p.value), metric, true))}</b></div>`;
          });
        return `<div class="tt-head">${escapeHtml(m.rows[first.dataIndex] ?? '')}</div>${lines.join('')}<div class="tt-total">Total <b>${escapeHtml(formatMetric(total, metric, true))}</b></div>`;
      },
    },
    yAxis: nameAxis(theme, m.rows),
    xAxis: {
      type: 'value',
      splitLine: { lineStyle: { color: theme.splitLine } },
      axisLabel: {
        color: theme.subtleText,
        fontSize: theme.fontSize,
        formatter: (v: number) => formatMetric(v, metric),
      },
    },
    series: m.cols.map((c, ci) => ({
      type: 'bar',
      name: c,
      stack: 'total',
      data: m.values[ci] ?? [],
      barMaxWidth: 28,
      emphasis: { focus: 'series' },
      itemStyle: { borderColor: theme.segmentBorder, borderWidth: 0.5 },
    })),
  };
}

/** Model share (the seed's pie). */
/** Below this container width the pie's legend goes under the donut (a phone). */
export const NARROW_CHART_PX = 560;

export function pieOption(
  slices: Slice[],
  opts: { metric: Metric; theme: ChartTheme; width?: number; slots?: readonly number[] },
): EChartsOption {
  const { theme, metric } = opts;
  const narrow = (opts.width ?? Number.POSITIVE_INFINITY) < NARROW_CHART_PX;
  const total = slices.reduce((a, s) => a + s.value, 0);
  const colors = slices.map((s, i) => seriesColor(theme, opts.slots?.[i] ?? i, s.other));
  return {
    ...base(theme),
    color: colors,
    legend: {
      ...legend(
        theme,
        slices.map((s) => s.name),
      ),
      // On a phone the legend runs in rows under the donut, never over it.
      ...(narrow
        ? { orient: 'horizontal', top: 'auto', bottom: 0, left: 'center' }
        : { orient: 'vertical', right: 0, top: 'middle' }),
    },
    tooltip: {
      ...(base(theme).tooltip as object),
      trigger: 'item',
      formatter: (raw: unknown) => {
        const p = raw as { name: string; value: number; dataIndex: number };
        return `<div class="tt-row">${swatch(colors[p.dataIndex] ?? theme.other)}<span class="tt-name">${escapeHtml(p.name)}</span></div><div class="tt-total"><b>${escapeHtml(formatMetric(p.value, metric, true))}</b> · ${escapeHtml(formatPercent(p.value, total))}</div>`;
      },
    },
    series: [
      {
        type: 'pie',
        name: metric === 'cost' ? 'Cost' : 'Tokens',
        radius: narrow ? ['30%', '58%'] : ['38%', '70%'],
        center: narrow ? ['50%', '40%'] : ['35%', '50%'],
        avoidLabelOverlap: true,
        itemStyle: { borderColor: theme.segmentBorder, borderWidth: 1 },
        label: {
          color: theme.text,
          fontSize: theme.fontSize,
          formatter: (p: { percent?: number }) => `${(p.percent ?? 0).toFixed(0)}%`,
        },
        data: slices.map((s) => ({ name: s.name, value: s.value })),
      },
    ],
  };
}

/** Application × user heat map (the seed's third chart), top users + "other users". */
export function heatmapOption(
  hm: Heatmap,
  opts: { metric: Metric; theme: ChartTheme },
): EChartsOption {
  const { theme, metric } = opts;
  // The colours scale over the named users' and apps' cells; the "other"s clamp to the top.
  const max = heatmapScaleMax(hm);
  const users = nameAxis(theme, hm.users);
  return {
    ...base(theme),
    grid: { left: 8, right: theme.fontSize * 6, top: 8, bottom: 8 },
    tooltip: {
      ...(base(theme).tooltip as object),
      trigger: 'item',
      formatter: (raw: unknown) => {
        const p = raw as { value: [number, number, number] };
        const [x, y, v] = p.value;
        return `<div class="tt-head">${escapeHtml(hm.users[y] ?? '')}</div><div class="tt-row"><span class="tt-name">${escapeHtml(hm.apps[x] ?? '')}</span><b>${escapeHtml(formatMetric(v, metric, true))}</b></div>`;
      },
    },
    xAxis: {
      type: 'category',
      data: hm.apps,
      splitArea: { show: false },
      axisLine: { lineStyle: { color: theme.axisLine } },
      axisLabel: {
        color: theme.subtleText,
        fontSize: theme.fontSize,
        rotate: 30,
        width: theme.fontSize * 9,
        overflow: 'truncate',
        interval: 0,
      },
    },
    // Every user's name, not every other one as ECharts thins a crowded axis.
    yAxis: { ...users, axisLabel: { ...users.axisLabel, interval: 0 } },
    visualMap: {
      type: 'continuous',
      min: 0,
      max,
      calculable: false,
      orient: 'vertical',
      right: 0,
      top: 'middle',
      itemHeight: 140,
      textStyle: { color: theme.subtleText, fontSize: theme.fontSize },
      // The legend's ends, in the panel's unit: the top is "≥" since the "other"s clamp there.
      text: [`≥ ${formatMetric(max, metric)}`, formatMetric(0, metric)],
      formatter: (v: unknown) => formatMetric(Number(v), metric),
      inRange: { color: [...theme.heat] },
      outOfRange: { color: theme.heat[theme.heat.length - 1] as string },
    },
    series: [
      {
        type: 'heatmap',
        name: metric === 'cost' ? 'Cost' : 'Tokens',
        data: hm.cells,
        itemStyle: { borderColor: theme.segmentBorder, borderWidth: 1 },
        emphasis: { itemStyle: { borderColor: theme.text, borderWidth: 1 } },
      },
    ],
  };
}

/** `partialIndex` for `timeSeriesOption`: the bucket of the range still filling, if any. */
export function partialOf(range: ResolvedRange, nowMs: number): { partialIndex?: number } {
  const index = partialBucketIndex(range, nowMs);
  return index === undefined ? {} : { partialIndex: index };
}

/** The note under a chart whose last bucket is still filling (`partialOf`). */
export function partialNote(range: ResolvedRange, nowMs: number): string | undefined {
  return partialBucketIndex(range, nowMs) === undefined
    ? undefined
    : `The faded bar is the current ${range.interval}, still filling: its figures are so far.`;
}
