import type { ValidationIssue } from '../errors.js';
import { EVENT_LIMITS, type UsageEvent } from '../event/usage-event.js';
import {
  type EventValidation,
  type ValidationContext,
  validateEvent,
} from '../event/validate-event.js';
import { base36 } from '../util/fingerprint.js';
import { firstString, MODEL_ATTRIBUTES, PROVIDER_ATTRIBUTES, wrapperMarker } from './genai-span.js';
import { hasUsageAttributes, readSpanUsage, type SpanUsage } from './genai-usage.js';
import {
  OTLP_STATUS_ERROR,
  type OtlpAttributes,
  type OtlpResourceSpans,
  type OtlpSpan,
} from './otlp-span.js';

/** A span attribute copied into a tag: `attribute`'s value becomes tag `tag`. */
export interface OtlpTagAttribute {
  attribute: string;
  tag: string;
}

export interface SpanMappingOptions {
  /** Attributes naming the user, first present wins; span attributes first, then the resource's. */
  userAttributes: readonly string[];
  /** The user of a call whose span names none (the contract requires one; the SDK says "anonymous"). */
  defaultUserId: string;
  /** The allow-list of attributes kept as tags (span first, then resource). */
  tagAttributes: readonly OtlpTagAttribute[];
}

/** A span with usage that was refused: which span, which attribute, why. */
export interface SpanRejection {
  traceId: string;
  spanId: string;
  /** The OTLP attribute or field at fault, e.g. `gen_ai.usage.input_tokens`. */
  field: string;
  reason: string;
}

export interface TraceMapping {
  /** One validated event per counted LLM call. */
  events: UsageEvent[];
  /** Spans in the request. */
  spans: number;
  /** Spans without token counts: not LLM calls (HTTP, DB, tool, … spans). */
  notUsage: number;
  /** Spans with token counts that repeat their children's (see `mapTraceRequest`). */
  wrappers: number;
  /** A span sent twice in the same request: counted once. */
  duplicates: number;
  /** Spans with usage that could not be counted, each with its reason. */
  rejected: SpanRejection[];
  /** Accepted spans with a dropped tag (its value broke the tag limits). */
  warnings: string[];
}

/** OTel's own default when a resource has no `service.name`. */
export const UNKNOWN_SERVICE = 'unknown_service';

/**
 * The event id of a span: `otlp-<time>-<traceId>-<spanId>`, all taken from the span, so an
 * exporter's retry carries the same id and is never counted twice. `<time>` is the event time
 * (epoch ms, 9 base-36 digits): ids then sort by time like the SDK's UUIDv7s, which keeps the
 * store's id index appending instead of writing all over it (random trace ids made `bench:otlp`
 * run at half the speed of `/v1/events` on 200,000 calls).
 */
export function spanEventId(traceId: string, spanId: string, timestampMs: number): string {
  const time =
    Number.isSafeInteger(timestampMs) && timestampMs >= 0
      ? base36(timestampMs)
      : timestampMs.toString(36);
  return `otlp-${time.padStart(9, '0')}-${traceId}-${spanId}`;
}

/**
 * Whether `id` is `hexDigits` lowercase hex digits, not all zero (an OTLP trace or span id as the
 * decoders render it). A loop, not a regexp: it runs twice per span.
 */
function isValidHexId(id: string, hexDigits: number): boolean {
  if (id.length !== hexDigits) return false;
  let nonZero = false;
  for (let i = 0; i < hexDigits; i++) {
    const c = id.charCodeAt(i);
    if (c === 0x30) continue;
    if (!((c > 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
    nonZero = true;
  }
  return nonZero;
}
const NANOS_PER_MS = 1_000_000n;

function scalarString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  return undefined;
}

function lookup(span: OtlpAttributes, resource: OtlpAttributes, key: string): string | undefined {
  const value = scalarString(span.get(key)) ?? scalarString(resource.get(key));
  return value === undefined || value.trim() === '' ? undefined : value;
}

/** Which OTLP source each contract field of an event came from, to name it in a refusal. */
type FieldSources = Record<string, string>;

function latencyOf(span: OtlpSpan): number | undefined {
  if (span.startTimeUnixNano <= 0n || span.endTimeUnixNano < span.startTimeUnixNano) {
    return undefined;
  }
  const micros = (span.endTimeUnixNano - span.startTimeUnixNano) / 1000n;
  const ms = Number(micros) / 1000;
  return ms <= EVENT_LIMITS.maxLatencyMs ? ms : undefined;
}

/**
 * The event a usage span stands for, before validation. `sources`, when given, is filled with
 * the OTLP source of each field: only a refusal needs them, so the mapping builds a candidate
 * again with them then (the same span gives the same candidate).
 */
function buildCandidate(
  span: OtlpSpan,
  resource: OtlpAttributes,
  usage: SpanUsage,
  options: SpanMappingOptions,
  boundAppId: string | undefined,
  sources?: FieldSources,
): { raw: Record<string, unknown>; missing?: SpanRejection } {
  if (sources) {
    sources.id = 'traceId/spanId';
    sources.timestamp = 'endTimeUnixNano';
  }
  const model = firstString(span.attributes, MODEL_ATTRIBUTES);
  if (!model) {
    return {
      raw: {},
      missing: {
        traceId: span.traceId,
        spanId: span.spanId,
        field: 'gen_ai.response.model',
        reason: `is missing: a span with token usage needs the model (${MODEL_ATTRIBUTES.slice(0, 2).join(' or ')}) to be priced`,
      },
    };
  }
  if (sources) sources.modelId = model.key;
  const provider = firstString(span.attributes, PROVIDER_ATTRIBUTES);
  if (provider && sources) sources.provider = provider.key;
  let userId = options.defaultUserId;
  for (const key of options.userAttributes) {
    const value = lookup(span.attributes, resource, key);
    if (value !== undefined) {
      userId = value;
      if (sources) sources.userId = key;
      break;
    }
  }
  const timestampMs = Number(
    (span.endTimeUnixNano > 0n ? span.endTimeUnixNano : span.startTimeUnixNano) / NANOS_PER_MS,
  );
  let appId: string | undefined;
  if (boundAppId === undefined) {
    const service = resource.get('service.name');
    appId = typeof service === 'string' && service.trim() !== '' ? service : UNKNOWN_SERVICE;
    if (sources) sources.appId = 'resource service.name';
  }
  // Every field in the literal, absent ones undefined (which the contract reads as absent):
  // one object shape, and no property store to grow as fields are added.
  const raw: Record<string, unknown> = {
    id: spanEventId(span.traceId, span.spanId, timestampMs),
    timestamp: timestampMs,
    userId,
    appId,
    modelId: model.value,
    provider: provider?.value.trim(),
    inputTokens: usage.inputTokens,
    outputTokens: usage.outputTokens,
    cacheReadTokens: usage.cacheReadTokens,
    cacheWriteTokens: usage.cacheWriteTokens,
    latencyMs: latencyOf(span),
    status: span.statusCode === OTLP_STATUS_ERROR ? 'error' : 'ok',
    tags: undefined,
  };
  if (options.tagAttributes.length > 0) {
    const tags: Record<string, string> = Object.create(null);
    let any = false;
    for (const { attribute, tag } of options.tagAttributes) {
      const value = lookup(span.attributes, resource, attribute);
      if (value === undefined) continue;
      tags[tag] = value;
      if (sources) sources[`tags.${tag}`] = attribute;
      any = true;
    }
    if (any) raw.tags = tags;
  }
  return { raw };
}

function rejection(span: OtlpSpan, issue: ValidationIssue, sources: FieldSources): SpanRejection {
  const source = sources[issue.field];
  return {
    traceId: span.traceId,
    spanId: span.spanId,
    field: source ?? issue.field,
    reason: source && source !== issue.field ? `(${issue.field}) ${issue.reason}` : issue.reason,
  };
}

/**
 * A candidate the event contract refused (`firstTry`, the same checks as `POST /v1/events`): a
 * tag whose value breaks the tag limits is dropped with a warning rather than losing the call;
 * any other issue refuses the span, naming the OTLP attribute it came from.
 */
function revalidateCandidate(
  span: OtlpSpan,
  raw: Record<string, unknown>,
  firstTry: Extract<EventValidation, { ok: false }>,
  sourcesOf: () => FieldSources,
  ctx: ValidationContext,
  warnings: string[],
): { event: UsageEvent } | { rejected: SpanRejection } {
  let result: EventValidation = firstTry;
  const sources = sourcesOf();
  if (raw.tags && result.issues.every((i) => i.field.startsWith('tags'))) {
    const tags = raw.tags as Record<string, string>;
    for (const issue of result.issues) {
      const tag = issue.field.slice('tags.'.length);
      warnings.push(
        `span ${span.spanId}: tag "${tag}" from ${sources[issue.field] ?? 'an attribute'} dropped: ${issue.reason}`,
      );
      delete tags[tag];
    }
    result = validateEvent(raw, ctx);
  }
  if (result.ok) return { event: result.event };
  const first = result.issues[0] as ValidationIssue;
  return { rejected: rejection(span, first, sources) };
}

function rejectSpan(out: TraceMapping, span: OtlpSpan, field: string, reason: string): void {
  out.rejected.push({ traceId: span.traceId, spanId: span.spanId, field, reason });
}

/** The key of a span in `wrappedUsageSpans`' maps. */
function spanKey(span: OtlpSpan): string {
  return `${span.traceId}/${span.spanId}`;
}

/**
 * The (trace id, span id) pairs of a request seen so far. Keyed by trace, then span: a key
 * string per span (a concatenation V8 must then flatten and hash) was a tenth of mapping a span.
 */
class SpanIdSet {
  private readonly byTrace = new Map<string, string | Set<string>>();

  /** Adds the pair; `false` when it was there already. */
  add(traceId: string, spanId: string): boolean {
    const seen = this.byTrace.get(traceId);
    if (seen === undefined) {
      this.byTrace.set(traceId, spanId);
      return true;
    }
    if (typeof seen === 'string') {
      if (seen === spanId) return false;
      this.byTrace.set(traceId, new Set([seen, spanId]));
      return true;
    }
    if (seen.has(spanId)) return false;
    seen.add(spanId);
    return true;
  }
}

/**
 * Rule 2b: the keys of the usage spans that have a usage span below them in this request,
 * through any number of spans. Each span is walked through at most once overall, so a deep or
 * cyclic parent chain stays linear. Only needed when some usage span has a parent.
 */
function wrappedUsageSpans(
  request: readonly OtlpResourceSpans[],
  usageSpans: ReadonlyArray<{ span: OtlpSpan }>,
): Set<string> {
  const byId = new Map<string, OtlpSpan>();
  for (const rs of request) {
    for (const span of rs.spans) {
      const key = spanKey(span);
      if (!byId.has(key)) byId.set(key, span);
    }
  }
  const usageKeys = new Set(usageSpans.map((u) => spanKey(u.span)));
  const hasUsageBelow = new Set<string>();
  const walked = new Set<string>();
  for (const { span } of usageSpans) {
    let parentKey = span.parentSpanId ? `${span.traceId}/${span.parentSpanId}` : undefined;
    while (parentKey !== undefined && !walked.has(parentKey)) {
      walked.add(parentKey);
      if (usageKeys.has(parentKey)) hasUsageBelow.add(parentKey);
      const parent = byId.get(parentKey);
      parentKey = parent?.parentSpanId ? `${parent.traceId}/${parent.parentSpanId}` : undefined;
    }
  }
  return hasUsageBelow;
}

/**
 * Maps one OTLP trace export to usage events, one per LLM call. The rules (README § OTLP):
 *
 * 1. A span is a usage span when it carries token counts of a known family (`genai-usage.ts`);
 *    other spans are not LLM calls and count nothing.
 * 2. Never twice — a usage span is a WRAPPER, and counts nothing, when
 *    a. its own attributes say it aggregates calls (`wrapperMarker`: agent/workflow/tool
 *       operations, the AI SDK's root spans, OpenInference CHAIN/AGENT…, Traceloop workflow/task),
 *       which holds across export requests; or
 *    b. another usage span of the same trace in this request descends from it (through any
 *       number of spans): the innermost span, the provider call, is the one counted.
 * 3. A counted span must have a model and valid counts; otherwise it is rejected with the
 *    attribute and the reason, and the request's other spans are still counted.
 *
 * The event id is `otlp-<time>-<traceId>-<spanId>` (`spanEventId`), so a retried export is a
 * duplicate, not a recount.
 */
export function mapTraceRequest(
  request: readonly OtlpResourceSpans[],
  options: SpanMappingOptions,
  ctx: ValidationContext,
): TraceMapping {
  const out: TraceMapping = {
    events: [],
    spans: 0,
    notUsage: 0,
    wrappers: 0,
    duplicates: 0,
    rejected: [],
    warnings: [],
  };
  // Pass 1: the usage spans.
  const usageSpans: Array<{ span: OtlpSpan; resource: OtlpAttributes }> = [];
  let usageSpanWithParent = false;
  for (const rs of request) {
    for (const span of rs.spans) {
      out.spans++;
      if (hasUsageAttributes(span.attributes)) {
        usageSpans.push({ span, resource: rs.resource });
        if (span.parentSpanId) usageSpanWithParent = true;
      } else {
        out.notUsage++;
      }
    }
  }
  const hasUsageBelow = usageSpanWithParent ? wrappedUsageSpans(request, usageSpans) : undefined;
  // Pass 3: each remaining usage span becomes an event, or a rejection.
  const seenIds = new SpanIdSet();
  for (const { span, resource } of usageSpans) {
    if (wrapperMarker(span.attributes) !== undefined || hasUsageBelow?.has(spanKey(span))) {
      out.wrappers++;
      continue;
    }
    if (!isValidHexId(span.traceId, 32)) {
      rejectSpan(out, span, 'traceId', 'must be 16 bytes and not all zero');
      continue;
    }
    if (!isValidHexId(span.spanId, 16)) {
      rejectSpan(out, span, 'spanId', 'must be 8 bytes and not all zero');
      continue;
    }
    if (!seenIds.add(span.traceId, span.spanId)) {
      out.duplicates++;
      continue;
    }
    const usage = readSpanUsage(span.attributes, span.scopeName);
    if (usage.kind === 'invalid') {
      rejectSpan(out, span, usage.field, usage.reason);
      continue;
    }
    if (usage.kind === 'none') {
      out.notUsage++;
      continue;
    }
    const candidate = buildCandidate(span, resource, usage.usage, options, ctx.boundAppId);
    if (candidate.missing) {
      out.rejected.push(candidate.missing);
      continue;
    }
    const firstTry = validateEvent(candidate.raw, ctx);
    if (firstTry.ok) {
      out.events.push(firstTry.event);
      continue;
    }
    const sourcesOf = () => {
      const sources: FieldSources = {};
      buildCandidate(span, resource, usage.usage, options, ctx.boundAppId, sources);
      return sources;
    };
    const result = revalidateCandidate(span, candidate.raw, firstTry, sourcesOf, ctx, out.warnings);
    if ('event' in result) out.events.push(result.event);
    else out.rejected.push(result.rejected);
  }
  return out;
}
