/** Number, money and time formatting for the dashboard. Locale: en-US for stable grouping. */

const LOCALE = 'en-US';
const compact = new Intl.NumberFormat(LOCALE, { notation: 'compact', maximumFractionDigits: 1 });
const whole = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 0 });
const usd2 = new Intl.NumberFormat(LOCALE, {
  style: 'currency',
  currency: 'USD',
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
});

/** 1.2M, 3.4K, 950. */
export function formatTokens(n: number): string {
  if (!Number.isFinite(n)) return '–';
  if (Math.abs(n) < 1000) return whole.format(n);
  return compact.format(n);
}

/** 1,234,567 (exact, for tables and tooltips). */
export function formatInteger(n: number): string {
  return Number.isFinite(n) ? whole.format(n) : '–';
}

/**
 * $3,456.78. Amounts under one cent keep four significant digits ($0.0003456) so a cheap model
 * never reads as free.
 */
export function formatUsd(usd: number): string {
  if (!Number.isFinite(usd)) return '–';
  if (usd === 0) return '$0.00';
  if (Math.abs(usd) < 0.01) {
    const digits = Math.min(9, Math.max(2, 3 - Math.floor(Math.log10(Math.abs(usd)))));
    return `${usd < 0 ? '-' : ''}$${Math.abs(usd).toFixed(digits)}`;
  }
  return usd2.format(usd);
}

/**
 * A cost that may be unknown: $0 with unpriced tokens or calls that returned no usage is not
 * free, it is unknown (a project on a model without a price must never read "$0.00").
 */
export function formatCost(
  usd: number,
  gaps: { unpricedTokens: number; noUsageRequests?: number | undefined },
): string {
  const unknown = gaps.unpricedTokens > 0 || (gaps.noUsageRequests ?? 0) > 0;
  return usd === 0 && unknown ? 'unknown' : formatUsd(usd);
}

/** Exact nano-USD (decimal string or bigint) → USD as the API's `costUsd` number. */
export function nanoToUsd(nano: bigint | string): number {
  const n = typeof nano === 'bigint' ? nano : BigInt(nano);
  const neg = n < 0n;
  const abs = neg ? -n : n;
  const whole = abs / 1_000_000_000n;
  const frac = (abs % 1_000_000_000n).toString().padStart(9, '0');
  return Number(`${neg ? '-' : ''}${whole}.${frac}`);
}

/** "+12.5%", "−3.0%", "new" when there was nothing before, "±0%" when equal. */
export function formatChange(current: number, previous: number): string {
  if (previous === 0) return current === 0 ? '±0%' : 'new';
  const pct = ((current - previous) / previous) * 100;
  if (Math.abs(pct) < 0.05) return '±0%';
  const text = Math.abs(pct) >= 1000 ? whole.format(Math.abs(pct)) : Math.abs(pct).toFixed(1);
  return `${pct > 0 ? '+' : '−'}${text}%`;
}

export function formatPercent(part: number, total: number): string {
  if (total === 0) return '0%';
  const pct = (part / total) * 100;
  return `${pct >= 10 || pct === 0 ? pct.toFixed(0) : pct.toFixed(1)}%`;
}

export type BucketInterval = 'minute' | 'hour' | 'day';

/**
 * A bucket start as the axis shows it: minute and hour buckets in the viewer's time zone, day
 * buckets as the UTC date they are (the API's day buckets are UTC days).
 */
export function formatBucket(ms: number, interval: BucketInterval, timeZone?: string): string {
  const d = new Date(ms);
  if (interval === 'day') {
    return d.toLocaleDateString(LOCALE, { month: 'short', day: 'numeric', timeZone: 'UTC' });
  }
  const opts: Intl.DateTimeFormatOptions = {
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
    ...(timeZone ? { timeZone } : {}),
  };
  return d.toLocaleTimeString(LOCALE, opts);
}

/** Longer label for tooltips: "Tue, Jan 6, 14:00" or "Tue, Jan 6 (UTC day)". */
export function formatBucketLong(ms: number, interval: BucketInterval, timeZone?: string): string {
  const d = new Date(ms);
  if (interval === 'day') {
    return `${d.toLocaleDateString(LOCALE, { weekday: 'short', month: 'short', day: 'numeric', timeZone: 'UTC' })} (UTC day)`;
  }
  return d.toLocaleString(LOCALE, {
    weekday: 'short',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
    ...(timeZone ? { timeZone } : {}),
  });
}

export function formatDateTime(ms: number, timeZone?: string): string {
  return new Date(ms).toLocaleString(LOCALE, {
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
    ...(timeZone ? { timeZone } : {}),
  });
}

/** "Europe/Berlin (UTC+01:00)" for the header. */
export function timeZoneLabel(nowMs: number, timeZone?: string): string {
  const zone = timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone ?? 'UTC';
  const parts = new Intl.DateTimeFormat(LOCALE, {
    timeZone: zone,
    timeZoneName: 'longOffset',
  }).formatToParts(new Date(nowMs));
  const offset = parts.find((p) => p.type === 'timeZoneName')?.value ?? 'GMT';
  const utc = offset === 'GMT' ? 'UTC' : offset.replace('GMT', 'UTC');
  return `${zone} (${utc})`;
}

/** "in 3 h 20 min", "in 2 d 4 h", for reset countdowns. */
export function formatDuration(ms: number): string {
  if (ms <= 0) return 'now';
  const min = Math.round(ms / 60_000);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ${min % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}
