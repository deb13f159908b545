import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { OtlpProtoTypes } from '../otlp-protobuf.js';

/** `packages/server/otlp-fixtures/`: the recorded payloads (see its README). */
const FIXTURE_DIR = fileURLToPath(new URL('../../../otlp-fixtures/', import.meta.url));

export type FixtureName = 'ai-sdk-6' | 'openllmetry' | 'openinference';

export function readFixture(name: FixtureName): Buffer {
  return readFileSync(`${FIXTURE_DIR}${name}.pb`);
}

/** The usage the stub provider answered with when the fixtures were recorded. */
export function providerUsage(): {
  anthropic: {
    model: string;
    usage: {
      input_tokens: number;
      cache_creation_input_tokens: number;
      cache_read_input_tokens: number;
      output_tokens: number;
    };
  };
  openai: {
    model: string;
    usage: {
      prompt_tokens: number;
      completion_tokens: number;
      prompt_tokens_details: { cached_tokens: number };
    };
  };
} {
  return JSON.parse(readFileSync(`${FIXTURE_DIR}provider-usage.json`, 'utf8'));
}

/** A decoded request as protobuf.js plain objects (int64 as decimal strings, bytes as Buffers). */
export type RequestObject = { resourceSpans?: any[] };

export function toRequestObject(types: OtlpProtoTypes, body: Uint8Array): RequestObject {
  return types.request.toObject(types.request.decode(body), {
    longs: String,
    defaults: false,
  }) as RequestObject;
}

export function encodeRequestObject(types: OtlpProtoTypes, request: RequestObject): Buffer {
  return Buffer.from(types.request.encode(types.request.fromObject(request)).finish());
}

export function allSpans(request: RequestObject): any[] {
  return (request.resourceSpans ?? []).flatMap((rs) =>
    (rs.scopeSpans ?? []).flatMap((ss: any) => ss.spans ?? []),
  );
}

/**
 * Makes a recorded request current and fresh, in place: span times move so that the last span
 * ended `agoMs` before `nowMs` (durations kept), and every trace id is replaced by a new random
 * one (parent links inside a trace stay intact), so the same recording counts anew.
 */
export function refreshRequest(
  request: RequestObject,
  nowMs: number,
  agoMs = 60_000,
): RequestObject {
  const spans = allSpans(request);
  let lastEnd = 0n;
  for (const s of spans)
    if (BigInt(s.endTimeUnixNano ?? 0) > lastEnd) lastEnd = BigInt(s.endTimeUnixNano);
  const shift = BigInt(nowMs - agoMs) * 1_000_000n - lastEnd;
  const traces = new Map<string, Buffer>();
  for (const s of spans) {
    s.startTimeUnixNano = String(BigInt(s.startTimeUnixNano ?? 0) + shift);
    s.endTimeUnixNano = String(BigInt(s.endTimeUnixNano ?? 0) + shift);
    const old = Buffer.from(s.traceId).toString('hex');
    let fresh = traces.get(old);
    if (!fresh) {
      fresh = randomBytes(16);
      traces.set(old, fresh);
    }
    s.traceId = fresh;
  }
  return request;
}

const ID_FIELDS = new Set(['traceId', 'spanId', 'parentSpanId']);

/** The OTLP/JSON encoding of a request object: hex ids, int64 as strings, enums as integers. */
export function toOtlpJson(request: RequestObject): string {
  return JSON.stringify(request, function (key, value) {
    // `this[key]` is the raw value: Buffer.toJSON has already run on `value`.
    const raw = (this as Record<string, unknown>)[key];
    if (Buffer.isBuffer(raw) || raw instanceof Uint8Array) {
      const bytes = Buffer.from(raw as Uint8Array);
      return ID_FIELDS.has(key) ? bytes.toString('hex') : bytes.toString('base64');
    }
    return value;
  });
}
