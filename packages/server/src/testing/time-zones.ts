/**
 * Time-zone arithmetic for the alerting tests, done independently of the product: `Intl` output
 * scanned minute by minute, so the tests check the product's calendar windows across DST changes
 * against something that does not share its code.
 */

export const MINUTE_MS = 60_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

export interface LocalTime {
  /** `YYYY-MM-DD` */
  date: string;
  hour: number;
  minute: number;
  second: number;
}

export function localTime(instantMs: number, timeZone: string): LocalTime {
  const p: Record<string, string> = {};
  for (const part of formatter(timeZone).formatToParts(instantMs)) p[part.type] = part.value;
  return {
    date: `${p.year}-${p.month}-${p.day}`,
    hour: Number(p.hour) % 24,
    minute: Number(p.minute),
    second: Number(p.second),
  };
}

/** UTC offset of the zone at an instant, in minutes (wall - UTC). */
export function offsetMinutes(instantMs: number, timeZone: string): number {
  const t = localTime(instantMs, timeZone);
  const [y, m, d] = t.date.split('-').map(Number) as [number, number, number];
  const wall = Date.UTC(y, m - 1, d, t.hour, t.minute, t.second);
  return Math.round((wall - Math.floor(instantMs / 1000) * 1000) / MINUTE_MS);
}

export interface DstChange {
  timeZone: string;
  /** The first instant with the new offset. */
  atMs: number;
  offsetBeforeMin: number;
  offsetAfterMin: number;
}

/**
 * The most recent offset change of each zone in [fromMs, toMs], to the minute; the latest one
 * over all zones (ties: the first zone listed). Undefined when no zone changes in the range.
 */
export function latestDstChange(
  zones: readonly string[],
  fromMs: number,
  toMs: number,
): DstChange | undefined {
  let best: DstChange | undefined;
  for (const timeZone of zones) {
    const hour = 3_600_000;
    let t = Math.floor(toMs / hour) * hour;
    let after = offsetMinutes(t, timeZone);
    while (t - hour >= fromMs) {
      const before = offsetMinutes(t - hour, timeZone);
      if (before !== after) {
        // The change is in (t - hour, t]: find its minute.
        let lo = t - hour;
        let hi = t;
        while (hi - lo > MINUTE_MS) {
          const mid = lo + Math.floor((hi - lo) / 2 / MINUTE_MS) * MINUTE_MS;
          if (offsetMinutes(mid, timeZone) === before) lo = mid;
          else hi = mid;
        }
        if (best === undefined || hi > best.atMs) {
          best = { timeZone, atMs: hi, offsetBeforeMin: before, offsetAfterMin: after };
        }
        break;
      }
      after = before;
      t -= hour;
    }
  }
  return best;
}

/**
 * The local day window containing `instantMs`, found by scanning minutes: from the first
 * instant showing the instant's local date to the first instant showing the next date.
 */
export function localDayWindow(
  instantMs: number,
  timeZone: string,
): { startMs: number; endMs: number } {
  const date = localTime(instantMs, timeZone).date;
  let start = Math.floor(instantMs / MINUTE_MS) * MINUTE_MS;
  while (localTime(start - MINUTE_MS, timeZone).date === date) start -= MINUTE_MS;
  let end = Math.floor(instantMs / MINUTE_MS) * MINUTE_MS + MINUTE_MS;
  while (localTime(end, timeZone).date === date) end += MINUTE_MS;
  return { startMs: start, endMs: end };
}

/**
 * The local hour window containing `instantMs`: every instant whose local time shows :00 starts
 * one (a repeated hour is two windows); it ends at the next such instant.
 */
export function localHourWindow(
  instantMs: number,
  timeZone: string,
): { startMs: number; endMs: number } {
  let start = Math.floor(instantMs / MINUTE_MS) * MINUTE_MS;
  while (localTime(start, timeZone).minute !== 0) start -= MINUTE_MS;
  let end = start + MINUTE_MS;
  while (localTime(end, timeZone).minute !== 0) end += MINUTE_MS;
  return { startMs: start, endMs: end };
}

export const iso = (ms: number): string => new Date(ms).toISOString();
