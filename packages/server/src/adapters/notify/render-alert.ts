import type { AlertMessage, RuleMetric } from '@tokenwatch/core';

/**
 * Shared wording of an alert for the human channels (Slack, email, log): one subject line, one
 * headline sentence, labelled facts and notes. Numbers are formatted in en-US, deterministic
 * whatever the server's locale: 12,345 tokens (exact), 12.3k (compact), $1,234.56.
 */

const INTEGER = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const DECIMAL = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });
const COMPACT = new Intl.NumberFormat('en-US', {
  notation: 'compact',
  compactDisplay: 'short',
  maximumFractionDigits: 1,
});
const USD = new Intl.NumberFormat('en-US', {
  style: 'currency',
  currency: 'USD',
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
});
const USD_SMALL = new Intl.NumberFormat('en-US', {
  style: 'currency',
  currency: 'USD',
  minimumFractionDigits: 2,
  maximumFractionDigits: 4,
});

/** 12345 → "12,345"; non-integers keep up to 2 decimals. */
export function formatInteger(n: number): string {
  return Number.isInteger(n) ? INTEGER.format(n) : DECIMAL.format(n);
}

/** 12345 → "12.3k", 1_250_000 → "1.3M", 950 → "950". */
export function formatCompact(n: number): string {
  return COMPACT.format(n).replace(/K$/, 'k');
}

/** 1234.561 → "$1,234.56"; amounts under a dollar keep up to 4 decimals ("$0.0042"). */
export function formatUsd(n: number): string {
  return (Math.abs(n) < 1 && n !== 0 ? USD_SMALL : USD).format(n);
}

const UNIT: Record<RuleMetric, string> = {
  totalTokens: 'tokens',
  inputTokens: 'input tokens',
  outputTokens: 'output tokens',
  cacheReadTokens: 'cache-read tokens',
  cacheWriteTokens: 'cache-write tokens',
  costUsd: 'USD',
  uncapturedTokens: 'uncaptured Bedrock tokens',
  requests: 'requests',
  unpricedTokens: 'unpriced tokens',
};

/** A value of the metric in its user unit: "12,345 tokens" / "12.3k tokens" / "$1,234.56". */
export function formatAmount(
  metric: RuleMetric,
  value: number,
  style: 'exact' | 'compact',
): string {
  if (metric === 'costUsd') return formatUsd(value);
  const n = style === 'exact' ? formatInteger(value) : formatCompact(value);
  return `${n} ${UNIT[metric] ?? metric}`;
}

/** Values from events (user ids, model ids) with control characters replaced: no header injection. */
export function clean(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ');
}

function truncate(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max).join('')}…`;
}

/**
 * The level in the metric's user unit. `level.value` (absolute) or `percent` × `budget` as
 * written; otherwise `threshold`, which is already in the user unit (USD for cost).
 */
export function levelAmount(message: AlertMessage): number {
  const { level } = message;
  if (level.value !== undefined) return level.value;
  if (level.percent !== undefined && level.budget !== undefined)
    return (level.budget * level.percent) / 100;
  return level.threshold;
}

/** "hour" / "day" / … for calendar windows, "60 min" for rolling ones. */
export function windowPer(message: AlertMessage): { per: string; rolling: boolean } {
  const w = message.rule.window;
  return w.type === 'calendar'
    ? { per: w.unit, rolling: false }
    : { per: `${formatInteger(w.minutes)} min`, rolling: true };
}

interface LocalParts {
  date: string;
  month: string;
  time: string;
  /** "GMT-4", "GMT" */
  offset: string;
}

function localParts(iso: string, timeZone: string): LocalParts | undefined {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return undefined;
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'shortOffset',
    });
  } catch {
    return undefined;
  }
  const p: Record<string, string> = {};
  for (const part of format.formatToParts(ms)) p[part.type] = part.value;
  return {
    date: `${p.year}-${p.month}-${p.day}`,
    month: `${p.year}-${p.month}`,
    time: `${p.hour}:${p.minute}`,
    offset: p.timeZoneName ?? '',
  };
}

function zoneOf(message: AlertMessage): string {
  const zone = message.window.timeZone || 'UTC';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return zone;
  } catch {
    return 'UTC';
  }
}

/**
 * The window in local time of its zone: "2024-10-08 14:00–15:00 Europe/Berlin" (hour),
 * "2024-10-08 UTC" (day), "2024-10-07 – 2024-10-13 UTC" (week), "2024-10 UTC" (month),
 * "13:32–14:32 UTC (last 60 min)" (rolling).
 */
export function formatWindow(message: AlertMessage): string {
  const zone = zoneOf(message);
  const start = localParts(message.window.start, zone);
  const endMs = Date.parse(message.window.end);
  const end = localParts(message.window.end, zone);
  // Calendar windows end exclusively at the next period's start: show their last day.
  const lastDay = Number.isNaN(endMs)
    ? undefined
    : localParts(new Date(endMs - 1).toISOString(), zone);
  if (!start || !end || !lastDay) return `${message.window.start} – ${message.window.end} ${zone}`;
  const w = message.rule.window;
  if (start.offset !== end.offset && (w.type === 'rolling' || w.unit === 'hour')) {
    // Across a DST change the local times alone are ambiguous (01:00–01:00): name the offsets.
    return `${start.date} ${start.time} ${start.offset} – ${end.date === start.date ? '' : `${end.date} `}${end.time} ${end.offset} ${zone}`;
  }
  if (w.type === 'rolling') {
    const range =
      start.date === end.date
        ? `${start.date} ${start.time}–${end.time}`
        : `${start.date} ${start.time} – ${end.date} ${end.time}`;
    return `${range} ${zone} (last ${formatInteger(w.minutes)} min)`;
  }
  switch (w.unit) {
    case 'day':
      if (start.date === lastDay.date) return `${start.date} ${zone}`;
      break;
    case 'month':
      if (start.month === lastDay.month) return `${start.month} ${zone}`;
      break;
    case 'week':
      return `${start.date} – ${lastDay.date} ${zone}`;
    default:
      if (start.date === end.date || end.time === '00:00')
        return `${start.date} ${start.time}–${end.time === '00:00' ? '24:00' : end.time} ${zone}`;
  }
  return `${start.date} ${start.time} – ${end.date} ${end.time} ${zone}`;
}

const SCOPE_LABELS: Record<string, string> = {
  user: 'User',
  app: 'App',
  model: 'Model',
  provider: 'Provider',
};

export function scopeLabel(key: string): string {
  return SCOPE_LABELS[key] ?? key.charAt(0).toUpperCase() + key.slice(1);
}

export interface AlertFact {
  label: string;
  value: string;
}

export interface RenderedAlert {
  /** `[tokenwatch] alice exceeded 10,000 tokens/hour on anthropic.claude-3-haiku… (12,345)` */
  subject: string;
  /** The subject's sentence without the prefix, and with the whole model id. */
  headline: string;
  /** Rule, scope (User, App, Model, Provider), Project, Window, Value, Level, Fired at. */
  facts: AlertFact[];
  /** Sentences explaining the late and forecast marks. */
  notes: string[];
  /** Short words for the marks: 'late', 'forecast'. */
  marks: string[];
  /** Compact forms for chat: value "12.3k tokens", level "10k tokens", percent of level "123%". */
  compact: { value: string; level: string; percentOfLevel: string };
  url: string | undefined;
}

const MODEL_IN_SUBJECT = 24;

function levelText(message: AlertMessage, style: 'exact' | 'compact'): string {
  const { metric } = message.rule;
  const { level } = message;
  if (level.percent !== undefined && level.budget !== undefined)
    return `${formatInteger(level.percent)}% of ${formatAmount(metric, level.budget, style)}`;
  return formatAmount(metric, levelAmount(message), style);
}

/** The bare number of the value, for the subject's parenthesis: "12,345" or "$1,234.56". */
function bareValue(message: AlertMessage): string {
  return message.rule.metric === 'costUsd'
    ? formatUsd(message.value)
    : formatInteger(message.value);
}

function who(scope: Record<string, string>, projectId: string): string {
  const user = scope.user;
  const app = scope.app;
  if (user !== undefined && app !== undefined) return `${clean(user)} (app ${clean(app)})`;
  if (user !== undefined) return clean(user);
  if (app !== undefined) return `app ${clean(app)}`;
  const others = Object.entries(scope).filter(([k]) => k !== 'model' && k !== 'provider');
  if (others.length > 0) return others.map(([k, v]) => `${k} ${clean(v)}`).join(', ');
  return `project ${clean(projectId)}`;
}

function onWhat(scope: Record<string, string>, modelMax: number): string {
  if (scope.model !== undefined) return ` on ${truncate(clean(scope.model), modelMax)}`;
  if (scope.provider !== undefined) return ` on ${clean(scope.provider)}`;
  return '';
}

export function renderAlert(message: AlertMessage): RenderedAlert {
  const { metric } = message.rule;
  const { per, rolling } = windowPer(message);
  const level = levelText(message, 'exact');
  const span = rolling ? ` in ${per}` : `/${per}`;
  const verb = message.forecast ? 'is on track to exceed' : 'exceeded';
  const subjectWho = who(message.scope, message.projectId);
  const sentence = (modelMax: number) =>
    `${subjectWho} ${verb} ${level}${span}${onWhat(message.scope, modelMax)} (${bareValue(message)})`;
  const marks: string[] = [];
  if (message.forecast) marks.push('forecast');
  if (message.late) marks.push('late');
  const markPrefix = marks.map((m) => `[${m}] `).join('');

  const facts: AlertFact[] = [{ label: 'Rule', value: clean(message.rule.name) }];
  for (const [key, value] of Object.entries(message.scope))
    facts.push({ label: scopeLabel(key), value: clean(value) });
  facts.push({ label: 'Project', value: clean(message.projectId) });
  facts.push({ label: 'Window', value: formatWindow(message) });
  facts.push({
    label: message.forecast ? 'Value (at forecast)' : 'Value',
    value: formatAmount(metric, message.value, 'exact'),
  });
  const amount = levelAmount(message);
  const levelFact =
    message.level.percent !== undefined && message.level.budget !== undefined
      ? `${level} (${formatAmount(metric, amount, 'exact')})`
      : level;
  facts.push({ label: 'Level', value: `${levelFact} per ${per}` });
  const fired = localParts(message.firedAt, zoneOf(message));
  if (fired)
    facts.push({ label: 'Fired at', value: `${fired.date} ${fired.time} ${zoneOf(message)}` });

  const notes: string[] = [];
  if (message.late)
    notes.push('Late: the events that crossed this level arrived after their window had ended.');
  if (message.forecast)
    notes.push("Forecast: at the current rate the value will pass the level by the window's end.");

  const percent = amount > 0 ? `${formatInteger(Math.round((message.value / amount) * 100))}%` : '';
  return {
    subject: `[tokenwatch] ${markPrefix}${sentence(MODEL_IN_SUBJECT)}`,
    headline: `${markPrefix}${sentence(Number.POSITIVE_INFINITY)}`,
    facts,
    notes,
    marks,
    compact: {
      value: formatAmount(metric, message.value, 'compact'),
      level: levelText(message, 'compact'),
      percentOfLevel: percent,
    },
    url: message.url && /^https?:\/\//i.test(message.url) ? message.url : undefined,
  };
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}
