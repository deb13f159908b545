import type { IncomingMessage } from 'node:http';
import {
  mapTraceRequest,
  type SpanMappingOptions,
  TokenwatchError,
  type TraceMapping,
  type ValidationContext,
} from '@tokenwatch/core';
import type { OtlpConfig } from '../../config/config-schema.js';
import { decodeJsonRequest } from '../../otlp/otlp-json.js';
import type { decodeProtobufRequest, OtlpProtoTypes } from '../../otlp/otlp-protobuf.js';
import {
  encodeExportResponse,
  encodeStatus,
  type OtlpEncoding,
  partialSuccessOf,
} from '../../otlp/otlp-response.js';
import type { AppDeps, Route } from '../app.js';
import type { ErrorResponse } from '../error-mapping.js';
import { parseJson, readBody } from '../read-body.js';
import { sendBytes } from '../respond.js';

const PROTOBUF_TYPE = /^application\/(x-)?protobuf(\s*;.*)?$/i;
const JSON_TYPE = /^application\/json(\s*;.*)?$/i;

function encodingOf(contentType: string | undefined): OtlpEncoding | undefined {
  if (contentType === undefined) return undefined;
  if (PROTOBUF_TYPE.test(contentType)) return 'protobuf';
  if (JSON_TYPE.test(contentType)) return 'json';
  return undefined;
}

export function spanMappingOptions(config: OtlpConfig): SpanMappingOptions {
  return {
    userAttributes: config.userAttributes,
    defaultUserId: config.defaultUserId,
    tagAttributes: config.tagAttributes.map((t) =>
      typeof t === 'string' ? { attribute: t, tag: t } : t,
    ),
  };
}

/** The developer-facing text of an error, with the details a client needs to fix it. */
function statusMessage(error: ErrorResponse): string {
  const { message, details } = error.body.error;
  if (!details || details.length === 0) return message;
  const listed = details
    .slice(0, 20)
    .map((d) => `${d.field}: ${d.reason}`)
    .filter((text) => !message.includes(text));
  return listed.length > 0 ? `${message} (${listed.join('; ')})` : message;
}

const EMPTY = Buffer.alloc(0);

/** protobuf.js's OTLP types and decoder, loaded with the first request (see otlpRoutes). */
interface ProtobufCodec {
  types: OtlpProtoTypes;
  decode: typeof decodeProtobufRequest;
}

/**
 * The request's events, decoded and mapped in one synchronous step: the decoded spans (every
 * attribute of every span) are garbage as soon as it returns, instead of living in the
 * handler's suspended frame while the events wait for the store's commit, where they would be
 * copied to the old generation with every request in flight.
 */
function decodeAndMap(
  codec: ProtobufCodec,
  encoding: OtlpEncoding,
  body: Buffer,
  options: SpanMappingOptions,
  ctx: ValidationContext,
): TraceMapping {
  const request =
    encoding === 'protobuf'
      ? codec.decode(codec.types, body)
      : decodeJsonRequest(body.length === 0 ? {} : parseJson(body));
  return mapTraceRequest(request, options, ctx);
}

/**
 * `POST /v1/traces`, the OTLP/HTTP trace receiver (README § OTLP): protobuf or JSON, gzip
 * accepted, authenticated by an ingest key. GenAI spans become usage events through the same
 * path as `POST /v1/events` (contract validation, pricing, the sink: group commit or the queue),
 * and the answer is the OTLP one: 200 with `partialSuccess` for spans that are not counted, a
 * `google.rpc.Status` in the request's encoding for 400/401/403/413/415, 503 + Retry-After
 * under pressure. A refused request stores nothing.
 */
export function otlpRoutes(deps: AppDeps): Route[] {
  // The protobuf codec (protobuf.js and the OTLP descriptors, ≈ 0.14 s of CPU) loads with the
  // first request, so a server that never receives OTLP does not load it.
  let codec: ProtobufCodec | undefined;
  const protobufCodec = async (): Promise<ProtobufCodec> => {
    if (codec === undefined) {
      const m = await import('../../otlp/otlp-protobuf.js');
      codec = { types: m.loadOtlpProtoTypes(), decode: m.decodeProtobufRequest };
    }
    return codec;
  };
  const options = spanMappingOptions(deps.config.otlp);
  const limit = deps.config.otlp.maxBodyBytes;
  const reject = (reason: string) => deps.metrics.rejectedRequests.inc({ reason });
  return [
    {
      method: 'POST',
      path: '/v1/traces',
      async handle({ req, res }) {
        try {
          const loaded = await protobufCodec();
          const encoding = encodingOf(req.headers['content-type']);
          if (encoding === undefined) {
            throw new TokenwatchError(
              'unsupported_media_type',
              `Content-Type "${req.headers['content-type'] ?? ''}" is not accepted; send application/x-protobuf or application/json (OTLP/HTTP).`,
            );
          }
          const principal = await deps.auth.authenticate(req.headers.authorization, 'ingest');
          let body: Buffer;
          try {
            body = await readBody(req, limit);
          } catch (err) {
            if (err instanceof TokenwatchError && err.code === 'payload_too_large') {
              throw new TokenwatchError(
                'payload_too_large',
                `The body is larger than ${limit} bytes (after decompression); export smaller batches (OTEL_BSP_MAX_EXPORT_BATCH_SIZE) or raise otlp.maxBodyBytes.`,
              );
            }
            throw err;
          }
          const mapping = decodeAndMap(loaded, encoding, body, options, {
            nowMs: deps.now(),
            boundAppId: principal.key.appId,
          });
          body = EMPTY;
          // What the answer and the metrics need is read before the wait for the store: the
          // mapping (every event as validated) is then garbage while the priced events wait for
          // the commit, rather than copied by each young-generation GC in between.
          const partialSuccess = partialSuccessOf(mapping);
          const { events, notUsage, wrappers, duplicates } = mapping;
          const counted = events.length;
          const refused = mapping.rejected.length;
          await deps.ingest.ingestEvents(events, principal);
          const spans = deps.metrics.otlpSpans;
          spans.inc({ outcome: 'counted' }, counted);
          spans.inc({ outcome: 'not_usage' }, notUsage);
          spans.inc({ outcome: 'wrapper' }, wrappers);
          spans.inc({ outcome: 'refused' }, refused);
          spans.inc({ outcome: 'duplicate' }, duplicates);
          const { contentType, body: out } = encodeExportResponse(
            loaded.types,
            encoding,
            partialSuccess,
          );
          sendBytes(res, 200, out, contentType);
        } catch (err) {
          reject(err instanceof TokenwatchError ? err.code : 'internal');
          throw err;
        }
      },
      renderError(error: ErrorResponse, req: IncomingMessage) {
        // The codec is loaded: the handler's first step loads it (json if that failed).
        return encodeStatus(
          codec?.types,
          (codec && encodingOf(req.headers['content-type'])) ?? 'json',
          error.status,
          statusMessage(error),
        );
      },
    },
  ];
}
