import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { decodeJsonRequest } from './otlp-json.js';
import { OTLP_PROTO_DESCRIPTOR } from './otlp-proto-descriptor.js';
import { decodeProtobufRequest, loadOtlpProtoTypes } from './otlp-protobuf.js';
import { parseVendoredProtos } from './proto-source.js';
import { encodeRequestObject, toOtlpJson } from './testing/otlp-payloads.js';

const types = loadOtlpProtoTypes();

describe('the OTLP protobuf definitions', () => {
  it('the committed descriptor is exactly what the vendored .proto files say (npm run gen:otlp-proto)', () => {
    expect(OTLP_PROTO_DESCRIPTOR).toEqual(parseVendoredProtos());
  });

  it('loading them leaves protobuf.js itself unchanged for other users', () => {
    const fresh = protobuf.Root.fromJSON(parseVendoredProtos());
    const AnyValue = fresh.lookupType('opentelemetry.proto.common.v1.AnyValue');
    const decoded = AnyValue.decode(AnyValue.encode(AnyValue.fromObject({ intValue: 7 })).finish());
    expect((decoded as unknown as { value: string }).value).toBe('intValue');
    expect(Object.keys(decoded)).toEqual(['intValue']);
    // Our setter leaves a symbol-keyed note on the message; protobuf.js's own does not.
    expect(Object.getOwnPropertySymbols(decoded)).toEqual([]);
    const ours = types.request.root.lookupType('opentelemetry.proto.common.v1.AnyValue');
    const mine = ours.decode(ours.encode(ours.fromObject({ intValue: 7 })).finish());
    expect(Object.getOwnPropertySymbols(mine)).toHaveLength(1);
  });
});

const request = {
  resourceSpans: [
    {
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] },
      scopeSpans: [
        {
          scope: { name: 'scope-a' },
          spans: [
            {
              traceId: Buffer.from('5b8efff798038103d269b633813fc60c', 'hex'),
              spanId: Buffer.from('eee19b7ec3c1b174', 'hex'),
              parentSpanId: Buffer.from('eee19b7ec3c1b173', 'hex'),
              name: 'chat',
              startTimeUnixNano: '1767225600000000001',
              endTimeUnixNano: '1767225601234567891',
              attributes: [
                { key: 's', value: { stringValue: 'x' } },
                { key: 'i', value: { intValue: '1200' } },
                { key: 'neg', value: { intValue: '-5' } },
                { key: 'big', value: { intValue: '9223372036854775807' } },
                // Around the 7-byte varints the server reads itself and the longer ones
                // protobuf.js reads (otlp-protobuf.ts, int64AsNumber).
                { key: '2^49-1', value: { intValue: '562949953421311' } },
                { key: '2^49', value: { intValue: '562949953421312' } },
                { key: '2^53-1', value: { intValue: '9007199254740991' } },
                { key: '2^53', value: { intValue: '9007199254740992' } },
                { key: 'min', value: { intValue: '-9223372036854775808' } },
                { key: 'd', value: { doubleValue: 1.5 } },
                { key: 'b', value: { boolValue: true } },
                { key: 'arr', value: { arrayValue: { values: [{ stringValue: 'a' }] } } },
              ],
              status: { code: 2 },
            },
          ],
        },
      ],
    },
  ],
};

describe('decoding: protobuf and OTLP/JSON give the same spans', () => {
  const expected = [
    {
      resource: new Map([['service.name', 'svc']]),
      spans: [
        {
          traceId: '5b8efff798038103d269b633813fc60c',
          spanId: 'eee19b7ec3c1b174',
          parentSpanId: 'eee19b7ec3c1b173',
          name: 'chat',
          scopeName: 'scope-a',
          startTimeUnixNano: 1767225600000000001n,
          endTimeUnixNano: 1767225601234567891n,
          statusCode: 2,
          attributes: new Map<string, unknown>([
            ['s', 'x'],
            ['i', 1200],
            ['neg', -5],
            ['big', 9223372036854775807n],
            ['2^49-1', 562949953421311],
            ['2^49', 562949953421312],
            ['2^53-1', 9007199254740991],
            ['2^53', 9007199254740992n],
            ['min', -9223372036854775808n],
            ['d', 1.5],
            ['b', true],
            ['arr', null],
          ]),
        },
      ],
    },
  ];

  it('protobuf', () => {
    expect(decodeProtobufRequest(types, encodeRequestObject(types, request))).toEqual(expected);
  });

  it('JSON (ints as strings or numbers, upper-case hex ids)', () => {
    const json = JSON.parse(toOtlpJson(request));
    const span = json.resourceSpans[0].scopeSpans[0].spans[0];
    span.traceId = span.traceId.toUpperCase();
    span.attributes[1].value.intValue = 1200;
    expect(decodeJsonRequest(json)).toEqual(expected);
  });

  it('a oneof sent twice on the wire: the last member wins', () => {
    const AnyValue = types.request.root.lookupType('opentelemetry.proto.common.v1.AnyValue');
    const KeyValue = types.request.root.lookupType('opentelemetry.proto.common.v1.KeyValue');
    const str = AnyValue.encode(AnyValue.fromObject({ stringValue: 'x' })).finish();
    const int = AnyValue.encode(AnyValue.fromObject({ intValue: 7 })).finish();
    // KeyValue.value (field 2) twice: protobuf merges the two AnyValue messages.
    const kv = Buffer.concat([
      KeyValue.encode(KeyValue.fromObject({ key: 'k' })).finish(),
      Buffer.from([0x12, str.length]),
      str,
      Buffer.from([0x12, int.length]),
      int,
    ]);
    const spanBytes = Buffer.concat([Buffer.from([0x4a, kv.length]), kv]); // Span.attributes = 9
    const scope = Buffer.concat([Buffer.from([0x12, spanBytes.length]), spanBytes]);
    const rs = Buffer.concat([Buffer.from([0x12, scope.length]), scope]);
    const body = Buffer.concat([Buffer.from([0x0a, rs.length]), rs]);
    const decoded = decodeProtobufRequest(types, body);
    expect(decoded[0]?.spans[0]?.attributes.get('k')).toBe(7);
  });

  it('an int64 varint cut short inside its message is refused, whatever its length', () => {
    const AnyValue = types.request.root.lookupType('opentelemetry.proto.common.v1.AnyValue');
    const bodyWith = (any: Uint8Array) => {
      const kv = Buffer.concat([Buffer.from([0x12, any.length]), any]); // KeyValue.value
      const span = Buffer.concat([Buffer.from([0x4a, kv.length]), kv]); // Span.attributes
      const scope = Buffer.concat([Buffer.from([0x12, span.length]), span]);
      const rs = Buffer.concat([Buffer.from([0x12, scope.length]), scope]);
      return Buffer.concat([Buffer.from([0x0a, rs.length]), rs]);
    };
    for (const n of ['1', '300', '562949953421311', '562949953421312', '-1']) {
      const any = AnyValue.encode(AnyValue.fromObject({ intValue: n })).finish();
      expect(decodeProtobufRequest(types, bodyWith(any))[0]?.spans[0]?.attributes.get('')).toBe(
        Number(n),
      );
      // The varint without its last byte, every length prefix around it telling the truth.
      expect(() => decodeProtobufRequest(types, bodyWith(any.subarray(0, any.length - 1)))).toThrow(
        /not a protobuf ExportTraceServiceRequest/,
      );
    }
  });

  it('strings: any valid UTF-8 (a U+FFFD sent as such too) is read as sent; invalid UTF-8 refuses the request', () => {
    const withValue = (value: string) => ({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: value } }] },
          scopeSpans: [],
        },
      ],
    });
    for (const value of ['plain', 'Grüße, 世界 🙂', 'sent \uFFFD as is', 'x'.repeat(300)]) {
      const decoded = decodeProtobufRequest(types, encodeRequestObject(types, withValue(value)));
      expect(decoded[0]?.resource.get('service.name')).toBe(value);
    }
    // The same request with two bytes of "ZZ" replaced by an invalid sequence (0xC3 0x28).
    const good = encodeRequestObject(types, withValue('aZZb'));
    const at = good.indexOf('ZZ');
    const bad = Buffer.from(good);
    bad[at] = 0xc3;
    bad[at + 1] = 0x28;
    expect(() => decodeProtobufRequest(types, bad)).toThrow(
      /not a protobuf ExportTraceServiceRequest/,
    );
    expect(() => decodeProtobufRequest(types, good)).not.toThrow();
  });
});
