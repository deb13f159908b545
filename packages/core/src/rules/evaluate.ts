import type { PricedEvent } from '../event/usage-event.js';
import type { AlertMessage } from '../ports/notifier.js';
import type { BaseDimension } from '../query/usage-query.js';
import { fingerprint } from '../util/fingerprint.js';
import { resolveLevels, toUserUnit } from './parse-rule.js';
import type { ResolvedLevel, Rule } from './rule.js';

const MINUTE_MS = 60_000;
/** Level index of the forecast level (fires when the projection reaches 100 %). */
export const FORECAST_LEVEL = -1;

const DIM_FIELD: Record<BaseDimension, 'userId' | 'appId' | 'modelId' | 'provider'> = {
  user: 'userId',
  app: 'appId',
  model: 'modelId',
  provider: 'provider',
};

/** A rule ready for evaluation: levels resolved to base-unit thresholds. */
export interface CompiledRule {
  rule: Rule;
  levels: ResolvedLevel[];
  /** Threshold of 100 %: the budget if any, else the top level. */
  fullThreshold: number;
  /** Rules that measure the same thing share their counters (see `counterKeyOf`). */
  counterKey: string;
}

/**
 * The id of the counters a rule reads: rules of one project with the same scope, filters, metric
 * and window measure the same thing, so they share one set of counters however many levels,
 * budgets or channels they differ in. A hundred rules of one shape cost one counter upsert.
 */
export function counterKeyOf(
  rule: Pick<Rule, 'projectId' | 'scope' | 'filters' | 'metric' | 'window'>,
): string {
  const filters = Object.keys(rule.filters)
    .sort()
    .map((k) => [k, [...(rule.filters[k as BaseDimension] ?? [])].sort()]);
  return `ctr_${fingerprint(JSON.stringify([rule.projectId, rule.scope, filters, rule.metric, rule.window]))}`;
}

export function compileRule(rule: Rule): CompiledRule {
  const levels = resolveLevels(rule);
  const budgetLevel =
    rule.budget !== undefined
      ? resolveLevels({ ...rule, levels: [{ percent: 100 }] })[0]
      : undefined;
  const top = levels[levels.length - 1];
  return {
    rule,
    levels,
    fullThreshold: budgetLevel?.threshold ?? top?.threshold ?? Number.POSITIVE_INFINITY,
    counterKey: counterKeyOf(rule),
  };
}

/** The scope key of an event under a rule: the JSON array of its values of the rule's dimensions. */
export function scopeKeyOf(
  rule: Rule,
  e: Pick<PricedEvent, 'userId' | 'appId' | 'modelId' | 'provider'>,
): string {
  return JSON.stringify(rule.scope.map((d) => e[DIM_FIELD[d]]));
}

export function scopeValues(rule: Rule, scopeKey: string): Record<string, string> {
  const values = JSON.parse(scopeKey) as string[];
  const out: Record<string, string> = {};
  rule.scope.forEach((d, i) => {
    out[d] = values[i] as string;
  });
  return out;
}

/** Whether an event (or a rollup row: it has the same dimensions) counts for an enabled rule. */
export function ruleMatches(
  rule: Rule,
  e: Pick<PricedEvent, 'projectId' | 'userId' | 'appId' | 'modelId' | 'provider'>,
): boolean {
  if (rule.projectId !== e.projectId || !rule.enabled) return false;
  for (const dim of Object.keys(rule.filters) as BaseDimension[]) {
    const allowed = rule.filters[dim];
    if (allowed && allowed.length > 0 && !allowed.includes(e[DIM_FIELD[dim]])) return false;
  }
  return true;
}

/** Levels crossed by going from `before` to `after`: before < threshold ≤ after. */
export function crossedLevels(
  levels: readonly ResolvedLevel[],
  before: number,
  after: number,
): ResolvedLevel[] {
  return levels.filter((l) => before < l.threshold && l.threshold <= after);
}

/**
 * Linear projection of a calendar window's value to its end, from the value so far and the
 * time elapsed (at least one minute, so the first event of a window does not project absurdly).
 */
export function projectToWindowEnd(
  value: number,
  windowStartMs: number,
  windowEndMs: number,
  atMs: number,
): number {
  const elapsed = Math.max(MINUTE_MS, Math.min(atMs, windowEndMs) - windowStartMs);
  return (value * (windowEndMs - windowStartMs)) / elapsed;
}

/** Deterministic alert id: the same (rule, scope key, window, level) always gives the same id. */
export function alertIdOf(
  ruleId: string,
  scopeKey: string,
  windowStartMs: number,
  levelIndex: number,
): string {
  return `alr_${fingerprint(`${ruleId}\u0000${scopeKey}\u0000${windowStartMs}\u0000${levelIndex}`)}_${windowStartMs.toString(36)}`;
}

export function deliveryIdOf(alertId: string, channelIndex: number): string {
  return `dlv_${alertId.slice(4)}_${channelIndex}`;
}

export interface NewAlert {
  alertId: string;
  projectId: string;
  ruleId: string;
  scopeKey: string;
  windowStartMs: number;
  windowEndMs: number;
  levelIndex: number;
  threshold: number;
  /** Base units (tokens, requests, nano-USD). */
  value: number;
  late: boolean;
  forecast: boolean;
  firedAtMs: number;
  message: AlertMessage;
}

/**
 * An alert of `compiled` for one scope key, window instance and level. For a rolling rule the
 * window instance is its re-arm period and `shownWindow` the rolling window that crossed, which
 * is what the message shows.
 */
export function buildAlert(
  compiled: CompiledRule,
  scopeKey: string,
  windowStartMs: number,
  windowEndMs: number,
  level: ResolvedLevel | 'forecast',
  value: number,
  nowMs: number,
  shownWindow: { startMs: number; endMs: number } = { startMs: windowStartMs, endMs: windowEndMs },
): NewAlert {
  const rule = compiled.rule;
  const forecast = level === 'forecast';
  const levelIndex = forecast ? FORECAST_LEVEL : level.index;
  const threshold = forecast ? compiled.fullThreshold : level.threshold;
  const alertId = alertIdOf(rule.id, scopeKey, windowStartMs, levelIndex);
  const late = windowEndMs <= nowMs;
  const messageLevel: AlertMessage['level'] = {
    index: levelIndex,
    threshold: toUserUnit(rule.metric, threshold),
  };
  if (!forecast && level.value !== undefined) messageLevel.value = level.value;
  if (!forecast && level.percent !== undefined) messageLevel.percent = level.percent;
  if (forecast) messageLevel.percent = 100;
  if (rule.budget !== undefined) messageLevel.budget = rule.budget;
  return {
    alertId,
    projectId: rule.projectId,
    ruleId: rule.id,
    scopeKey,
    windowStartMs,
    windowEndMs,
    levelIndex,
    threshold,
    value,
    late,
    forecast,
    firedAtMs: nowMs,
    message: {
      alertId,
      projectId: rule.projectId,
      rule: { id: rule.id, name: rule.name, metric: rule.metric, window: rule.window },
      scope: scopeValues(rule, scopeKey),
      window: {
        start: new Date(shownWindow.startMs).toISOString(),
        end: new Date(shownWindow.endMs).toISOString(),
        timeZone: rule.window.type === 'calendar' ? rule.window.timeZone : 'UTC',
      },
      level: messageLevel,
      value: toUserUnit(rule.metric, value),
      late,
      forecast,
      firedAt: new Date(nowMs).toISOString(),
    },
  };
}
