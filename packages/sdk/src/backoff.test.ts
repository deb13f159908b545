import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.js';
import { parseRetryAfter } from './http-transport.js';

describe('backoffDelay', () => {
  it('grows exponentially up to the cap, with full jitter', () => {
    expect(backoffDelay(1, 100, 10_000, () => 0.999)).toBe(99);
    expect(backoffDelay(4, 100, 10_000, () => 0.999)).toBe(799);
    expect(backoffDelay(20, 100, 10_000, () => 0.999)).toBe(9990);
    expect(backoffDelay(20, 100, 10_000, () => 0)).toBe(0);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('2', 0)).toBe(2000);
    expect(parseRetryAfter(null, 0)).toBeUndefined();
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
  });
});
