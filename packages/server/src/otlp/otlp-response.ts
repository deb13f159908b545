import type { TraceMapping } from '@tokenwatch/core';
import type { OtlpProtoTypes } from './otlp-protobuf.js';

/** The two OTLP/HTTP encodings; an answer uses the request's (OTLP spec § OTLP/HTTP Response). */
export type OtlpEncoding = 'protobuf' | 'json';

export const CONTENT_TYPES: Record<OtlpEncoding, string> = {
  protobuf: 'application/x-protobuf',
  json: 'application/json',
};

export interface EncodedBody {
  contentType: string;
  body: Buffer;
}

export interface PartialSuccess {
  rejectedSpans: number;
  errorMessage: string;
}

/** `ExportTraceServiceResponse`: empty on full success, `partialSuccess` otherwise. */
export function encodeExportResponse(
  types: OtlpProtoTypes,
  encoding: OtlpEncoding,
  partial: PartialSuccess | undefined,
): EncodedBody {
  if (encoding === 'json') {
    // proto3 JSON writes int64 as a decimal string.
    const body = partial
      ? {
          partialSuccess: {
            rejectedSpans: String(partial.rejectedSpans),
            errorMessage: partial.errorMessage,
          },
        }
      : {};
    return { contentType: CONTENT_TYPES.json, body: Buffer.from(JSON.stringify(body)) };
  }
  const message = types.response.fromObject(partial ? { partialSuccess: partial } : {});
  return {
    contentType: CONTENT_TYPES.protobuf,
    body: Buffer.from(types.response.encode(message).finish()),
  };
}

/** google.rpc.Code for an HTTP status (the OTLP spec says clients do not act on it). */
function rpcCode(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
    case 415:
      return 3; // INVALID_ARGUMENT
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 5; // NOT_FOUND
    case 413:
    case 429:
      return 8; // RESOURCE_EXHAUSTED
    case 503:
      return 14; // UNAVAILABLE
    default:
      return 13; // INTERNAL
  }
}

/** The body of every 4xx/5xx answer: a `google.rpc.Status` in the request's encoding. */
export function encodeStatus(
  types: OtlpProtoTypes | undefined,
  encoding: OtlpEncoding,
  httpStatus: number,
  message: string,
): EncodedBody {
  const status = { code: rpcCode(httpStatus), message };
  if (encoding === 'json' || types === undefined) {
    return { contentType: CONTENT_TYPES.json, body: Buffer.from(JSON.stringify(status)) };
  }
  return {
    contentType: CONTENT_TYPES.protobuf,
    body: Buffer.from(types.status.encode(types.status.fromObject(status)).finish()),
  };
}

/** At most this many refused spans are listed one by one; the answer stays far below 4 MiB. */
const MAX_LISTED_REJECTIONS = 20;

/**
 * The partial-success report of a mapped request: every span that became no event is counted
 * in `rejectedSpans` (not LLM calls, wrappers, refused), and the message says why.
 * `undefined` when every span was counted and nothing needs saying.
 */
export function partialSuccessOf(mapping: TraceMapping): PartialSuccess | undefined {
  const rejected = mapping.notUsage + mapping.wrappers + mapping.rejected.length;
  if (rejected === 0 && mapping.warnings.length === 0) return undefined;
  const parts: string[] = [
    `${mapping.events.length} of ${mapping.spans} spans counted as LLM calls.`,
  ];
  if (mapping.notUsage > 0) {
    parts.push(`${mapping.notUsage} spans carry no token usage (not LLM calls).`);
  }
  if (mapping.wrappers > 0) {
    parts.push(
      `${mapping.wrappers} spans wrap LLM calls counted on their own spans (not counted twice).`,
    );
  }
  if (mapping.rejected.length > 0) {
    const listed = mapping.rejected
      .slice(0, MAX_LISTED_REJECTIONS)
      .map((r) => `span ${r.traceId}/${r.spanId}: ${r.field} ${r.reason}`);
    const more = mapping.rejected.length - listed.length;
    parts.push(
      `${mapping.rejected.length} spans with usage refused: ${listed.join('; ')}${more > 0 ? `; and ${more} more` : ''}.`,
    );
  }
  for (const warning of mapping.warnings.slice(0, MAX_LISTED_REJECTIONS)) parts.push(`${warning}.`);
  return { rejectedSpans: rejected, errorMessage: parts.join(' ') };
}
