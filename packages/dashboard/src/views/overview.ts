import { partialNote, partialOf, timeSeriesOption } from '../charts/options.js';
import { type Metric, stackedOverTime, sumRows, type TimeSeries } from '../lib/aggregate.js';
import { formatDateTime } from '../lib/format.js';
import { h } from '../lib/html.js';
import type { StackBy } from '../lib/url-state.js';
import { renderKpis } from '../ui/kpis.js';
import { Panel, segmented } from '../ui/panel.js';
import { reconciliationPanel } from '../ui/reconciliation-panel.js';
import { alertsPanel, rulesPanel } from '../ui/rules-panels.js';
import { unpricedPanel } from '../ui/unpriced.js';
import { timeSeriesData } from './chart-data.js';
import { exportScope, guard, rangeOf, slotsOf, type ViewFactory } from './context.js';
import { drillSeries } from './drill-down.js';
import { activeUsers, periodTotals, stackedData } from './queries.js';

/** Overview: KPIs with change, tokens and cost over time stacked by model or app, alerts. */
export const overviewView: ViewFactory = (root, ctx) => {
  const stack = ctx.state.stack;
  const stackControl = segmented<StackBy>(
    'Stack by',
    [
      { value: 'model', label: 'By model' },
      { value: 'app', label: 'By app' },
    ],
    stack,
    (value) => ctx.navigate({ ...ctx.state, stack: value }),
  );
  const kpiEl = h('div', { class: 'kpis span-all', attrs: { 'aria-label': 'Key figures' } });
  const tokens = new Panel({
    id: 'tokens-over-time',
    title: 'Tokens over time',
    subtitle: `Stacked by ${stack}`,
    chartHeight: 'var(--chart-h)',
    controls: [stackControl],
    class: 'span-all',
  });
  const cost = new Panel({
    id: 'cost-over-time',
    title: 'Cost over time',
    subtitle: `USD, stacked by ${stack}; unpriced usage is not included`,
    chartHeight: 'var(--chart-h)',
    class: 'span-all',
  });
  const unpriced = unpricedPanel(ctx);
  const alerts = alertsPanel(ctx, { limit: 8 });
  const rules = rulesPanel(ctx, { limit: 8 });
  const reconciliation = reconciliationPanel(ctx);
  root.append(kpiEl, unpriced.panel.el, tokens.el, cost.el, alerts.panel.el, rules.panel.el);
  root.append(reconciliation.panel.el);

  const tokensAndCost = {
    setStatus(state: 'loading' | 'ready' | 'empty' | 'error', message?: string) {
      tokens.setStatus(state, message);
      cost.setStatus(state, message);
    },
  };

  const refresh = async () => {
    const r = rangeOf(ctx);
    const filters = ctx.state.filters;
    // The server answers in arrival order: ask first for what draws the charts, then the rest.
    const dataP = stackedData(ctx, r, stack, filters);
    const prevP = periodTotals(ctx, r.prevFromMs, r.prevToMs, r.interval, filters);
    prevP.catch(() => {}); // reported through the charts' guard
    const side = Promise.all([
      alerts.refresh(),
      rules.refresh(),
      guard(reconciliation.panel, reconciliation.refresh),
    ]);
    const charts = guard(tokensAndCost, async () => {
      const data = await dataP;
      for (const [panel, metric] of [
        [tokens, 'tokens'],
        [cost, 'cost'],
      ] as [Panel, Metric][]) {
        const ts: TimeSeries = stackedOverTime({
          buckets: r.buckets,
          keys: data.keys,
          keyOf: (row) => row[stack],
          keyedRows: data.keyedRows,
          totalRows: data.totalRows,
          metric,
          otherName: stack === 'model' ? 'Other models' : 'Other apps',
        });
        const slots = slotsOf(ctx, stack, ts.series);
        panel.setNote(partialNote(r, ctx.now()));
        panel.chart?.onClick(drillSeries(ctx, stack, ts.series));
        panel.chart?.set(
          timeSeriesOption(ts, {
            interval: r.interval,
            metric,
            theme: ctx.theme,
            slots,
            ...partialOf(r, ctx.now()),
          }),
        );
        panel.setData({
          ...timeSeriesData(ts, metric, ['overview', metric, `by-${stack}`]),
          scope: exportScope(ctx),
        });
        const empty = data.totalRows.length === 0;
        panel.setStatus(empty ? 'empty' : 'ready', empty ? 'No usage in this range.' : '');
      }
      const current = sumRows(data.totalRows);
      const previous = await prevP;
      renderKpis(kpiEl, { current, previous, activeUsers: 'loading' });
      // The unpriced panel's query only runs when the totals say there is usage missing from the cost.
      const unpricedDone = guard(unpriced.panel, () =>
        unpriced.refreshKnowing(r.interval === 'minute' ? undefined : current),
      );
      // Distinct users come last, so they never delay the charts.
      const au = await activeUsers(ctx, r, filters);
      const note = r.interval === 'minute' ? `since ${formatDateTime(r.aggFromMs)}` : undefined;
      renderKpis(kpiEl, { current, previous, activeUsers: { ...au, ...(note ? { note } : {}) } });
      kpiEl.dataset.status = 'ready';
      await unpricedDone;
    });
    await Promise.all([charts, side]);
  };

  return {
    refresh,
    dispose() {
      for (const p of [tokens, cost, unpriced.panel, alerts.panel, rules.panel]) p.dispose();
      reconciliation.panel.dispose();
    },
  };
};
