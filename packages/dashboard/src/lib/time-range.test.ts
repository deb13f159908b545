import { describe, expect, it } from 'vitest';
import {
  autoInterval,
  DAY_MS,
  HOUR_MS,
  MINUTE_MS,
  partialBucketIndex,
  resolveRange,
} from './time-range.js';

const NOW = Date.UTC(2026, 0, 6, 13, 27, 12, 345);
const opts = { interval: 'auto' as const, hasTagFilter: false };

describe('resolveRange', () => {
  it('last 24 hours: 24 whole hour buckets ending with the current one', () => {
    const r = resolveRange({ preset: '24h' }, NOW, opts);
    expect(r.interval).toBe('hour');
    expect(r.buckets).toHaveLength(24);
    expect(r.toMs).toBe(Date.UTC(2026, 0, 6, 14));
    expect(r.fromMs).toBe(Date.UTC(2026, 0, 5, 14));
    expect(r.buckets[0]).toBe(r.fromMs);
    expect(r.buckets[23]).toBe(Date.UTC(2026, 0, 6, 13));
    expect(r.prevToMs).toBe(r.fromMs);
    expect(r.prevFromMs).toBe(r.fromMs - DAY_MS);
    expect(r.aggFromMs).toBe(r.fromMs);
  });

  it('last hour: minute buckets; range-wide queries widen to the hour', () => {
    const r = resolveRange({ preset: '1h' }, NOW, opts);
    expect(r.interval).toBe('minute');
    expect(r.buckets).toHaveLength(60);
    expect(r.toMs).toBe(Date.UTC(2026, 0, 6, 13, 28));
    expect(r.fromMs).toBe(Date.UTC(2026, 0, 6, 12, 28));
    expect(r.aggFromMs).toBe(Date.UTC(2026, 0, 6, 12));
    expect(r.prevAggFromMs).toBe(Date.UTC(2026, 0, 6, 11));
  });

  it('30 days: day buckets aligned to UTC days (the API answers from day rollups)', () => {
    const r = resolveRange({ preset: '30d' }, NOW, opts);
    expect(r.interval).toBe('day');
    expect(r.buckets).toHaveLength(30);
    expect(r.fromMs % DAY_MS).toBe(0);
    expect(r.toMs % DAY_MS).toBe(0);
    expect(r.toMs).toBe(Date.UTC(2026, 0, 7));
  });

  it('a tag filter moves minute ranges to hours (tags are kept per hour)', () => {
    const r = resolveRange({ preset: '1h' }, NOW, { interval: 'auto', hasTagFilter: true });
    expect(r.interval).toBe('hour');
    expect(r.buckets).toHaveLength(1);
  });

  it('minute interval beyond minute retention falls back to hour', () => {
    const r = resolveRange({ fromMs: NOW - 10 * DAY_MS, toMs: NOW - 9 * DAY_MS }, NOW, {
      interval: 'minute',
      hasTagFilter: false,
    });
    expect(r.interval).toBe('hour');
  });

  it('custom ranges align outwards to whole buckets', () => {
    const r = resolveRange(
      { fromMs: Date.UTC(2026, 0, 1, 10, 30), toMs: Date.UTC(2026, 0, 3, 7, 5) },
      NOW,
      opts,
    );
    expect(r.interval).toBe('hour');
    expect(r.fromMs).toBe(Date.UTC(2026, 0, 1, 10));
    expect(r.toMs).toBe(Date.UTC(2026, 0, 3, 8));
    expect(r.label).toBe('Custom range');
  });

  it('too many buckets for the chosen interval coarsen it', () => {
    const r = resolveRange({ preset: '90d' }, NOW, { interval: 'minute', hasTagFilter: false });
    expect(r.interval).toBe('hour');
    expect(r.buckets).toHaveLength(90 * 24);
  });

  it('picks readable intervals', () => {
    expect(autoInterval(HOUR_MS)).toBe('minute');
    expect(autoInterval(6 * HOUR_MS)).toBe('minute');
    expect(autoInterval(7 * DAY_MS)).toBe('hour');
    expect(autoInterval(30 * DAY_MS)).toBe('day');
    expect(autoInterval(MINUTE_MS)).toBe('minute');
  });

  it('finds the bucket still filling', () => {
    const r = resolveRange({ preset: '24h' }, NOW, { interval: 'hour', hasTagFilter: false });
    expect(partialBucketIndex(r, NOW)).toBe(r.buckets.length - 1);
    const fixed = resolveRange({ fromMs: Date.UTC(2026, 0, 1), toMs: Date.UTC(2026, 0, 2) }, NOW, {
      interval: 'hour',
      hasTagFilter: false,
    });
    expect(partialBucketIndex(fixed, Date.UTC(2027, 0, 1))).toBeUndefined();
  });
});
