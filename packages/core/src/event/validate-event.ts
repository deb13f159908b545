import type { ValidationIssue } from '../errors.js';
import { EVENT_LIMITS, EVENT_STATUSES, type EventStatus, type UsageEvent } from './usage-event.js';

export interface ValidationContext {
  /** The server's clock, epoch ms: decides the accepted time window. */
  nowMs: number;
  /**
   * The app the API key is bound to, if any. An event without `appId` takes it; an event
   * naming another app is refused (the key may only write for its own app).
   */
  boundAppId?: string | undefined;
}

export type EventValidation =
  | { ok: true; event: UsageEvent }
  | { ok: false; issues: ValidationIssue[] };

const KNOWN_FIELDS: ReadonlySet<string> = new Set([
  'id',
  'timestamp',
  'userId',
  'appId',
  'modelId',
  'provider',
  'inputTokens',
  'outputTokens',
  'cacheReadTokens',
  'cacheWriteTokens',
  'latencyMs',
  'status',
  'tags',
]);

// RFC 3339 date-time; the zone is mandatory so that "local time" never silently means UTC.
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;
const NO_ZONE = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;
// C0 controls and DEL: never meaningful in an identifier, and dangerous in logs and CSV.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
const TAG_KEY = /^[A-Za-z0-9_.:-]+$/;
// A lone UTF-16 surrogate cannot be stored as UTF-8: it would come back as U+FFFD, garbled.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The smallest epoch-ms value that is plausibly milliseconds (2001-09-09) rather than seconds. */
const MIN_PLAUSIBLE_MS = 1e12;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return 'a string';
  return `a ${typeof value}`;
}

function checkIdentifier(
  value: unknown,
  field: string,
  maxLength: number,
  issues: ValidationIssue[],
): string | undefined {
  if (typeof value !== 'string') {
    issues.push({ field, reason: `must be a string, got ${describe(value)}` });
    return undefined;
  }
  if (value.length === 0) {
    issues.push({ field, reason: 'must not be empty' });
    return undefined;
  }
  if (value.length > maxLength) {
    issues.push({ field, reason: `must be at most ${maxLength} characters, got ${value.length}` });
    return undefined;
  }
  if (CONTROL_CHARS.test(value)) {
    issues.push({ field, reason: 'must not contain control characters' });
    return undefined;
  }
  if (LONE_SURROGATE.test(value)) {
    issues.push({ field, reason: 'must be well-formed Unicode (it has a lone surrogate)' });
    return undefined;
  }
  return value;
}

function checkTokens(value: unknown, field: string, issues: ValidationIssue[]): number | undefined {
  if (typeof value !== 'number') {
    issues.push({ field, reason: `must be an integer number of tokens, got ${describe(value)}` });
    return undefined;
  }
  if (!Number.isInteger(value)) {
    issues.push({ field, reason: `must be an integer, got ${value}` });
    return undefined;
  }
  if (value < 0) {
    issues.push({ field, reason: `must be >= 0, got ${value}` });
    return undefined;
  }
  if (!Number.isSafeInteger(value) || value > EVENT_LIMITS.maxTokensPerField) {
    issues.push({ field, reason: `must be at most ${EVENT_LIMITS.maxTokensPerField}` });
    return undefined;
  }
  return value === 0 ? 0 : value; // folds -0 into 0
}

function parseTimestamp(
  value: unknown,
  nowMs: number,
  issues: ValidationIssue[],
): number | undefined {
  const field = 'timestamp';
  let ms: number;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      issues.push({ field, reason: 'must be a non-negative integer of epoch milliseconds' });
      return undefined;
    }
    if (value > 0 && value < MIN_PLAUSIBLE_MS && value * 1000 > nowMs - EVENT_LIMITS.maxAgeMs) {
      issues.push({ field, reason: 'looks like epoch seconds; send epoch milliseconds' });
      return undefined;
    }
    ms = value;
  } else if (typeof value === 'string') {
    const m = RFC3339.exec(value);
    if (!m) {
      issues.push({
        field,
        reason: NO_ZONE.test(value)
          ? 'must include a time zone (Z or +hh:mm)'
          : 'must be an RFC 3339 date-time with a zone, e.g. 2026-01-31T12:00:00Z, or epoch milliseconds',
      });
      return undefined;
    }
    const [, y, mo, d, h, mi, s] = m;
    const month = Number(mo);
    const day = Number(d);
    const daysInMonth = new Date(Date.UTC(Number(y), month, 0)).getUTCDate();
    if (
      month < 1 ||
      month > 12 ||
      day < 1 ||
      day > daysInMonth ||
      Number(h) > 23 ||
      Number(mi) > 59 ||
      Number(s) > 59
    ) {
      issues.push({ field, reason: 'is not a valid calendar date-time' });
      return undefined;
    }
    ms = Date.parse(value.replace(' ', 'T'));
    if (!Number.isFinite(ms)) {
      issues.push({ field, reason: 'is not a valid date-time' });
      return undefined;
    }
  } else {
    issues.push({
      field,
      reason: `must be an RFC 3339 string or epoch milliseconds, got ${describe(value)}`,
    });
    return undefined;
  }
  if (ms < nowMs - EVENT_LIMITS.maxAgeMs) {
    issues.push({ field, reason: 'is more than 35 days in the past' });
    return undefined;
  }
  if (ms > nowMs + EVENT_LIMITS.maxFutureMs) {
    issues.push({ field, reason: 'is more than 5 minutes in the future' });
    return undefined;
  }
  return ms;
}

/** Validates a tag map as the event's `tags` (also used by `POST /v1/check`). */
export function checkTags(
  value: unknown,
  issues: ValidationIssue[],
): Readonly<Record<string, string>> | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isPlainObject(value)) {
    issues.push({ field: 'tags', reason: `must be an object of strings, got ${describe(value)}` });
    return undefined;
  }
  const keys = Object.keys(value);
  if (keys.length > EVENT_LIMITS.maxTags) {
    issues.push({ field: 'tags', reason: `must have at most ${EVENT_LIMITS.maxTags} keys` });
    return undefined;
  }
  if (keys.length === 0) return undefined;
  // Null prototype: a `__proto__` key in the input can never reach Object.prototype.
  const tags: Record<string, string> = Object.create(null);
  for (const key of keys) {
    const field = `tags.${key.slice(0, 64)}`;
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') {
      issues.push({ field, reason: 'is a reserved key name' });
      continue;
    }
    if (key.length > EVENT_LIMITS.tagKeyMaxLength || !TAG_KEY.test(key)) {
      issues.push({
        field,
        reason: `key must be 1-${EVENT_LIMITS.tagKeyMaxLength} characters of A-Z a-z 0-9 _ . : -`,
      });
      continue;
    }
    const tagValue = value[key];
    if (typeof tagValue !== 'string') {
      issues.push({ field, reason: `must be a string, got ${describe(tagValue)}` });
      continue;
    }
    if (
      tagValue.length > EVENT_LIMITS.tagValueMaxLength ||
      CONTROL_CHARS.test(tagValue) ||
      LONE_SURROGATE.test(tagValue)
    ) {
      issues.push({
        field,
        reason: `must be at most ${EVENT_LIMITS.tagValueMaxLength} characters without control characters`,
      });
      continue;
    }
    tags[key] = tagValue;
  }
  return tags;
}

/**
 * Validates one wire event. Collects every problem (not just the first) so a client can fix
 * them all at once. Never throws, whatever the input.
 */
export function validateEvent(raw: unknown, ctx: ValidationContext): EventValidation {
  const issues: ValidationIssue[] = [];
  if (!isPlainObject(raw)) {
    return {
      ok: false,
      issues: [{ field: '', reason: `event must be an object, got ${describe(raw)}` }],
    };
  }
  for (const key of Object.keys(raw)) {
    if (!KNOWN_FIELDS.has(key)) {
      issues.push({ field: key.slice(0, 64), reason: 'is not a field of the usage event (v1)' });
    }
  }
  const id = checkIdentifier(raw.id, 'id', EVENT_LIMITS.idMaxLength, issues);
  let timestampMs: number | undefined;
  if (raw.timestamp === undefined) issues.push({ field: 'timestamp', reason: 'is required' });
  else timestampMs = parseTimestamp(raw.timestamp, ctx.nowMs, issues);
  const userId = checkIdentifier(raw.userId, 'userId', EVENT_LIMITS.userIdMaxLength, issues);
  let appId: string | undefined;
  if (raw.appId === undefined && ctx.boundAppId !== undefined) {
    appId = ctx.boundAppId;
  } else {
    appId = checkIdentifier(raw.appId, 'appId', EVENT_LIMITS.appIdMaxLength, issues);
    if (appId !== undefined && ctx.boundAppId !== undefined && appId !== ctx.boundAppId) {
      issues.push({
        field: 'appId',
        reason: `this API key may only send events for app "${ctx.boundAppId}"`,
      });
      appId = undefined;
    }
  }
  const modelId = checkIdentifier(raw.modelId, 'modelId', EVENT_LIMITS.modelIdMaxLength, issues);
  let provider: string | undefined;
  if (raw.provider !== undefined) {
    provider = checkIdentifier(raw.provider, 'provider', EVENT_LIMITS.providerMaxLength, issues);
    provider = provider?.toLowerCase();
  }
  const inputTokens = checkTokens(raw.inputTokens, 'inputTokens', issues);
  const outputTokens = checkTokens(raw.outputTokens, 'outputTokens', issues);
  const cacheReadTokens =
    raw.cacheReadTokens === undefined
      ? 0
      : checkTokens(raw.cacheReadTokens, 'cacheReadTokens', issues);
  const cacheWriteTokens =
    raw.cacheWriteTokens === undefined
      ? 0
      : checkTokens(raw.cacheWriteTokens, 'cacheWriteTokens', issues);
  let latencyMs: number | undefined;
  if (raw.latencyMs !== undefined && raw.latencyMs !== null) {
    if (
      typeof raw.latencyMs !== 'number' ||
      !Number.isFinite(raw.latencyMs) ||
      raw.latencyMs < 0 ||
      raw.latencyMs > EVENT_LIMITS.maxLatencyMs
    ) {
      issues.push({
        field: 'latencyMs',
        reason: 'must be a number of milliseconds from 0 to 86400000',
      });
    } else {
      latencyMs = raw.latencyMs;
    }
  }
  let status: EventStatus = 'ok';
  if (raw.status !== undefined) {
    if ((EVENT_STATUSES as readonly unknown[]).includes(raw.status))
      status = raw.status as EventStatus;
    else
      issues.push({
        field: 'status',
        reason: `must be one of ${EVENT_STATUSES.map((s) => `"${s}"`).join(', ')}`,
      });
  }
  if (status === 'denied') {
    // A denied call never reached the provider: tokens on it would be counted as spent.
    for (const [field, value] of [
      ['inputTokens', inputTokens],
      ['outputTokens', outputTokens],
      ['cacheReadTokens', cacheReadTokens],
      ['cacheWriteTokens', cacheWriteTokens],
    ] as const) {
      if (value !== undefined && value !== 0)
        issues.push({
          field,
          reason: 'must be 0 when status is "denied" (the provider was never called)',
        });
    }
  }
  const tags = checkTags(raw.tags, issues);

  if (
    issues.length > 0 ||
    id === undefined ||
    timestampMs === undefined ||
    userId === undefined ||
    appId === undefined ||
    modelId === undefined ||
    inputTokens === undefined ||
    outputTokens === undefined ||
    cacheReadTokens === undefined ||
    cacheWriteTokens === undefined
  ) {
    return { ok: false, issues };
  }
  return {
    ok: true,
    event: {
      id,
      timestampMs,
      userId,
      appId,
      modelId,
      provider,
      inputTokens,
      outputTokens,
      cacheReadTokens,
      cacheWriteTokens,
      latencyMs,
      status,
      tags,
    },
  };
}

export interface BatchValidation {
  events: UsageEvent[];
  /** Every problem of every event, each with the event's index. Empty when all are valid. */
  issues: ValidationIssue[];
}

/** Largest number of events one request may carry. */
export const MAX_EVENTS_PER_REQUEST = 1000;
/** At most this many issues are reported; the rest are summarised in one line. */
const MAX_REPORTED_ISSUES = 100;

/**
 * Validates a request body: either `{"events": [...]}` or one event object. The request is
 * atomic: if any event is invalid, none is accepted, and every issue names its event index.
 */
export function validateBatch(body: unknown, ctx: ValidationContext): BatchValidation {
  let items: unknown[];
  let batched = false;
  if (isPlainObject(body) && Object.hasOwn(body, 'events')) {
    const extra = Object.keys(body).filter((k) => k !== 'events');
    if (extra.length > 0) {
      return {
        events: [],
        issues: extra.map((k) => ({
          field: k.slice(0, 64),
          reason: 'is not allowed next to "events"',
        })),
      };
    }
    if (!Array.isArray(body.events)) {
      return { events: [], issues: [{ field: 'events', reason: 'must be an array of events' }] };
    }
    items = body.events;
    batched = true;
  } else if (isPlainObject(body)) {
    items = [body];
  } else {
    return {
      events: [],
      issues: [
        {
          field: '',
          reason: `body must be an event object or {"events":[...]}, got ${describe(body)}`,
        },
      ],
    };
  }
  if (items.length === 0) {
    return { events: [], issues: [{ field: 'events', reason: 'must contain at least one event' }] };
  }
  if (items.length > MAX_EVENTS_PER_REQUEST) {
    return {
      events: [],
      issues: [
        {
          field: 'events',
          reason: `must contain at most ${MAX_EVENTS_PER_REQUEST} events, got ${items.length}`,
        },
      ],
    };
  }
  const events: UsageEvent[] = [];
  const issues: ValidationIssue[] = [];
  let dropped = 0;
  for (let index = 0; index < items.length; index++) {
    const result = validateEvent(items[index], ctx);
    if (result.ok) {
      events.push(result.event);
      continue;
    }
    for (const issue of result.issues) {
      if (issues.length < MAX_REPORTED_ISSUES) {
        issues.push(batched ? { index, ...issue } : issue);
      } else {
        dropped++;
      }
    }
  }
  if (dropped > 0) {
    issues.push({ field: '', reason: `${dropped} more issues not listed` });
  }
  return { events: issues.length > 0 ? [] : events, issues };
}
