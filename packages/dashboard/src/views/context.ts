import type { ChartTheme } from '../charts/palette.js';
import type { SeriesColors } from '../charts/series-colors.js';
import type { ExportScope } from '../lib/csv.js';
import type { AlertItem } from '../lib/rules.js';
import { type ResolvedRange, resolveRange } from '../lib/time-range.js';
import type { ViewState } from '../lib/url-state.js';
import type { ApiClient, WhoAmI } from '../lib/usage-api.js';

/** What every view gets from the shell. */
export interface AppContext {
  api: ApiClient;
  who: WhoAmI;
  state: ViewState;
  theme: ChartTheme;
  /** Palette slots per model and app name, kept for the session: one colour per name everywhere. */
  seriesColors: SeriesColors;
  /** The server's origin, for snippets. */
  origin: string;
  now(): number;
  /** Moves to another view or filter set (pushes a history entry). */
  navigate(next: ViewState): void;
  /** Alerts heard on the live stream since the page opened (newest first). */
  liveAlerts(): readonly AlertItem[];
}

export interface ViewInstance {
  /** Fetches and redraws in place (filters unchanged); resolves when every panel is drawn. */
  refresh(): Promise<void>;
  dispose(): void;
}

export type ViewFactory = (root: HTMLElement, ctx: AppContext) => ViewInstance;

export function rangeOf(ctx: AppContext): ResolvedRange {
  return resolveRange(ctx.state.range, ctx.now(), {
    interval: ctx.state.interval,
    hasTagFilter: ctx.state.filters.tag !== undefined,
  });
}

/** Runs a panel's load, showing its error in the panel instead of failing the view. */
export async function guard(
  panel: { setStatus(s: 'loading' | 'ready' | 'empty' | 'error', m?: string): void },
  load: () => Promise<void>,
): Promise<void> {
  try {
    await load();
  } catch (err) {
    panel.setStatus('error', `Could not load: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** What a CSV export of the view covers (its range and filters), for the file name. */
export function exportScope(ctx: AppContext): ExportScope {
  const range = rangeOf(ctx);
  return { fromMs: range.fromMs, toMs: range.toMs, filters: ctx.state.filters };
}

/** Palette slots of a chart's series (an "other" series is grey whatever its slot). */
export function slotsOf(
  ctx: AppContext,
  dimension: 'model' | 'app',
  series: readonly { name: string; other: boolean }[],
): number[] {
  const named = ctx.seriesColors.assign(
    dimension,
    series.filter((s) => !s.other).map((s) => s.name),
  );
  let next = 0;
  return series.map((s) => (s.other ? 0 : (named[next++] as number)));
}
