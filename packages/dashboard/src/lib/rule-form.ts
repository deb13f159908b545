/**
 * The rule form's values ↔ the body of `POST /v1/rules` / `PUT /v1/rules/:id` (README, "Rules").
 * The form checks nothing itself: what the user typed goes to the server as faithfully as JSON
 * allows (a number when it reads as one, else the text), so the server's own validation message
 * is what the user sees.
 */

export const RULE_METRICS = [
  'totalTokens',
  'inputTokens',
  'outputTokens',
  'cacheReadTokens',
  'cacheWriteTokens',
  'costUsd',
  'requests',
  'unpricedTokens',
  'uncapturedTokens',
] as const;
export const RULE_DIMENSIONS = ['user', 'app', 'model', 'provider'] as const;
export const CALENDAR_UNITS = ['hour', 'day', 'week', 'month'] as const;

export type RuleDimension = (typeof RULE_DIMENSIONS)[number];

export interface RuleFormValues {
  name: string;
  scope: RuleDimension[];
  /** Comma-separated values per dimension; empty: no filter. */
  filters: Record<RuleDimension, string>;
  metric: string;
  windowType: 'calendar' | 'rolling';
  unit: string;
  timeZone: string;
  minutes: string;
  budget: string;
  /** "50%, 80%, 100%" (of the budget) or "10000, 20000" (in the metric's unit). */
  levels: string;
  forecast: boolean;
  log: boolean;
  webhookUrl: string;
  /** The webhook's signing secret as stored, sent back while the URL is unchanged. */
  webhookSecret: string;
  webhookSecretUrl: string;
  slackUrl: string;
  /** Comma-separated addresses. */
  emailTo: string;
  /** Channels the form has no fields for (e.g. SNS), kept as they are. */
  otherChannels: Record<string, unknown>[];
  enforce: boolean;
  enabled: boolean;
}

export function emptyRuleForm(timeZone: string): RuleFormValues {
  return {
    name: '',
    scope: ['user'],
    filters: { user: '', app: '', model: '', provider: '' },
    metric: 'totalTokens',
    windowType: 'calendar',
    unit: 'day',
    timeZone,
    minutes: '60',
    budget: '',
    levels: '',
    forecast: false,
    log: true,
    webhookUrl: '',
    webhookSecret: '',
    webhookSecretUrl: '',
    slackUrl: '',
    emailTo: '',
    otherChannels: [],
    enforce: false,
    enabled: true,
  };
}

/** A number when the text reads as one, else the text (for the server to name the problem). */
function numberOrText(text: string): number | string {
  const t = text.trim();
  return /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t) ? Number(t) : t;
}

const list = (text: string) =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

export function ruleBody(v: RuleFormValues): Record<string, unknown> {
  const filters: Record<string, string[]> = {};
  for (const d of RULE_DIMENSIONS) {
    const values = list(v.filters[d]);
    if (values.length > 0) filters[d] = values;
  }
  const levels = list(v.levels).map((t) =>
    t.endsWith('%') ? { percent: numberOrText(t.slice(0, -1)) } : { value: numberOrText(t) },
  );
  const channels: Record<string, unknown>[] = [];
  if (v.webhookUrl.trim()) {
    const url = v.webhookUrl.trim();
    channels.push(
      v.webhookSecret && url === v.webhookSecretUrl
        ? { type: 'webhook', url, secret: v.webhookSecret }
        : { type: 'webhook', url },
    );
  }
  if (v.slackUrl.trim()) channels.push({ type: 'slack', url: v.slackUrl.trim() });
  if (v.emailTo.trim()) channels.push({ type: 'email', to: list(v.emailTo) });
  if (v.log) channels.push({ type: 'log' });
  channels.push(...v.otherChannels);
  const body: Record<string, unknown> = {
    name: v.name,
    scope: v.scope,
    filters,
    metric: v.metric,
    window:
      v.windowType === 'rolling'
        ? { type: 'rolling', minutes: numberOrText(v.minutes) }
        : { type: 'calendar', unit: v.unit, timeZone: v.timeZone.trim() },
    levels,
    forecast: v.forecast,
    channels,
    enforce: v.enforce,
    enabled: v.enabled,
  };
  if (v.budget.trim()) body.budget = numberOrText(v.budget);
  return body;
}

const obj = (x: unknown): Record<string, unknown> =>
  x !== null && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, unknown>) : {};
const text = (x: unknown) => (typeof x === 'string' || typeof x === 'number' ? String(x) : '');

/** A rule as `GET /v1/rules` shows it → the form's values (for editing). */
export function ruleFormOf(rule: Record<string, unknown>, timeZone: string): RuleFormValues {
  const v = emptyRuleForm(timeZone);
  v.name = text(rule.name);
  v.scope = (Array.isArray(rule.scope) ? rule.scope : []).filter((d): d is RuleDimension =>
    (RULE_DIMENSIONS as readonly string[]).includes(d as string),
  );
  const filters = obj(rule.filters);
  for (const d of RULE_DIMENSIONS) {
    v.filters[d] = (Array.isArray(filters[d]) ? (filters[d] as unknown[]) : [])
      .map(text)
      .join(', ');
  }
  v.metric = text(rule.metric) || v.metric;
  const w = obj(rule.window);
  if (w.type === 'rolling') {
    v.windowType = 'rolling';
    v.minutes = text(w.minutes);
  } else {
    v.unit = text(w.unit) || v.unit;
    v.timeZone = text(w.timeZone) || 'UTC';
  }
  v.budget = rule.budget === undefined || rule.budget === null ? '' : text(rule.budget);
  v.levels = (Array.isArray(rule.levels) ? rule.levels : [])
    .map((l) => {
      const level = obj(l);
      return 'percent' in level ? `${text(level.percent)}%` : text(level.value);
    })
    .join(', ');
  v.forecast = rule.forecast === true;
  v.log = false;
  for (const raw of Array.isArray(rule.channels) ? rule.channels : []) {
    const c = obj(raw);
    if (c.type === 'log') v.log = true;
    else if (c.type === 'webhook' && !v.webhookUrl) {
      v.webhookUrl = text(c.url);
      v.webhookSecret = text(c.secret);
      v.webhookSecretUrl = v.webhookUrl;
    } else if (c.type === 'slack' && !v.slackUrl) v.slackUrl = text(c.url);
    else if (c.type === 'email' && !v.emailTo) {
      v.emailTo = (Array.isArray(c.to) ? c.to : []).map(text).join(', ');
    } else v.otherChannels.push(c);
  }
  v.enforce = rule.enforce === true;
  v.enabled = rule.enabled !== false;
  return v;
}

/** One line about a rule's window: "day (Europe/Berlin)" or "rolling 60 min". */
export function windowText(rule: Record<string, unknown>): string {
  const w = obj(rule.window);
  return w.type === 'rolling'
    ? `rolling ${text(w.minutes)} min`
    : `${text(w.unit)} (${text(w.timeZone) || 'UTC'})`;
}
