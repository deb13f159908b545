import {
  type OtlpAttributes,
  type OtlpAttributeValue,
  type OtlpResourceSpans,
  type OtlpSpan,
  TokenwatchError,
} from '@tokenwatch/core';

/**
 * Reads an OTLP/JSON `ExportTraceServiceRequest` (proto3 JSON with OTLP's deviations: hex trace
 * and span ids, integer enums, lowerCamelCase keys, unknown fields ignored; 64-bit ints as
 * strings or numbers). A value of the wrong JSON type is an encoding error, as a wrong wire type
 * is for protobuf: the whole request is refused (400) with the path of the value.
 */
export function decodeJsonRequest(body: unknown): OtlpResourceSpans[] {
  const root = object(body, '');
  const resourceSpans = optionalArray(root.resourceSpans, 'resourceSpans');
  return resourceSpans.map((rsValue, i) => {
    const path = `resourceSpans[${i}]`;
    const rs = object(rsValue, path);
    const resource =
      rs.resource === undefined || rs.resource === null
        ? new Map()
        : attributes(object(rs.resource, `${path}.resource`).attributes, `${path}.resource`);
    const spans: OtlpSpan[] = [];
    optionalArray(rs.scopeSpans, `${path}.scopeSpans`).forEach((ssValue, j) => {
      const ssPath = `${path}.scopeSpans[${j}]`;
      const ss = object(ssValue, ssPath);
      const scopeName =
        ss.scope === undefined || ss.scope === null
          ? ''
          : optionalString(object(ss.scope, `${ssPath}.scope`).name, `${ssPath}.scope.name`);
      optionalArray(ss.spans, `${ssPath}.spans`).forEach((spanValue, k) => {
        const spanPath = `${ssPath}.spans[${k}]`;
        spans.push(span(object(spanValue, spanPath), spanPath, scopeName));
      });
    });
    return { resource, spans };
  });
}

function invalid(path: string, reason: string): TokenwatchError {
  return new TokenwatchError('invalid_body', `OTLP/JSON: ${path || 'body'} ${reason}.`);
}

function kind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

function object(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(path, `must be an object, got ${kind(value)}`);
  }
  return value as Record<string, unknown>;
}

function optionalArray(value: unknown, path: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalid(path, `must be an array, got ${kind(value)}`);
  return value;
}

function optionalString(value: unknown, path: string): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw invalid(path, `must be a string, got ${kind(value)}`);
  return value;
}

const INTEGER = /^-?\d{1,20}$/;

/** A proto3 JSON 64-bit integer: a decimal string or a number. */
function int64(value: unknown, path: string): bigint {
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (typeof value === 'string' && INTEGER.test(value)) return BigInt(value);
  throw invalid(path, `must be an integer (a number or a decimal string), got ${kind(value)}`);
}

function time(value: unknown, path: string): bigint {
  if (value === undefined || value === null) return 0n;
  const nanos = int64(value, path);
  if (nanos < 0n || nanos >= 2n ** 64n) throw invalid(path, 'must be a fixed64 (0 to 2^64-1)');
  return nanos;
}

function anyValue(value: unknown, path: string): OtlpAttributeValue {
  if (value === undefined || value === null) return null;
  const v = object(value, path);
  if (v.stringValue !== undefined) return optionalString(v.stringValue, `${path}.stringValue`);
  if (v.boolValue !== undefined) {
    if (typeof v.boolValue !== 'boolean') {
      throw invalid(`${path}.boolValue`, `must be a boolean, got ${kind(v.boolValue)}`);
    }
    return v.boolValue;
  }
  if (v.intValue !== undefined) {
    const n = int64(v.intValue, `${path}.intValue`);
    if (n < -(2n ** 63n) || n >= 2n ** 63n) throw invalid(`${path}.intValue`, 'must be an int64');
    return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(n)
      : n;
  }
  if (v.doubleValue !== undefined) {
    if (typeof v.doubleValue === 'number') return v.doubleValue;
    // proto3 JSON spells the non-finite doubles as strings; a number as a string is allowed too.
    if (typeof v.doubleValue === 'string' && v.doubleValue.trim() !== '') {
      const d = Number(v.doubleValue);
      if (!Number.isNaN(d) || v.doubleValue === 'NaN') return d;
    }
    throw invalid(`${path}.doubleValue`, `must be a number, got ${kind(v.doubleValue)}`);
  }
  // arrayValue, kvlistValue, bytesValue: never a count, model or user id.
  return null;
}

function attributes(value: unknown, path: string): OtlpAttributes {
  const map = new Map<string, OtlpAttributeValue>();
  optionalArray(value, `${path}.attributes`).forEach((kvValue, i) => {
    const kvPath = `${path}.attributes[${i}]`;
    const kv = object(kvValue, kvPath);
    map.set(optionalString(kv.key, `${kvPath}.key`), anyValue(kv.value, `${kvPath}.value`));
  });
  return map;
}

function span(s: Record<string, unknown>, path: string, scopeName: string): OtlpSpan {
  let statusCode = 0;
  if (s.status !== undefined && s.status !== null) {
    const status = object(s.status, `${path}.status`);
    if (status.code !== undefined && status.code !== null) {
      if (typeof status.code !== 'number' || !Number.isInteger(status.code)) {
        throw invalid(
          `${path}.status.code`,
          `must be an integer enum value, got ${kind(status.code)}`,
        );
      }
      statusCode = status.code;
    }
  }
  return {
    traceId: optionalString(s.traceId, `${path}.traceId`).toLowerCase(),
    spanId: optionalString(s.spanId, `${path}.spanId`).toLowerCase(),
    parentSpanId: optionalString(s.parentSpanId, `${path}.parentSpanId`).toLowerCase(),
    name: optionalString(s.name, `${path}.name`),
    scopeName,
    startTimeUnixNano: time(s.startTimeUnixNano, `${path}.startTimeUnixNano`),
    endTimeUnixNano: time(s.endTimeUnixNano, `${path}.endTimeUnixNano`),
    statusCode,
    attributes: attributes(s.attributes, path),
  };
}
