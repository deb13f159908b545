import { describe, expect, it } from 'vitest';
import { csvFileName, toCsv } from './csv.js';

describe('csv', () => {
  it('quotes per RFC 4180 and defuses formulas', () => {
    const csv = toCsv(
      [
        { key: 'name', label: 'name' },
        { key: 'v', label: 'value' },
      ],
      [
        { name: 'a,b', v: 1 },
        { name: 'say "hi"', v: 2.5 },
        { name: '=HYPERLINK("x")', v: -3 },
        { name: '@cmd', v: undefined },
      ],
    );
    expect(csv).toBe(
      'name,value\r\n"a,b",1\r\n"say ""hi""",2.5\r\n"\'=HYPERLINK(""x"")",-3\r\n"\'@cmd",\r\n',
    );
  });

  it('makes safe file names', () => {
    expect(csvFileName(['user', '../<x>', 'tokens'], Date.UTC(2026, 0, 6))).toBe(
      'tokenwatch-user-x-tokens-2026-01-06.csv',
    );
  });

  it('names the range and the filters of a scoped export', () => {
    const scope = {
      fromMs: Date.UTC(2026, 0, 6, 14, 30),
      toMs: Date.UTC(2026, 0, 7),
      filters: {
        app: ['chat', 'Doc Bot'],
        model: [],
        user: ['ana'],
        tag: { key: 'team', value: 'ml' },
      },
    };
    expect(csvFileName(['overview', 'tokens'], 0, scope)).toBe(
      'tokenwatch-overview-tokens_2026-01-06T1430Z_2026-01-07_app-chat+doc-bot_user-ana_tag-team-ml.csv',
    );
  });

  it('keeps a name short when a filter is a long ARN', () => {
    const arn = `arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/${'x'.repeat(150)}`;
    const name = csvFileName(['top', 'users'], 0, {
      fromMs: 0,
      toMs: 86_400_000,
      filters: { app: [], model: [arn, arn, arn, arn, arn, arn], user: [] },
    });
    expect(name.length).toBeLessThanOrEqual(204);
    expect(name).toMatch(
      /^tokenwatch-top-users_1970-01-01_1970-01-02_model-arn-aws-bedrock-us-east-1-1234567/,
    );
    expect(name.endsWith('~.csv')).toBe(true);
  });
});
