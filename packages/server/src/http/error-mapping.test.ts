import { type ErrorCode, TokenwatchError } from '@tokenwatch/core';
import { describe, expect, it } from 'vitest';
import { toErrorResponse } from './error-mapping.js';

describe('toErrorResponse', () => {
  it.each([
    ['invalid_body', 400],
    ['invalid_event', 400],
    ['invalid_query', 400],
    ['invalid_argument', 400],
    ['invalid_config', 500],
    ['unauthenticated', 401],
    ['forbidden', 403],
    ['not_found', 404],
    ['conflict', 409],
    ['payload_too_large', 413],
    ['unsupported_media_type', 415],
    ['overloaded', 503],
    ['unavailable', 503],
    ['internal', 500],
  ] as Array<[ErrorCode, number]>)('maps %s to %i', (code, status) => {
    const r = toErrorResponse(new TokenwatchError(code, 'msg'), 'req-1');
    expect(r.status).toBe(status);
    expect(r.body.error.code).toBe(code);
    expect(r.body.error.message).toBe('msg');
    expect(r.body.error.requestId).toBe('req-1');
  });

  it('sends Retry-After from the error, rounded up to whole seconds', () => {
    const at = (s: number) =>
      toErrorResponse(new TokenwatchError('overloaded', 'x', { retryAfterSeconds: s }), 'r')
        .headers['retry-after'];
    expect(at(1)).toBe('1');
    expect(at(2)).toBe('2');
    expect(at(0.2)).toBe('1');
    expect(at(1.5)).toBe('2');
    expect(at(30)).toBe('30');
  });

  it('sends Retry-After: 1 on every 503 that names no delay', () => {
    expect(toErrorResponse(new TokenwatchError('unavailable', 'x'), 'r').headers).toEqual({
      'retry-after': '1',
    });
    expect(toErrorResponse(new TokenwatchError('overloaded', 'x'), 'r').headers).toEqual({
      'retry-after': '1',
    });
  });

  it('sends no Retry-After on client errors', () => {
    for (const code of ['invalid_event', 'forbidden', 'not_found', 'internal'] as const) {
      expect(toErrorResponse(new TokenwatchError(code, 'x'), 'r').headers['retry-after']).toBe(
        undefined,
      );
    }
  });

  it('asks for a bearer token on 401', () => {
    const r = toErrorResponse(new TokenwatchError('unauthenticated', 'x'), 'r');
    expect(r.headers['www-authenticate']).toBe('Bearer');
    expect(toErrorResponse(new TokenwatchError('forbidden', 'x'), 'r').headers).toEqual({});
  });

  it('includes the validation details only when there are some', () => {
    const details = [{ index: 2, field: 'inputTokens', reason: 'must be >= 0, got -1' }];
    const withDetails = toErrorResponse(
      new TokenwatchError('invalid_event', 'bad', { details }),
      'r',
    );
    expect(withDetails.body).toEqual({
      error: { code: 'invalid_event', message: 'bad', details, requestId: 'r' },
    });
    const without = toErrorResponse(new TokenwatchError('invalid_event', 'bad'), 'r');
    expect(Object.keys(without.body.error)).toEqual(['code', 'message', 'requestId']);
  });

  it.each([
    new Error('SQLITE_CORRUPT: database disk image is malformed at /var/lib/secret.db'),
    new TypeError("Cannot read properties of undefined (reading 'x')"),
    'a string',
    undefined,
    { code: 'unavailable', message: 'looks like ours but is not' },
  ])('turns anything else (%#) into a 500 without internals', (thrown) => {
    const r = toErrorResponse(thrown, 'req-9');
    expect(r.status).toBe(500);
    expect(r.headers).toEqual({});
    expect(r.body).toEqual({
      error: {
        code: 'internal',
        message: 'Internal error; it has been logged.',
        requestId: 'req-9',
      },
    });
    expect(JSON.stringify(r.body)).not.toMatch(/SQLITE|secret|undefined \(reading/);
  });

  it('produces a JSON-serialisable body', () => {
    const r = toErrorResponse(
      new TokenwatchError('unavailable', 'x', { cause: new Error('inner'), retryAfterSeconds: 3 }),
      'r',
    );
    expect(JSON.parse(JSON.stringify(r.body))).toEqual({
      error: { code: 'unavailable', message: 'x', requestId: 'r' },
    });
    expect(r.headers['retry-after']).toBe('3');
  });
});
