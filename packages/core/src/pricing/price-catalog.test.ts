import { describe, expect, it } from 'vitest';
import { TokenwatchError } from '../errors.js';
import { normaliseModel } from '../model/normalise-model.js';
import { BUNDLED_CATALOG } from './catalog-data.js';
import type { ModelPriceEntry, PriceCatalogData } from './price-catalog.js';
import { PriceCatalog, parseDecimalUsd } from './price-catalog.js';

const AT = Date.UTC(2026, 5, 1);
const bundled = PriceCatalog.fromData(BUNDLED_CATALOG);

function data(models: ModelPriceEntry[]): PriceCatalogData {
  return { version: 'test', source: 'test', currency: 'USD', unit: 'per 1M tokens', models };
}

function entry(over: Partial<ModelPriceEntry>): ModelPriceEntry {
  return {
    provider: 'openai',
    modelId: 'gpt-test',
    effectiveFrom: '2026-01-01',
    input: '1',
    output: '2',
    ...over,
  };
}

describe('parseDecimalUsd', () => {
  it.each([
    ['0', 0n],
    ['3', 3_000_000_000n],
    ['3.3', 3_300_000_000n],
    ['3.30', 3_300_000_000n],
    ['0.3125', 312_500_000n],
    ['0.546875', 546_875_000n],
    ['0.000000001', 1n],
    ['007.5', 7_500_000_000n],
    ['1000000', 1_000_000_000_000_000n],
    ['999999.999999999', 999_999_999_999_999n],
  ])('%s → %s nano-USD', (value, expected) => {
    expect(parseDecimalUsd(value, 'input')).toBe(expected);
  });

  it.each([
    ['', 'is empty'],
    ['-1', 'is negative'],
    ['1e3', 'exponent'],
    ['2.5e-06', 'exponent'],
    ['abc', 'not a plain decimal'],
    [' 3', 'not a plain decimal'],
    ['3 ', 'not a plain decimal'],
    ['.5', 'not a plain decimal'],
    ['5.', 'not a plain decimal'],
    ['+1', 'not a plain decimal'],
    ['1,5', 'not a plain decimal'],
    ['NaN', 'not a plain decimal'],
    ['0.0000000001', 'more than 9 decimals'],
    ['1000000.000000001', 'above 1000000 USD'],
    ['12345678', 'above 1000000 USD'],
    ['9'.repeat(400), 'above 1000000 USD'],
  ])('rejects %j (%s) naming the field', (value, reason) => {
    let caught: unknown;
    try {
      parseDecimalUsd(value, 'models[3].cacheRead');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(TokenwatchError);
    const error = caught as TokenwatchError;
    expect(error.code).toBe('invalid_argument');
    expect(error.message).toContain('models[3].cacheRead');
    expect(error.message).toContain(reason);
    expect(error.details[0]?.field).toBe('models[3].cacheRead');
  });

  it('rejects a non-string at run time', () => {
    expect(() => parseDecimalUsd(3 as unknown as string, 'input')).toThrow(/input: must be/);
  });
});

describe('PriceCatalog.fromData', () => {
  it('loads the bundled catalog', () => {
    expect(bundled.version).toBe('2026-04-30');
    expect(bundled.list()).toHaveLength(BUNDLED_CATALOG.models.length);
  });

  it('names the bad entry and field', () => {
    expect(() => PriceCatalog.fromData(data([entry({}), entry({ output: '1.5.0' })]))).toThrow(
      /models\[1\]\.output/,
    );
    try {
      PriceCatalog.fromData(data([entry({ cacheWrite: '-2' })]));
    } catch (error) {
      expect(error).toBeInstanceOf(TokenwatchError);
      expect((error as TokenwatchError).code).toBe('invalid_config');
      expect((error as TokenwatchError).details).toEqual([
        { field: 'models[0].cacheWrite', reason: '"-2" is negative' },
      ]);
    }
  });

  it.each(['2026-02-30', '2026-1-01', '20260101', '', '2026-13-01'])(
    'rejects effectiveFrom %j',
    (effectiveFrom) => {
      expect(() => PriceCatalog.fromData(data([entry({ effectiveFrom })]))).toThrow(
        /models\[0\]\.effectiveFrom/,
      );
    },
  );

  it('rejects empty provider or model id, and duplicates', () => {
    expect(() => PriceCatalog.fromData(data([entry({ provider: ' ' })]))).toThrow(/provider/);
    expect(() => PriceCatalog.fromData(data([entry({ modelId: '' })]))).toThrow(/modelId/);
    expect(() => PriceCatalog.fromData(data([entry({}), entry({ input: '5' })]))).toThrow(
      /models\[1\]: duplicate price for openai gpt-test from 2026-01-01/,
    );
  });

  it('rejects a currency or unit it does not understand', () => {
    const bad = { ...data([]), currency: 'EUR' } as unknown as PriceCatalogData;
    expect(() => PriceCatalog.fromData(bad)).toThrow(/currency/);
  });

  it('folds provider aliases and trims model ids', () => {
    const c = PriceCatalog.fromData(
      data([entry({ provider: 'AWS.Bedrock', modelId: ' amazon.nova-pro-v1:0 ' })]),
    );
    expect(c.list()[0]).toMatchObject({ provider: 'bedrock', modelId: 'amazon.nova-pro-v1:0' });
    expect(c.lookup(normaliseModel(undefined, 'amazon.nova-pro-v1:0'), AT)?.origin).toBe('bundled');
  });
});

describe('PriceCatalog.lookup with the bundled catalog', () => {
  it('prices a geo profile at the geo price (+10 %)', () => {
    const price = bundled.lookup(
      normaliseModel(undefined, 'us.anthropic.claude-sonnet-4-5-20250929-v1:0'),
      AT,
    );
    expect(price).toEqual({
      provider: 'bedrock',
      modelId: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
      effectiveFrom: '2026-04-30',
      origin: 'bundled',
      inputNanoPerMTok: 3_300_000_000n,
      outputNanoPerMTok: 16_500_000_000n,
      cacheReadNanoPerMTok: 330_000_000n,
      cacheWriteNanoPerMTok: 4_125_000_000n,
    });
  });

  it('prices an inference-profile ARN by its geo key', () => {
    const ref = normaliseModel(
      'aws.bedrock',
      'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0',
    );
    expect(bundled.lookup(ref, AT)?.inputNanoPerMTok).toBe(3_600_000_000n);
  });

  it('prices a foundation-model ARN by its base id', () => {
    const ref = normaliseModel(
      undefined,
      'arn:aws-cn:bedrock:cn-north-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0',
    );
    const price = bundled.lookup(ref, AT);
    expect(price?.modelId).toBe('anthropic.claude-3-haiku-20240307-v1:0');
    expect(price?.inputNanoPerMTok).toBe(250_000_000n);
    expect(price?.cacheWriteNanoPerMTok).toBe(312_500_000n);
  });

  it('falls back to the base id when the geo key is not in the catalog', () => {
    const price = bundled.lookup(
      normaliseModel(undefined, 'jp.anthropic.claude-3-haiku-20240307-v1:0:200k'),
      AT,
    );
    expect(price?.modelId).toBe('anthropic.claude-3-haiku-20240307-v1:0');
  });

  it('uses the global. key over the base id when both exist', () => {
    const price = bundled.lookup(
      normaliseModel(undefined, 'global.anthropic.claude-opus-4-6-v1'),
      AT,
    );
    expect(price?.modelId).toBe('global.anthropic.claude-opus-4-6-v1');
    expect(price?.inputNanoPerMTok).toBe(5_000_000_000n);
  });

  it('charges the input price for missing cache prices', () => {
    const nova = bundled.lookup(normaliseModel(undefined, 'amazon.nova-pro-v1:0'), AT);
    expect(nova?.cacheReadNanoPerMTok).toBe(800_000_000n);
    expect(nova?.cacheWriteNanoPerMTok).toBe(800_000_000n);
    const gpt = bundled.lookup(normaliseModel(undefined, 'gpt-4o'), AT);
    expect(gpt?.cacheReadNanoPerMTok).toBe(1_250_000_000n);
    expect(gpt?.cacheWriteNanoPerMTok).toBe(2_500_000_000n);
  });

  it('prices an OpenAI dated snapshot at the undated id', () => {
    const price = bundled.lookup(normaliseModel('openai', 'gpt-4o-2024-08-06'), AT);
    expect(price?.modelId).toBe('gpt-4o');
  });

  it('prices an undated Anthropic alias at the dated catalog key', () => {
    const price = bundled.lookup(normaliseModel(undefined, 'claude-sonnet-4-5'), AT);
    expect(price?.modelId).toBe('claude-sonnet-4-5-20250929');
    expect(price?.outputNanoPerMTok).toBe(15_000_000_000n);
    expect(bundled.lookup(normaliseModel(undefined, 'claude-3-7-sonnet-latest'), AT)?.modelId).toBe(
      'claude-3-7-sonnet-20250219',
    );
  });

  it('prices an undated catalog key directly, and a dated id of it by fallback', () => {
    expect(bundled.lookup(normaliseModel(undefined, 'claude-opus-4-6'), AT)?.modelId).toBe(
      'claude-opus-4-6',
    );
    expect(bundled.lookup(normaliseModel(undefined, 'claude-opus-4-6-20260101'), AT)?.modelId).toBe(
      'claude-opus-4-6',
    );
  });

  it('finds LiteLLM-style <provider>/<id> keys', () => {
    const price = bundled.lookup(normaliseModel(undefined, 'deepseek-chat'), AT);
    expect(price?.modelId).toBe('deepseek/deepseek-chat');
    expect(price?.inputNanoPerMTok).toBe(280_000_000n);
  });

  it('keeps providers apart', () => {
    // Same id spelled for Bedrock and Anthropic: each provider prices its own key.
    expect(bundled.lookup(normaliseModel('bedrock', 'claude-sonnet-4-5-20250929'), AT)).toBe(
      undefined,
    );
    expect(bundled.lookup(normaliseModel('azure_openai', 'gpt-4o'), AT)).toBeUndefined();
  });

  it('returns undefined for unpriced, opaque and garbage models', () => {
    for (const [provider, id] of [
      [undefined, 'my-local-llama'],
      ['bedrock', 'anthropic.claude-mythos-preview'],
      [undefined, 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc'],
      [undefined, 'arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc'],
      [undefined, ''],
      [undefined, '🙂'.repeat(256)],
    ] as const) {
      expect(bundled.lookup(normaliseModel(provider, id), AT)).toBeUndefined();
    }
  });

  it('applies bundled prices backwards to before their date', () => {
    const price = bundled.lookup(normaliseModel(undefined, 'gpt-4o'), Date.UTC(2024, 0, 1));
    expect(price?.effectiveFrom).toBe('2026-04-30');
    expect(bundled.lookup(normaliseModel(undefined, 'gpt-4o'), Number.NaN)?.modelId).toBe('gpt-4o');
  });
});

describe('PriceCatalog overrides and effective dates', () => {
  const ref = normaliseModel(undefined, 'gpt-4o');

  it('picks the latest override entry that has started', () => {
    const c = bundled.withOverrides([
      entry({ modelId: 'gpt-4o', effectiveFrom: '2026-07-01', input: '2', output: '8' }),
      entry({ modelId: 'gpt-4o', effectiveFrom: '2026-05-15', input: '2.2', output: '8.8' }),
    ]);
    // Before any override: bundled applies.
    const before = c.lookup(ref, Date.UTC(2026, 4, 14, 23, 59, 59, 999));
    expect(before).toMatchObject({ origin: 'bundled', effectiveFrom: '2026-04-30' });
    // From UTC midnight of the first override's date.
    const first = c.lookup(ref, Date.UTC(2026, 4, 15));
    expect(first).toMatchObject({
      origin: 'override',
      effectiveFrom: '2026-05-15',
      inputNanoPerMTok: 2_200_000_000n,
    });
    expect(c.lookup(ref, Date.UTC(2026, 5, 30, 23))?.effectiveFrom).toBe('2026-05-15');
    const second = c.lookup(ref, Date.UTC(2026, 6, 1));
    expect(second).toMatchObject({ effectiveFrom: '2026-07-01', inputNanoPerMTok: 2_000_000_000n });
  });

  it('lets a started override beat a bundled entry dated later', () => {
    const c = bundled.withOverrides([
      entry({ modelId: 'gpt-4o', effectiveFrom: '2025-01-01', input: '1', output: '1' }),
    ]);
    const price = c.lookup(ref, AT);
    expect(price).toMatchObject({ origin: 'override', effectiveFrom: '2025-01-01' });
    expect(price?.cacheReadNanoPerMTok).toBe(1_000_000_000n);
  });

  it('uses the earliest entry of all when every entry starts later', () => {
    const c = PriceCatalog.fromData(data([entry({ effectiveFrom: '2026-03-01' })])).withOverrides([
      entry({ effectiveFrom: '2026-02-01', input: '9' }),
      entry({ effectiveFrom: '2026-04-01', input: '7' }),
    ]);
    const price = c.lookup(normaliseModel('openai', 'gpt-test'), Date.UTC(2025, 0, 1));
    expect(price).toMatchObject({ origin: 'override', effectiveFrom: '2026-02-01' });
    const mid = c.lookup(normaliseModel('openai', 'gpt-test'), Date.UTC(2026, 2, 15));
    expect(mid).toMatchObject({ origin: 'override', effectiveFrom: '2026-02-01' });
  });

  it('prices a model the bundled catalog lacks', () => {
    const c = bundled.withOverrides([
      entry({ provider: 'aws.bedrock', modelId: 'eu.anthropic.claude-sonnet-4-5-20250929-v1:0' }),
    ]);
    const price = c.lookup(
      normaliseModel(undefined, 'eu.anthropic.claude-sonnet-4-5-20250929-v1:0'),
      AT,
    );
    expect(price).toMatchObject({ provider: 'bedrock', origin: 'override' });
    // The bundled catalog itself is unchanged.
    expect(
      bundled.lookup(normaliseModel(undefined, 'eu.anthropic.claude-sonnet-4-5-20250929-v1:0'), AT)
        ?.modelId,
    ).toBe('anthropic.claude-sonnet-4-5-20250929-v1:0');
  });

  it('lets a later withOverrides call replace an override with the same date', () => {
    const c = bundled
      .withOverrides([entry({ modelId: 'gpt-4o', input: '1' })])
      .withOverrides([entry({ modelId: 'gpt-4o', input: '4' })]);
    expect(c.lookup(ref, AT)?.inputNanoPerMTok).toBe(4_000_000_000n);
    expect(c.list()).toHaveLength(BUNDLED_CATALOG.models.length + 1);
  });

  it('rejects bad and duplicate overrides as invalid_config', () => {
    expect(() => bundled.withOverrides([entry({ input: '1e3' })])).toThrow(
      /price override: overrides\[0\]\.input/,
    );
    expect(() => bundled.withOverrides([entry({}), entry({})])).toThrow(/duplicate/);
  });

  it('list() returns copies', () => {
    const c = PriceCatalog.fromData(data([entry({})]));
    const listed = c.list();
    const first = listed[0];
    if (first !== undefined) first.input = '999';
    expect(c.list()[0]?.input).toBe('1');
  });
});
