import { describe, expect, it } from 'vitest';
import { ModelRefCache } from './model-ref-cache.js';
import { normaliseModel } from './normalise-model.js';

const CASES: Array<[string | undefined, string]> = [
  ['bedrock', 'us.anthropic.claude-sonnet-4-5-20250929-v1:0'],
  [undefined, 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.amazon.nova-pro-v1:0'],
  ['openai', 'gpt-4o-2024-08-06'],
  [undefined, 'gpt-4o-2024-08-06'],
  ['', 'gpt-4o-2024-08-06'],
  ['Anthropic', ' claude-3-5-haiku-latest '],
  ['openrouter', 'openai/gpt-4o'],
];

describe('ModelRefCache', () => {
  it('answers what normaliseModel answers, first time and from memory', () => {
    const cache = new ModelRefCache();
    for (let round = 0; round < 2; round++) {
      for (const [provider, id] of CASES) {
        expect(cache.of(provider, id)).toEqual(normaliseModel(provider, id));
      }
    }
  });

  it('keeps "no provider" apart from an empty or given one', () => {
    const cache = new ModelRefCache();
    expect(cache.of(undefined, 'gpt-4o').provider).toBe('openai');
    expect(cache.of('acme', 'gpt-4o').provider).toBe('acme');
    expect(cache.of(undefined, 'gpt-4o').provider).toBe('openai');
  });

  it('hands out refs nobody can change under the next caller', () => {
    const cache = new ModelRefCache();
    const ref = cache.of('openai', 'gpt-4o-2024-08-06');
    expect(() => ref.priceKeys.push('x')).toThrow(TypeError);
    expect(() => {
      (ref as { modelId: string }).modelId = 'x';
    }).toThrow(TypeError);
    expect(cache.of('openai', 'gpt-4o-2024-08-06').priceKeys).toEqual([
      'gpt-4o-2024-08-06',
      'gpt-4o',
    ]);
  });

  it('stays bounded and still answers after it starts again', () => {
    const cache = new ModelRefCache(3);
    for (let i = 0; i < 10; i++) {
      expect(cache.of('openai', `model-${i}`).modelId).toBe(`model-${i}`);
    }
    expect((cache as unknown as { refs: Map<string, unknown> }).refs.size).toBeLessThanOrEqual(3);
  });
});
