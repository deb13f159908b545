import { formatLatency, type LatencyBar, latencyOption } from '../charts/latency-option.js';
import type { LatencyRow } from '../lib/usage-api.js';
import { Panel, type PanelData } from '../ui/panel.js';
import { type AppContext, exportScope, guard, rangeOf, slotsOf } from './context.js';
import { withFilters } from './drill-down.js';

/** Bar pairs per chart: the names with the most timed calls. */
export const MAX_LATENCY_BARS = 10;

const EMPTY = 'No call in this range reported a latency.';
const NO_TAGS = 'Latency is not kept per tag: clear the tag filter to see it.';

function latencyData(bars: readonly LatencyBar[], label: string, dim: string): PanelData {
  return {
    columns: [
      { key: 'name', label },
      { key: 'p50Ms', label: 'p50Ms' },
      { key: 'p95Ms', label: 'p95Ms' },
      { key: 'timedRequests', label: 'timedRequests' },
    ],
    rows: bars.map((b) => ({ ...b })),
    fileParts: ['latency', dim],
  };
}

/**
 * Issue 13's latency panel: p50 and p95 per model and per app over the range and filters, from
 * the latency histograms of `GET /v1/latency`. One bar pair per name in that name's colour; a bar
 * (click, or Enter on the focused chart) opens the overview filtered to it.
 */
export function latencyPanels(ctx: AppContext): {
  panels: Panel[];
  refresh(): Promise<void>;
  dispose(): void;
} {
  const subtitle = `p95 solid, p50 faded; top ${MAX_LATENCY_BARS} by timed calls; interpolated in 20 log-spaced buckets`;
  const byModel = new Panel({
    id: 'latency-model',
    title: 'Latency by model',
    subtitle,
    chartHeight: 'var(--chart-h)',
  });
  const byApp = new Panel({
    id: 'latency-app',
    title: 'Latency by application',
    subtitle,
    chartHeight: 'var(--chart-h)',
  });

  const draw = (panel: Panel, dim: 'model' | 'app', rows: readonly LatencyRow[]) => {
    const bars: LatencyBar[] = rows.slice(0, MAX_LATENCY_BARS).map((r) => ({
      name: r[dim] ?? '',
      p50Ms: r.p50Ms,
      p95Ms: r.p95Ms,
      timedRequests: r.timedRequests,
    }));
    const slots = slotsOf(
      ctx,
      dim,
      bars.map((b) => ({ name: b.name, other: false })),
    );
    panel.chart?.set(latencyOption(bars, { theme: ctx.theme, slots }));
    panel.chart?.onClick((click) => {
      const bar = bars[click.dataIndex];
      if (bar)
        ctx.navigate(
          withFilters(ctx.state, { [dim]: bar.name }, { view: 'overview', userId: undefined }),
        );
    });
    panel.setData({
      ...latencyData(bars, dim === 'model' ? 'model' : 'app', dim),
      scope: exportScope(ctx),
    });
    const slowest = bars.reduce((m, b) => Math.max(m, b.p95Ms), 0);
    panel.setStatus(
      bars.length === 0 ? 'empty' : 'ready',
      bars.length === 0 ? EMPTY : `Slowest p95 ${formatLatency(slowest)}`,
    );
  };

  const refresh = async () => {
    if (ctx.state.filters.tag !== undefined) {
      for (const panel of [byModel, byApp]) {
        panel.chart?.set(latencyOption([], { theme: ctx.theme, slots: [] }));
        panel.setData(undefined);
        panel.setStatus('empty', NO_TAGS);
      }
      return;
    }
    const r = rangeOf(ctx);
    const range = { fromMs: r.aggFromMs, toMs: r.toMs, filters: ctx.state.filters };
    await Promise.all(
      (['model', 'app'] as const).map((dim) => {
        const panel = dim === 'model' ? byModel : byApp;
        return guard(panel, async () => {
          const res = await ctx.api.latency({ ...range, groupBy: [dim], limit: MAX_LATENCY_BARS });
          draw(panel, dim, res.rows);
        });
      }),
    );
  };

  return {
    panels: [byModel, byApp],
    refresh,
    dispose() {
      byModel.dispose();
      byApp.dispose();
    },
  };
}
