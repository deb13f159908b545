import { TokenwatchError } from '@tokenwatch/core';
import { describe, expect, it } from 'vitest';
import { limitRule, parseQuery, type QuerySpec } from './query-params.js';

const SPEC: QuerySpec = {
  params: {
    limit: limitRule(1000),
    since: { type: 'timestamp' },
    acknowledged: { type: 'boolean' },
    status: { type: 'enum', values: ['pending', 'dead'] },
    user: { type: 'string', maxLength: 8, repeatable: true },
    name: { type: 'string', maxLength: 8 },
  },
  dynamic: /^tag\./,
};

function issues(query: string): Array<{ field: string; reason: string }> {
  try {
    parseQuery(new URLSearchParams(query), SPEC);
  } catch (err) {
    expect(err).toBeInstanceOf(TokenwatchError);
    expect((err as TokenwatchError).code).toBe('invalid_query');
    return (err as TokenwatchError).details as Array<{ field: string; reason: string }>;
  }
  return [];
}

describe('parseQuery', () => {
  it.each(['1.5', '0.5', '0', '-1', '1001', '1e3', '', ' 1', '0x10', '99999999999999999999'])(
    'limit=%s is refused, naming limit',
    (value) => {
      expect(issues(`limit=${encodeURIComponent(value)}`)).toEqual([
        { field: 'limit', reason: 'must be an integer from 1 to 1000' },
      ]);
    },
  );

  it('reads valid values', () => {
    const q = parseQuery(
      new URLSearchParams(
        'limit=1000&since=2026-01-01&acknowledged=false&status=dead&user=a&user=b&tag.team=x',
      ),
      SPEC,
    );
    expect(q.integer('limit')).toBe(1000);
    expect(q.timestamp('since')).toBe(Date.UTC(2026, 0, 1));
    expect(q.boolean('acknowledged')).toBe(false);
    expect(q.string('status')).toBe('dead');
    expect(q.integer('absent')).toBeUndefined();
  });

  it('names every bad parameter and why', () => {
    expect(
      issues('limit=1&limit=2&since=9999999999999999&acknowledged=yes&status=lost&name=&what=1'),
    ).toEqual([
      { field: 'limit', reason: 'must be given once' },
      { field: 'since', reason: expect.stringMatching(/RFC 3339.*1970 to 9999/) },
      { field: 'acknowledged', reason: 'must be true or false' },
      { field: 'status', reason: 'must be pending or dead' },
      { field: 'name', reason: 'must not be empty' },
      { field: 'what', reason: 'is not a known query parameter' },
    ]);
  });

  it('repeatable strings may repeat; each value is checked', () => {
    expect(issues('user=a&user=b')).toEqual([]);
    expect(issues('user=a&user=toolongvalue')).toEqual([
      { field: 'user', reason: 'must be at most 8 characters' },
    ]);
    expect(issues('name=a&name=b')).toEqual([{ field: 'name', reason: 'must be given once' }]);
  });

  it('leaves dynamic names to the route, refuses prototype names, caps the parameter count', () => {
    expect(issues('tag.team=x')).toEqual([]);
    expect(issues('__proto__=1&constructor=2')).toEqual([
      { field: '__proto__', reason: 'is not a known query parameter' },
      { field: 'constructor', reason: 'is not a known query parameter' },
    ]);
    const many = Array.from({ length: 201 }, (_, i) => `tag.k${i}=1`).join('&');
    expect(issues(many)).toEqual([{ field: '(query)', reason: 'at most 200 distinct parameters' }]);
  });
});
