import { describe, expect, it } from 'vitest';
import { BUNDLED_CATALOG } from './catalog-data.js';
import { PriceCatalog } from './price-catalog.js';

describe('BUNDLED_CATALOG', () => {
  it('holds every row of bedrock-prices.csv, dated and sourced', () => {
    expect(BUNDLED_CATALOG.models).toHaveLength(118);
    expect(BUNDLED_CATALOG.version).toBe('2026-04-30');
    expect(BUNDLED_CATALOG.source).toContain('00035b69f416be24e2e323c13198d9b7d2d1bdf9');
    expect(new Set(BUNDLED_CATALOG.models.map((m) => m.effectiveFrom))).toEqual(
      new Set(['2026-04-30']),
    );
    const byProvider = new Map<string, number>();
    for (const m of BUNDLED_CATALOG.models) {
      byProvider.set(m.provider, (byProvider.get(m.provider) ?? 0) + 1);
    }
    expect(Object.fromEntries(byProvider)).toEqual({
      bedrock: 86,
      anthropic: 15,
      openai: 16,
      deepseek: 1,
    });
  });

  it('parses without error and has unique provider + key', () => {
    const catalog = PriceCatalog.fromData(BUNDLED_CATALOG);
    const keys = catalog.list().map((m) => `${m.provider} ${m.modelId}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('keeps prices as the decimal strings of the CSV, as given', () => {
    const find = (provider: string, modelId: string) =>
      BUNDLED_CATALOG.models.find((m) => m.provider === provider && m.modelId === modelId);
    expect(find('bedrock', 'amazon.nova-2-pro-preview-20251202-v1:0')).toEqual({
      provider: 'bedrock',
      modelId: 'amazon.nova-2-pro-preview-20251202-v1:0',
      input: '2.1875',
      output: '17.5',
      cacheRead: '0.546875',
      effectiveFrom: '2026-04-30',
    });
    expect(find('bedrock', 'us.anthropic.claude-sonnet-4-5-20250929-v1:0')).toMatchObject({
      input: '3.3',
      output: '16.5',
      cacheRead: '0.33',
      cacheWrite: '4.125',
    });
    expect(find('bedrock', 'us.amazon.nova-premier-v1:0')).toMatchObject({ input: '2.5' });
    expect(find('bedrock', 'anthropic.claude-v2:1')).toEqual({
      provider: 'bedrock',
      modelId: 'anthropic.claude-v2:1',
      input: '8',
      output: '24',
      effectiveFrom: '2026-04-30',
    });
    expect(find('anthropic', 'claude-3-haiku-20240307')?.cacheRead).toBe('0.03');
    expect(find('openai', 'gpt-5.4-nano')).toMatchObject({ input: '0.2', cacheRead: '0.02' });
    expect(find('openai', 'gpt-4o')?.cacheWrite).toBeUndefined();
    expect(find('deepseek', 'deepseek/deepseek-chat')).toMatchObject({ input: '0.28' });
    expect(find('bedrock', 'amazon.nova-premier-v1:0')).toBeUndefined();
  });

  it('uses only decimal strings, never numbers', () => {
    for (const m of BUNDLED_CATALOG.models) {
      for (const v of [m.input, m.output, m.cacheRead, m.cacheWrite]) {
        if (v !== undefined) expect(v).toMatch(/^\d+(\.\d+)?$/);
      }
    }
  });
});
