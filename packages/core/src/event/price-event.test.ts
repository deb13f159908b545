import { describe, expect, it } from 'vitest';
import { BUNDLED_CATALOG } from '../pricing/catalog-data.js';
import { PriceCatalog } from '../pricing/price-catalog.js';
import { priceEvent } from './price-event.js';
import type { UsageEvent } from './usage-event.js';
import { validateEvent } from './validate-event.js';

const bundled = PriceCatalog.fromData(BUNDLED_CATALOG);
const T = Date.UTC(2026, 4, 10, 12);

function usage(overrides: Partial<UsageEvent> = {}): UsageEvent {
  return {
    id: 'evt-1',
    timestampMs: T,
    userId: 'alice',
    appId: 'chat',
    modelId: 'gpt-4o',
    provider: 'openai',
    inputTokens: 1000,
    outputTokens: 500,
    cacheReadTokens: 200,
    cacheWriteTokens: 0,
    latencyMs: 850,
    status: 'ok',
    tags: undefined,
    ...overrides,
  };
}

function tags(entries: Record<string, string>): Readonly<Record<string, string>> {
  return Object.assign(Object.create(null), entries);
}

const fp = (e: UsageEvent) => priceEvent(e, 'p1', bundled).fingerprint;

/** Fingerprints computed by tokenwatch 0.1.0 (`PINNED` must never change: see the test). */
const PINNED = { plain: '154fmwbpdkq', tagged: 'jlsw0d65r0', sparse: '2asyfsvcvzs' };

describe('priceEvent: pricing', () => {
  it('prices a catalog model exactly in nano-USD', () => {
    // gpt-4o: 2.5 in, 10 out, 1.25 cache read (USD / 1M tokens)
    // 1000×2.5 + 500×10 + 200×1.25 = 2500 + 5000 + 250 = 7750 USD/1M = 7 750 000 nano-USD
    const priced = priceEvent(usage(), 'p1', bundled);
    expect(priced.priced).toBe(true);
    expect(priced.costNanoUsd).toBe(7_750_000);
  });

  it('carries every field through and stamps the project', () => {
    const t = tags({ team: 'ml' });
    const priced = priceEvent(usage({ tags: t, status: 'error' }), 'proj-9', bundled);
    expect(priced).toMatchObject({
      projectId: 'proj-9',
      id: 'evt-1',
      timestampMs: T,
      userId: 'alice',
      appId: 'chat',
      modelId: 'gpt-4o',
      provider: 'openai',
      inputTokens: 1000,
      outputTokens: 500,
      cacheReadTokens: 200,
      cacheWriteTokens: 0,
      latencyMs: 850,
      status: 'error',
    });
    expect(priced.tags).toEqual(t);
    expect(typeof priced.fingerprint).toBe('string');
  });

  it('infers the provider from the model id when none was sent', () => {
    const priced = priceEvent(usage({ provider: undefined }), 'p1', bundled);
    expect(priced.provider).toBe('openai');
    expect(priced.costNanoUsd).toBe(7_750_000);
  });

  it('aggregates on the id as called but prices a dated snapshot as its base model', () => {
    const priced = priceEvent(usage({ modelId: 'gpt-4o-2024-08-06' }), 'p1', bundled);
    expect(priced.modelId).toBe('gpt-4o-2024-08-06');
    expect(priced.priced).toBe(true);
    expect(priced.costNanoUsd).toBe(7_750_000);
  });

  it('uses the normalised model id: a foundation-model ARN loses its wrapper and is priced', () => {
    const arn =
      'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0';
    const priced = priceEvent(
      usage({
        provider: undefined,
        modelId: arn,
        inputTokens: 1_000_000,
        outputTokens: 1_000_000,
        cacheReadTokens: 0,
      }),
      'p1',
      bundled,
    );
    expect(priced.provider).toBe('bedrock');
    expect(priced.modelId).toBe('anthropic.claude-3-haiku-20240307-v1:0');
    expect(priced.priced).toBe(true);
    // 0.25 + 1.25 USD
    expect(priced.costNanoUsd).toBe(1_500_000_000);
  });

  it('trims the model id and keeps an ARN as bedrock whatever provider was claimed', () => {
    const priced = priceEvent(
      usage({
        provider: 'openai',
        modelId:
          '  arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0 ',
      }),
      'p1',
      bundled,
    );
    expect(priced.provider).toBe('bedrock');
    expect(priced.modelId).toBe('anthropic.claude-3-haiku-20240307-v1:0');
    expect(priced.priced).toBe(true);
  });

  it.each([
    'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3',
    'arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc',
    'arn:aws:bedrock:us-east-1:123456789012:custom-model/anthropic.claude-3-haiku-20240307-v1:0/xyz',
    'arn:aws:bedrock:us-east-1:123456789012:imported-model/abc',
    'arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1',
  ])('marks the opaque ARN %s unpriced, never $0, and keeps it whole', (arn) => {
    const priced = priceEvent(usage({ provider: undefined, modelId: arn }), 'p1', bundled);
    expect(priced.priced).toBe(false);
    expect(priced.costNanoUsd).toBe(0);
    expect(priced.provider).toBe('bedrock');
    expect(priced.modelId).toBe(arn);
  });

  it('marks an unknown model unpriced', () => {
    const priced = priceEvent(usage({ provider: 'acme', modelId: 'acme-llm-9000' }), 'p1', bundled);
    expect(priced.priced).toBe(false);
    expect(priced.costNanoUsd).toBe(0);
    expect(priced.provider).toBe('acme');
    expect(priced.modelId).toBe('acme-llm-9000');
  });

  it('marks a known model under the wrong provider unpriced', () => {
    const priced = priceEvent(usage({ provider: 'anthropic', modelId: 'gpt-4o' }), 'p1', bundled);
    expect(priced.priced).toBe(false);
  });

  it('a priced event with zero tokens costs 0 but stays priced', () => {
    const priced = priceEvent(
      usage({ inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 }),
      'p1',
      bundled,
    );
    expect(priced.priced).toBe(true);
    expect(priced.costNanoUsd).toBe(0);
  });

  describe('with a small dated catalog', () => {
    const catalog = PriceCatalog.fromData({
      version: 't',
      source: 'test',
      currency: 'USD',
      unit: 'per 1M tokens',
      models: [
        { provider: 'acme', modelId: 'm', effectiveFrom: '2026-01-01', input: '1', output: '2' },
        {
          provider: 'acme',
          modelId: 'm',
          effectiveFrom: '2026-03-01',
          input: '3',
          output: '4',
          cacheRead: '0.5',
          cacheWrite: '6',
        },
        {
          provider: 'acme',
          modelId: 'tiny',
          effectiveFrom: '2026-01-01',
          input: '0.0005',
          output: '0.0015',
        },
      ],
    });
    const acme = (o: Partial<UsageEvent>) =>
      priceEvent(usage({ provider: 'acme', modelId: 'm', ...o }), 'p1', catalog);

    it('uses the price in force at the event time, not now', () => {
      const counts = { inputTokens: 1_000_000, outputTokens: 1_000_000, cacheReadTokens: 0 };
      expect(acme({ ...counts, timestampMs: Date.UTC(2026, 2, 1) - 1 }).costNanoUsd).toBe(
        3_000_000_000,
      );
      expect(acme({ ...counts, timestampMs: Date.UTC(2026, 2, 1) }).costNanoUsd).toBe(
        7_000_000_000,
      );
    });

    it('charges cache classes at the input price when the catalog has none', () => {
      const e = acme({
        timestampMs: Date.UTC(2026, 1, 1),
        inputTokens: 0,
        outputTokens: 0,
        cacheReadTokens: 1_000_000,
        cacheWriteTokens: 1_000_000,
      });
      expect(e.costNanoUsd).toBe(2_000_000_000);
    });

    it('sums the classes before rounding half up, once per event', () => {
      // 1 token at 0.0005 USD/1M = 0.5 nano-USD → rounds up to 1.
      const one = priceEvent(
        usage({
          provider: 'acme',
          modelId: 'tiny',
          inputTokens: 1,
          outputTokens: 0,
          cacheReadTokens: 0,
        }),
        'p1',
        catalog,
      );
      expect(one.costNanoUsd).toBe(1);
      // 1 input (0.5) + 1 output (1.5) = 2.0 nano-USD exactly, not 1 + 2 = 3 from per-class rounding.
      const two = priceEvent(
        usage({
          provider: 'acme',
          modelId: 'tiny',
          inputTokens: 1,
          outputTokens: 1,
          cacheReadTokens: 0,
        }),
        'p1',
        catalog,
      );
      expect(two.costNanoUsd).toBe(2);
    });

    it('prices the largest allowed event exactly', () => {
      const e = acme({
        timestampMs: Date.UTC(2026, 3, 1),
        inputTokens: 1e9,
        outputTokens: 1e9,
        cacheReadTokens: 1e9,
        cacheWriteTokens: 1e9,
      });
      // 1000 × (3 + 4 + 0.5 + 6) USD = 13 500 USD
      expect(e.costNanoUsd).toBe(13_500_000_000_000);
    });
  });
});

describe('priceEvent: fingerprint of the payload', () => {
  it('is the same for the same payload, however often it is computed', () => {
    expect(fp(usage())).toBe(fp(usage()));
    expect(priceEvent(usage(), 'p1', bundled).fingerprint).toBe(
      priceEvent(usage(), 'p2', PriceCatalog.fromData({ ...BUNDLED_CATALOG, models: [] }))
        .fingerprint,
    );
  });

  it('is the same for a validated wire event sent twice with different key order', () => {
    const now = T + 60_000;
    const a = validateEvent(
      JSON.parse(
        '{"id":"x","timestamp":"2026-05-10T12:00:00Z","userId":"u","appId":"a","modelId":"gpt-4o","inputTokens":1,"outputTokens":2,"tags":{"b":"2","a":"1"}}',
      ),
      { nowMs: now },
    );
    const b = validateEvent(
      JSON.parse(
        '{"tags":{"a":"1","b":"2"},"outputTokens":2,"inputTokens":1,"modelId":"gpt-4o","appId":"a","userId":"u","timestamp":1778414400000,"id":"x"}',
      ),
      { nowMs: now },
    );
    if (!a.ok || !b.ok) throw new Error('both must be valid');
    expect(fp(a.event)).toBe(fp(b.event));
  });

  it('does not depend on the order of tags', () => {
    expect(fp(usage({ tags: tags({ a: '1', b: '2', c: '3' }) }))).toBe(
      fp(usage({ tags: tags({ c: '3', a: '1', b: '2' }) })),
    );
  });

  it('pins its value: stored with every id claim, so a change would turn retries into conflicts', () => {
    expect(fp(usage())).toBe(PINNED.plain);
    expect(fp(usage({ tags: tags({ team: 'ml', env: 'prod' }), latencyMs: 1234.5 }))).toBe(
      PINNED.tagged,
    );
    expect(fp(usage({ provider: undefined, latencyMs: undefined, status: 'no_usage' }))).toBe(
      PINNED.sparse,
    );
  });

  const changes: Array<[string, Partial<UsageEvent>]> = [
    ['timestampMs', { timestampMs: T + 1 }],
    ['userId', { userId: 'alice2' }],
    ['appId', { appId: 'chat2' }],
    ['modelId', { modelId: 'gpt-4o-mini' }],
    ['modelId case', { modelId: 'GPT-4o' }],
    ['modelId whitespace', { modelId: ' gpt-4o' }],
    ['provider', { provider: 'azure' }],
    ['provider absent', { provider: undefined }],
    ['inputTokens', { inputTokens: 1001 }],
    ['outputTokens', { outputTokens: 501 }],
    ['cacheReadTokens', { cacheReadTokens: 201 }],
    ['cacheWriteTokens', { cacheWriteTokens: 1 }],
    ['latencyMs', { latencyMs: 851 }],
    ['latencyMs absent', { latencyMs: undefined }],
    ['latencyMs 0', { latencyMs: 0 }],
    ['status', { status: 'error' }],
    ['tags added', { tags: tags({ team: 'ml' }) }],
  ];

  it.each(changes)('changes when %s changes', (_name, change) => {
    expect(fp(usage(change))).not.toBe(fp(usage()));
  });

  it('changes when a tag value, a tag key, or the set of tags changes', () => {
    const base = fp(usage({ tags: tags({ team: 'ml', env: 'prod' }) }));
    for (const t of [
      { team: 'ml', env: 'dev' },
      { team: 'ml', stage: 'prod' },
      { team: 'ml' },
      { team: 'ml', env: 'prod', x: '' },
      { team: 'ml', env: '' },
      { team: 'mlenv', env: 'prod' },
    ]) {
      expect(fp(usage({ tags: tags(t) }))).not.toBe(base);
    }
  });

  it('does not confuse values shifted between neighbouring fields', () => {
    const pairs: Array<[Partial<UsageEvent>, Partial<UsageEvent>]> = [
      [
        { userId: 'ab', appId: 'c' },
        { userId: 'a', appId: 'bc' },
      ],
      [
        { inputTokens: 12, outputTokens: 3 },
        { inputTokens: 1, outputTokens: 23 },
      ],
      [{ tags: tags({ a: '1b' }) }, { tags: tags({ a: '1', b: '' }) }],
      [{ tags: tags({ a: 'x' }) }, { tags: tags({ ax: '' }) }],
    ];
    for (const [x, y] of pairs) expect(fp(usage(x))).not.toBe(fp(usage(y)));
  });

  it('changes for 300 random single-field changes', () => {
    const FIELDS = [
      'inputTokens',
      'outputTokens',
      'cacheReadTokens',
      'cacheWriteTokens',
      'userId',
      'appId',
      'tags',
      'timestampMs',
    ] as const;
    let s = 7;
    const next = () => {
      s = (s * 48271) % 2147483647;
      return s;
    };
    for (let i = 0; i < 300; i++) {
      const base = usage({
        inputTokens: next() % 1e6,
        userId: `u${next()}`,
        tags: tags({ k: `${next()}` }),
      });
      const field = FIELDS[i % FIELDS.length] as (typeof FIELDS)[number];
      const changed: UsageEvent =
        field === 'tags'
          ? { ...base, tags: tags({ k: `${base.tags?.k}0` }) }
          : field === 'userId' || field === 'appId'
            ? { ...base, [field]: `${base[field]}_` }
            : { ...base, [field]: (base[field] as number) + 1 + (next() % 1000) };
      expect(fp(changed)).not.toBe(fp(base));
    }
  });
});

describe('priceEvent: fingerprint of one Bedrock request seen by two paths', () => {
  const sdk = usage({
    id: 'bedrock:915a6a04-3f83-4c70-a277-7fbf7ea546b3',
    modelId: 'us.anthropic.claude-3-haiku-20240307-v1:0',
    provider: 'bedrock',
  });

  it('ignores who, when and how long: the SDK and the invocation log agree', () => {
    const fromLog = usage({
      ...sdk,
      timestampMs: T + 1_500,
      userId: 'support-bot-task-role',
      appId: 'bedrock',
      modelId:
        'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0',
      latencyMs: undefined,
      status: 'ok',
      tags: tags({ team: 'care' }),
    });
    expect(fp(fromLog)).toBe(fp(sdk));
  });

  it.each([
    ['inputTokens', { inputTokens: 1001 }],
    ['outputTokens', { outputTokens: 499 }],
    ['cacheReadTokens', { cacheReadTokens: 0 }],
    ['cacheWriteTokens', { cacheWriteTokens: 7 }],
  ] as Array<[string, Partial<UsageEvent>]>)(
    'still tells a different %s apart (a real conflict)',
    (_n, change) => {
      expect(fp(usage({ ...sdk, ...change }))).not.toBe(fp(sdk));
    },
  );

  it('applies only to ids of the bedrock:<request id> form', () => {
    const plain = usage({ id: 'bedrock:' });
    expect(fp(usage({ ...plain, userId: 'other' }))).not.toBe(fp(plain));
  });
});
