import { describe, expect, it } from 'vitest';
import { normaliseModel } from '../model/normalise-model.js';
import { BUNDLED_CATALOG } from './catalog-data.js';
import { costNanoUsd, formatNanoUsd } from './cost.js';
import type { ResolvedPrice } from './price-catalog.js';
import { PriceCatalog } from './price-catalog.js';

const catalog = PriceCatalog.fromData(BUNDLED_CATALOG);
const AT = Date.UTC(2026, 4, 1);

function priceOf(provider: string | undefined, modelId: string): ResolvedPrice {
  const price = catalog.lookup(normaliseModel(provider, modelId), AT);
  if (price === undefined) throw new Error(`no price for ${modelId}`);
  return price;
}

function price(
  input: bigint,
  output: bigint,
  cacheRead = input,
  cacheWrite = input,
): ResolvedPrice {
  return {
    provider: 'test',
    modelId: 'test',
    effectiveFrom: '2026-01-01',
    origin: 'override',
    inputNanoPerMTok: input,
    outputNanoPerMTok: output,
    cacheReadNanoPerMTok: cacheRead,
    cacheWriteNanoPerMTok: cacheWrite,
  };
}

describe('costNanoUsd', () => {
  it('prices every token class (us. Sonnet 4.5, hand-computed)', () => {
    // 1000×3.3 + 2000×0.33 + 500×4.125 + 300×16.5 = 3300 + 660 + 2062.5 + 4950 = 10972.5 USD/1M
    const cost = costNanoUsd(priceOf(undefined, 'us.anthropic.claude-sonnet-4-5-20250929-v1:0'), {
      inputTokens: 1000,
      cacheReadTokens: 2000,
      cacheWriteTokens: 500,
      outputTokens: 300,
    });
    expect(cost).toBe(10_972_500);
    expect(formatNanoUsd(cost)).toBe('0.0109725');
  });

  it('prices the base id without the geo uplift', () => {
    const cost = costNanoUsd(priceOf(undefined, 'anthropic.claude-sonnet-4-5-20250929-v1:0'), {
      inputTokens: 1000,
      cacheReadTokens: 2000,
      cacheWriteTokens: 500,
      outputTokens: 300,
    });
    // 3000 + 600 + 1875 + 4500 = 9975 USD/1M
    expect(cost).toBe(9_975_000);
  });

  const none = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };

  it('rounds half up (Claude 3 Haiku cache write: 0.3125 USD/1M = 312.5 nano per token)', () => {
    const haiku = priceOf(undefined, 'anthropic.claude-3-haiku-20240307-v1:0');
    expect(costNanoUsd(haiku, { ...none, cacheWriteTokens: 1 })).toBe(313);
    expect(costNanoUsd(haiku, { ...none, cacheWriteTokens: 2 })).toBe(625);
    expect(costNanoUsd(haiku, { ...none, cacheWriteTokens: 3 })).toBe(938); // 937.5
  });

  it('rounds once per event, not per class', () => {
    // Nova 2 Pro preview: input 2.1875 (2187.5 nano/token), cache read 0.546875 (546.875).
    // One of each = 2734.375 → 2734; rounding each class first would give 2188 + 547 = 2735.
    const nova2 = priceOf(undefined, 'amazon.nova-2-pro-preview-20251202-v1:0');
    expect(costNanoUsd(nova2, { ...none, inputTokens: 1, cacheReadTokens: 1 })).toBe(2734);
    // Each class alone is 0.4 nano (→ 0); together 0.8 nano → 1.
    const p = price(400_000n, 400_000n);
    expect(costNanoUsd(p, { ...none, inputTokens: 1 })).toBe(0);
    expect(costNanoUsd(p, { ...none, inputTokens: 1, outputTokens: 1 })).toBe(1);
  });

  it.each([
    [499_999n, 0],
    [500_000n, 1],
    [1_499_999n, 1],
    [1_500_000n, 2],
    [2_500_000n, 3],
  ])('rounds %s nano-USD per 1M × 1 token to %s', (perMTok, expected) => {
    expect(costNanoUsd(price(perMTok, 0n), { ...none, inputTokens: 1 })).toBe(expected);
  });

  it('prices a realistic event: 1234 gpt-4o-mini input + 567 output tokens', () => {
    // 1234×0.15 + 567×0.6 = 185.1 + 340.2 = 525.3 USD per 1M tokens → 525.3e-6 USD
    const cost = costNanoUsd(priceOf('openai', 'gpt-4o-mini'), {
      ...none,
      inputTokens: 1234,
      outputTokens: 567,
    });
    expect(cost).toBe(525_300);
    expect(formatNanoUsd(cost)).toBe('0.0005253');
  });

  it('stays exact for 1e9 tokens of every class', () => {
    const t = {
      inputTokens: 1e9,
      outputTokens: 1e9,
      cacheReadTokens: 1e9,
      cacheWriteTokens: 1e9,
    };
    // Opus 4: (15 + 75 + 1.5 + 18.75) × 1000 USD = 110250 USD
    expect(costNanoUsd(priceOf(undefined, 'anthropic.claude-opus-4-20250514-v1:0'), t)).toBe(
      110_250_000_000_000,
    );
    // A price whose float product would lose digits: 0.000000001 + 999.999999999 per 1M
    const odd = price(1n, 999_999_999_999n, 3n, 7n);
    const nines = { ...t, inputTokens: 999_999_999, outputTokens: 999_999_999 };
    // (999999999×1 + 999999999×999999999999 + 1e9×3 + 1e9×7) / 1e6, half up
    const exact =
      (999_999_999n * 1n + 999_999_999n * 999_999_999_999n + 1_000_000_000n * 10n + 500_000n) /
      1_000_000n;
    expect(BigInt(costNanoUsd(odd, nines))).toBe(exact);
    expect(Number.isSafeInteger(costNanoUsd(odd, nines))).toBe(true);
  });

  it('is zero for zero tokens', () => {
    expect(
      costNanoUsd(priceOf(undefined, 'gpt-5'), {
        inputTokens: 0,
        outputTokens: 0,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
      }),
    ).toBe(0);
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53])(
    'rejects token count %s',
    (bad) => {
      expect(() =>
        costNanoUsd(price(1n, 1n), {
          inputTokens: 0,
          outputTokens: bad,
          cacheReadTokens: 0,
          cacheWriteTokens: 0,
        }),
      ).toThrow(/outputTokens: must be a non-negative safe integer/);
    },
  );

  it('rejects a result beyond a safe integer and negative prices', () => {
    const huge = price(1_000_000_000_000_000n, 1_000_000_000_000_000n);
    const t = { inputTokens: 1e9, outputTokens: 1e9, cacheReadTokens: 0, cacheWriteTokens: 0 };
    expect(() => costNanoUsd(huge, t)).toThrow(/MAX_SAFE_INTEGER/);
    expect(() => costNanoUsd(price(-1n, 1n), t)).toThrow(/negative price/);
  });
});

describe('formatNanoUsd', () => {
  it.each([
    [0, '0.00'],
    [0n, '0.00'],
    [1, '0.000000001'],
    [10, '0.00000001'],
    [10_000_000, '0.01'],
    [10_972_500, '0.0109725'],
    [1_234_567_891, '1.234567891'],
    [1_500_000_000n, '1.50'],
    [1_000_000_000, '1.00'],
    [110_250_000_000_000, '110250.00'],
    [-5, '-0.000000005'],
    [-1_500_000_000, '-1.50'],
    [Number.MAX_SAFE_INTEGER, '9007199.254740991'],
    [123_456_789_012_345_678_901n, '123456789012.345678901'],
  ])('%s → %s', (nano, expected) => {
    expect(formatNanoUsd(nano)).toBe(expected);
  });

  it.each([0.5, Number.NaN, 2 ** 53])('rejects %s', (bad) => {
    expect(() => formatNanoUsd(bad)).toThrow(/safe integer/);
  });
});
