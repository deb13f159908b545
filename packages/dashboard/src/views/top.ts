import { type Metric, seriesByKey, sumRows } from '../lib/aggregate.js';
import { formatDateTime } from '../lib/format.js';
import { h } from '../lib/html.js';
import { formatLocation, type SortField, TOP_N_CHOICES, type ViewState } from '../lib/url-state.js';
import { Panel, segmented } from '../ui/panel.js';
import { renderTopTable } from '../ui/top-table.js';
import { type AppContext, exportScope, guard, rangeOf, type ViewFactory } from './context.js';

type Dim = 'user' | 'app' | 'model';

const LABELS: Record<Dim, { title: string; col: string }> = {
  user: { title: 'Top users', col: 'User' },
  app: { title: 'Top applications', col: 'Application' },
  model: { title: 'Top models', col: 'Model' },
};

/** Where a click on a name leads: a user's page, or the overview filtered to the app / model. */
export function linkFor(ctx: AppContext, dim: Dim, name: string): ViewState {
  if (dim === 'user') return { ...ctx.state, view: 'user', userId: name };
  return {
    ...ctx.state,
    view: 'overview',
    userId: undefined,
    filters: { ...ctx.state.filters, [dim]: [name] },
  };
}

/** Top users, applications and models with tokens, share, cost, requests and a sparkline. */
export const topView: ViewFactory = (root, ctx) => {
  const sortControl = segmented<SortField>(
    'Rank by',
    [
      { value: 'totalTokens', label: 'Tokens' },
      { value: 'costUsd', label: 'Cost' },
      { value: 'requests', label: 'Requests' },
    ],
    ctx.state.sort,
    (value) => ctx.navigate({ ...ctx.state, sort: value }),
  );
  const nControl = segmented<string>(
    'Rows',
    TOP_N_CHOICES.map((n) => ({ value: String(n), label: String(n) })),
    String(ctx.state.n),
    (value) => ctx.navigate({ ...ctx.state, n: Number(value) }),
  );
  const toolbar = h(
    'div',
    { class: 'toolbar span-all' },
    h('span', { class: 'muted' }, 'Rank by'),
    sortControl,
    h('span', { class: 'muted' }, 'Rows'),
    nControl,
  );
  const panels = (['user', 'app', 'model'] as Dim[]).map((dim) => ({
    dim,
    panel: new Panel({ id: `top-${dim}s`, title: LABELS[dim].title, class: 'span-all' }),
  }));
  root.append(toolbar, ...panels.map((p) => p.panel.el));

  const refresh = async () => {
    const r = rangeOf(ctx);
    const filters = ctx.state.filters;
    const sort = ctx.state.sort;
    const sparkMetric: Metric = sort === 'costUsd' ? 'cost' : 'tokens';
    const totalP = ctx.api.usage({ fromMs: r.aggFromMs, toMs: r.toMs, filters });
    totalP.catch(() => {}); // each panel's guard reports it (a panel may fail before awaiting it)
    await Promise.all(
      panels.map(({ dim, panel }) =>
        guard(panel, async () => {
          const top = await ctx.api.usage({
            fromMs: r.aggFromMs,
            toMs: r.toMs,
            groupBy: [dim],
            filters,
            orderBy: sort,
            order: 'desc',
            limit: ctx.state.n,
          });
          const names = top.rows.map((x) => x[dim]).filter((n): n is string => n !== undefined);
          const spark =
            names.length === 0
              ? { rows: [] }
              : await ctx.api.usage({
                  fromMs: r.fromMs,
                  toMs: r.toMs,
                  interval: r.interval,
                  groupBy: [dim],
                  filters,
                  only: { [dim]: names },
                });
          const series = seriesByKey(spark.rows, (x) => x[dim], r.buckets, sparkMetric);
          const total = sumRows((await totalP).rows);
          renderTopTable(panel.body, {
            label: LABELS[dim].col,
            totalTokens: total.totalTokens,
            sparkLabel: `${sparkMetric === 'cost' ? 'Cost' : 'Tokens'} per ${r.interval}`,
            rows: top.rows.map((x) => ({
              name: x[dim] ?? '',
              totalTokens: x.totalTokens,
              costUsd: x.costUsd,
              requests: x.requests,
              unpricedTokens: x.unpricedTokens,
              noUsageRequests: x.noUsageRequests ?? 0,
              spark: series.get(x[dim] ?? '') ?? r.buckets.map(() => 0),
            })),
            link: (name) => {
              const next = linkFor(ctx, dim, name);
              return {
                href: formatLocation(next),
                onClick: (ev) => {
                  if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey)
                    return;
                  ev.preventDefault();
                  ctx.navigate(next);
                },
              };
            },
          });
          panel.setNote(
            r.interval === 'minute'
              ? `Totals since ${formatDateTime(r.aggFromMs)} (whole hours).`
              : undefined,
          );
          panel.setData({
            columns: [
              { key: 'rank', label: 'rank' },
              { key: 'name', label: dim },
              { key: 'totalTokens', label: 'totalTokens' },
              { key: 'costUsd', label: 'costUsd' },
              { key: 'requests', label: 'requests' },
              { key: 'unpricedTokens', label: 'unpricedTokens' },
            ],
            rows: top.rows.map((x, i) => ({
              rank: i + 1,
              name: x[dim] ?? '',
              totalTokens: x.totalTokens,
              costUsd: x.costUsd,
              requests: x.requests,
              unpricedTokens: x.unpricedTokens,
            })),
            fileParts: ['top', `${dim}s`],
            scope: exportScope(ctx),
          });
          panel.setStatus(top.rows.length === 0 ? 'empty' : 'ready');
        }),
      ),
    );
  };

  return {
    refresh,
    dispose() {
      for (const p of panels) p.panel.dispose();
    },
  };
};
