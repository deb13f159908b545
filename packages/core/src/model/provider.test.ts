import { describe, expect, it } from 'vitest';
import { inferProvider, normaliseProvider } from './provider.js';

describe('normaliseProvider', () => {
  it.each([
    ['bedrock', 'bedrock'],
    ['aws.bedrock', 'bedrock'],
    ['amazon_bedrock', 'bedrock'],
    ['aws-bedrock', 'bedrock'],
    ['amazon-bedrock', 'bedrock'],
    ['bedrock_converse', 'bedrock'],
    ['  AWS.Bedrock ', 'bedrock'],
    ['openai', 'openai'],
    ['OpenAI', 'openai'],
    ['openai.chat', 'openai'],
    ['openai.responses', 'openai'],
    ['anthropic', 'anthropic'],
    ['anthropic.messages', 'anthropic'],
    ['azure_openai', 'azure_openai'],
    [' Mistral_AI ', 'mistral_ai'],
  ])('%j → %s', (input, expected) => {
    expect(normaliseProvider(input)).toBe(expected);
  });

  it('returns undefined for absent or blank providers', () => {
    expect(normaliseProvider(undefined)).toBeUndefined();
    expect(normaliseProvider('')).toBeUndefined();
    expect(normaliseProvider('   ')).toBeUndefined();
  });
});

describe('inferProvider', () => {
  it.each([
    [
      'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0',
      'bedrock',
    ],
    [
      'arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:application-inference-profile/x',
      'bedrock',
    ],
    ['arn:aws-cn:bedrock:cn-north-1::foundation-model/amazon.nova-pro-v1:0', 'bedrock'],
    ['anthropic.claude-3-haiku-20240307-v1:0', 'bedrock'],
    ['amazon.nova-pro-v1:0', 'bedrock'],
    ['deepseek.v3.2', 'bedrock'],
    ['openai.gpt-oss-120b-1:0', 'bedrock'],
    ['us.anthropic.claude-sonnet-4-5-20250929-v1:0', 'bedrock'],
    ['us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0', 'bedrock'],
    ['global.anthropic.claude-opus-4-6-v1', 'bedrock'],
    ['gpt-4o', 'openai'],
    ['gpt-4o-2024-08-06', 'openai'],
    ['gpt-5.4-mini', 'openai'],
    ['o1', 'openai'],
    ['o3-mini', 'openai'],
    ['o4-mini-2025-04-16', 'openai'],
    ['chatgpt-4o-latest', 'openai'],
    ['text-embedding-3-small', 'openai'],
    ['claude-sonnet-4-5-20250929', 'anthropic'],
    ['claude-3-5-haiku-latest', 'anthropic'],
    ['deepseek-chat', 'deepseek'],
  ])('%s → %s', (id, expected) => {
    expect(inferProvider(id)).toBe(expected);
  });

  it.each([
    '',
    'llama3',
    'o2',
    'o10-preview',
    'us.foo',
    'anthropic.',
    'claude',
    'GPT-4o',
    'arn:aws:s3:::bucket/key',
    'mistral-large-latest',
  ])('%j → undefined', (id) => {
    expect(inferProvider(id)).toBeUndefined();
  });

  it('ignores surrounding whitespace', () => {
    expect(inferProvider('  gpt-4o\n')).toBe('openai');
  });
});
