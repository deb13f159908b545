import { EVENT_STATUSES } from '@tokenwatch/core';
import { makePricedEvent } from '@tokenwatch/core/testing';
import { describe, expect, it } from 'vitest';
import { decodeBatch, encodeBatch } from './batch-codec.js';

describe('queued batch codec', () => {
  it('round-trips every field, each status included', () => {
    const events = EVENT_STATUSES.map((status) =>
      makePricedEvent({
        status,
        tags: { team: 'a' },
        latencyMs: status === 'ok' ? 12.5 : undefined,
      }),
    );
    const parts = encodeBatch(events, 1 << 20);
    expect(parts).toHaveLength(1);
    expect(decodeBatch((parts[0] as { data: Uint8Array }).data)).toEqual(
      events.map((e) => ({ ...e, tags: e.tags && Object.assign(Object.create(null), e.tags) })),
    );
  });

  it('reads the status codes of messages written before no_usage and denied existed', () => {
    const row = (status: number) => [
      'p1',
      `e${status}`,
      1,
      'u',
      'a',
      'm',
      'openai',
      1,
      2,
      0,
      0,
      null,
      status,
      null,
      5,
      1,
      'fp',
    ];
    const data = new TextEncoder().encode(JSON.stringify({ v: 1, e: [row(0), row(1)] }));
    expect(decodeBatch(data).map((e) => e.status)).toEqual(['ok', 'error']);
  });

  it('treats an unknown status code as a poison message, not as ok', () => {
    const raw = ['p1', 'e', 1, 'u', 'a', 'm', 'openai', 1, 2, 0, 0, null, 9, null, 5, 1, 'fp'];
    const data = new TextEncoder().encode(JSON.stringify({ v: 1, e: [raw] }));
    expect(() => decodeBatch(data)).toThrow(/status 9 is unknown/);
  });
});
