import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { context, trace } from '@opentelemetry/api';
import { OTLPTraceExporter as HttpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  NodeTracerProvider,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpResponse } from '../testing/http-client.js';
import {
  createKey,
  killStartedServers,
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from '../testing/server-process.js';
import { TokenwatchApi } from '../testing/tokenwatch-api.js';
import { loadOtlpProtoTypes } from './otlp-protobuf.js';
import { encodeRequestObject, type RequestObject, toOtlpJson } from './testing/otlp-payloads.js';
import { PRICES, storedUsage, times, usage, usageDelta, usageKey } from './testing/otlp-usage.js';

/**
 * Issue 14 against `tokenwatch serve` as its own process: the real OpenTelemetry JS SDK exporting
 * with both the protobuf and the JSON exporter; OTLP answers for every refusal (in the request's
 * encoding), nothing stored from a refused request; 10,000 spans in one request.
 */

const types = loadOtlpProtoTypes();
let server: ServerProcess;
let api: TokenwatchApi;
let ingestKey: string;
let adminKey: string;

beforeAll(async () => {
  server = await startServerProcess();
  api = new TokenwatchApi(server.url);
  ingestKey = server.ingestKey as string;
  adminKey = server.adminKey as string;
});

afterAll(async () => {
  if (server) {
    const exit = await server.kill('SIGTERM');
    expect(exit.code).toBe(0);
    removeDataDir(server.dataDir);
  }
  await killStartedServers();
});

/** Creates the spans of one agent run: an agent span around two chat calls and a tool call. */
function emitAgentRun(provider: NodeTracerProvider, user: string): void {
  const tracer = provider.getTracer('tokenwatch-test');
  const agent = tracer.startSpan('invoke_agent planner', {
    attributes: {
      'gen_ai.operation.name': 'invoke_agent',
      'gen_ai.usage.input_tokens': 3500,
      'gen_ai.usage.output_tokens': 140,
      'user.id': user,
    },
  });
  const parent = trace.setSpan(context.active(), agent);
  const first = tracer.startSpan(
    'chat claude-sonnet-4-5',
    {
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'anthropic',
        'gen_ai.request.model': 'claude-sonnet-4-5',
        'gen_ai.response.model': 'claude-sonnet-4-5-20250929',
        // Current semconv: input_tokens INCLUDES the cache: 2000 = 300 + 1500 + 200.
        'gen_ai.usage.input_tokens': 2000,
        'gen_ai.usage.cache_read.input_tokens': 1500,
        'gen_ai.usage.cache_creation.input_tokens': 200,
        'gen_ai.usage.output_tokens': 100,
        'user.id': user,
      },
    },
    parent,
  );
  first.end();
  const tool = tracer.startSpan(
    'execute_tool search',
    { attributes: { 'gen_ai.tool.name': 'search' } },
    parent,
  );
  tool.end();
  const second = tracer.startSpan(
    'chat gpt-4o-mini',
    {
      attributes: {
        'gen_ai.operation.name': 'chat',
        // Deprecated names, as instrumentations built on semconv ≤ 1.36 still send them.
        'gen_ai.system': 'openai',
        'gen_ai.request.model': 'gpt-4o-mini',
        'gen_ai.usage.prompt_tokens': 1500,
        'gen_ai.usage.cache_read_input_tokens': 1024,
        'gen_ai.usage.completion_tokens': 40,
        'user.id': user,
      },
    },
    parent,
  );
  second.setStatus({ code: 2, message: 'rate limited after streaming' });
  second.end();
  agent.end();
}

const SONNET_CALL = usage(PRICES.claudeSonnet45, {
  inputTokens: 300,
  cacheReadTokens: 1500,
  cacheWriteTokens: 200,
  outputTokens: 100,
});
const MINI_CALL = usage(PRICES.gpt4oMini, {
  inputTokens: 476,
  cacheReadTokens: 1024,
  outputTokens: 40,
  errors: 1,
});

async function exportWith(exporter: SpanExporter, user: string, runs: number): Promise<void> {
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'planner-svc' }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 60_000 })],
  });
  for (let i = 0; i < runs; i++) emitAgentRun(provider, user);
  await provider.forceFlush();
  await provider.shutdown();
}

describe('the OpenTelemetry JS SDK exporting to serve', () => {
  it('exporter-trace-otlp-proto (protobuf, gzip): exact classes and cost, agent span not counted', async () => {
    const before = await storedUsage(api, adminKey);
    await exportWith(
      new ProtobufExporter({
        url: `${server.url}/v1/traces`,
        headers: { Authorization: `Bearer ${ingestKey}` },
        compression: 'gzip' as never,
      }),
      'sdk-proto',
      3,
    );
    expect(Object.fromEntries(usageDelta(before, await storedUsage(api, adminKey)))).toEqual({
      [usageKey('sdk-proto', 'planner-svc', 'claude-sonnet-4-5-20250929')]: times(SONNET_CALL, 3),
      [usageKey('sdk-proto', 'planner-svc', 'gpt-4o-mini')]: times(MINI_CALL, 3),
    });
  });

  it('exporter-trace-otlp-http (JSON), configured by OTEL_EXPORTER_OTLP_* variables as the README says', async () => {
    const saved = { ...process.env };
    process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = `${server.url}/v1/traces`;
    process.env.OTEL_EXPORTER_OTLP_HEADERS = `Authorization=Bearer%20${ingestKey}`;
    let exporter: HttpJsonExporter;
    try {
      exporter = new HttpJsonExporter();
    } finally {
      process.env = saved;
    }
    const before = await storedUsage(api, adminKey);
    await exportWith(exporter, 'sdk-json', 2);
    expect(Object.fromEntries(usageDelta(before, await storedUsage(api, adminKey)))).toEqual({
      [usageKey('sdk-json', 'planner-svc', 'claude-sonnet-4-5-20250929')]: times(SONNET_CALL, 2),
      [usageKey('sdk-json', 'planner-svc', 'gpt-4o-mini')]: times(MINI_CALL, 2),
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Hand-built requests for the answers.

const NOW_NS = () => BigInt(Date.now() - 30_000) * 1_000_000n;

function attr(key: string, value: string | number | { raw: unknown }) {
  if (typeof value === 'string') return { key, value: { stringValue: value } };
  if (typeof value === 'number') return { key, value: { intValue: String(value) } };
  return { key, value: value.raw };
}

function chatSpan(user: string, overrides: Record<string, unknown> = {}, extra: any[] = []) {
  const end = NOW_NS();
  return {
    traceId: randomBytes(16),
    spanId: randomBytes(8),
    name: 'chat gpt-4o-mini',
    kind: 3,
    startTimeUnixNano: String(end - 500_000_000n),
    endTimeUnixNano: String(end),
    attributes: [
      attr('gen_ai.operation.name', 'chat'),
      attr('gen_ai.provider.name', 'openai'),
      attr('gen_ai.request.model', 'gpt-4o-mini'),
      attr('gen_ai.usage.input_tokens', 100),
      attr('gen_ai.usage.output_tokens', 10),
      attr('user.id', user),
      ...extra,
    ],
    status: { code: 1 },
    ...overrides,
  };
}

function requestOf(spans: any[], service = 'bad-input-svc'): RequestObject {
  return {
    resourceSpans: [
      {
        resource: { attributes: [attr('service.name', service)] },
        scopeSpans: [{ scope: { name: 'handmade' }, spans }],
      },
    ],
  };
}

function post(
  body: Buffer | string,
  contentType: string | undefined,
  key: string | null = ingestKey,
  headers: Record<string, string> = {},
): Promise<HttpResponse> {
  return api.request('/v1/traces', {
    method: 'POST',
    headers: {
      ...(contentType === undefined ? {} : { 'content-type': contentType }),
      ...(key === null ? {} : { authorization: `Bearer ${key}` }),
      ...headers,
    },
    body,
  });
}

function statusOf(res: HttpResponse): { code?: number; message?: string } {
  if (String(res.headers['content-type']).startsWith('application/x-protobuf')) {
    return types.status.toObject(types.status.decode(res.body)) as {
      code?: number;
      message?: string;
    };
  }
  return res.json();
}

const SMALL_MINI = usage(PRICES.gpt4oMini, { inputTokens: 100, outputTokens: 10 });

describe('OTLP answers', () => {
  it('some spans not counted: 200 with partialSuccess naming each refused span; the rest stored', async () => {
    const before = await storedUsage(api, adminKey);
    const spans = [
      chatSpan('partial-user'),
      chatSpan('partial-user', {}, [
        attr('gen_ai.usage.cache_read.input_tokens', { raw: { intValue: '-3' } }),
      ]),
      { ...chatSpan('partial-user'), attributes: [attr('gen_ai.usage.input_tokens', 5)] }, // no model
      chatSpan('partial-user', {}, [
        attr('gen_ai.usage.output_tokens', { raw: { intValue: '9000000000000' } }),
      ]),
      { ...chatSpan('partial-user'), attributes: [attr('http.route', '/checkout')] }, // not an LLM call
    ];
    for (const [encoding, body, type] of [
      ['json', toOtlpJson(requestOf(spans)), 'application/json'],
      [
        'protobuf',
        encodeRequestObject(
          types,
          requestOf(spans.map((s) => ({ ...s, traceId: randomBytes(16) }))),
        ),
        'application/x-protobuf',
      ],
    ] as const) {
      const res = await post(body, type);
      expect(res.status, `${encoding}: ${res.text}`).toBe(200);
      const partial =
        encoding === 'json'
          ? res.json<{ partialSuccess: { rejectedSpans: string; errorMessage: string } }>()
              .partialSuccess
          : (
              types.response.toObject(types.response.decode(res.body), { longs: String }) as {
                partialSuccess: { rejectedSpans: string; errorMessage: string };
              }
            ).partialSuccess;
      expect(partial.rejectedSpans).toBe('4');
      expect(partial.errorMessage).toMatch(/1 of 5 spans counted/);
      expect(partial.errorMessage).toMatch(/1 spans carry no token usage/);
      expect(partial.errorMessage).toMatch(
        /gen_ai\.usage\.cache_read\.input_tokens must be >= 0, got -3/,
      );
      expect(partial.errorMessage).toMatch(/gen_ai\.response\.model is missing/);
      expect(partial.errorMessage).toMatch(
        /gen_ai\.usage\.output_tokens must be at most 1000000000/,
      );
    }
    expect(Object.fromEntries(usageDelta(before, await storedUsage(api, adminKey)))).toEqual({
      [usageKey('partial-user', 'bad-input-svc', 'gpt-4o-mini')]: times(SMALL_MINI, 2),
    });
  });

  it('refusals answer a google.rpc.Status in the request encoding, and store nothing', async () => {
    const readKey = (await createKey(server.dataDir, { role: 'read' })).key;
    const good = () => requestOf([chatSpan('refused-user')]);
    const pb = () => encodeRequestObject(types, good());
    const before = await storedUsage(api, adminKey);
    const cases: Array<[string, () => Promise<HttpResponse>, number, string, RegExp]> = [
      [
        'no key',
        () => post(pb(), 'application/x-protobuf', null),
        401,
        'application/x-protobuf',
        /Authorization/,
      ],
      [
        'unknown key',
        () => post(toOtlpJson(good()), 'application/json', 'twk_nope'),
        401,
        'application/json',
        /unknown or revoked/,
      ],
      [
        'read-only key',
        () => post(pb(), 'application/x-protobuf', readKey),
        403,
        'application/x-protobuf',
        /may not send events/,
      ],
      [
        'text/plain',
        () => post('hello', 'text/plain'),
        415,
        'application/json',
        /application\/x-protobuf or application\/json/,
      ],
      ['no content type', () => post(pb(), undefined), 415, 'application/json', /Content-Type/],
      [
        'malformed protobuf',
        () => post(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]), 'application/x-protobuf'),
        400,
        'application/x-protobuf',
        /not a protobuf ExportTraceServiceRequest/,
      ],
      [
        'truncated protobuf',
        () => post(pb().subarray(0, 40), 'application/x-protobuf'),
        400,
        'application/x-protobuf',
        /not a protobuf/,
      ],
      [
        'not JSON',
        () => post('{"resourceSpans": [', 'application/json'),
        400,
        'application/json',
        /not valid JSON/,
      ],
      [
        'wrong JSON type',
        () =>
          post(
            JSON.stringify({
              resourceSpans: [
                {
                  scopeSpans: [
                    {
                      spans: [
                        {
                          attributes: [
                            { key: 'gen_ai.usage.input_tokens', value: { intValue: { n: 1 } } },
                          ],
                        },
                      ],
                    },
                  ],
                },
              ],
            }),
            'application/json',
          ),
        400,
        'application/json',
        /resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\]\.attributes\[0\]\.value\.intValue must be an integer/,
      ],
      [
        'corrupt gzip',
        () =>
          post(Buffer.from('not gzip at all'), 'application/x-protobuf', ingestKey, {
            'content-encoding': 'gzip',
          }),
        400,
        'application/x-protobuf',
        /gzip/,
      ],
      [
        'over the body limit',
        () => post(Buffer.alloc(16 * 1024 * 1024 + 1), 'application/x-protobuf'),
        413,
        'application/x-protobuf',
        /larger than 16777216 bytes/,
      ],
      [
        'gzip bomb',
        () =>
          post(gzipSync(Buffer.alloc(40 * 1024 * 1024)), 'application/x-protobuf', ingestKey, {
            'content-encoding': 'gzip',
          }),
        413,
        'application/x-protobuf',
        /after decompression/,
      ],
    ];
    for (const [label, send, status, contentType, message] of cases) {
      const res = await send();
      expect(res.status, `${label}: ${res.text}`).toBe(status);
      expect(res.headers['content-type'], label).toBe(contentType);
      expect(statusOf(res).message, label).toMatch(message);
    }
    expect(usageDelta(before, await storedUsage(api, adminKey)).size).toBe(0);
  });

  it('an empty request is a success', async () => {
    expect((await post(Buffer.alloc(0), 'application/x-protobuf')).status).toBe(200);
    const res = await post('{}', 'application/json');
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({});
  });

  it('a key bound to an app writes that app, whatever service.name says', async () => {
    const bound = (await createKey(server.dataDir, { role: 'ingest', app: 'bound-app' })).key;
    const before = await storedUsage(api, adminKey);
    const res = await post(
      encodeRequestObject(types, requestOf([chatSpan('bound-user')], 'elsewhere')),
      'application/x-protobuf',
      bound,
    );
    expect(res.status).toBe(200);
    expect(Object.fromEntries(usageDelta(before, await storedUsage(api, adminKey)))).toEqual({
      [usageKey('bound-user', 'bound-app', 'gpt-4o-mini')]: SMALL_MINI,
    });
  });

  it('10,000 spans in one request: every one counted exactly once', async () => {
    const spans = Array.from({ length: 10_000 }, () => chatSpan('bulk-user'));
    const body = encodeRequestObject(types, requestOf(spans, 'bulk-svc'));
    const before = await storedUsage(api, adminKey);
    const res = await post(body, 'application/x-protobuf');
    expect(res.status, res.text).toBe(200);
    expect(res.body.length).toBe(0); // full success: an empty ExportTraceServiceResponse
    expect(Object.fromEntries(usageDelta(before, await storedUsage(api, adminKey)))).toEqual({
      [usageKey('bulk-user', 'bulk-svc', 'gpt-4o-mini')]: times(SMALL_MINI, 10_000),
    });
  });
});

describe('OTLP under pressure', () => {
  it('503 with Retry-After (a Status body) when the write queue is full; nothing stored', async () => {
    const small = await startServerProcess({ env: { TOKENWATCH_MAX_QUEUED_EVENTS: '1000' } });
    try {
      const smallApi = new TokenwatchApi(small.url);
      const spans = Array.from({ length: 1001 }, () => chatSpan('pressure-user'));
      const res = await smallApi.request('/v1/traces', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${small.ingestKey}` },
        body: toOtlpJson(requestOf(spans)),
      });
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.json<{ message: string }>().message).toMatch(/retry/i);
      expect((await storedUsage(smallApi, small.adminKey as string)).size).toBe(0);
    } finally {
      await small.kill('SIGTERM');
      removeDataDir(small.dataDir);
    }
  });
});
