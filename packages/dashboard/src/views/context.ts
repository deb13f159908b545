import type { ChartTheme } from '../charts/palette.js';
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
