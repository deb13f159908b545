import { appModelOption, heatmapOption, pieOption } from '../charts/options.js';
import { type Metric, matrix, rollUpBy, sumRows, topWithOther } from '../lib/aggregate.js';
import { appUserHeatmap } from '../lib/heatmap.js';
import type { ShareMetric } from '../lib/url-state.js';
import { MAX_ROWS } from '../lib/usage-api.js';
import { Panel, segmented } from '../ui/panel.js';
import { unpricedPanel } from '../ui/unpriced.js';
import { heatmapData, matrixData, slicesData } from './chart-data.js';
import { exportScope, guard, rangeOf, slotsOf, type ViewFactory } from './context.js';
import { withFilters } from './drill-down.js';
import { latencyPanels } from './latency-panels.js';

export const MAX_APPS = 12;
export const MAX_MODELS = 8;
/** Heat map columns: the top apps, the rest in one "Other apps" column. */
export const MAX_HEAT_APPS = 15;
/** Top models as slices (one colour each), the rest in one grey slice. */
export const PIE_SLICES = 8;

/**
 * The seed's three QuickSight views: usage by application and model (stacked bars), model share
 * (pie) and application × user (heat map of the top users with an "other users" row).
 */
export const breakdownView: ViewFactory = (root, ctx) => {
  const metric: Metric = ctx.state.share;
  const metricControl = segmented<ShareMetric>(
    'Measure',
    [
      { value: 'tokens', label: 'Tokens' },
      { value: 'cost', label: 'Cost' },
    ],
    metric,
    (value) => ctx.navigate({ ...ctx.state, share: value }),
  );
  const what = metric === 'cost' ? 'cost (USD)' : 'tokens';
  const appModel = new Panel({
    id: 'app-model',
    title: 'Usage by application and model',
    subtitle: `${what}; top ${MAX_APPS} apps and ${MAX_MODELS} models, the rest as "other"`,
    chartHeight: 'var(--chart-h-tall)',
    controls: [metricControl],
    class: 'span-all',
  });
  const share = new Panel({
    id: 'model-share',
    title: 'Model share',
    subtitle: `Share of ${what}`,
    chartHeight: 'var(--chart-h)',
  });
  const heat = new Panel({
    id: 'app-user-heatmap',
    title: 'Application × user',
    subtitle: `${what}; top ${ctx.state.n} users and ${MAX_HEAT_APPS} apps, the rest in "Other users" and "Other apps"`,
    chartHeight: 'var(--chart-h-tall)',
  });
  const unpriced = unpricedPanel(ctx);
  const latency = latencyPanels(ctx);
  root.append(
    unpriced.panel.el,
    appModel.el,
    share.el,
    heat.el,
    ...latency.panels.map((p) => p.el),
  );

  /** Bars and slices open the overview filtered to what was clicked (usage over time). */
  const inOverview = (set: { app?: string; model?: string }) =>
    withFilters(ctx.state, set, { view: 'overview', userId: undefined });

  const refresh = async () => {
    const r = rangeOf(ctx);
    const filters = ctx.state.filters;
    const range = { fromMs: r.aggFromMs, toMs: r.toMs, filters };
    const orderBy = metric === 'cost' ? 'costUsd' : 'totalTokens';
    const nowNote =
      r.interval === 'minute' ? 'Whole hours: these totals start at the hour.' : undefined;

    // App × model rows feed the bar chart and (summed per app) the heat map's app totals.
    const appModelRows = ctx.api.usage({ ...range, groupBy: ['app', 'model'] });
    const barDone = guard(appModel, async () => {
      const res = await appModelRows;
      const m = matrix(
        res.rows,
        (x) => x.app ?? '',
        (x) => x.model ?? '',
        MAX_APPS,
        MAX_MODELS,
        metric,
        {
          otherRow: 'Other apps',
          otherCol: 'Other models',
        },
      );
      const modelSeries = m.cols.map((name, i) => ({
        name,
        other: m.otherCol && i === m.cols.length - 1,
      }));
      const slots = slotsOf(ctx, 'model', modelSeries);
      appModel.chart?.set(appModelOption(m, { metric, theme: ctx.theme, slots }));
      appModel.chart?.onClick((click) => {
        const app =
          m.otherRow && click.dataIndex === m.rows.length - 1 ? undefined : m.rows[click.dataIndex];
        const model = modelSeries[click.seriesIndex]?.other ? undefined : m.cols[click.seriesIndex];
        const pick = {
          ...(app === undefined ? {} : { app }),
          ...(model === undefined ? {} : { model }),
        };
        if (app !== undefined || model !== undefined) ctx.navigate(inOverview(pick));
      });
      appModel.setData({
        ...matrixData(m, 'app', 'model', metric, ['apps-by-model', metric]),
        scope: exportScope(ctx),
      });
      appModel.setNote(nowNote);
      appModel.setStatus(
        res.rows.length === 0 ? 'empty' : 'ready',
        res.rows.length === 0 ? 'No usage in this range.' : '',
      );
    });

    const pieDone = guard(share, async () => {
      const res = await ctx.api.usage({ ...range, groupBy: ['model'], orderBy });
      // Per-model rows carry what is missing from the cost: the warning's query runs only if any.
      const known = sumRows(res.rows);
      const unpricedDone = guard(unpriced.panel, () => unpriced.refreshKnowing(known));
      const slices = topWithOther(
        res.rows,
        (x) => x.model ?? '',
        PIE_SLICES,
        metric,
        'Other models',
      );
      const slots = slotsOf(ctx, 'model', slices);
      share.chart?.setForWidth((width) =>
        pieOption(slices, { metric, theme: ctx.theme, width, slots }),
      );
      share.chart?.onClick((click) => {
        const slice = slices[click.dataIndex];
        if (slice && !slice.other) ctx.navigate(inOverview({ model: slice.name }));
      });
      share.setData({
        ...slicesData(slices, 'model', metric, ['model-share', metric]),
        scope: exportScope(ctx),
      });
      share.setStatus(
        slices.length === 0 ? 'empty' : 'ready',
        slices.length === 0 ? 'No usage in this range.' : '',
      );
      await unpricedDone;
    });

    const heatDone = guard(heat, async () => {
      const [top, am] = await Promise.all([
        ctx.api.usage({ ...range, groupBy: ['user'], orderBy, order: 'desc', limit: ctx.state.n }),
        appModelRows,
      ]);
      const apps = {
        rows:
          am.rows.length < MAX_ROWS
            ? rollUpBy(am.rows, 'app')
            : (await ctx.api.usage({ ...range, groupBy: ['app'] })).rows,
      };
      const topUsers = top.rows.map((x) => x.user).filter((u): u is string => u !== undefined);
      const cells =
        topUsers.length === 0
          ? { rows: [] }
          : await ctx.api.usage({ ...range, groupBy: ['app', 'user'], only: { user: topUsers } });
      const hm = appUserHeatmap({
        topUsers,
        cellRows: cells.rows,
        appTotals: apps.rows,
        metric,
        otherName: 'Other users',
        maxApps: MAX_HEAT_APPS,
        otherAppsName: 'Other apps',
      });
      heat.chart?.set(heatmapOption(hm, { metric, theme: ctx.theme }));
      heat.chart?.onClick((click) => {
        const [x, y] = click.value as [number, number, number];
        const otherApp = hm.otherApps && x === hm.apps.length - 1;
        const otherUser = hm.otherUsers && y === hm.users.length - 1;
        const app = otherApp ? {} : { app: hm.apps[x] as string };
        // A user's cell opens their page (filtered to the app); "Other users" the app's overview.
        if (!otherUser) {
          const userId = hm.users[y] as string;
          ctx.navigate(withFilters(ctx.state, app, { view: 'user', userId }));
        } else if (!otherApp) ctx.navigate(inOverview(app));
      });
      heat.setData({ ...heatmapData(hm, metric, ['app-user', metric]), scope: exportScope(ctx) });
      heat.setStatus(
        hm.cells.length === 0 ? 'empty' : 'ready',
        hm.cells.length === 0 ? 'No usage in this range.' : '',
      );
    });

    await Promise.all([barDone, pieDone, heatDone, latency.refresh()]);
  };

  return {
    refresh,
    dispose() {
      for (const p of [appModel, share, heat, unpriced.panel]) p.dispose();
      latency.dispose();
    },
  };
};
