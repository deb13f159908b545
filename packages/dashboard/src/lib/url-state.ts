import {
  DEFAULT_PRESET,
  type IntervalChoice,
  isPreset,
  type PresetId,
  type RangeSpec,
} from './time-range.js';

/**
 * Everything a view shows is in its URL: the path names the view, the query string the range and
 * filters. `parseLocation(formatLocation(s))` gives `s` back, so a shared link reproduces the view.
 */

export type ViewId = 'overview' | 'breakdown' | 'top' | 'user' | 'alerts' | 'settings';

export interface Filters {
  app: string[];
  model: string[];
  user: string[];
  /** One tag filter (the API supports one). */
  tag: { key: string; value: string } | undefined;
}

export type StackBy = 'model' | 'app';
export type ShareMetric = 'tokens' | 'cost';
export type SortField = 'totalTokens' | 'costUsd' | 'requests';

export interface ViewState {
  view: ViewId;
  /** The user of the per-user page. */
  userId: string | undefined;
  range: RangeSpec;
  interval: IntervalChoice;
  filters: Filters;
  stack: StackBy;
  share: ShareMetric;
  /** Rows of top-N tables and users of the heatmap. */
  n: number;
  sort: SortField;
}

export const TOP_N_CHOICES = [10, 20, 50, 100] as const;

export function defaultState(): ViewState {
  return {
    view: 'overview',
    userId: undefined,
    range: { preset: DEFAULT_PRESET },
    interval: 'auto',
    filters: { app: [], model: [], user: [], tag: undefined },
    stack: 'model',
    share: 'tokens',
    n: 20,
    sort: 'totalTokens',
  };
}

const PATHS: Record<Exclude<ViewId, 'user'>, string> = {
  overview: '/',
  breakdown: '/breakdown',
  top: '/top',
  alerts: '/alerts',
  settings: '/settings',
};

const TAG_KEY = /^[A-Za-z0-9_.:-]{1,64}$/;

function parseTime(value: string | null): number | undefined {
  if (!value) return undefined;
  if (/^\d{1,16}$/.test(value)) return Number(value);
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

/** Reads a view state from a path and query string; anything invalid falls back to its default. */
export function parseLocation(pathname: string, search: string): ViewState {
  const state = defaultState();
  const path = pathname.replace(/\/+$/, '') || '/';
  const userMatch = /^\/users\/([^/]+)$/.exec(path);
  if (userMatch) {
    state.view = 'user';
    try {
      state.userId = decodeURIComponent(userMatch[1] as string);
    } catch {
      state.view = 'overview';
    }
  } else {
    for (const [view, p] of Object.entries(PATHS)) {
      if (p === path) state.view = view as ViewId;
    }
  }

  const q = new URLSearchParams(search);
  const range = q.get('range');
  const from = parseTime(q.get('from'));
  const to = parseTime(q.get('to'));
  if (from !== undefined && to !== undefined && from < to) state.range = { fromMs: from, toMs: to };
  else if (range && isPreset(range)) state.range = { preset: range };

  const interval = q.get('interval');
  if (interval === 'minute' || interval === 'hour' || interval === 'day') state.interval = interval;

  for (const dim of ['app', 'model', 'user'] as const) {
    state.filters[dim] = [...new Set(q.getAll(dim).filter((v) => v.length > 0))].slice(0, 100);
  }
  const tag = q.get('tag');
  if (tag) {
    const eq = tag.indexOf('=');
    const key = eq > 0 ? tag.slice(0, eq) : '';
    if (TAG_KEY.test(key)) state.filters.tag = { key, value: tag.slice(eq + 1) };
  }
  const stack = q.get('stack');
  if (stack === 'app' || stack === 'model') state.stack = stack;
  const share = q.get('share');
  if (share === 'cost' || share === 'tokens') state.share = share;
  const n = Number(q.get('n'));
  if ((TOP_N_CHOICES as readonly number[]).includes(n)) state.n = n;
  const sort = q.get('sort');
  if (sort === 'costUsd' || sort === 'requests' || sort === 'totalTokens') state.sort = sort;
  return state;
}

export function pathOf(state: Pick<ViewState, 'view' | 'userId'>): string {
  if (state.view === 'user') return `/users/${encodeURIComponent(state.userId ?? '')}`;
  return PATHS[state.view];
}

/** The query string of a state (defaults omitted), without the leading "?". */
export function searchOf(state: ViewState): string {
  const d = defaultState();
  const q = new URLSearchParams();
  if ('preset' in state.range) {
    if (state.range.preset !== DEFAULT_PRESET) q.set('range', state.range.preset);
  } else {
    q.set('from', new Date(state.range.fromMs).toISOString());
    q.set('to', new Date(state.range.toMs).toISOString());
  }
  if (state.interval !== 'auto') q.set('interval', state.interval);
  for (const dim of ['app', 'model', 'user'] as const) {
    for (const v of state.filters[dim]) q.append(dim, v);
  }
  if (state.filters.tag) q.set('tag', `${state.filters.tag.key}=${state.filters.tag.value}`);
  if (state.stack !== d.stack) q.set('stack', state.stack);
  if (state.share !== d.share) q.set('share', state.share);
  if (state.n !== d.n) q.set('n', String(state.n));
  if (state.sort !== d.sort) q.set('sort', state.sort);
  return q.toString();
}

export function formatLocation(state: ViewState): string {
  const search = searchOf(state);
  return `${pathOf(state)}${search ? `?${search}` : ''}`;
}

export function presetOf(state: ViewState): PresetId | undefined {
  return 'preset' in state.range ? state.range.preset : undefined;
}

export function hasFilters(f: Filters): boolean {
  return f.app.length + f.model.length + f.user.length > 0 || f.tag !== undefined;
}
