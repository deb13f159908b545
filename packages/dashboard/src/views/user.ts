import { partialNote, partialOf, timeSeriesOption } from '../charts/options.js';
import { type Metric, stackedOverTime, sumRows } from '../lib/aggregate.js';
import { formatCost, formatInteger } from '../lib/format.js';
import { clear, h } from '../lib/html.js';
import { type Filters, formatLocation } from '../lib/url-state.js';
import { idCell, scrollBox } from '../ui/id-text.js';
import { renderKpis } from '../ui/kpis.js';
import { Panel, segmented } from '../ui/panel.js';
import { alertsPanel, rulesPanel } from '../ui/rules-panels.js';
import { timeSeriesData } from './chart-data.js';
import { exportScope, guard, rangeOf, slotsOf, type ViewFactory } from './context.js';
import { drillSeries } from './drill-down.js';
import { periodTotals, stackedData } from './queries.js';

/** One user: KPIs, usage by model over time, apps × models, their rules and alerts. */
export const userView: ViewFactory = (root, ctx) => {
  const userId = ctx.state.userId ?? '';
  // The page is about this user: other user filters do not apply here.
  const filters: Filters = { ...ctx.state.filters, user: [userId] };
  const metric: Metric = ctx.state.share;
  const everywhere = { ...ctx.state, view: 'overview' as const, userId: undefined, filters };
  const head = h(
    'div',
    { class: 'page-head span-all' },
    h('p', { class: 'muted' }, 'User'),
    h('h1', { class: 'user-id', dataset: { user: userId }, attrs: { title: userId } }, userId),
    h(
      'a',
      {
        attrs: { href: formatLocation(everywhere) },
        on: {
          click: (ev) => {
            ev.preventDefault();
            ctx.navigate(everywhere);
          },
        },
      },
      'Filter every view by this user',
    ),
  );
  const kpiEl = h('div', { class: 'kpis span-all' });
  const metricControl = segmented(
    'Measure',
    [
      { value: 'tokens', label: 'Tokens' },
      { value: 'cost', label: 'Cost' },
    ],
    metric,
    (value) => ctx.navigate({ ...ctx.state, share: value as Metric }),
  );
  const overTime = new Panel({
    id: 'user-models-over-time',
    title: 'Usage by model over time',
    subtitle: metric === 'cost' ? 'Cost (USD)' : 'Tokens',
    chartHeight: 'var(--chart-h)',
    controls: [metricControl],
    class: 'span-all',
  });
  const byApp = new Panel({
    id: 'user-app-model',
    title: 'By application and model',
    class: 'span-all',
  });
  const rules = rulesPanel(ctx, { user: userId });
  const alerts = alertsPanel(ctx, { user: userId, limit: 20 });
  root.append(head, kpiEl, overTime.el, byApp.el, rules.panel.el, alerts.panel.el);

  const refresh = async () => {
    const r = rangeOf(ctx);
    const chart = guard(overTime, async () => {
      const [data, prev] = await Promise.all([
        stackedData(ctx, r, 'model', filters),
        periodTotals(ctx, r.prevFromMs, r.prevToMs, r.interval, filters),
      ]);
      const ts = stackedOverTime({
        buckets: r.buckets,
        keys: data.keys,
        keyOf: (row) => row.model,
        keyedRows: data.keyedRows,
        totalRows: data.totalRows,
        metric,
        otherName: 'Other models',
      });
      const slots = slotsOf(ctx, 'model', ts.series);
      overTime.setNote(partialNote(r, ctx.now()));
      overTime.chart?.onClick(drillSeries(ctx, 'model', ts.series));
      overTime.chart?.set(
        timeSeriesOption(ts, {
          interval: r.interval,
          metric,
          theme: ctx.theme,
          slots,
          ...partialOf(r, ctx.now()),
        }),
      );
      overTime.setData({
        ...timeSeriesData(ts, metric, ['user', userId, metric]),
        scope: exportScope(ctx),
      });
      overTime.setStatus(
        data.totalRows.length === 0 ? 'empty' : 'ready',
        data.totalRows.length === 0 ? 'No usage by this user in this range.' : '',
      );
      renderKpis(kpiEl, { current: sumRows(data.totalRows), previous: prev });
      kpiEl.dataset.status = 'ready';
    });
    const table = guard(byApp, async () => {
      const res = await ctx.api.usage({
        fromMs: r.aggFromMs,
        toMs: r.toMs,
        groupBy: ['app', 'model'],
        filters,
        orderBy: 'totalTokens',
        order: 'desc',
      });
      clear(byApp.body);
      byApp.setStatus(
        res.rows.length === 0 ? 'empty' : 'ready',
        res.rows.length === 0 ? 'No usage by this user in this range.' : '',
      );
      if (res.rows.length > 0) {
        byApp.body.appendChild(
          scrollBox(
            'Usage by app and model',
            h(
              'table',
              { class: 'data-table' },
              h(
                'thead',
                null,
                h(
                  'tr',
                  null,
                  ...['Application', 'Model', 'Tokens', 'Cost', 'Requests', 'Errors'].map((c, i) =>
                    h('th', { attrs: { scope: 'col' }, class: i >= 2 ? 'num' : '' }, c),
                  ),
                ),
              ),
              h(
                'tbody',
                null,
                ...res.rows.map((x) =>
                  h(
                    'tr',
                    null,
                    idCell(x.app ?? ''),
                    idCell(
                      x.model ?? '',
                      x.unpricedTokens > 0
                        ? h('span', { class: 'badge badge-warn' }, 'unpriced')
                        : null,
                    ),
                    h('td', { class: 'num' }, formatInteger(x.totalTokens)),
                    h('td', { class: 'num' }, formatCost(x.costUsd, x)),
                    h('td', { class: 'num' }, formatInteger(x.requests)),
                    h('td', { class: 'num' }, formatInteger(x.errors)),
                  ),
                ),
              ),
            ),
          ),
        );
      }
      byApp.setData({
        columns: [
          'app',
          'model',
          'totalTokens',
          'costUsd',
          'requests',
          'errors',
          'unpricedTokens',
        ].map((k) => ({ key: k, label: k })),
        rows: res.rows.map((x) => ({
          app: x.app,
          model: x.model,
          totalTokens: x.totalTokens,
          costUsd: x.costUsd,
          requests: x.requests,
          errors: x.errors,
          unpricedTokens: x.unpricedTokens,
        })),
        fileParts: ['user', userId, 'apps-models'],
        scope: exportScope(ctx),
      });
    });
    await Promise.all([chart, table, rules.refresh(), alerts.refresh()]);
  };

  return {
    refresh,
    dispose() {
      for (const p of [overTime, byApp, rules.panel, alerts.panel]) p.dispose();
    },
  };
};
