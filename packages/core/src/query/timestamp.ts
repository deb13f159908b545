import type { ValidationIssue } from '../errors.js';

/** 9999-12-31T23:59:59.999Z: the last instant an ISO 8601 string (and `toISOString`) can show. */
export const MAX_TIMESTAMP_MS = 253_402_300_799_999;

/** True when the YYYY-MM-DD at the start of `value` is a real calendar date (no Feb 30). */
function isRealDate(value: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(value);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return mo >= 1 && mo <= 12 && d >= 1 && d <= new Date(Date.UTC(y, mo, 0)).getUTCDate();
}

export const TIMESTAMP_REASON =
  'must be an RFC 3339 date-time with zone, a YYYY-MM-DD date (UTC) or epoch ms, from 1970 to 9999';

/**
 * Parses a query timestamp: epoch ms, an RFC 3339 date-time with zone, or a YYYY-MM-DD date (UTC).
 * Undefined when it is none of them or lies outside 1970..9999 (a later instant cannot be shown
 * as a date, so it would fail when the answer is rendered rather than here).
 */
export function parseTimestamp(value: string): number | undefined {
  let ms: number;
  if (/^\d{1,16}$/.test(value)) ms = Number(value);
  else {
    const text = /^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value;
    ms = /([Zz]|[+-]\d{2}:\d{2})$/.test(text) && isRealDate(text) ? Date.parse(text) : Number.NaN;
  }
  return Number.isFinite(ms) && ms >= 0 && ms <= MAX_TIMESTAMP_MS ? ms : undefined;
}

/** `parseTimestamp`, recording an issue for `field` when the value is not a timestamp. */
export function parseTimestampParam(
  value: string,
  field: string,
  issues: ValidationIssue[],
): number | undefined {
  const ms = parseTimestamp(value);
  if (ms === undefined) issues.push({ field, reason: TIMESTAMP_REASON });
  return ms;
}
