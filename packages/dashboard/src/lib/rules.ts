import { type ApiClient, ApiError } from './usage-api.js';

/**
 * Rules, budgets and alerts. The rules API (issue 3) is not on every server yet: when
 * `GET /v1/rules` / `GET /v1/alerts` answer 404 the panels say so. The readers below follow the
 * shapes of that API as drafted (`GET /v1/rules` → `{rules:[rule]}`, `GET /v1/rules/:id/status`
 * → `{status:{window, scopes:[…]}}`, `GET /v1/alerts` → `{alerts:[…]}`) and read them
 * defensively: a missing or unknown field is skipped, never guessed.
 */

export interface RuleLevel {
  /** Threshold in the rule's metric unit (tokens, USD, requests). */
  threshold: number;
  /** "80%" of a budget, or the absolute value. */
  label: string;
}

export interface RuleStatus {
  ruleId: string;
  ruleName: string;
  metric: string;
  /** The scope key's values, e.g. { user: 'alice' }; {} for the whole project. */
  scopeValues: Record<string, string>;
  scope: string;
  value: number;
  levels: RuleLevel[];
  windowStartMs: number | undefined;
  windowEndMs: number | undefined;
  /** Rolling windows have no fixed end: no forecast, no reset. */
  rolling: boolean;
  /** The server's projection to the window's end, when it gives one. */
  projectedValue: number | undefined;
}

export interface AlertItem {
  id: string;
  ruleName: string;
  scopeValues: Record<string, string>;
  scope: string;
  level: string;
  value: number | undefined;
  threshold: number | undefined;
  firedAtMs: number;
  metric: string;
  /** Acknowledged by an admin (`POST /v1/alerts/:id/ack`). */
  acknowledged: boolean;
}

export type Loaded<T> =
  | { state: 'ok'; items: T[] }
  | { state: 'unavailable'; message: string }
  | { state: 'error'; message: string };

const num = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;
const str = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
const time = (v: unknown): number | undefined => {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string') {
    const ms = Date.parse(v);
    return Number.isFinite(ms) ? ms : undefined;
  }
  return undefined;
};
const obj = (v: unknown): Record<string, unknown> | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;

function scopeValuesOf(v: unknown): Record<string, string> {
  const o = obj(v);
  const out: Record<string, string> = {};
  if (!o) return out;
  for (const [k, x] of Object.entries(o)) {
    if (typeof x === 'string') out[k] = x;
  }
  return out;
}

export function scopeText(values: Record<string, string>): string {
  const parts = Object.entries(values).map(([k, v]) => `${k}=${v}`);
  return parts.length > 0 ? parts.join(', ') : 'whole project';
}

/** A rule's levels as thresholds in its unit: `{value}` as is, `{percent}` of `budget`. */
export function levelsOf(rule: Record<string, unknown>): RuleLevel[] {
  const budget = num(rule.budget);
  const out: RuleLevel[] = [];
  for (const raw of Array.isArray(rule.levels) ? rule.levels : []) {
    const l = obj(raw);
    const value = num(l?.value);
    const percent = num(l?.percent);
    if (value !== undefined) out.push({ threshold: value, label: String(value) });
    else if (percent !== undefined && budget !== undefined) {
      out.push({ threshold: (budget * percent) / 100, label: `${percent}%` });
    }
  }
  return out.sort((a, b) => a.threshold - b.threshold);
}

/** One rule and its `/status` answer → one entry per scope key. */
export function normaliseRuleStatus(ruleJson: unknown, statusJson: unknown): RuleStatus[] {
  const rule = obj(ruleJson);
  const status = obj(obj(statusJson)?.status) ?? obj(statusJson);
  if (!rule || !status) return [];
  const window = obj(status.window);
  const rolling = obj(rule.window)?.type === 'rolling';
  const levels = levelsOf(rule);
  const out: RuleStatus[] = [];
  for (const raw of Array.isArray(status.scopes) ? status.scopes : []) {
    const s = obj(raw);
    const value = num(s?.value);
    if (!s || value === undefined) continue;
    const scopeValues = scopeValuesOf(s.scope);
    out.push({
      ruleId: str(rule.id) ?? '',
      ruleName: str(rule.name) ?? str(rule.id) ?? 'rule',
      metric: str(rule.metric) ?? '',
      scopeValues,
      scope: scopeText(scopeValues),
      value,
      levels,
      windowStartMs: time(window?.start),
      windowEndMs: time(window?.end),
      rolling,
      projectedValue: num(s.projectedValue),
    });
  }
  return out;
}

/** `{alerts:[…]}` (or one alert as the live stream sends it) → feed items, unknown shapes skipped. */
export function normaliseAlerts(json: unknown): AlertItem[] {
  const list = obj(json)?.alerts;
  if (!Array.isArray(list)) return [];
  return list.map(normaliseAlert).filter((a): a is AlertItem => a !== undefined);
}

export function normaliseAlert(raw: unknown): AlertItem | undefined {
  const a = obj(raw);
  if (!a) return undefined;
  const firedAtMs = time(a.firedAt);
  if (firedAtMs === undefined) return undefined;
  const level = obj(a.level);
  const percent = num(level?.percent);
  const scopeValues = scopeValuesOf(a.scope);
  return {
    id: str(a.id) ?? str(a.alertId) ?? `${firedAtMs}`,
    ruleName: str(a.ruleName) ?? str(obj(a.rule)?.name) ?? str(a.ruleId) ?? 'rule',
    scopeValues,
    scope: scopeText(scopeValues),
    level:
      a.forecast === true
        ? 'forecast'
        : percent !== undefined
          ? `${percent}%`
          : (str(level?.value) ?? str(a.level) ?? 'alert'),
    value: num(a.value),
    threshold: num(level?.threshold) ?? num(level?.value),
    firedAtMs,
    metric: str(obj(a.rule)?.metric) ?? str(a.metric) ?? '',
    acknowledged: typeof a.acknowledgedAt === 'string',
  };
}

function unavailableMessage(path: string, status: number): string {
  return `No rules API on this server yet (GET ${path} answered ${status}).`;
}

function isMissing(err: unknown): err is ApiError {
  return err instanceof ApiError && (err.status === 404 || err.status === 405);
}

const MAX_RULES = 25;

/** Rules with their current status per scope; `user` keeps the scopes of that user. */
export async function loadRuleStatuses(api: ApiClient, user?: string): Promise<Loaded<RuleStatus>> {
  let rules: unknown[];
  try {
    const json = await api.request<unknown>('GET', '/v1/rules');
    const list = obj(json)?.rules;
    rules = Array.isArray(list) ? list : [];
  } catch (err) {
    if (isMissing(err))
      return { state: 'unavailable', message: unavailableMessage('/v1/rules', err.status) };
    // The server lists rules (webhook secrets included) to admin keys only.
    if (err instanceof ApiError && err.status === 403)
      return { state: 'error', message: 'the server lists rules to admin keys only.' };
    return { state: 'error', message: err instanceof Error ? err.message : String(err) };
  }
  const enabled = rules.filter((r) => obj(r)?.enabled !== false).slice(0, MAX_RULES);
  const statuses = await Promise.all(
    enabled.map(async (r) => {
      const id = str(obj(r)?.id);
      if (!id) return [];
      try {
        const status = await api.request<unknown>(
          'GET',
          `/v1/rules/${encodeURIComponent(id)}/status`,
        );
        return normaliseRuleStatus(r, status);
      } catch {
        return [];
      }
    }),
  );
  const items = statuses.flat().filter((s) => user === undefined || s.scopeValues.user === user);
  return { state: 'ok', items };
}

export async function loadAlerts(
  api: ApiClient,
  limit: number,
  user?: string,
): Promise<Loaded<AlertItem>> {
  try {
    const json = await api.request<unknown>('GET', '/v1/alerts', {
      params: new URLSearchParams({ limit: String(limit) }),
    });
    const items = normaliseAlerts(json).filter(
      (a) => user === undefined || a.scopeValues.user === user,
    );
    return { state: 'ok', items };
  } catch (err) {
    if (isMissing(err))
      return { state: 'unavailable', message: unavailableMessage('/v1/alerts', err.status) };
    return { state: 'error', message: err instanceof Error ? err.message : String(err) };
  }
}

export interface Progress {
  /** value / threshold per level. */
  fractions: number[];
  /** The value at the window's end at the current rate (calendar windows only). */
  forecast: number | undefined;
  /** The first level the forecast crosses that the value has not crossed yet. */
  forecastCrosses: RuleLevel | undefined;
  /** Time until the window resets. */
  resetInMs: number | undefined;
}

export function progressOf(s: RuleStatus, nowMs: number): Progress {
  const fractions = s.levels.map((l) => (l.threshold > 0 ? s.value / l.threshold : 1));
  let forecast: number | undefined = s.rolling ? undefined : s.projectedValue;
  let resetInMs: number | undefined;
  if (!s.rolling && s.windowStartMs !== undefined && s.windowEndMs !== undefined) {
    const elapsed = Math.min(nowMs, s.windowEndMs) - s.windowStartMs;
    const length = s.windowEndMs - s.windowStartMs;
    // Too early in the window (under 5 %) to extrapolate honestly: no forecast of our own.
    if (forecast === undefined && elapsed > 0 && length > 0 && elapsed / length >= 0.05) {
      forecast = (s.value * length) / elapsed;
    }
    resetInMs = Math.max(0, s.windowEndMs - nowMs);
  }
  const f = forecast;
  const forecastCrosses =
    f === undefined ? undefined : s.levels.find((l) => s.value < l.threshold && f >= l.threshold);
  return { fractions, forecast, forecastCrosses, resetInMs };
}
