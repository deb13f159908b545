import { TokenwatchError } from '../errors.js';
import type { BaseDimension } from '../query/usage-query.js';
import { parseChannels } from './parse-channel.js';
import type { CalendarUnit, RuleInput, RuleLevel, RuleMetric, RuleWindow } from './rule.js';
import {
  checkBoolean,
  checkEnum,
  checkPositive,
  checkString,
  describe,
  has,
  Issues,
  isPlainObject,
  show,
  summary,
} from './rule-input-checks.js';
import { RULE_LIMITS } from './rule-limits.js';
import { MAX_THRESHOLD, thresholdOf } from './rule-thresholds.js';
import { isValidTimeZone } from './windows.js';

// The public face of rule input: parseRuleInput and the rule vocabulary, with what the modules
// it is made of export for others (kept importable from here, as before they were split out).
export { CHANNEL_TYPES } from './parse-channel.js';
export { RULE_LIMITS } from './rule-limits.js';
export { metricOf, resolveLevels, rollupMeasure, toUserUnit } from './rule-thresholds.js';

export const RULE_METRICS: readonly RuleMetric[] = [
  'totalTokens',
  'inputTokens',
  'outputTokens',
  'cacheReadTokens',
  'cacheWriteTokens',
  'costUsd',
  'requests',
  'unpricedTokens',
  'uncapturedTokens',
];
export const CALENDAR_UNITS: readonly CalendarUnit[] = ['hour', 'day', 'week', 'month'];
export const RULE_DIMENSIONS: readonly BaseDimension[] = ['user', 'app', 'model', 'provider'];

const RULE_FIELDS = [
  'name',
  'scope',
  'filters',
  'metric',
  'window',
  'budget',
  'levels',
  'forecast',
  'channels',
  'enforce',
  'enabled',
] as const;

function parseScope(value: unknown, issues: Issues): BaseDimension[] | undefined {
  if (!Array.isArray(value)) {
    issues.add(
      'scope',
      `must be an array of ${RULE_DIMENSIONS.join(', ')}, got ${describe(value)}`,
    );
    return undefined;
  }
  const scope: BaseDimension[] = [];
  let ok = true;
  value.forEach((d, i) => {
    const dim = checkEnum(d, `scope[${i}]`, RULE_DIMENSIONS, issues);
    if (dim === undefined) {
      ok = false;
    } else if (scope.includes(dim)) {
      issues.add(`scope[${i}]`, `repeats ${dim}`);
      ok = false;
    } else {
      scope.push(dim);
    }
  });
  return ok ? scope : undefined;
}

function parseFilters(
  value: unknown,
  issues: Issues,
): Partial<Record<BaseDimension, string[]>> | undefined {
  if (!isPlainObject(value)) {
    issues.add('filters', `must be an object of dimension → values, got ${describe(value)}`);
    return undefined;
  }
  issues.unknownKeys(value, 'filters', RULE_DIMENSIONS);
  const filters: Partial<Record<BaseDimension, string[]>> = {};
  for (const dim of RULE_DIMENSIONS) {
    if (!has(value, dim)) continue;
    const field = `filters.${dim}`;
    const raw = value[dim];
    if (!Array.isArray(raw)) {
      issues.add(field, `must be an array of strings, got ${describe(raw)}`);
      continue;
    }
    if (raw.length === 0 || raw.length > RULE_LIMITS.maxFilterValues) {
      issues.add(field, `must have 1 to ${RULE_LIMITS.maxFilterValues} values, got ${raw.length}`);
      continue;
    }
    const values: string[] = [];
    raw.forEach((v, i) => {
      const s = checkString(v, `${field}[${i}]`, issues, RULE_LIMITS.filterValueMaxLength);
      if (s !== undefined && !values.includes(s)) values.push(s);
    });
    filters[dim] = values;
  }
  return filters;
}

function parseWindow(value: unknown, issues: Issues): RuleWindow | undefined {
  if (!isPlainObject(value)) {
    issues.add(
      'window',
      `must be {"type":"calendar","unit":…,"timeZone":…} or {"type":"rolling","minutes":…}, got ${describe(value)}`,
    );
    return undefined;
  }
  const type = checkEnum(value.type, 'window.type', ['calendar', 'rolling'] as const, issues);
  if (type === 'calendar') {
    issues.unknownKeys(value, 'window', ['type', 'unit', 'timeZone']);
    const unit = checkEnum(value.unit, 'window.unit', CALENDAR_UNITS, issues);
    let timeZone: string | undefined = 'UTC';
    if (has(value, 'timeZone')) {
      const tz = value.timeZone;
      if (typeof tz !== 'string' || !isValidTimeZone(tz)) {
        issues.add(
          'window.timeZone',
          `must be an IANA time zone name such as Europe/Berlin or UTC, got ${show(tz)}`,
        );
        timeZone = undefined;
      } else {
        timeZone = canonicalCase(tz);
      }
    }
    if (unit === undefined || timeZone === undefined) return undefined;
    return { type, unit, timeZone };
  }
  if (type === 'rolling') {
    issues.unknownKeys(value, 'window', ['type', 'minutes']);
    const minutes = value.minutes;
    if (
      typeof minutes !== 'number' ||
      !Number.isInteger(minutes) ||
      minutes < 1 ||
      minutes > RULE_LIMITS.maxRollingMinutes
    ) {
      issues.add(
        'window.minutes',
        `must be an integer from 1 to ${RULE_LIMITS.maxRollingMinutes}, got ${describe(minutes)}`,
      );
      return undefined;
    }
    return { type, minutes };
  }
  return undefined;
}

/** `europe/berlin` → `Europe/Berlin`: the runtime's spelling when it differs only in case. */
function canonicalCase(timeZone: string): string {
  try {
    const resolved = new Intl.DateTimeFormat('en-US', { timeZone }).resolvedOptions().timeZone;
    return resolved.toLowerCase() === timeZone.toLowerCase() ? resolved : timeZone;
  } catch {
    return timeZone;
  }
}

function isTokenLike(metric: RuleMetric | undefined): boolean {
  return metric !== undefined && metric !== 'costUsd';
}

function parseLevels(
  value: unknown,
  metric: RuleMetric | undefined,
  issues: Issues,
): RuleLevel[] | undefined {
  if (!Array.isArray(value)) {
    issues.add(
      'levels',
      `must be an array of {"value":…} or {"percent":…}, got ${describe(value)}`,
    );
    return undefined;
  }
  if (value.length === 0 || value.length > RULE_LIMITS.maxLevels) {
    issues.add('levels', `must have 1 to ${RULE_LIMITS.maxLevels} levels, got ${value.length}`);
    return undefined;
  }
  const levels: RuleLevel[] = [];
  let ok = true;
  value.forEach((raw, i) => {
    const at = `levels[${i}]`;
    if (!isPlainObject(raw)) {
      issues.add(at, `must be {"value":…} or {"percent":…}, got ${describe(raw)}`);
      ok = false;
      return;
    }
    issues.unknownKeys(raw, at, ['value', 'percent']);
    const hasValue = has(raw, 'value');
    const hasPercent = has(raw, 'percent');
    if (hasValue === hasPercent) {
      issues.add(at, 'must have exactly one of value or percent');
      ok = false;
      return;
    }
    if (hasValue) {
      const v = checkPositive(raw.value, `${at}.value`, issues);
      if (v === undefined) {
        ok = false;
      } else if (isTokenLike(metric) && !Number.isInteger(v)) {
        issues.add(`${at}.value`, `must be a whole number for ${metric}, got ${v}`);
        ok = false;
      } else {
        levels.push({ value: v });
      }
      return;
    }
    const p = checkPositive(raw.percent, `${at}.percent`, issues);
    if (p === undefined) {
      ok = false;
    } else if (p > RULE_LIMITS.maxPercent) {
      issues.add(`${at}.percent`, `must be at most ${RULE_LIMITS.maxPercent}, got ${p}`);
      ok = false;
    } else {
      levels.push({ percent: p });
    }
  });
  return ok ? levels : undefined;
}

/**
 * Validates a rule as users write it (config file, `POST /v1/rules`) and returns it with
 * defaults: `timeZone` 'UTC' for calendar windows, `channels` [], `forecast` false,
 * `enforce` false, `enabled` true. Throws `TokenwatchError('invalid_argument')` whose `details`
 * list every problem, with field paths such as `window.timeZone`, `levels[1].percent`,
 * `channels[0].url`, prefixed by `field` when given (`rules[2].window.timeZone`).
 * URLs are checked for shape only; SSRF checks belong to the server.
 */
export function parseRuleInput(raw: unknown, field = ''): RuleInput {
  const issues = new Issues(field);
  if (!isPlainObject(raw)) {
    issues.add('', `must be a rule object, got ${describe(raw)}`);
    throw new TokenwatchError('invalid_argument', summary('invalid rule', issues.list), {
      details: issues.list,
    });
  }
  issues.unknownKeys(raw, '', RULE_FIELDS);

  const required = (key: string): boolean => {
    if (has(raw, key)) return true;
    issues.add(key, 'is required');
    return false;
  };

  const name = required('name')
    ? checkString(raw.name, 'name', issues, RULE_LIMITS.nameMaxLength)
    : undefined;
  const scope = required('scope') ? parseScope(raw.scope, issues) : undefined;
  const filters = has(raw, 'filters') ? parseFilters(raw.filters, issues) : {};
  const metric = required('metric')
    ? checkEnum(raw.metric, 'metric', RULE_METRICS, issues)
    : undefined;
  const window = required('window') ? parseWindow(raw.window, issues) : undefined;

  let budget: number | undefined;
  let budgetOk = true;
  if (has(raw, 'budget')) {
    budget = checkPositive(raw.budget, 'budget', issues);
    budgetOk = budget !== undefined;
  }
  const levels = required('levels') ? parseLevels(raw.levels, metric, issues) : undefined;
  const forecast = has(raw, 'forecast') ? checkBoolean(raw.forecast, 'forecast', issues) : false;
  const channels = has(raw, 'channels') ? parseChannels(raw.channels, issues) : [];
  const enforce = has(raw, 'enforce') ? checkBoolean(raw.enforce, 'enforce', issues) : false;
  const enabled = has(raw, 'enabled') ? checkBoolean(raw.enabled, 'enabled', issues) : true;

  if (levels !== undefined && budgetOk && budget === undefined) {
    const firstPercent = levels.findIndex((l) => 'percent' in l);
    if (firstPercent >= 0) {
      issues.add('budget', `is required when a level is a percent (levels[${firstPercent}])`);
    }
  }
  if (metric === 'uncapturedTokens') {
    // A reconciliation compares Bedrock models by settled UTC hour: nothing else to scope by.
    if (scope?.some((d) => d !== 'model'))
      issues.add(
        'scope',
        'must be [] or ["model"] for uncapturedTokens (reconciliation is per model)',
      );
    for (const dim of Object.keys(filters ?? {}))
      if (dim !== 'model')
        issues.add(`filters.${dim}`, 'only model filters apply to uncapturedTokens');
    if (window !== undefined && window.type !== 'calendar')
      issues.add(
        'window',
        'must be a calendar window for uncapturedTokens (reconciliation is per hour)',
      );
    if (enforce === true)
      issues.add('enforce', 'cannot enforce uncapturedTokens (it is known after the fact)');
    if (forecast === true) issues.add('forecast', 'does not apply to uncapturedTokens');
  }
  if (forecast === true && budgetOk && budget === undefined && levels?.length === 0) {
    issues.add('forecast', 'needs a budget or at least one level');
  }
  if (levels !== undefined && metric !== undefined && budgetOk && issues.list.length === 0) {
    // Thresholds must be exact integers in base units (nano-USD for cost).
    for (const [i, l] of levels.entries()) {
      const t = thresholdOf(metric, l, budget);
      if (typeof t !== 'string' && t > MAX_THRESHOLD) {
        const max =
          metric === 'costUsd'
            ? `${Number.MAX_SAFE_INTEGER / 1e9} USD`
            : `${Number.MAX_SAFE_INTEGER}`;
        issues.add(
          `levels[${i}].${'value' in l ? 'value' : 'percent'}`,
          `is too large: thresholds must be at most ${max}`,
        );
      }
    }
  }

  if (
    issues.list.length > 0 ||
    name === undefined ||
    scope === undefined ||
    filters === undefined ||
    metric === undefined ||
    window === undefined ||
    levels === undefined ||
    forecast === undefined ||
    channels === undefined ||
    enforce === undefined ||
    enabled === undefined
  ) {
    throw new TokenwatchError('invalid_argument', summary('invalid rule', issues.list), {
      details: issues.list,
    });
  }

  const rule: RuleInput = {
    name,
    scope,
    metric,
    window,
    levels,
    forecast,
    channels,
    enforce,
    enabled,
  };
  if (Object.keys(filters).length > 0) rule.filters = filters;
  if (budget !== undefined) rule.budget = budget;
  return rule;
}
