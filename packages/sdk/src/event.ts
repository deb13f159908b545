/**
 * What became of the call (the collector counts each apart, see its README):
 * - `ok`: the provider answered and reported usage;
 * - `error`: the call failed;
 * - `no_usage`: the provider was called but its usage never arrived (streaming without usage, a
 *   proxy that drops it, a stream abandoned before its end); the tokens are what was known;
 * - `denied`: a budget guard refused the call before the provider received it; no tokens.
 */
export type CallStatus = 'ok' | 'error' | 'no_usage' | 'denied';

const STATUSES: ReadonlySet<string> = new Set<CallStatus>(['ok', 'error', 'no_usage', 'denied']);

/**
 * The usage event as sent on the wire (contract v1). Only these fields: the collector rejects
 * unknown fields, and prompts or completions are never part of it.
 * `inputTokens` are UNCACHED input tokens; `totalTokens = inputTokens + cacheReadTokens +
 * cacheWriteTokens + outputTokens`.
 */
export interface UsageEvent {
  id: string;
  /** Epoch milliseconds, or an RFC 3339 string with a zone. */
  timestamp: number | string;
  userId: string;
  appId?: string;
  modelId: string;
  provider?: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  latencyMs?: number;
  status: CallStatus;
  tags?: Record<string, string>;
}

/** What `record()` takes: the SDK fills the id, time, defaults and zeros. */
export interface UsageRecord {
  /** Leave unset: the SDK makes a UUIDv7. Set it only to make a retry of your own idempotent. */
  id?: string;
  timestamp?: number | string | Date;
  userId?: string;
  appId?: string;
  modelId: string;
  provider?: string;
  inputTokens?: number;
  outputTokens?: number;
  cacheReadTokens?: number;
  cacheWriteTokens?: number;
  latencyMs?: number;
  /** Default `ok`. */
  status?: CallStatus;
  tags?: Record<string, string | number | boolean | undefined>;
}

/** The contract's limits (the same numbers the collector enforces). */
export const LIMITS = {
  idMaxLength: 128,
  userIdMaxLength: 256,
  appIdMaxLength: 256,
  modelIdMaxLength: 512,
  providerMaxLength: 64,
  maxTokensPerField: 1_000_000_000,
  maxLatencyMs: 86_400_000,
  maxTags: 16,
  tagKeyMaxLength: 64,
  tagValueMaxLength: 256,
  maxEventsPerRequest: 1000,
  maxBodyBytes: 1024 * 1024,
} as const;

export interface EventDefaults {
  userId: string;
  appId: string | undefined;
  tags: Record<string, string> | undefined;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
const TAG_KEY = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Result of shaping a record into a wire event: the event, or the field that made it invalid. */
export type ShapeResult =
  | { ok: true; event: UsageEvent }
  | { ok: false; field: string; reason: string };

function badId(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string') return 'must be a string';
  if (value.length === 0) return 'must not be empty';
  if (value.length > max) return `must be at most ${max} characters`;
  if (CONTROL_CHARS.test(value)) return 'must not contain control characters';
  return undefined;
}

function badTokens(value: number): boolean {
  return !Number.isInteger(value) || value < 0 || value > LIMITS.maxTokensPerField;
}

function shapeTags(
  input: UsageRecord['tags'],
  defaults: Record<string, string> | undefined,
): Record<string, string> | undefined {
  if (!input) return defaults;
  const out: Record<string, string> = defaults ? { ...defaults } : {};
  let n = defaults ? Object.keys(defaults).length : 0;
  for (const key of Object.keys(input)) {
    const raw = input[key];
    if (raw === undefined || !TAG_KEY.test(key)) continue; // a bad tag never costs the event
    const value = String(raw);
    if (CONTROL_CHARS.test(value)) continue;
    if (!(key in out)) {
      if (n >= LIMITS.maxTags) continue;
      n++;
    }
    out[key] =
      value.length > LIMITS.tagValueMaxLength ? value.slice(0, LIMITS.tagValueMaxLength) : value;
  }
  return n === 0 ? undefined : out;
}

/**
 * Turns a record into a wire event the collector will accept, or says why it cannot. Tags are
 * lenient (a bad tag is dropped, a long value cut) because losing the usage over a label would
 * be worse; identifiers and token counts are strict because guessing them would miscount.
 */
export function shapeEvent(
  r: UsageRecord,
  id: string,
  nowMs: number,
  defaults: EventDefaults,
): ShapeResult {
  const userId = r.userId === undefined || r.userId === '' ? defaults.userId : r.userId;
  let why = badId(userId, LIMITS.userIdMaxLength);
  if (why) return { ok: false, field: 'userId', reason: why };
  why = badId(r.modelId, LIMITS.modelIdMaxLength);
  if (why) return { ok: false, field: 'modelId', reason: why };
  const appId = r.appId === undefined || r.appId === '' ? defaults.appId : r.appId;
  if (appId !== undefined) {
    why = badId(appId, LIMITS.appIdMaxLength);
    if (why) return { ok: false, field: 'appId', reason: why };
  }
  if (r.provider !== undefined) {
    why = badId(r.provider, LIMITS.providerMaxLength);
    if (why) return { ok: false, field: 'provider', reason: why };
  }
  const inputTokens = r.inputTokens ?? 0;
  const outputTokens = r.outputTokens ?? 0;
  const cacheReadTokens = r.cacheReadTokens ?? 0;
  const cacheWriteTokens = r.cacheWriteTokens ?? 0;
  if (badTokens(inputTokens))
    return { ok: false, field: 'inputTokens', reason: 'must be an integer 0..1e9' };
  if (badTokens(outputTokens))
    return { ok: false, field: 'outputTokens', reason: 'must be an integer 0..1e9' };
  if (badTokens(cacheReadTokens))
    return { ok: false, field: 'cacheReadTokens', reason: 'must be an integer 0..1e9' };
  if (badTokens(cacheWriteTokens))
    return { ok: false, field: 'cacheWriteTokens', reason: 'must be an integer 0..1e9' };

  const status = r.status ?? 'ok';
  if (!STATUSES.has(status)) {
    return { ok: false, field: 'status', reason: 'must be "ok", "error", "no_usage" or "denied"' };
  }
  if (status === 'denied' && inputTokens + outputTokens + cacheReadTokens + cacheWriteTokens > 0) {
    return { ok: false, field: 'status', reason: 'a denied call has no tokens' };
  }

  let timestamp: number | string = nowMs;
  if (r.timestamp !== undefined) {
    timestamp = r.timestamp instanceof Date ? r.timestamp.getTime() : r.timestamp;
    if (typeof timestamp === 'number' && !Number.isSafeInteger(timestamp)) {
      return { ok: false, field: 'timestamp', reason: 'must be integer epoch milliseconds' };
    }
  }
  if (r.id !== undefined) {
    why = badId(r.id, LIMITS.idMaxLength);
    if (why) return { ok: false, field: 'id', reason: why };
  }
  const event: UsageEvent = {
    id: r.id ?? id,
    timestamp,
    userId: userId as string,
    modelId: r.modelId,
    inputTokens,
    outputTokens,
    cacheReadTokens,
    cacheWriteTokens,
    status,
  };
  if (appId !== undefined) event.appId = appId;
  if (r.provider !== undefined) event.provider = r.provider;
  if (r.latencyMs !== undefined && Number.isFinite(r.latencyMs)) {
    event.latencyMs = Math.min(Math.max(r.latencyMs, 0), LIMITS.maxLatencyMs);
  }
  const tags = shapeTags(r.tags, defaults.tags);
  if (tags) event.tags = tags;
  return { ok: true, event };
}
