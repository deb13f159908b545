import { describe, expect, it } from 'vitest';
import {
  mapTraceRequest,
  type SpanMappingOptions,
  spanEventId,
  UNKNOWN_SERVICE,
} from './map-trace-request.js';
import type { OtlpAttributeValue, OtlpResourceSpans, OtlpSpan } from './otlp-span.js';

const NOW = Date.UTC(2026, 0, 31, 12, 0, 0);
const END_NS = BigInt(NOW - 60_000) * 1_000_000n;
const TRACE = '5b8efff798038103d269b633813fc60c';

const OPTIONS: SpanMappingOptions = {
  userAttributes: ['user.id', 'enduser.id', 'gen_ai.user.id', 'session.id'],
  defaultUserId: 'anonymous',
  tagAttributes: [],
};

let nextSpan = 1;
function span(
  attributes: Record<string, OtlpAttributeValue>,
  overrides: Partial<OtlpSpan> = {},
): OtlpSpan {
  const spanId = (nextSpan++).toString(16).padStart(16, '0');
  return {
    traceId: TRACE,
    spanId,
    parentSpanId: '',
    name: 'chat',
    scopeName: 'test',
    startTimeUnixNano: END_NS - 1_234_567_000n,
    endTimeUnixNano: END_NS,
    statusCode: 1,
    attributes: new Map(Object.entries(attributes)),
    ...overrides,
  };
}

function request(
  spans: OtlpSpan[],
  resource: Record<string, OtlpAttributeValue> = { 'service.name': 'checkout' },
): OtlpResourceSpans[] {
  return [{ resource: new Map(Object.entries(resource)), spans }];
}

function map(
  spans: OtlpSpan[],
  options: Partial<SpanMappingOptions> = {},
  resource?: Record<string, OtlpAttributeValue>,
  boundAppId?: string,
) {
  return mapTraceRequest(
    request(spans, resource),
    { ...OPTIONS, ...options },
    { nowMs: NOW, boundAppId },
  );
}

const CHAT = {
  'gen_ai.operation.name': 'chat',
  'gen_ai.provider.name': 'anthropic',
  'gen_ai.request.model': 'claude-sonnet-4-5',
};

function classes(e: {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}) {
  return [e.inputTokens, e.cacheReadTokens, e.cacheWriteTokens, e.outputTokens];
}

describe('mapTraceRequest: token classes', () => {
  it('semconv input INCLUDES cached tokens: uncached = input − cache_read − cache_creation', () => {
    const s = span({
      ...CHAT,
      'gen_ai.usage.input_tokens': 1200,
      'gen_ai.usage.cache_read.input_tokens': 1000,
      'gen_ai.usage.cache_creation.input_tokens': 150,
      'gen_ai.usage.output_tokens': 85,
    });
    const m = map([s]);
    expect(m.rejected).toEqual([]);
    expect(m.events).toHaveLength(1);
    const e = m.events[0];
    expect(e && classes(e)).toEqual([50, 1000, 150, 85]);
    expect(e?.id).toBe(`otlp-${(NOW - 60_000).toString(36).padStart(9, '0')}-${TRACE}-${s.spanId}`);
    expect(e?.modelId).toBe('claude-sonnet-4-5');
    expect(e?.provider).toBe('anthropic');
    expect(e?.appId).toBe('checkout');
    expect(e?.userId).toBe('anonymous');
    expect(e?.timestampMs).toBe(NOW - 60_000);
    expect(e?.latencyMs).toBe(1234.567);
    expect(e?.status).toBe('ok');
  });

  it('reads legacy names (gen_ai.system, prompt/completion_tokens, OpenLLMetry cache names)', () => {
    const m = map([
      span({
        'gen_ai.system': 'openai',
        'gen_ai.request.model': 'gpt-4o-mini',
        'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
        'gen_ai.usage.prompt_tokens': 500,
        'gen_ai.usage.cache_read_input_tokens': 200,
        'gen_ai.usage.completion_tokens': 40,
      }),
    ]);
    expect(m.events.map(classes)).toEqual([[300, 200, 0, 40]]);
    expect(m.events[0]?.modelId).toBe('gpt-4o-mini-2024-07-18');
    expect(m.events[0]?.provider).toBe('openai');
  });

  it('reads OpenInference llm.token_count.* with prompt_details', () => {
    const m = map([
      span({
        'openinference.span.kind': 'LLM',
        'llm.model_name': 'gpt-4o',
        'llm.provider': 'openai',
        'llm.token_count.prompt': 900,
        'llm.token_count.prompt_details.cache_read': 600,
        'llm.token_count.completion': 30,
        'llm.token_count.total': 930,
      }),
    ]);
    expect(m.events.map(classes)).toEqual([[300, 600, 0, 30]]);
  });

  it('reads Traceloop llm.usage.* (older OpenLLMetry)', () => {
    const m = map([
      span({
        'llm.request.model': 'gpt-4',
        'llm.usage.prompt_tokens': 12,
        'llm.usage.completion_tokens': 7,
        'llm.usage.total_tokens': 19,
      }),
    ]);
    expect(m.events.map(classes)).toEqual([[12, 0, 0, 7]]);
  });

  it('AI SDK 6 inputTokenDetails win over its gen_ai.usage.input_tokens total; never added', () => {
    const m = map([
      span({
        'ai.operationId': 'ai.generateText.doGenerate',
        'gen_ai.system': 'anthropic.messages',
        'gen_ai.request.model': 'claude-sonnet-4-5',
        'gen_ai.usage.input_tokens': 2010,
        'gen_ai.usage.output_tokens': 60,
        'ai.usage.inputTokens': 2010,
        'ai.usage.inputTokenDetails.noCacheTokens': 10,
        'ai.usage.inputTokenDetails.cacheReadTokens': 1800,
        'ai.usage.inputTokenDetails.cacheWriteTokens': 200,
        'ai.usage.outputTokens': 60,
      }),
    ]);
    expect(m.events.map(classes)).toEqual([[10, 1800, 200, 60]]);
    expect(m.events[0]?.provider).toBe('anthropic.messages');
  });

  it('AI SDK 4/5 ai.usage.* alone', () => {
    const m = map([
      span({
        'ai.operationId': 'ai.streamText.doStream',
        'ai.model.id': 'gpt-4o-mini',
        'ai.model.provider': 'openai.chat',
        'ai.usage.promptTokens': 70,
        'ai.usage.completionTokens': 5,
      }),
    ]);
    expect(m.events.map(classes)).toEqual([[70, 0, 0, 5]]);
  });

  it('accepts ints as numbers, decimal strings (JSON intValue) and integral doubles', () => {
    const m = map([
      span({ ...CHAT, 'gen_ai.usage.input_tokens': '1200', 'gen_ai.usage.output_tokens': 85 }),
    ]);
    expect(m.events.map(classes)).toEqual([[1200, 0, 0, 85]]);
  });

  it('@traceloop/instrumentation-anthropic reports UNCACHED input_tokens: read as such', () => {
    const attrs = {
      ...CHAT,
      'gen_ai.usage.input_tokens': 10,
      'gen_ai.usage.cache_read.input_tokens': 1800,
      'gen_ai.usage.cache_creation.input_tokens': 200,
      'gen_ai.usage.output_tokens': 60,
    };
    const m = map([span(attrs, { scopeName: '@traceloop/instrumentation-anthropic' })]);
    expect(m.events.map(classes)).toEqual([[10, 1800, 200, 60]]);
    // The same numbers from a semconv-conformant scope are inconsistent, and refused.
    const other = map([span(attrs, { scopeName: '@traceloop/instrumentation-openai' })]);
    expect(other.events).toEqual([]);
    expect(other.rejected[0]?.field).toBe('gen_ai.usage.input_tokens');
  });

  it('embeddings: input only', () => {
    const m = map([
      span({
        'gen_ai.operation.name': 'embeddings',
        'gen_ai.request.model': 'text-embedding-3-small',
        'gen_ai.usage.input_tokens': 42,
      }),
    ]);
    expect(m.events.map(classes)).toEqual([[42, 0, 0, 0]]);
  });
});

describe('mapTraceRequest: refusals name the attribute and the reason', () => {
  const cases: Array<[string, Record<string, OtlpAttributeValue>, string, RegExp]> = [
    ['negative', { 'gen_ai.usage.input_tokens': -5 }, 'gen_ai.usage.input_tokens', />= 0/],
    [
      'huge int64',
      { 'gen_ai.usage.output_tokens': 2n ** 62n },
      'gen_ai.usage.output_tokens',
      /absurdly large/,
    ],
    [
      'above the contract limit',
      { 'gen_ai.usage.input_tokens': 5_000_000_000 },
      'gen_ai.usage.input_tokens',
      /at most 1000000000/,
    ],
    ['fractional', { 'gen_ai.usage.input_tokens': 1.5 }, 'gen_ai.usage.input_tokens', /integer/],
    [
      'not a number',
      { 'gen_ai.usage.input_tokens': 'many' },
      'gen_ai.usage.input_tokens',
      /integer token count/,
    ],
    [
      'cache larger than input',
      { 'gen_ai.usage.input_tokens': 10, 'gen_ai.usage.cache_read.input_tokens': 1000 },
      'gen_ai.usage.input_tokens',
      /less than gen_ai\.usage\.cache_read\.input_tokens \(1000\)/,
    ],
    [
      'a total only',
      { 'gen_ai.usage.total_tokens': 99 },
      'gen_ai.usage.total_tokens',
      /without the input\/output split/,
    ],
  ];
  for (const [label, attrs, field, reason] of cases) {
    it(label, () => {
      const good = span({
        ...CHAT,
        'gen_ai.usage.input_tokens': 3,
        'gen_ai.usage.output_tokens': 4,
      });
      const bad = span({ ...CHAT, ...attrs });
      const m = map([bad, good]);
      expect(m.events.map((e) => e.id)).toEqual([spanEventId(TRACE, good.spanId, NOW - 60_000)]);
      expect(m.rejected).toHaveLength(1);
      expect(m.rejected[0]?.spanId).toBe(bad.spanId);
      expect(m.rejected[0]?.field).toBe(field);
      expect(m.rejected[0]?.reason).toMatch(reason);
    });
  }

  it('missing model', () => {
    const m = map([span({ 'gen_ai.usage.input_tokens': 3, 'gen_ai.usage.output_tokens': 4 })]);
    expect(m.events).toEqual([]);
    expect(m.rejected[0]?.field).toBe('gen_ai.response.model');
    expect(m.rejected[0]?.reason).toMatch(/missing/);
  });

  it('an all-zero or malformed trace/span id', () => {
    const attrs = { ...CHAT, 'gen_ai.usage.input_tokens': 3 };
    const m = map([span(attrs, { traceId: '0'.repeat(32) }), span(attrs, { spanId: 'abc' })]);
    expect(m.rejected.map((r) => r.field)).toEqual(['traceId', 'spanId']);
  });

  it('ids must be lowercase hex of the right length: every character class at the edges', () => {
    const attrs = { ...CHAT, 'gen_ai.usage.input_tokens': 3 };
    const trace = (c: string) => `${'0'.repeat(31)}${c}`;
    const badTrace = ['/', ':', '`', 'g', 'A', 'F', ' ', '\u0660'].map((c) =>
      span(attrs, { traceId: trace(c) }),
    );
    const badSpan = ['0'.repeat(16), '1'.repeat(15), '1'.repeat(17), `${'0'.repeat(15)}G`].map(
      (spanId) => span(attrs, { spanId }),
    );
    const m = map([...badTrace, ...badSpan]);
    expect(m.events).toEqual([]);
    expect(m.rejected.map((r) => r.field)).toEqual([
      ...badTrace.map(() => 'traceId'),
      ...badSpan.map(() => 'spanId'),
    ]);
    const good = ['1', '9', 'a', 'f'].map((c, i) =>
      span(attrs, { traceId: trace(c), spanId: `${'0'.repeat(15)}${i + 1}` }),
    );
    expect(map(good).events).toHaveLength(4);
  });

  it('a span too old for the contract names endTimeUnixNano', () => {
    const m = map([
      span(
        { ...CHAT, 'gen_ai.usage.input_tokens': 3 },
        { endTimeUnixNano: 1n, startTimeUnixNano: 0n },
      ),
    ]);
    expect(m.rejected[0]?.field).toBe('endTimeUnixNano');
    expect(m.rejected[0]?.reason).toMatch(/35 days/);
  });

  it('a user id beyond the contract names the attribute it came from', () => {
    const m = map([span({ ...CHAT, 'gen_ai.usage.input_tokens': 3, 'user.id': 'u'.repeat(300) })]);
    expect(m.rejected[0]?.field).toBe('user.id');
    expect(m.rejected[0]?.reason).toMatch(/userId.*at most 256/);
  });
});

describe('mapTraceRequest: never counted twice', () => {
  it('a framework span around a provider span: only the innermost counts (rule 2b)', () => {
    const root = span({
      ...CHAT,
      'gen_ai.usage.input_tokens': 110,
      'gen_ai.usage.output_tokens': 9,
    });
    const step = span({ 'http.method': 'POST' }, { parentSpanId: root.spanId });
    const call = span(
      { ...CHAT, 'gen_ai.usage.input_tokens': 110, 'gen_ai.usage.output_tokens': 9 },
      { parentSpanId: step.spanId },
    );
    // Children usually end (and are exported) first; order must not matter.
    for (const order of [
      [root, step, call],
      [call, step, root],
    ]) {
      const m = map(order);
      expect(m.events.map((e) => e.id)).toEqual([spanEventId(TRACE, call.spanId, NOW - 60_000)]);
      expect(m.wrappers).toBe(1);
      expect(m.notUsage).toBe(1);
    }
  });

  it('two sibling calls under one wrapper: both calls count, the wrapper does not', () => {
    const root = span({
      ...CHAT,
      'gen_ai.usage.input_tokens': 30,
      'gen_ai.usage.output_tokens': 3,
    });
    const a = span(
      { ...CHAT, 'gen_ai.usage.input_tokens': 10, 'gen_ai.usage.output_tokens': 1 },
      { parentSpanId: root.spanId },
    );
    const b = span(
      { ...CHAT, 'gen_ai.usage.input_tokens': 20, 'gen_ai.usage.output_tokens': 2 },
      { parentSpanId: root.spanId },
    );
    const m = map([root, a, b]);
    expect(m.events.map(classes)).toEqual([
      [10, 0, 0, 1],
      [20, 0, 0, 2],
    ]);
  });

  it('a wrapper alone in its request is recognised by its own attributes (rule 2a)', () => {
    const wrappers = [
      { 'gen_ai.operation.name': 'invoke_agent' },
      { 'ai.operationId': 'ai.generateText' },
      { 'openinference.span.kind': 'CHAIN' },
      { 'traceloop.span.kind': 'workflow' },
      { 'langsmith.span.kind': 'chain' },
    ];
    const m = map(wrappers.map((w) => span({ ...CHAT, ...w, 'gen_ai.usage.input_tokens': 5 })));
    expect(m.events).toEqual([]);
    expect(m.wrappers).toBe(wrappers.length);
    expect(m.rejected).toEqual([]);
  });

  it('the same span twice in one request counts once', () => {
    const s = span({ ...CHAT, 'gen_ai.usage.input_tokens': 5 });
    const m = map([s, { ...s }]);
    expect(m.events).toHaveLength(1);
    expect(m.duplicates).toBe(1);
  });

  it('duplicates are told apart by trace and span: each repeat of a pair counts nothing', () => {
    const input = { ...CHAT, 'gen_ai.usage.input_tokens': 5 };
    const [s1, s2, s3] = [span(input), span(input), span(input)];
    const otherTrace = { ...s1, traceId: 'f'.repeat(32) }; // same span id, another trace
    const m = map([s1, s2, { ...s1 }, s3, { ...s2 }, otherTrace, { ...s1 }, { ...otherTrace }]);
    expect(m.events.map((e) => e.id)).toEqual(
      [s1, s2, s3, otherTrace].map((s) => expect.stringContaining(`-${s.traceId}-${s.spanId}`)),
    );
    expect(m.duplicates).toBe(4);
  });

  it('a cyclic parent chain terminates', () => {
    const a = span({ ...CHAT, 'gen_ai.usage.input_tokens': 5 });
    const b = span({ ...CHAT, 'gen_ai.usage.input_tokens': 6 }, { parentSpanId: a.spanId });
    const cyclicA = { ...a, parentSpanId: b.spanId };
    const m = map([cyclicA, b]);
    expect(m.events).toEqual([]);
    expect(m.wrappers).toBe(2);
  });
});

describe('mapTraceRequest: who, which app, tags, status', () => {
  const usage = { ...CHAT, 'gen_ai.usage.input_tokens': 3, 'gen_ai.usage.output_tokens': 1 };

  it('user: the first configured attribute present, span before resource, else the default', () => {
    const m = map(
      [
        span({ ...usage, 'session.id': 's-1', 'enduser.id': 'bob' }),
        span({ ...usage, 'session.id': 's-2' }),
        span(usage),
      ],
      {},
      { 'service.name': 'checkout', 'user.id': 'resource-user' },
    );
    expect(m.events.map((e) => e.userId)).toEqual([
      'resource-user',
      'resource-user',
      'resource-user',
    ]);
    const m2 = map([
      span({ ...usage, 'session.id': 's-1', 'enduser.id': 'bob' }),
      span({ ...usage, 'session.id': 's-2' }),
      span(usage),
    ]);
    expect(m2.events.map((e) => e.userId)).toEqual(['bob', 's-2', 'anonymous']);
    const m3 = map([span({ ...usage, 'ai.telemetry.metadata.userId': 'u-9' })], {
      userAttributes: ['ai.telemetry.metadata.userId'],
    });
    expect(m3.events[0]?.userId).toBe('u-9');
  });

  it('app: resource service.name, unknown_service without one, the bound app for a bound key', () => {
    expect(map([span(usage)], {}, {}).events[0]?.appId).toBe(UNKNOWN_SERVICE);
    expect(map([span(usage)], {}, { 'service.name': 'other' }, 'bound-app').events[0]?.appId).toBe(
      'bound-app',
    );
  });

  it('tags: only allow-listed attributes; an oversized value is dropped with a warning', () => {
    const m = map(
      [
        span({
          ...usage,
          'app.feature': 'search',
          secret: 'x',
          'deployment.environment': 'y'.repeat(300),
        }),
      ],
      {
        tagAttributes: [
          { attribute: 'app.feature', tag: 'feature' },
          { attribute: 'deployment.environment', tag: 'env' },
          { attribute: 'team', tag: 'team' },
        ],
      },
      { 'service.name': 'checkout', team: 'search-team' },
    );
    expect(m.events).toHaveLength(1);
    expect({ ...m.events[0]?.tags }).toEqual({ feature: 'search', team: 'search-team' });
    expect(m.warnings).toHaveLength(1);
    expect(m.warnings[0]).toMatch(/tag "env" from deployment.environment dropped/);
  });

  it('status error from the span status', () => {
    expect(map([span(usage, { statusCode: 2 })]).events[0]?.status).toBe('error');
  });

  it('counts spans that are not LLM calls', () => {
    const m = map([span({ 'http.route': '/x' }), span({ 'db.system': 'postgresql' }), span(usage)]);
    expect(m.spans).toBe(3);
    expect(m.notUsage).toBe(2);
    expect(m.events).toHaveLength(1);
  });
});
