import {
  type OtlpAttributeValue,
  type OtlpResourceSpans,
  type OtlpSpan,
  TokenwatchError,
} from '@tokenwatch/core';
import protobuf from 'protobufjs/light.js';
import { OTLP_PROTO_DESCRIPTOR } from './otlp-proto-descriptor.js';
import { type Utf8Buffer, Utf8InternTable } from './utf8-intern.js';

/** The protobuf.js message types of the OTLP trace service, built once per process. */
export interface OtlpProtoTypes {
  request: protobuf.Type;
  response: protobuf.Type;
  status: protobuf.Type;
}

export function loadOtlpProtoTypes(): OtlpProtoTypes {
  const root = protobuf.Root.fromJSON(OTLP_PROTO_DESCRIPTOR as unknown as protobuf.INamespace);
  setUpWithCheapOneofs(root);
  return {
    request: root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest'),
    response: root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse'),
    status: root.lookupType('google.rpc.Status'),
  };
}

const ONEOF_MEMBER = Symbol('oneof member');

/**
 * protobuf.js's generated decoder names the member of a oneof it just read through the oneof's
 * virtual property (`m.value = "intValue"`), whose setter `delete`s every other member: on the
 * AnyValue of each attribute, that was the largest single cost of decoding a request (profile of
 * `npm run bench:otlp`). While this root's message classes are set up, the setter is swapped for
 * one that records the name (the last member read wins, as protobuf says); protobuf.js's own
 * helpers are put back at once, so no other user of the library is affected.
 */
function setUpWithCheapOneofs(root: protobuf.Root): void {
  const util = protobuf.util as unknown as {
    oneOfGetter: (names: string[]) => () => unknown;
    oneOfSetter: (names: string[]) => (name: string) => void;
  };
  const { oneOfGetter, oneOfSetter } = util;
  util.oneOfGetter = () =>
    function (this: Record<symbol, unknown>) {
      return this[ONEOF_MEMBER];
    };
  util.oneOfSetter = () =>
    function (this: Record<symbol, unknown>, name: string) {
      this[ONEOF_MEMBER] = name;
    };
  try {
    const visit = (ns: protobuf.NamespaceBase) => {
      for (const nested of ns.nestedArray) {
        if (nested instanceof protobuf.Type) void nested.ctor; // sets the class up now
        if (nested instanceof protobuf.Namespace) visit(nested);
      }
    };
    visit(root);
  } finally {
    util.oneOfGetter = oneOfGetter;
    util.oneOfSetter = oneOfSetter;
  }
}

/** The decoded shapes this module reads (protobuf.js camel-cases field names). */
interface LongLike {
  low: number;
  high: number;
  unsigned: boolean;
  toNumber(): number;
  toString(): string;
}
/** A `fixed64` (the span's times): a Long from protobuf.js's reader, a number without Long. */
type Fixed64 = number | LongLike;
/** An `int64` (attribute values): the same, or a number or bigint from ours (`int64AsNumber`). */
type Int64 = Fixed64 | bigint;
interface AnyValueMsg {
  /** The oneof member read last. */
  value?: string;
  stringValue?: string;
  boolValue?: boolean;
  intValue?: Int64;
  doubleValue?: number;
}
interface KeyValueMsg {
  key?: string;
  value?: AnyValueMsg | null;
}
interface SpanMsg {
  traceId?: string | Uint8Array;
  spanId?: string | Uint8Array;
  parentSpanId?: string | Uint8Array;
  name?: string;
  startTimeUnixNano?: Fixed64;
  endTimeUnixNano?: Fixed64;
  attributes?: KeyValueMsg[];
  status?: { code?: number } | null;
}
interface RequestMsg {
  resourceSpans?: Array<{
    resource?: { attributes?: KeyValueMsg[] } | null;
    scopeSpans?: Array<{ scope?: { name?: string } | null; spans?: SpanMsg[] }>;
  }>;
}

/** A `bytes` field: the hex text `bytesAsHex` read, or the bytes from another reader. */
function hex(bytes: string | Uint8Array | undefined): string {
  if (typeof bytes === 'string') return bytes;
  if (!bytes || bytes.length === 0) return '';
  // protobuf.js hands out Buffers on Node: no second view to allocate.
  if (Buffer.isBuffer(bytes)) return bytes.toString('hex');
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function unsigned64(value: Fixed64 | undefined): bigint {
  if (value === undefined) return 0n;
  if (typeof value === 'number') return BigInt(value);
  return (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0);
}

function signed64(value: Int64): number | bigint {
  if (typeof value === 'number' || typeof value === 'bigint') return value;
  const n = value.toNumber();
  return Number.isSafeInteger(n) ? n : BigInt(value.toString());
}

/** The member of the AnyValue oneof that was read last (see `setUpWithCheapOneofs`). */
function anyValue(v: AnyValueMsg | null | undefined): OtlpAttributeValue {
  switch (v?.value) {
    case 'stringValue':
      return v.stringValue ?? '';
    case 'intValue':
      return v.intValue === undefined ? 0 : signed64(v.intValue);
    case 'doubleValue':
      return v.doubleValue ?? 0;
    case 'boolValue':
      return v.boolValue ?? false;
    default:
      return null;
  }
}

function attributes(kvs: KeyValueMsg[] | undefined): Map<string, OtlpAttributeValue> {
  const map = new Map<string, OtlpAttributeValue>();
  if (kvs) for (const kv of kvs) map.set(kv.key ?? '', anyValue(kv.value));
  return map;
}

/** The parts of protobuf.js's reader on Node (a `BufferReader`) that this module's readers use. */
interface BufferReaderInternals {
  buf: Utf8Buffer;
  pos: number;
  len: number;
  uint32(): number;
  stringVerify(): string;
  bytes(): unknown;
  int64(): Int64;
}

/** protobuf.js's own `int64` reader (a Long), for the varints `int64AsNumber` leaves to it. */
const libraryInt64 = protobuf.Reader.prototype.int64 as unknown as (this: unknown) => LongLike;

/** One per process: the attribute keys and values of one export are mostly those of the last. */
const strings = new Utf8InternTable();

/**
 * protobuf.js 8 reads proto3 `string` fields (which must be valid UTF-8) with `stringVerify`: a
 * JavaScript decoder that appends 8 characters at a time, so every key and value longer than 12
 * characters is a cons string that each Map, trim and regexp after it flattens again. Measured
 * over whole requests (decode, span mapping, validation: 100k calls of `npm run bench:otlp`'s
 * spans), Node's native UTF-8 decoder costs 10–15 % less CPU; the intern table (`utf8-intern.ts`)
 * then hands back the same string for the same short bytes. Invalid UTF-8 is refused as before.
 */
function stringVerifyNative(this: BufferReaderInternals): string {
  const start = skipLengthDelimited(this);
  return strings.decode(this.buf, start, this.pos);
}

/** Reads a length prefix and moves past the field it delimits; returns where the field starts. */
function skipLengthDelimited(reader: BufferReaderInternals): number {
  const length = reader.uint32();
  const start = reader.pos;
  const end = start + length;
  if (end > reader.len)
    throw new RangeError(`index out of range: ${start} + ${length} > ${reader.len}`);
  reader.pos = end;
  return start;
}

/**
 * `bytes` fields as lowercase hex text: the request's only `bytes` are trace and span ids, which
 * the mapping wants as hex. protobuf.js reads each into a new Buffer view that was then turned
 * into hex and dropped: three views per span less to allocate (and to collect).
 */
function bytesAsHex(
  this: BufferReaderInternals & { buf: { hexSlice(s: number, e: number): string } },
): string {
  const start = skipLengthDelimited(this);
  return this.buf.hexSlice(start, this.pos);
}

/**
 * `int64` fields (attribute `intValue`s: the token counts) as a number. protobuf.js reads each
 * into a LongBits and then a Long, which the mapping turned into a number: decoding a span of
 * `npm run bench:otlp` allocated 3.6 KB with them, about 0.5 KB more than without (heap
 * sampling). A varint of up to 7 bytes (below 2^49, every real count) is read here; a longer one
 * (a huge or a negative value) is read by protobuf.js and kept exact: a number when it is a
 * safe integer, a bigint otherwise.
 */
function int64AsNumber(this: BufferReaderInternals): number | bigint {
  const { buf, len } = this;
  let pos = this.pos;
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 7 && pos < len; i++) {
    const byte = buf[pos++] as number;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      this.pos = pos;
      return value;
    }
    scale *= 128;
  }
  return signed64(libraryInt64.call(this));
}

/** A protobuf.js reader of `body` with this module's readers above (on this reader only). */
function readerOf(body: Uint8Array): protobuf.Reader {
  const buffer = Buffer.isBuffer(body)
    ? body
    : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const reader = protobuf.Reader.create(buffer);
  const internals = reader as unknown as BufferReaderInternals;
  // On Node protobuf.js reads Buffers with a BufferReader; anything else keeps its own strings.
  if (typeof internals.buf.utf8Slice === 'function') {
    internals.stringVerify = stringVerifyNative;
    internals.bytes = bytesAsHex;
    internals.int64 = int64AsNumber;
  }
  return reader;
}

/**
 * Decodes a binary `ExportTraceServiceRequest` with protobuf.js and the official definitions.
 * Bytes that are not such a message are refused (400) as a whole.
 */
export function decodeProtobufRequest(
  types: OtlpProtoTypes,
  body: Uint8Array,
): OtlpResourceSpans[] {
  let message: RequestMsg;
  try {
    message = types.request.decode(readerOf(body)) as unknown as RequestMsg;
  } catch (err) {
    throw new TokenwatchError(
      'invalid_body',
      `The body is not a protobuf ExportTraceServiceRequest: ${(err as Error).message}`,
    );
  }
  return (message.resourceSpans ?? []).map((rs) => {
    const spans: OtlpSpan[] = [];
    for (const ss of rs.scopeSpans ?? []) {
      const scopeName = ss.scope?.name ?? '';
      for (const s of ss.spans ?? []) {
        spans.push({
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          name: s.name ?? '',
          scopeName,
          startTimeUnixNano: unsigned64(s.startTimeUnixNano),
          endTimeUnixNano: unsigned64(s.endTimeUnixNano),
          statusCode: s.status?.code ?? 0,
          attributes: attributes(s.attributes),
        });
      }
    }
    return { resource: attributes(rs.resource?.attributes), spans };
  });
}
