import { describe, expect, it } from 'vitest';
import { FoldChunkSizer, MIN_SAMPLE_EVENTS } from './fold-chunk-sizer.js';

const MiB = 1024 * 1024;

describe('FoldChunkSizer', () => {
  it('uses the configured chunk until a fold is measured, and without a WAL bound', () => {
    expect(new FoldChunkSizer(128_000, 32 * MiB).next()).toBe(128_000);
    const inMemory = new FoldChunkSizer(128_000, undefined);
    inMemory.observe(50_000, 50 * MiB);
    expect(inMemory.next()).toBe(128_000);
  });

  it('sizes the next chunk to the budget from the WAL per event of the last fold', () => {
    const sizer = new FoldChunkSizer(128_000, 32 * MiB);
    sizer.observe(50_000, 50_000 * 1024); // 1 KiB per event
    expect(sizer.walBytesPerEvent).toBe(1024);
    expect(sizer.next()).toBe(32_768);
    // Never above the configured chunk, whatever the estimate.
    const small = new FoldChunkSizer(10_000, 32 * MiB);
    small.observe(5_000, 5_000 * 10);
    expect(small.next()).toBe(10_000);
  });

  it('rises at once and falls a fifth of the way per sample', () => {
    const sizer = new FoldChunkSizer(1_000_000, 100 * MiB);
    sizer.observe(10_000, 10_000 * 1000);
    sizer.observe(10_000, 10_000 * 2000);
    expect(sizer.walBytesPerEvent).toBe(2000);
    sizer.observe(10_000, 10_000 * 1000);
    expect(sizer.walBytesPerEvent).toBe(1800);
  });

  it('ignores small folds and folds during which the log restarted', () => {
    const sizer = new FoldChunkSizer(128_000, 32 * MiB);
    sizer.observe(MIN_SAMPLE_EVENTS - 1, 100 * MiB);
    sizer.observe(50_000, 0);
    sizer.observe(50_000, -5 * MiB);
    expect(sizer.walBytesPerEvent).toBeUndefined();
    expect(sizer.next()).toBe(128_000);
  });

  it('keeps a chunk of at least 500 events unless the configured chunk is smaller', () => {
    const sizer = new FoldChunkSizer(128_000, 1 * MiB);
    sizer.observe(10_000, 10_000 * 100 * 1024); // 100 KiB per event
    expect(sizer.next()).toBe(500);
    const tiny = new FoldChunkSizer(30, 1 * MiB);
    tiny.observe(10_000, 10_000 * 100 * 1024);
    expect(tiny.next()).toBe(30);
  });
});
