import type { ChartClick } from '../charts/echarts-setup.js';
import type { Filters, ViewState } from '../lib/url-state.js';
import type { AppContext } from './context.js';

type Dim = 'app' | 'model' | 'user';

/** The state with these filters set to one value each (a drill-down replaces, never widens). */
export function withFilters(
  state: ViewState,
  set: Partial<Record<Dim, string>>,
  view: Partial<Pick<ViewState, 'view' | 'userId'>> = {},
): ViewState {
  const filters: Filters = { ...state.filters };
  for (const [dim, value] of Object.entries(set) as [Dim, string][]) filters[dim] = [value];
  return { ...state, ...view, filters };
}

/**
 * A click on a stacked series over time (a model or an app): the same view filtered to it. The
 * "other" series adds up many names and has nothing to drill into.
 */
export function drillSeries(
  ctx: AppContext,
  dim: 'model' | 'app',
  series: readonly { name: string; other: boolean }[],
): (click: ChartClick) => void {
  return (click) => {
    const s = series[click.seriesIndex];
    if (!s || s.other) return;
    ctx.navigate(withFilters(ctx.state, { [dim]: s.name }));
  };
}
