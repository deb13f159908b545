import type { RollupMeasures } from '../aggregate/rollup-delta.js';
import { TokenwatchError, type ValidationIssue } from '../errors.js';
import { type PricedEvent, totalTokens } from '../event/usage-event.js';
import type { BaseDimension } from '../query/usage-query.js';
import type {
  CalendarUnit,
  ChannelConfig,
  ResolvedLevel,
  RuleInput,
  RuleLevel,
  RuleMetric,
  RuleWindow,
} from './rule.js';
import { isValidTimeZone } from './windows.js';

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
export const CHANNEL_TYPES: readonly ChannelConfig['type'][] = [
  'webhook',
  'slack',
  'email',
  'log',
  'sns',
];

/** Limits of a rule, exported so docs and tests quote one source. */
export const RULE_LIMITS = {
  nameMaxLength: 128,
  maxFilterValues: 100,
  filterValueMaxLength: 512,
  maxRollingMinutes: 10_080,
  maxLevels: 10,
  maxPercent: 1_000,
  maxChannels: 10,
  urlMaxLength: 2_048,
  secretMaxLength: 1_024,
  maxEmailRecipients: 20,
  emailMaxLength: 254,
} as const;

const NANO_PER_USD = 1_000_000_000n;

// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
const EMAIL =
  /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+)$/;
const SNS_TOPIC_ARN = /^arn:aws(?:-[a-z]+)*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(?:\.fifo)?$/;
const HTTP_URL = /^(https?):\/\/([^/?#\s]+)([/?#][^\s]*)?$/i;
const HOST_PORT = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%!$&'()*+,;=-]+)(?::(\d{1,5}))?$/;

// ---------------------------------------------------------------------------------------------
// Helpers

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'number') return `${value}`;
  return `a ${typeof value}`;
}

/** A value for a message: strings quoted, anything else described (never throws). */
function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : describe(value);
}

function has(obj: Record<string, unknown>, key: string): boolean {
  return Object.hasOwn(obj, key);
}

class Issues {
  readonly list: ValidationIssue[] = [];
  constructor(private readonly prefix: string) {}

  path(field: string): string {
    if (this.prefix === '') return field;
    if (field === '') return this.prefix;
    return field.startsWith('[') ? `${this.prefix}${field}` : `${this.prefix}.${field}`;
  }

  add(field: string, reason: string): void {
    this.list.push({ field: this.path(field), reason });
  }

  /** Reports keys outside `allowed` (and any `__proto__`) of the object at `at`. */
  unknownKeys(obj: Record<string, unknown>, at: string, allowed: readonly string[]): void {
    for (const key of Object.keys(obj)) {
      if (allowed.includes(key)) continue;
      const field = at === '' ? key : `${at}.${key}`;
      if (key === '__proto__' || key === 'constructor' || key === 'prototype') {
        this.add(field, 'is not allowed');
      } else {
        this.add(field, `is not a known field (known: ${allowed.join(', ')})`);
      }
    }
  }
}

function checkString(
  value: unknown,
  field: string,
  issues: Issues,
  maxLength: number,
): string | undefined {
  if (typeof value !== 'string') {
    issues.add(field, `must be a string, got ${describe(value)}`);
    return undefined;
  }
  if (value.trim().length === 0) {
    issues.add(field, 'must not be empty or blank');
    return undefined;
  }
  if (value.length > maxLength) {
    issues.add(field, `must be at most ${maxLength} characters, got ${value.length}`);
    return undefined;
  }
  if (CONTROL_CHARS.test(value)) {
    issues.add(field, 'must not contain control characters');
    return undefined;
  }
  return value;
}

function checkBoolean(value: unknown, field: string, issues: Issues): boolean | undefined {
  if (typeof value !== 'boolean') {
    issues.add(field, `must be true or false, got ${describe(value)}`);
    return undefined;
  }
  return value;
}

function checkPositive(value: unknown, field: string, issues: Issues): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    issues.add(field, `must be a finite number, got ${describe(value)}`);
    return undefined;
  }
  if (value <= 0) {
    issues.add(field, `must be greater than 0, got ${value}`);
    return undefined;
  }
  return value;
}

function checkEnum<T extends string>(
  value: unknown,
  field: string,
  allowed: readonly T[],
  issues: Issues,
): T | undefined {
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value))
    return value as T;
  issues.add(field, `must be one of ${allowed.join(', ')}, got ${show(value)}`);
  return undefined;
}

/** True for an absolute http(s) URL with a host, no whitespace or control characters. */
function checkUrl(value: unknown, field: string, issues: Issues): string | undefined {
  const url = checkString(value, field, issues, RULE_LIMITS.urlMaxLength);
  if (url === undefined) return undefined;
  const m = HTTP_URL.exec(url);
  if (m === null) {
    issues.add(field, 'must be an absolute http:// or https:// URL');
    return undefined;
  }
  const authority = m[2] ?? '';
  const at = authority.lastIndexOf('@');
  const hostPort = at >= 0 ? authority.slice(at + 1) : authority;
  const hp = HOST_PORT.exec(hostPort);
  if (hp === null || hostPort.startsWith(':')) {
    issues.add(field, 'must name a valid host');
    return undefined;
  }
  if (hp[1] !== undefined && Number(hp[1]) > 65_535) {
    issues.add(field, `port must be at most 65535, got ${hp[1]}`);
    return undefined;
  }
  return url;
}

// ---------------------------------------------------------------------------------------------
// Exact decimal arithmetic for thresholds

/** `value` as `mantissa × 10^exponent` exactly as its shortest decimal text reads. */
function decimalOf(value: number): { mantissa: bigint; exponent: number } {
  const m = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(value));
  if (m === null) throw new RangeError(`not a non-negative finite number: ${value}`);
  const fraction = m[2] ?? '';
  return {
    mantissa: BigInt(`${m[1] ?? '0'}${fraction}`),
    exponent: Number(m[3] ?? '0') - fraction.length,
  };
}

/** ceil(product of the decimals × 10^shift / divisor), exact. */
function ceilProduct(values: number[], shift: bigint, divisor: bigint): bigint {
  let numerator = shift;
  let exponent = 0;
  for (const v of values) {
    const d = decimalOf(v);
    numerator *= d.mantissa;
    exponent += d.exponent;
  }
  let denominator = divisor;
  if (exponent >= 0) numerator *= 10n ** BigInt(exponent);
  else denominator *= 10n ** BigInt(-exponent);
  const q = numerator / denominator;
  return q * denominator === numerator ? q : q + 1n;
}

function baseScale(metric: RuleMetric): bigint {
  return metric === 'costUsd' ? NANO_PER_USD : 1n;
}

/** The threshold of one level in base units, or a reason it has none. */
function thresholdOf(
  metric: RuleMetric,
  level: RuleLevel,
  budget: number | undefined,
): bigint | string {
  if ('value' in level) {
    if (!(level.value > 0) || !Number.isFinite(level.value)) return 'must be a positive number';
    return ceilProduct([level.value], baseScale(metric), 1n);
  }
  if (!(level.percent > 0) || !Number.isFinite(level.percent)) return 'must be a positive number';
  if (budget === undefined || !(budget > 0) || !Number.isFinite(budget)) {
    return 'needs a positive budget';
  }
  return ceilProduct([budget, level.percent], baseScale(metric), 100n);
}

const MAX_THRESHOLD = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The levels as integer thresholds in the metric's base unit (tokens, requests, nano-USD),
 * rounded up, ascending, without duplicate thresholds (the first level written wins). `index`
 * is the level's position in `rule.levels`. Exact: 0.1 USD is 100_000_000 nano-USD, and 80 % of
 * $200 is 160_000_000_000 nano-USD. Throws `invalid_argument` for a level without a threshold.
 */
export function resolveLevels(rule: {
  metric: RuleMetric;
  levels: readonly RuleLevel[];
  /** Optional, or `undefined` as in a stored `Rule`. */
  budget?: number | undefined;
}): ResolvedLevel[] {
  const resolved: ResolvedLevel[] = [];
  const issues: ValidationIssue[] = [];
  rule.levels.forEach((level, index) => {
    const isValue = 'value' in level;
    const threshold = thresholdOf(rule.metric, level, rule.budget);
    const field = `levels[${index}].${isValue ? 'value' : 'percent'}`;
    if (typeof threshold === 'string') {
      issues.push({ field, reason: threshold });
      return;
    }
    if (threshold > MAX_THRESHOLD) {
      issues.push({ field, reason: 'is too large' });
      return;
    }
    resolved.push({
      index,
      threshold: Number(threshold),
      value: isValue ? level.value : undefined,
      percent: isValue ? undefined : level.percent,
    });
  });
  if (issues.length > 0) {
    throw new TokenwatchError('invalid_argument', summary('invalid rule levels', issues), {
      details: issues,
    });
  }
  resolved.sort((a, b) => a.threshold - b.threshold || a.index - b.index);
  return resolved.filter((l, i) => i === 0 || resolved[i - 1]?.threshold !== l.threshold);
}

/**
 * A rollup row's value of a metric, in base units: what a rule's counter holds for the events the
 * row sums (used to seed counters from the rollups).
 */
export function rollupMeasure(metric: RuleMetric, m: RollupMeasures): number {
  if (metric === 'uncapturedTokens') return 0; // not a measure of events
  return metric === 'costUsd' ? Number(m.costNanoUsd) : m[metric];
}

/** An event's contribution to a metric, in base units (tokens, requests, nano-USD). */
export function metricOf(metric: RuleMetric, e: PricedEvent): number {
  switch (metric) {
    case 'totalTokens':
      return totalTokens(e);
    case 'inputTokens':
      return e.inputTokens;
    case 'outputTokens':
      return e.outputTokens;
    case 'cacheReadTokens':
      return e.cacheReadTokens;
    case 'cacheWriteTokens':
      return e.cacheWriteTokens;
    case 'costUsd':
      return e.costNanoUsd;
    case 'requests':
      return e.status === 'denied' ? 0 : 1; // as the rollups count: calls that reached the provider
    case 'unpricedTokens':
      return e.priced ? 0 : totalTokens(e);
    case 'uncapturedTokens':
      return 0; // reconciliation counts it, not events
  }
}

/** A base-unit amount in the unit users write: USD for cost, unchanged otherwise. */
export function toUserUnit(metric: RuleMetric, base: number): number {
  return metric === 'costUsd' ? base / 1e9 : base;
}

// ---------------------------------------------------------------------------------------------
// parseRuleInput

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

function summary(title: string, issues: ValidationIssue[]): string {
  const shown = issues.slice(0, 5).map((i) => `${i.field || '(rule)'} ${i.reason}`);
  const more = issues.length > 5 ? `; and ${issues.length - 5} more` : '';
  return `${title}: ${shown.join('; ')}${more}`;
}

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

function parseChannel(raw: unknown, i: number, issues: Issues): ChannelConfig | undefined {
  const at = `channels[${i}]`;
  if (!isPlainObject(raw)) {
    issues.add(at, `must be an object with a type, got ${describe(raw)}`);
    return undefined;
  }
  const type = checkEnum(raw.type, `${at}.type`, CHANNEL_TYPES, issues);
  switch (type) {
    case undefined:
      return undefined;
    case 'webhook': {
      issues.unknownKeys(raw, at, ['type', 'url', 'secret']);
      const url = checkUrl(raw.url, `${at}.url`, issues);
      if (has(raw, 'secret')) {
        const secret = checkString(raw.secret, `${at}.secret`, issues, RULE_LIMITS.secretMaxLength);
        if (url === undefined || secret === undefined) return undefined;
        return { type, url, secret };
      }
      return url === undefined ? undefined : { type, url };
    }
    case 'slack': {
      issues.unknownKeys(raw, at, ['type', 'url']);
      const url = checkUrl(raw.url, `${at}.url`, issues);
      return url === undefined ? undefined : { type, url };
    }
    case 'email': {
      issues.unknownKeys(raw, at, ['type', 'to']);
      const to = raw.to;
      if (!Array.isArray(to)) {
        issues.add(`${at}.to`, `must be an array of email addresses, got ${describe(to)}`);
        return undefined;
      }
      if (to.length === 0 || to.length > RULE_LIMITS.maxEmailRecipients) {
        issues.add(
          `${at}.to`,
          `must have 1 to ${RULE_LIMITS.maxEmailRecipients} addresses, got ${to.length}`,
        );
        return undefined;
      }
      const addresses: string[] = [];
      let ok = true;
      to.forEach((a, j) => {
        const field = `${at}.to[${j}]`;
        const s = checkString(a, field, issues, RULE_LIMITS.emailMaxLength);
        if (s === undefined) {
          ok = false;
        } else if (!EMAIL.test(s)) {
          issues.add(
            field,
            `must be an email address such as ops@example.com, got ${JSON.stringify(s)}`,
          );
          ok = false;
        } else if (!addresses.includes(s)) {
          addresses.push(s);
        }
      });
      return ok ? { type, to: addresses } : undefined;
    }
    case 'log':
      issues.unknownKeys(raw, at, ['type']);
      return { type };
    case 'sns': {
      issues.unknownKeys(raw, at, ['type', 'topicArn']);
      const arn = checkString(raw.topicArn, `${at}.topicArn`, issues, 1_024);
      if (arn === undefined) return undefined;
      if (!SNS_TOPIC_ARN.test(arn)) {
        issues.add(
          `${at}.topicArn`,
          'must be an SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:alerts',
        );
        return undefined;
      }
      return { type, topicArn: arn };
    }
  }
}

function parseChannels(value: unknown, issues: Issues): ChannelConfig[] | undefined {
  if (!Array.isArray(value)) {
    issues.add('channels', `must be an array of channels, got ${describe(value)}`);
    return undefined;
  }
  if (value.length > RULE_LIMITS.maxChannels) {
    issues.add(
      'channels',
      `must have at most ${RULE_LIMITS.maxChannels} channels, got ${value.length}`,
    );
    return undefined;
  }
  const channels: ChannelConfig[] = [];
  let ok = true;
  value.forEach((raw, i) => {
    const c = parseChannel(raw, i, issues);
    if (c === undefined) ok = false;
    else channels.push(c);
  });
  return ok ? channels : undefined;
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
