import { EVENT_LIMITS } from '../event/usage-event.js';
import {
  compilePrincipalRules,
  type IdentityPart,
  identityPart,
  type PrincipalRule,
  parsePrincipalArn,
} from './identity-mapping.js';
import { bedrockRequestEventId } from './request-event-id.js';

/**
 * How invocation-log records are attributed to tokenwatch users and apps. In order: the
 * request's `requestMetadata` (Converse `requestMetadata`, InvokeModel's
 * `X-Amzn-Bedrock-Request-Metadata` header), then the principal table, then a part of the
 * caller's IAM identity, then the default.
 */
export interface InvocationLogMapping {
  /** `requestMetadata` keys that name the user, first present wins. */
  userMetadataKeys: readonly string[];
  /** `requestMetadata` keys that name the app, first present wins. */
  appMetadataKeys: readonly string[];
  /** Other `requestMetadata` keys copied into the event's tags (at most 16 tags). */
  tagMetadataKeys: readonly string[];
  /** IAM principal → app / user table; the first matching row wins. */
  principals: readonly PrincipalRule[];
  /** Which part of `identity.arn` is the user when nothing above names one. */
  userFromIdentity: IdentityPart;
  /** Which part of `identity.arn` is the app when nothing above names one. */
  appFromIdentity: IdentityPart;
  defaultUserId: string;
  defaultAppId: string;
  /** Error records (`errorCode` set) become `status: "error"` events; false skips them. */
  includeErrors: boolean;
}

export const DEFAULT_INVOCATION_LOG_MAPPING: InvocationLogMapping = {
  userMetadataKeys: ['userId', 'user_id', 'user'],
  appMetadataKeys: ['appId', 'app_id', 'app'],
  tagMetadataKeys: [],
  principals: [],
  userFromIdentity: 'session-name',
  appFromIdentity: 'role-name',
  defaultUserId: 'unknown',
  defaultAppId: 'bedrock',
  includeErrors: true,
};

/** Why a record gave no event. Stable codes: summaries and metrics count by them. */
export type SkipReason =
  | 'not_invocation_log' // JSON, but not a model invocation log record
  | 'unknown_schema_version'
  | 'missing_request_id'
  | 'invalid_timestamp'
  | 'missing_model_id'
  | 'missing_token_counts'
  | 'invalid_token_count'
  | 'absurd_token_count'
  | 'error_record_excluded';

/** A usage event in the wire shape (contract v1) that `validateEvent` takes. */
export interface WireUsageEvent {
  id: string;
  timestamp: number;
  userId: string;
  appId: string;
  modelId: string;
  provider: 'bedrock';
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  status: 'ok' | 'error';
  latencyMs?: number;
  tags?: Record<string, string>;
}

export type InvocationLogResult =
  | { ok: true; event: WireUsageEvent; requestId: string; operation: string | undefined }
  | { ok: false; reason: SkipReason; detail: string; requestId: string | undefined };

/**
 * No single Bedrock request reads or writes this many tokens of one class (the largest context
 * windows are a few million); a larger count is a corrupt record, not usage to bill.
 */
export const MAX_PLAUSIBLE_TOKENS = 50_000_000;

/** Schema versions of `ModelInvocationLog` this reader understands (AWS documents 1.0). */
const KNOWN_SCHEMA_MAJOR = '1';
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const TAG_KEY = /^[A-Za-z0-9_.:-]{1,64}$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function cleanString(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  if (trimmed.length === 0 || trimmed.length > max || CONTROL_CHARS.test(trimmed)) return undefined;
  return trimmed;
}

type Count =
  | { ok: true; value: number | undefined }
  | { ok: false; reason: SkipReason; detail: string };

/** A token count: absent is `undefined`; present must be a plausible non-negative integer. */
function readCount(value: unknown, field: string): Count {
  if (value === undefined || value === null) return { ok: true, value: undefined };
  // CloudWatch exports and some shippers turn numbers into strings or floats (`407.0`).
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || !Number.isInteger(n) || n < 0) {
    return {
      ok: false,
      reason: 'invalid_token_count',
      detail: `${field} must be a non-negative integer, got ${JSON.stringify(value)?.slice(0, 40)}`,
    };
  }
  if (n > MAX_PLAUSIBLE_TOKENS) {
    return {
      ok: false,
      reason: 'absurd_token_count',
      detail: `${field} is ${n}, more than ${MAX_PLAUSIBLE_TOKENS} tokens in one request`,
    };
  }
  return { ok: true, value: n === 0 ? 0 : n };
}

interface TokenFields {
  input: unknown;
  output: unknown;
  cacheRead: unknown;
  cacheWrite: unknown;
  source: string;
}

/**
 * Where a record's token counts are. The log's own counts (`input.inputTokenCount`, …) first;
 * records that lack them but carry the response body fall back on its usage: Converse
 * `usage.inputTokens…`, or the Anthropic Messages `usage.input_tokens…` of InvokeModel.
 */
function tokenFields(record: Json): TokenFields | undefined {
  const input = isObject(record.input) ? record.input : {};
  const output = isObject(record.output) ? record.output : {};
  if (input.inputTokenCount !== undefined || output.outputTokenCount !== undefined) {
    return {
      input: input.inputTokenCount,
      output: output.outputTokenCount,
      cacheRead: input.cacheReadInputTokenCount,
      cacheWrite: input.cacheWriteInputTokenCount,
      source: 'input.inputTokenCount',
    };
  }
  const body = isObject(output.outputBodyJson) ? output.outputBodyJson : undefined;
  const usage = body && isObject(body.usage) ? body.usage : undefined;
  if (usage && (usage.inputTokens !== undefined || usage.outputTokens !== undefined)) {
    return {
      input: usage.inputTokens,
      output: usage.outputTokens,
      cacheRead: usage.cacheReadInputTokens ?? usage.cacheReadInputTokenCount,
      cacheWrite: usage.cacheWriteInputTokens ?? usage.cacheWriteInputTokenCount,
      source: 'output.outputBodyJson.usage',
    };
  }
  if (usage && (usage.input_tokens !== undefined || usage.output_tokens !== undefined)) {
    return {
      input: usage.input_tokens,
      output: usage.output_tokens,
      cacheRead: usage.cache_read_input_tokens,
      cacheWrite: usage.cache_creation_input_tokens,
      source: 'output.outputBodyJson.usage',
    };
  }
  return undefined;
}

function parseTimestamp(value: unknown): number | undefined {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value > 1e12 ? value : undefined;
  }
  if (typeof value !== 'string' || !RFC3339_UTC.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

function metadataValue(metadata: Json | undefined, keys: readonly string[]): string | undefined {
  if (!metadata) return undefined;
  for (const key of keys) {
    const v = cleanString(metadata[key], EVENT_LIMITS.userIdMaxLength);
    if (v !== undefined) return v;
  }
  return undefined;
}

/**
 * Reads one model invocation log record into zero or one usage event. Pure and total: any
 * input, however malformed, gives either an event or a skip reason, never a throw.
 *
 * The event id is `bedrock:<requestId>` (the same the SDK's Bedrock middleware gives the call),
 * so a record read twice, or a call also captured by the SDK, is counted once.
 */
export function readInvocationLogRecord(
  raw: unknown,
  mapping: InvocationLogMapping = DEFAULT_INVOCATION_LOG_MAPPING,
  principalRule: (arn: string) => PrincipalRule | undefined = principalMatcher(mapping),
): InvocationLogResult {
  if (!isObject(raw)) {
    return {
      ok: false,
      reason: 'not_invocation_log',
      detail: `a record must be a JSON object, got ${Array.isArray(raw) ? 'an array' : typeof raw}`,
      requestId: undefined,
    };
  }
  const requestIdRaw = typeof raw.requestId === 'string' ? raw.requestId : undefined;
  const skip = (reason: SkipReason, detail: string): InvocationLogResult => ({
    ok: false,
    reason,
    detail,
    requestId: requestIdRaw,
  });
  const looksLikeLog =
    raw.schemaType === 'ModelInvocationLog' ||
    (raw.schemaType === undefined &&
      'modelId' in raw &&
      'requestId' in raw &&
      (isObject(raw.input) || isObject(raw.output)));
  if (!looksLikeLog) {
    return skip(
      'not_invocation_log',
      raw.schemaType === undefined
        ? 'no schemaType and not shaped like a model invocation log record'
        : `schemaType is ${JSON.stringify(raw.schemaType)?.slice(0, 60)}, not "ModelInvocationLog"`,
    );
  }
  if (raw.schemaVersion !== undefined) {
    const version = typeof raw.schemaVersion === 'string' ? raw.schemaVersion : '';
    if (version.split('.')[0] !== KNOWN_SCHEMA_MAJOR) {
      return skip(
        'unknown_schema_version',
        `schemaVersion ${JSON.stringify(raw.schemaVersion)?.slice(0, 40)} is not 1.x`,
      );
    }
  }
  const id = bedrockRequestEventId(requestIdRaw?.trim());
  if (id === undefined || requestIdRaw === undefined) {
    return skip('missing_request_id', 'requestId is missing or not an AWS request id');
  }
  const requestId = requestIdRaw.trim();
  const timestampMs = parseTimestamp(raw.timestamp);
  if (timestampMs === undefined) {
    return skip(
      'invalid_timestamp',
      `timestamp ${JSON.stringify(raw.timestamp)?.slice(0, 40) ?? 'is missing'}: want RFC 3339 with a zone`,
    );
  }
  const modelId = cleanString(raw.modelId, EVENT_LIMITS.modelIdMaxLength);
  if (modelId === undefined) return skip('missing_model_id', 'modelId is missing or empty');

  const errorCode = cleanString(raw.errorCode, 256);
  const isError = errorCode !== undefined;
  if (isError && !mapping.includeErrors) {
    return skip('error_record_excluded', `error record (${errorCode}) and includeErrors is off`);
  }
  const fields = tokenFields(raw);
  if (fields === undefined && !isError) {
    return skip(
      'missing_token_counts',
      'no input.inputTokenCount, output.outputTokenCount or usage',
    );
  }
  const counts = [
    readCount(fields?.input, 'input.inputTokenCount'),
    readCount(fields?.output, 'output.outputTokenCount'),
    readCount(fields?.cacheRead, 'input.cacheReadInputTokenCount'),
    readCount(fields?.cacheWrite, 'input.cacheWriteInputTokenCount'),
  ];
  const values: number[] = [];
  for (const c of counts) {
    if (!c.ok) return skip(c.reason, c.detail);
    values.push(c.value ?? 0);
  }
  const [inputTokens = 0, outputTokens = 0, cacheReadTokens = 0, cacheWriteTokens = 0] = values;

  const metadata = isObject(raw.requestMetadata) ? raw.requestMetadata : undefined;
  const arn = isObject(raw.identity) ? cleanString(raw.identity.arn, 2048) : undefined;
  const principal = arn === undefined ? undefined : parsePrincipalArn(arn);
  const rule = arn === undefined ? undefined : principalRule(arn);
  const fromIdentity = (part: IdentityPart) =>
    principal === undefined ? undefined : identityPart(principal, part);
  const userId =
    metadataValue(metadata, mapping.userMetadataKeys) ??
    rule?.userId ??
    fromIdentity(mapping.userFromIdentity) ??
    mapping.defaultUserId;
  const appId =
    metadataValue(metadata, mapping.appMetadataKeys) ??
    rule?.appId ??
    fromIdentity(mapping.appFromIdentity) ??
    mapping.defaultAppId;

  const event: WireUsageEvent = {
    id,
    timestamp: timestampMs,
    userId: userId.slice(0, EVENT_LIMITS.userIdMaxLength),
    appId: appId.slice(0, EVENT_LIMITS.appIdMaxLength),
    modelId,
    provider: 'bedrock',
    inputTokens,
    outputTokens,
    cacheReadTokens,
    cacheWriteTokens,
    status: isError ? 'error' : 'ok',
  };
  const latency = converseLatencyMs(raw);
  if (latency !== undefined) event.latencyMs = latency;
  const tags = metadataTags(metadata, mapping.tagMetadataKeys);
  if (tags) event.tags = tags;
  const operation = cleanString(raw.operation, 64);
  return { ok: true, event, requestId, operation };
}

/** The Converse response's own `metrics.latencyMs`, when the record carries the body. */
function converseLatencyMs(record: Json): number | undefined {
  const output = isObject(record.output) ? record.output : undefined;
  const body = output && isObject(output.outputBodyJson) ? output.outputBodyJson : undefined;
  const metrics = body && isObject(body.metrics) ? body.metrics : undefined;
  const v = metrics?.latencyMs;
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= EVENT_LIMITS.maxLatencyMs
    ? v
    : undefined;
}

function metadataTags(
  metadata: Json | undefined,
  keys: readonly string[],
): Record<string, string> | undefined {
  if (!metadata || keys.length === 0) return undefined;
  const tags: Record<string, string> = {};
  let n = 0;
  for (const key of keys) {
    if (n >= EVENT_LIMITS.maxTags || !TAG_KEY.test(key)) continue;
    const v = cleanString(metadata[key], EVENT_LIMITS.tagValueMaxLength);
    if (v === undefined) continue;
    tags[key] = v;
    n++;
  }
  return n === 0 ? undefined : tags;
}

/** The principal table of a mapping, compiled once and cached per ARN by the caller's reader. */
export function principalMatcher(
  mapping: InvocationLogMapping,
): (arn: string) => PrincipalRule | undefined {
  if (mapping.principals.length === 0) return () => undefined;
  const match = compilePrincipalRules(mapping.principals);
  return (arn) => match(parsePrincipalArn(arn));
}

/** A reader bound to one mapping (the principal table compiled once). */
export function createInvocationLogReader(
  mapping: InvocationLogMapping = DEFAULT_INVOCATION_LOG_MAPPING,
): (raw: unknown) => InvocationLogResult {
  const match = principalMatcher(mapping);
  return (raw) => readInvocationLogRecord(raw, mapping, match);
}
