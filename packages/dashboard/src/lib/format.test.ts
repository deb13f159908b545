import { describe, expect, it } from 'vitest';
import {
  formatBucket,
  formatChange,
  formatCost,
  formatDuration,
  formatPercent,
  formatTokens,
  formatUsd,
  nanoToUsd,
  timeZoneLabel,
} from './format.js';

describe('format', () => {
  it('compacts token counts', () => {
    expect(formatTokens(0)).toBe('0');
    expect(formatTokens(950)).toBe('950');
    expect(formatTokens(1234)).toBe('1.2K');
    expect(formatTokens(1_234_567)).toBe('1.2M');
    expect(formatTokens(3_400_000_000)).toBe('3.4B');
  });

  it('formats money with grouping, keeps tiny amounts visible', () => {
    expect(formatUsd(3456.78)).toBe('$3,456.78');
    expect(formatUsd(0)).toBe('$0.00');
    expect(formatUsd(0.5)).toBe('$0.50');
    expect(formatUsd(0.0003456)).toBe('$0.0003456');
    expect(formatUsd(0.009)).toBe('$0.009000');
  });

  it('converts exact nano-USD like the API does', () => {
    expect(nanoToUsd('10972500')).toBe(0.0109725);
    expect(nanoToUsd(1_500_000_000n)).toBe(1.5);
    expect(nanoToUsd('-2')).toBe(-0.000000002);
    expect(nanoToUsd('123456789012345678')).toBe(Number('123456789.012345678'));
  });

  it('states the change against the previous period', () => {
    expect(formatChange(150, 100)).toBe('+50.0%');
    expect(formatChange(50, 100)).toBe('−50.0%');
    expect(formatChange(100, 100)).toBe('±0%');
    expect(formatChange(5, 0)).toBe('new');
    expect(formatChange(0, 0)).toBe('±0%');
    expect(formatPercent(1, 3)).toBe('33%');
    expect(formatPercent(1, 300)).toBe('0.3%');
  });

  it('labels buckets: day buckets as UTC dates, others in the given zone', () => {
    const ms = Date.UTC(2026, 0, 6, 23, 0);
    expect(formatBucket(ms, 'hour', 'UTC')).toBe('23:00');
    expect(formatBucket(ms, 'hour', 'Europe/Berlin')).toBe('00:00');
    expect(formatBucket(Date.UTC(2026, 0, 6), 'day', 'America/Los_Angeles')).toBe('Jan 6');
  });

  it('names the time zone with its offset', () => {
    expect(timeZoneLabel(Date.UTC(2026, 0, 6), 'Europe/Berlin')).toBe('Europe/Berlin (UTC+01:00)');
    expect(timeZoneLabel(Date.UTC(2026, 0, 6), 'UTC')).toBe('UTC (UTC+00:00)');
  });

  it('formats durations for resets', () => {
    expect(formatDuration(0)).toBe('now');
    expect(formatDuration(25 * 60_000)).toBe('25 min');
    expect(formatDuration(200 * 60_000)).toBe('3 h 20 min');
    expect(formatDuration(52 * 3_600_000)).toBe('2 d 4 h');
  });
});

describe('formatCost', () => {
  it('$0 with unpriced tokens or calls without usage is unknown, never free', () => {
    expect(formatCost(0, { unpricedTokens: 5 })).toBe('unknown');
    expect(formatCost(0, { unpricedTokens: 0, noUsageRequests: 2 })).toBe('unknown');
    expect(formatCost(0, { unpricedTokens: 0, noUsageRequests: 0 })).toBe('$0.00');
    expect(formatCost(1.5, { unpricedTokens: 5 })).toBe('$1.50');
  });
});
