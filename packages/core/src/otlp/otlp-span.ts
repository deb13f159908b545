/**
 * The parts of an OTLP `ExportTraceServiceRequest` the usage mapping reads, independent of the
 * wire encoding: the server's protobuf and JSON decoders both produce this shape, so the same
 * span maps to the same event whichever encoding the exporter used.
 */

/**
 * A scalar attribute value. OTLP `intValue` is an int64: it is a `number` when it is a safe
 * integer, a `bigint` otherwise (so a huge or negative count is seen as such, never rounded).
 * Arrays, key-value lists and bytes are `null`: present, but never a token count, model or user.
 */
export type OtlpAttributeValue = string | number | bigint | boolean | null;

export type OtlpAttributes = ReadonlyMap<string, OtlpAttributeValue>;

/** OTLP `Status.code`. */
export const OTLP_STATUS_ERROR = 2;

export interface OtlpSpan {
  /** Lower-case hex of the 16-byte trace id; `''` when absent. */
  traceId: string;
  /** Lower-case hex of the 8-byte span id; `''` when absent. */
  spanId: string;
  /** Lower-case hex, `''` for a root span. */
  parentSpanId: string;
  name: string;
  /** The instrumentation scope's name (e.g. `@traceloop/instrumentation-anthropic`); `''` if none. */
  scopeName: string;
  /** Nanoseconds since the epoch (OTLP fixed64); 0n when absent. */
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  /** 0 unset, 1 ok, 2 error. */
  statusCode: number;
  attributes: OtlpAttributes;
}

/** One `ResourceSpans`: the resource's attributes and its spans (all scopes flattened). */
export interface OtlpResourceSpans {
  resource: OtlpAttributes;
  spans: readonly OtlpSpan[];
}
