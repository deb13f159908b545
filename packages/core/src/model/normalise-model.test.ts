import { describe, expect, it } from 'vitest';
import type { ModelRef } from './model-ref.js';
import { normaliseModel } from './normalise-model.js';

describe('normaliseModel: Bedrock samples from integrations.md § 2.4', () => {
  const cases: Array<[string, ModelRef]> = [
    [
      'anthropic.claude-3-haiku-20240307-v1:0',
      {
        provider: 'bedrock',
        modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
        baseModelId: 'anthropic.claude-3-haiku-20240307-v1:0',
        priceKeys: ['anthropic.claude-3-haiku-20240307-v1:0'],
        kind: 'model-id',
        opaque: false,
      },
    ],
    [
      'amazon.nova-pro-v1:0',
      {
        provider: 'bedrock',
        modelId: 'amazon.nova-pro-v1:0',
        baseModelId: 'amazon.nova-pro-v1:0',
        priceKeys: ['amazon.nova-pro-v1:0'],
        kind: 'model-id',
        opaque: false,
      },
    ],
    [
      'meta.llama3-3-70b-instruct-v1:0',
      {
        provider: 'bedrock',
        modelId: 'meta.llama3-3-70b-instruct-v1:0',
        baseModelId: 'meta.llama3-3-70b-instruct-v1:0',
        priceKeys: ['meta.llama3-3-70b-instruct-v1:0'],
        kind: 'model-id',
        opaque: false,
      },
    ],
    [
      'anthropic.claude-sonnet-4-6',
      {
        provider: 'bedrock',
        modelId: 'anthropic.claude-sonnet-4-6',
        baseModelId: 'anthropic.claude-sonnet-4-6',
        priceKeys: ['anthropic.claude-sonnet-4-6'],
        kind: 'model-id',
        opaque: false,
      },
    ],
    [
      'anthropic.claude-opus-4-6-v1',
      {
        provider: 'bedrock',
        modelId: 'anthropic.claude-opus-4-6-v1',
        baseModelId: 'anthropic.claude-opus-4-6-v1',
        priceKeys: ['anthropic.claude-opus-4-6-v1'],
        kind: 'model-id',
        opaque: false,
      },
    ],
    [
      'deepseek.v3.2',
      {
        provider: 'bedrock',
        modelId: 'deepseek.v3.2',
        baseModelId: 'deepseek.v3.2',
        priceKeys: ['deepseek.v3.2'],
        kind: 'model-id',
        opaque: false,
      },
    ],
    [
      'anthropic.claude-3-haiku-20240307-v1:0:28k',
      {
        provider: 'bedrock',
        modelId: 'anthropic.claude-3-haiku-20240307-v1:0:28k',
        baseModelId: 'anthropic.claude-3-haiku-20240307-v1:0',
        priceKeys: [
          'anthropic.claude-3-haiku-20240307-v1:0:28k',
          'anthropic.claude-3-haiku-20240307-v1:0',
        ],
        kind: 'model-id',
        opaque: false,
      },
    ],
    [
      'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0',
      {
        provider: 'bedrock',
        modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
        baseModelId: 'anthropic.claude-3-haiku-20240307-v1:0',
        priceKeys: ['anthropic.claude-3-haiku-20240307-v1:0'],
        kind: 'foundation-model',
        region: 'us-east-1',
        opaque: false,
      },
    ],
    [
      'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
      {
        provider: 'bedrock',
        modelId: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
        baseModelId: 'anthropic.claude-sonnet-4-5-20250929-v1:0',
        priceKeys: [
          'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
          'anthropic.claude-sonnet-4-5-20250929-v1:0',
        ],
        kind: 'inference-profile',
        geo: 'us',
        opaque: false,
      },
    ],
    [
      'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0',
      {
        provider: 'bedrock',
        modelId: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
        baseModelId: 'anthropic.claude-sonnet-4-5-20250929-v1:0',
        priceKeys: [
          'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
          'anthropic.claude-sonnet-4-5-20250929-v1:0',
        ],
        kind: 'inference-profile',
        geo: 'us',
        region: 'us-east-1',
        opaque: false,
      },
    ],
    [
      'us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0',
      {
        provider: 'bedrock',
        modelId: 'us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0',
        baseModelId: 'anthropic.claude-sonnet-4-5-20250929-v1:0',
        priceKeys: [
          'us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0',
          'anthropic.claude-sonnet-4-5-20250929-v1:0',
        ],
        kind: 'inference-profile',
        geo: 'us-gov',
        opaque: false,
      },
    ],
    [
      'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3',
      {
        provider: 'bedrock',
        modelId: 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3',
        baseModelId: 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3',
        priceKeys: [],
        kind: 'application-inference-profile',
        region: 'us-east-1',
        opaque: true,
      },
    ],
  ];

  it.each(cases)('%s', (raw, expected) => {
    expect(normaliseModel(undefined, raw)).toEqual(expected);
    expect(normaliseModel('aws.bedrock', raw)).toEqual(expected);
  });
});

describe('normaliseModel: Bedrock geo prefixes and suffixes', () => {
  it.each(['us', 'eu', 'apac', 'global', 'jp', 'au', 'us-gov', 'ca'])('records geo %s', (geo) => {
    const ref = normaliseModel('bedrock', `${geo}.amazon.nova-pro-v1:0`);
    expect(ref.geo).toBe(geo);
    expect(ref.modelId).toBe(`${geo}.amazon.nova-pro-v1:0`);
    expect(ref.baseModelId).toBe('amazon.nova-pro-v1:0');
    expect(ref.kind).toBe('inference-profile');
    expect(ref.priceKeys).toEqual([`${geo}.amazon.nova-pro-v1:0`, 'amazon.nova-pro-v1:0']);
  });

  it.each([
    'anthropic',
    'amazon',
    'meta',
    'mistral',
    'cohere',
    'deepseek',
    'ai21',
    'openai',
    'qwen',
    'writer',
    'minimax',
    'moonshot',
    'moonshotai',
    'google',
    'nvidia',
    'twelvelabs',
    'stability',
  ])('knows vendor %s', (vendor) => {
    const ref = normaliseModel(undefined, `eu.${vendor}.some-model-v1:0`);
    expect(ref.provider).toBe('bedrock');
    expect(ref.geo).toBe('eu');
    expect(ref.baseModelId).toBe(`${vendor}.some-model-v1:0`);
  });

  it('does not take a geo-looking prefix before an unknown vendor', () => {
    const ref = normaliseModel('bedrock', 'us.acme.model-v1');
    expect(ref.geo).toBeUndefined();
    expect(ref.kind).toBe('model-id');
    expect(ref.priceKeys).toEqual(['us.acme.model-v1']);
  });

  it('orders keys geo first, context suffix last, for a geo profile with a context suffix', () => {
    const ref = normaliseModel(undefined, 'us.anthropic.claude-3-haiku-20240307-v1:0:200k');
    expect(ref.modelId).toBe('us.anthropic.claude-3-haiku-20240307-v1:0:200k');
    expect(ref.baseModelId).toBe('anthropic.claude-3-haiku-20240307-v1:0');
    expect(ref.priceKeys).toEqual([
      'us.anthropic.claude-3-haiku-20240307-v1:0:200k',
      'us.anthropic.claude-3-haiku-20240307-v1:0',
      'anthropic.claude-3-haiku-20240307-v1:0:200k',
      'anthropic.claude-3-haiku-20240307-v1:0',
    ]);
  });

  it('keeps version suffixes that are not context windows', () => {
    const ref = normaliseModel(undefined, 'anthropic.claude-v2:1');
    expect(ref.baseModelId).toBe('anthropic.claude-v2:1');
    expect(ref.priceKeys).toEqual(['anthropic.claude-v2:1']);
  });
});

describe('normaliseModel: ARNs', () => {
  it.each([
    ['aws', 'us-east-1'],
    ['aws-us-gov', 'us-gov-west-1'],
    ['aws-cn', 'cn-northwest-1'],
    ['aws-iso-b', 'us-isob-east-1'],
  ])('unwraps foundation-model ARNs in partition %s', (partition, region) => {
    const ref = normaliseModel(
      undefined,
      `arn:${partition}:bedrock:${region}::foundation-model/amazon.nova-pro-v1:0`,
    );
    expect(ref).toEqual({
      provider: 'bedrock',
      modelId: 'amazon.nova-pro-v1:0',
      baseModelId: 'amazon.nova-pro-v1:0',
      priceKeys: ['amazon.nova-pro-v1:0'],
      kind: 'foundation-model',
      region,
      opaque: false,
    });
  });

  it('unwraps inference-profile ARNs in the GovCloud partition', () => {
    const ref = normaliseModel(
      'bedrock',
      'arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:inference-profile/us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0',
    );
    expect(ref.modelId).toBe('us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0');
    expect(ref.geo).toBe('us-gov');
    expect(ref.region).toBe('us-gov-west-1');
    expect(ref.kind).toBe('inference-profile');
  });

  it('keeps the context suffix in a foundation-model ARN', () => {
    const ref = normaliseModel(
      undefined,
      'arn:aws:bedrock:eu-west-1::foundation-model/amazon.nova-pro-v1:0:300k',
    );
    expect(ref.modelId).toBe('amazon.nova-pro-v1:0:300k');
    expect(ref.baseModelId).toBe('amazon.nova-pro-v1:0');
    expect(ref.priceKeys).toEqual(['amazon.nova-pro-v1:0:300k', 'amazon.nova-pro-v1:0']);
  });

  it.each([
    ['application-inference-profile/a1b2c3d4e5f6', 'application-inference-profile'],
    ['provisioned-model/abcdefghij12', 'provisioned-model'],
    ['custom-model/amazon.titan-text-express-v1:0:8k/abc123xyz', 'custom-model'],
    ['custom-model-deployment/a1b2c3d4', 'custom-model-deployment'],
    ['imported-model/abcd1234', 'imported-model'],
    ['prompt-router/abcd1234', 'prompt-router'],
    ['default-prompt-router/anthropic.claude:1', 'prompt-router'],
  ] as const)('keeps opaque %s whole', (resource, kind) => {
    for (const partition of ['aws', 'aws-us-gov', 'aws-cn']) {
      const arn = `arn:${partition}:bedrock:us-west-2:123456789012:${resource}`;
      expect(normaliseModel(undefined, arn)).toEqual({
        provider: 'bedrock',
        modelId: arn,
        baseModelId: arn,
        priceKeys: [],
        kind,
        region: 'us-west-2',
        opaque: true,
      });
    }
  });

  it('treats an unknown or malformed Bedrock ARN as opaque', () => {
    const agent = 'arn:aws:bedrock:us-east-1:123456789012:agent/ABCDEFGHIJ';
    expect(normaliseModel(undefined, agent)).toMatchObject({
      modelId: agent,
      kind: 'model-id',
      opaque: true,
      priceKeys: [],
    });
    const broken = 'arn:aws:bedrock:us-east-1';
    expect(normaliseModel('bedrock', broken)).toMatchObject({
      modelId: broken,
      opaque: true,
      priceKeys: [],
    });
    expect(normaliseModel(undefined, broken).region).toBeUndefined();
  });

  it('says bedrock for a Bedrock ARN even when the caller named another provider', () => {
    const ref = normaliseModel(
      'anthropic',
      'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0',
    );
    expect(ref.provider).toBe('bedrock');
    expect(ref.modelId).toBe('anthropic.claude-3-haiku-20240307-v1:0');
  });

  it('trims whitespace around an ARN', () => {
    const ref = normaliseModel(
      ' aws.bedrock ',
      '  arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0\n',
    );
    expect(ref.modelId).toBe('amazon.nova-lite-v1:0');
  });
});

describe('normaliseModel: OpenAI and Anthropic', () => {
  it('falls back from a dated OpenAI snapshot to the undated id', () => {
    expect(normaliseModel('openai', 'gpt-4o-2024-08-06')).toEqual({
      provider: 'openai',
      modelId: 'gpt-4o-2024-08-06',
      baseModelId: 'gpt-4o-2024-08-06',
      priceKeys: ['gpt-4o-2024-08-06', 'gpt-4o'],
      kind: 'model-id',
      opaque: false,
    });
    expect(normaliseModel(undefined, 'o3-mini-2025-01-31').priceKeys).toEqual([
      'o3-mini-2025-01-31',
      'o3-mini',
    ]);
    expect(normaliseModel('OpenAI', 'gpt-4-0613').priceKeys).toEqual(['gpt-4-0613', 'gpt-4']);
  });

  it('leaves undated OpenAI ids alone', () => {
    expect(normaliseModel(undefined, 'gpt-5.4-mini')).toEqual({
      provider: 'openai',
      modelId: 'gpt-5.4-mini',
      baseModelId: 'gpt-5.4-mini',
      priceKeys: ['gpt-5.4-mini'],
      kind: 'model-id',
      opaque: false,
    });
  });

  it('falls back from a dated Anthropic id to its undated alias', () => {
    expect(normaliseModel('anthropic', 'claude-sonnet-4-5-20250929')).toEqual({
      provider: 'anthropic',
      modelId: 'claude-sonnet-4-5-20250929',
      baseModelId: 'claude-sonnet-4-5-20250929',
      priceKeys: ['claude-sonnet-4-5-20250929', 'claude-sonnet-4-5'],
      kind: 'model-id',
      opaque: false,
    });
    expect(normaliseModel(undefined, 'claude-sonnet-4-5').priceKeys).toEqual(['claude-sonnet-4-5']);
    expect(normaliseModel(undefined, 'claude-3-5-haiku-latest').priceKeys).toEqual([
      'claude-3-5-haiku-latest',
      'claude-3-5-haiku',
    ]);
  });

  it('also tries the id without a <provider>/ prefix', () => {
    expect(normaliseModel('openai', 'openai/gpt-4o-2024-08-06').priceKeys).toEqual([
      'openai/gpt-4o-2024-08-06',
      'gpt-4o-2024-08-06',
      'gpt-4o',
    ]);
    expect(normaliseModel('deepseek', 'deepseek/deepseek-chat').priceKeys).toEqual([
      'deepseek/deepseek-chat',
      'deepseek-chat',
    ]);
  });

  it('honours an explicit provider over inference', () => {
    const ref = normaliseModel('azure_openai', 'gpt-4o');
    expect(ref.provider).toBe('azure_openai');
    expect(ref.priceKeys).toEqual(['gpt-4o']);
  });

  it('is case-sensitive for ids and not for providers', () => {
    const ref = normaliseModel('ANTHROPIC', 'Claude-Sonnet-4-5');
    expect(ref.provider).toBe('anthropic');
    expect(ref.modelId).toBe('Claude-Sonnet-4-5');
  });
});

describe('normaliseModel: garbage never throws', () => {
  it('makes an unpriced model-id of an unknown id with no provider', () => {
    expect(normaliseModel(undefined, 'my-local-llama')).toEqual({
      provider: 'unknown',
      modelId: 'my-local-llama',
      baseModelId: 'my-local-llama',
      priceKeys: ['my-local-llama'],
      kind: 'model-id',
      opaque: false,
    });
  });

  it('handles a 512-character unicode string', () => {
    const raw = '模型🙂\u0000\u202e'.repeat(103).slice(0, 512);
    const ref = normaliseModel(undefined, raw);
    expect(ref.provider).toBe('unknown');
    expect(ref.kind).toBe('model-id');
    expect(ref.opaque).toBe(false);
    expect(ref.modelId).toBe(raw.trim());
  });

  it.each([
    '',
    '   ',
    '.',
    '..',
    'us.',
    'us..anthropic',
    ':28k',
    'arn:',
    'arn:aws:bedrock:::foundation-model/',
    'arn:aws:bedrock:us-east-1::foundation-model/\nx',
    'a'.repeat(100_000),
  ])('%j', (raw) => {
    expect(() => normaliseModel(undefined, raw)).not.toThrow();
    expect(() => normaliseModel('bedrock', raw)).not.toThrow();
    expect(() => normaliseModel('openai', raw)).not.toThrow();
    expect(() => normaliseModel('anthropic', raw)).not.toThrow();
    const ref = normaliseModel('bedrock', raw);
    expect(ref.priceKeys).not.toContain('');
    expect(new Set(ref.priceKeys).size).toBe(ref.priceKeys.length);
  });

  it('gives no price keys for an empty id', () => {
    expect(normaliseModel(undefined, '  ')).toEqual({
      provider: 'unknown',
      modelId: '',
      baseModelId: '',
      priceKeys: [],
      kind: 'model-id',
      opaque: false,
    });
  });

  it('uses unknown for a blank provider that cannot be inferred', () => {
    expect(normaliseModel('  ', 'foo').provider).toBe('unknown');
    expect(normaliseModel('', 'gpt-4o').provider).toBe('openai');
  });
});
