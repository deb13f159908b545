import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  killStartedServers,
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from '../testing/server-process.js';
import { TokenwatchApi } from '../testing/tokenwatch-api.js';
import { loadOtlpProtoTypes } from './otlp-protobuf.js';
import {
  encodeRequestObject,
  type FixtureName,
  providerUsage,
  readFixture,
  refreshRequest,
  toOtlpJson,
  toRequestObject,
} from './testing/otlp-payloads.js';
import {
  PRICES,
  type StoredUsage,
  storedUsage,
  usage,
  usageDelta,
  usageKey,
} from './testing/otlp-usage.js';

/**
 * Issue 14: recorded payloads of three real instrumentations (otlp-fixtures/README.md), posted
 * to `tokenwatch serve` as protobuf and as OTLP/JSON, must store exactly the token classes the
 * provider reported (uncached input, cache read, cache write, output) and their exact cost,
 * once per LLM call: the AI SDK's root spans repeat their call's usage and count nothing.
 */

const types = loadOtlpProtoTypes();
const truth = providerUsage();
const a = truth.anthropic.usage;
const o = truth.openai.usage;

// The provider's numbers in tokenwatch's classes, derived here from the provider's own meaning:
// Anthropic's input_tokens are uncached; OpenAI's prompt_tokens include the cached ones.
const ANTHROPIC_CALL = usage(PRICES.claudeSonnet45, {
  inputTokens: a.input_tokens,
  cacheReadTokens: a.cache_read_input_tokens,
  cacheWriteTokens: a.cache_creation_input_tokens,
  outputTokens: a.output_tokens,
});
const OPENAI_CALL = usage(PRICES.gpt4oMini, {
  inputTokens: o.prompt_tokens - o.prompt_tokens_details.cached_tokens,
  cacheReadTokens: o.prompt_tokens_details.cached_tokens,
  outputTokens: o.completion_tokens,
});

// @traceloop/instrumentation-openai 0.27.0 exports no cache attribute at all (its source never
// reads prompt_tokens_details.cached_tokens): its span says 1500 input tokens and nothing more,
// so all of them count as uncached input, at the uncached price. What the span carries is counted
// exactly; the cached share is not knowable from it (README § OTLP, "Known gaps").
const OPENAI_CALL_WITHOUT_CACHE_INFO = usage(PRICES.gpt4oMini, {
  inputTokens: o.prompt_tokens,
  outputTokens: o.completion_tokens,
});

const CASES: Array<{
  fixture: FixtureName;
  expected: Record<string, StoredUsage>;
  rejectedSpans: number;
}> = [
  {
    fixture: 'ai-sdk-6',
    expected: {
      [usageKey('user-ai-sdk', 'support-bot', truth.anthropic.model)]: ANTHROPIC_CALL,
      [usageKey('user-ai-sdk', 'support-bot', truth.openai.model)]: OPENAI_CALL,
    },
    rejectedSpans: 2, // ai.generateText and ai.streamText: wrappers
  },
  {
    fixture: 'openllmetry',
    expected: {
      [usageKey('anonymous', 'billing-api', truth.anthropic.model)]: ANTHROPIC_CALL,
      [usageKey('anonymous', 'billing-api', truth.openai.model)]: OPENAI_CALL_WITHOUT_CACHE_INFO,
    },
    rejectedSpans: 0,
  },
  {
    fixture: 'openinference',
    expected: { [usageKey('anonymous', 'search-api', truth.openai.model)]: OPENAI_CALL },
    rejectedSpans: 0,
  },
];

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

function postTraces(
  body: Buffer | string,
  contentType: string,
  headers: Record<string, string> = {},
) {
  return api.request('/v1/traces', {
    method: 'POST',
    headers: { 'content-type': contentType, authorization: `Bearer ${ingestKey}`, ...headers },
    body,
  });
}

function rejectedOf(res: { headers: Record<string, unknown>; body: Buffer; text: string }): number {
  if (String(res.headers['content-type']).startsWith('application/json')) {
    const json = JSON.parse(res.text) as { partialSuccess?: { rejectedSpans?: string } };
    return Number(json.partialSuccess?.rejectedSpans ?? 0);
  }
  const decoded = types.response.toObject(types.response.decode(res.body), { longs: Number }) as {
    partialSuccess?: { rejectedSpans?: number };
  };
  return decoded.partialSuccess?.rejectedSpans ?? 0;
}

describe('recorded instrumentation payloads', () => {
  for (const { fixture, expected, rejectedSpans } of CASES) {
    for (const encoding of ['protobuf', 'json', 'protobuf+gzip'] as const) {
      it(`${fixture} as ${encoding}: exact classes and cost, once; a retry counts nothing`, async () => {
        const request = refreshRequest(toRequestObject(types, readFixture(fixture)), Date.now());
        let body: Buffer | string =
          encoding === 'json' ? toOtlpJson(request) : encodeRequestObject(types, request);
        const headers: Record<string, string> = {};
        if (encoding === 'protobuf+gzip') {
          body = gzipSync(body);
          headers['content-encoding'] = 'gzip';
        }
        const contentType = encoding === 'json' ? 'application/json' : 'application/x-protobuf';
        const before = await storedUsage(api, adminKey);
        const res = await postTraces(body, contentType, headers);
        expect(res.status, res.text).toBe(200);
        expect(res.headers['content-type']).toBe(contentType);
        expect(rejectedOf(res)).toBe(rejectedSpans);
        const afterFirst = await storedUsage(api, adminKey);
        expect(Object.fromEntries(usageDelta(before, afterFirst))).toEqual(expected);

        // The exporter retries the same body (lost answer): nothing more is counted.
        const retry = await postTraces(body, contentType, headers);
        expect(retry.status).toBe(200);
        expect(
          Object.fromEntries(usageDelta(afterFirst, await storedUsage(api, adminKey))),
        ).toEqual({});
      });
    }
  }

  it('the root span exported on its own, after its call, counts nothing (rule 2a)', async () => {
    const request = refreshRequest(toRequestObject(types, readFixture('ai-sdk-6')), Date.now());
    const scope = request.resourceSpans?.[0]?.scopeSpans?.[0];
    const spans: any[] = scope.spans;
    const isCall = (s: any) => String(s.name).includes('.do');
    const before = await storedUsage(api, adminKey);
    scope.spans = spans.filter(isCall);
    expect(
      (await postTraces(encodeRequestObject(types, request), 'application/x-protobuf')).status,
    ).toBe(200);
    scope.spans = spans.filter((s) => !isCall(s));
    const roots = await postTraces(encodeRequestObject(types, request), 'application/x-protobuf');
    expect(roots.status).toBe(200);
    expect(rejectedOf(roots)).toBe(2);
    expect(Object.fromEntries(usageDelta(before, await storedUsage(api, adminKey)))).toEqual(
      CASES[0]?.expected,
    );
  });
});
