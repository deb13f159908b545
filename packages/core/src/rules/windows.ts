import { TokenwatchError } from '../errors.js';
import type { CalendarUnit, RuleWindow } from './rule.js';

/**
 * One instance of a rule's window: `[startMs, endMs)` in epoch milliseconds.
 * Instances returned by this module are frozen and shared (they come from a cache): copy before
 * changing one.
 */
export interface WindowInstance {
  startMs: number;
  endMs: number;
}

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** 400 Gregorian years, exactly: used to keep `Date.UTC` away from its two-digit-year rule. */
const FOUR_CENTURIES_MS = 146_097 * DAY_MS;
/** How far before and after a wall time the zone's offsets are probed to find its instants. */
const PROBE_MS = DAY_MS;
const MAX_TIME_ZONE_LENGTH = 64;
const MAX_CACHED_ZONES = 1_000;

// ---------------------------------------------------------------------------------------------
// Time zones: formatters and offsets

interface ZoneState {
  formatter: Intl.DateTimeFormat;
  /** UTC day index → the zone's offset at that day's 00:00Z. */
  dayStartOffsets: Map<number, number>;
  /** UTC day index → the instant the offset changes within that day (days that have one). */
  transitions: Map<number, number>;
}

const zones = new Map<string, ZoneState>();
const MAX_CACHED_DAYS_PER_ZONE = 40_000;

function zoneState(timeZone: string): ZoneState {
  let z = zones.get(timeZone);
  if (z === undefined) {
    if (!isValidTimeZone(timeZone)) {
      throw new TokenwatchError(
        'invalid_argument',
        `unknown time zone ${JSON.stringify(timeZone)}`,
        {
          details: [
            { field: 'timeZone', reason: 'must be an IANA time zone name such as Europe/Berlin' },
          ],
        },
      );
    }
    if (zones.size >= MAX_CACHED_ZONES) zones.clear();
    z = {
      formatter: new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        era: 'short',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      }),
      dayStartOffsets: new Map(),
      transitions: new Map(),
    };
    zones.set(timeZone, z);
  }
  return z;
}

/**
 * True for time-zone names `Intl` knows (IANA names such as `Europe/Berlin`, and `UTC`).
 * Offset strings such as `+01:00` are refused: some runtimes accept them, others do not.
 */
export function isValidTimeZone(timeZone: string): boolean {
  if (typeof timeZone !== 'string') return false;
  if (timeZone.length === 0 || timeZone.length > MAX_TIME_ZONE_LENGTH) return false;
  if (!/^[A-Za-z]/.test(timeZone)) return false;
  if (zones.has(timeZone)) return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

/** `Date.UTC` for any year (it maps years 0–99 to 1900–1999). */
function utcMs(year: number, month: number, day: number, hour = 0, minute = 0, second = 0): number {
  if (year >= 100) return Date.UTC(year, month - 1, day, hour, minute, second);
  return Date.UTC(year + 400, month - 1, day, hour, minute, second) - FOUR_CENTURIES_MS;
}

function isUtcZone(timeZone: string): boolean {
  return (
    timeZone === 'UTC' || timeZone === 'Etc/UTC' || timeZone === 'Etc/GMT' || timeZone === 'GMT'
  );
}

/** The zone's offset at `instantMs` in ms, straight from Intl (whole-second resolution). */
function intlOffsetAt(instantMs: number, zone: ZoneState): number {
  const secondMs = Math.floor(instantMs / 1000) * 1000;
  const parts = zone.formatter.formatToParts(secondMs);
  let year = 0;
  let month = 1;
  let day = 1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let bc = false;
  for (const p of parts) {
    switch (p.type) {
      case 'year':
        year = Number(p.value);
        break;
      case 'month':
        month = Number(p.value);
        break;
      case 'day':
        day = Number(p.value);
        break;
      case 'hour':
        hour = Number(p.value) % 24; // some runtimes print midnight as 24 even with h23
        break;
      case 'minute':
        minute = Number(p.value);
        break;
      case 'second':
        second = Number(p.value);
        break;
      case 'era':
        bc = p.value === 'BC' || p.value === 'B';
        break;
      default:
        break;
    }
  }
  if (bc) year = 1 - year;
  return utcMs(year, month, day, hour, minute, second) - secondMs;
}

function dayStartOffset(dayIndex: number, zone: ZoneState): number {
  let o = zone.dayStartOffsets.get(dayIndex);
  if (o === undefined) {
    if (zone.dayStartOffsets.size >= MAX_CACHED_DAYS_PER_ZONE) {
      zone.dayStartOffsets.clear();
      zone.transitions.clear();
    }
    o = intlOffsetAt(dayIndex * DAY_MS, zone);
    zone.dayStartOffsets.set(dayIndex, o);
  }
  return o;
}

/**
 * The zone's offset at `instantMs` in ms (local wall time = instant + offset). Memoised per UTC
 * day: a day whose two ends have the same offset is taken to have no transition (assumes no
 * zone changes offset and back within one UTC day); otherwise its one transition is found by
 * bisection to the second, once.
 */
function offsetAt(instantMs: number, timeZone: string): number {
  if (isUtcZone(timeZone)) return 0;
  const zone = zoneState(timeZone);
  const dayIndex = Math.floor(instantMs / DAY_MS);
  const before = dayStartOffset(dayIndex, zone);
  const after = dayStartOffset(dayIndex + 1, zone);
  if (before === after) return before;
  let transition = zone.transitions.get(dayIndex);
  if (transition === undefined) {
    // Invariant: offset(lo) is `before`, offset(hi) is not; both whole seconds.
    let lo = dayIndex * DAY_MS;
    let hi = lo + DAY_MS;
    while (hi - lo > 1000) {
      const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
      if (intlOffsetAt(mid, zone) === before) lo = mid;
      else hi = mid;
    }
    transition = hi;
    zone.transitions.set(dayIndex, transition);
  }
  return instantMs < transition ? before : after;
}

/**
 * The instants at which the wall time `wallMs` (local time written as if it were UTC) occurs in
 * the zone, ascending: one normally, two in a repeated (fall-back) interval; when the wall time
 * is skipped (spring-forward gap), the single first instant that exists after it.
 */
function instantsOfWallTime(wallMs: number, timeZone: string): number[] {
  if (isUtcZone(timeZone)) return [wallMs];
  const before = offsetAt(wallMs - PROBE_MS, timeZone);
  const after = offsetAt(wallMs + PROBE_MS, timeZone);
  const found: number[] = [];
  for (const offset of before === after ? [before] : [before, after]) {
    const candidate = wallMs - offset;
    if (offsetAt(candidate, timeZone) === offset && !found.includes(candidate)) {
      found.push(candidate);
    }
  }
  if (found.length > 0) return found.sort((a, b) => a - b);
  // Neither offset maps back: the wall time is in a gap. Find the transition by bisection (whole
  // seconds) between the instants the wall time would have under each offset.
  let lo = Math.min(wallMs - before, wallMs - after);
  let hi = Math.max(wallMs - before, wallMs - after);
  const loOffset = offsetAt(lo, timeZone);
  if (offsetAt(hi, timeZone) === loOffset) {
    // Not a simple gap (should not happen with real tz data): fall back to the earlier guess.
    return [wallMs - after];
  }
  lo = Math.floor(lo / 1000) * 1000;
  hi = Math.ceil(hi / 1000) * 1000;
  while (hi - lo > 1000) {
    const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
    if (offsetAt(mid, timeZone) === loOffset) lo = mid;
    else hi = mid;
  }
  return [hi];
}

// ---------------------------------------------------------------------------------------------
// Calendar arithmetic on wall times (local time written as if it were UTC)

interface WallFields {
  year: number;
  month: number;
  day: number;
  hour: number;
}

function wallFields(wallMs: number): WallFields {
  const d = new Date(wallMs);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
  };
}

/** The wall-time boundary at or before `wallMs`. */
function truncateWall(wallMs: number, unit: CalendarUnit): number {
  const f = wallFields(wallMs);
  switch (unit) {
    case 'hour':
      return utcMs(f.year, f.month, f.day, f.hour);
    case 'day':
      return utcMs(f.year, f.month, f.day);
    case 'week': {
      const midnight = utcMs(f.year, f.month, f.day);
      const isoDay = (new Date(midnight).getUTCDay() + 6) % 7; // Monday = 0
      return midnight - isoDay * DAY_MS;
    }
    case 'month':
      return utcMs(f.year, f.month, 1);
  }
}

/** The wall-time boundary `steps` units after (or before, when negative) the boundary `wallMs`. */
function stepWall(wallMs: number, unit: CalendarUnit, steps: number): number {
  switch (unit) {
    case 'hour':
      return wallMs + steps * HOUR_MS;
    case 'day':
      return wallMs + steps * DAY_MS;
    case 'week':
      return wallMs + steps * 7 * DAY_MS;
    case 'month': {
      const f = wallFields(wallMs);
      const index = f.year * 12 + (f.month - 1) + steps;
      const year = Math.floor(index / 12);
      return utcMs(year, index - year * 12 + 1, 1);
    }
  }
}

/**
 * The instants at which windows start for one wall-time boundary. Every occurrence of a local
 * `:00` starts an hour window (so a repeated hour is two windows); a day, week or month starts at
 * the first occurrence of its local midnight only (a repeated midnight does not start a second
 * day). A skipped boundary starts its window at the first instant that exists after it.
 */
function boundaryInstants(wallMs: number, unit: CalendarUnit, timeZone: string): number[] {
  const instants = instantsOfWallTime(wallMs, timeZone);
  if (unit === 'hour' || instants.length <= 1) return instants;
  return instants.slice(0, 1);
}

function computeCalendarWindow(
  instantMs: number,
  unit: CalendarUnit,
  timeZone: string,
): WindowInstance {
  const wall = instantMs + offsetAt(instantMs, timeZone);
  const w0 = truncateWall(wall, unit);
  let start = Number.NEGATIVE_INFINITY;
  let end = Number.POSITIVE_INFINITY;
  const consider = (boundaries: number[]): void => {
    for (const b of boundaries) {
      if (b <= instantMs) {
        if (b > start) start = b;
      } else if (b < end) {
        end = b;
      }
    }
  };
  consider(boundaryInstants(w0, unit, timeZone));
  consider(boundaryInstants(stepWall(w0, unit, 1), unit, timeZone));
  // Transitions around a boundary can move the window's start one boundary back or its end
  // one boundary further; look there only when needed.
  for (let k = -1; start === Number.NEGATIVE_INFINITY && k >= -3; k--) {
    consider(boundaryInstants(stepWall(w0, unit, k), unit, timeZone));
  }
  for (let k = 2; end === Number.POSITIVE_INFINITY && k <= 4; k++) {
    consider(boundaryInstants(stepWall(w0, unit, k), unit, timeZone));
  }
  if (!Number.isFinite(start) || !Number.isFinite(end)) {
    throw new TokenwatchError(
      'internal',
      `no ${unit} window found for ${instantMs} in ${timeZone}`,
      { context: { instantMs, unit, timeZone } },
    );
  }
  return Object.freeze({ startMs: start, endMs: end });
}

// ---------------------------------------------------------------------------------------------
// Cache: the last two windows per (zone, unit); an event stream mostly hits the current one,
// and late events the previous one.

type UnitCache = Partial<Record<CalendarUnit, [WindowInstance, WindowInstance | undefined]>>;
const windowCache = new Map<string, UnitCache>();

/** 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: the instants windows are defined for. */
const MIN_INSTANT_MS = -62_135_596_800_000;
const MAX_INSTANT_MS = 253_402_300_799_999;

function assertInstant(instantMs: number): void {
  if (
    typeof instantMs !== 'number' ||
    !(instantMs >= MIN_INSTANT_MS && instantMs <= MAX_INSTANT_MS)
  ) {
    throw new TokenwatchError(
      'invalid_argument',
      `instant must be epoch milliseconds between years 1 and 9999, got ${instantMs}`,
    );
  }
}

/**
 * The calendar window (hour, day, ISO week from Monday, month) containing `instantMs` in the IANA
 * `timeZone`. Windows start at local :00 / midnight / Monday 00:00 / the 1st 00:00 and end where
 * the next one starts, so days are 23 or 25 hours on DST change days. A repeated local hour
 * (fall back) is two hour windows; a repeated local midnight starts the day only at its first
 * occurrence. A start that does not exist (spring-forward gap, e.g. midnight in
 * America/Santiago) moves to the first instant that exists after it. Throws `invalid_argument`
 * for an unknown zone or an instant outside years 1–9999. Memoised: ~100 ns when the instant
 * falls in one of the last two windows computed for (zone, unit).
 */
export function calendarWindow(
  instantMs: number,
  unit: CalendarUnit,
  timeZone: string,
): WindowInstance {
  let zoneCache = windowCache.get(timeZone);
  if (zoneCache !== undefined) {
    const entry = zoneCache[unit];
    if (entry !== undefined) {
      const [last, previous] = entry;
      if (instantMs >= last.startMs && instantMs < last.endMs) return last;
      if (previous !== undefined && instantMs >= previous.startMs && instantMs < previous.endMs) {
        entry[0] = previous;
        entry[1] = last;
        return previous;
      }
    }
  }
  assertInstant(instantMs);
  const w =
    isUtcZone(timeZone) && unit !== 'month' && unit !== 'week'
      ? utcFixedWindow(instantMs, unit === 'hour' ? HOUR_MS : DAY_MS)
      : computeCalendarWindow(instantMs, unit, timeZone);
  if (zoneCache === undefined) {
    if (windowCache.size >= MAX_CACHED_ZONES) windowCache.clear();
    zoneCache = {};
    windowCache.set(timeZone, zoneCache);
  }
  const entry = zoneCache[unit];
  zoneCache[unit] = [w, entry?.[0]];
  return w;
}

function utcFixedWindow(instantMs: number, lengthMs: number): WindowInstance {
  const startMs = Math.floor(instantMs / lengthMs) * lengthMs;
  return Object.freeze({ startMs, endMs: startMs + lengthMs });
}

/**
 * The window instance of a rule containing `instantMs`. Calendar: see `calendarWindow`.
 * Rolling N minutes: the N whole minutes ending with the instant's minute,
 * `[floorToMinute(instant) - (N-1) min, floorToMinute(instant) + 1 min)`.
 */
export function windowFor(instantMs: number, window: RuleWindow): WindowInstance {
  if (window.type === 'calendar') return calendarWindow(instantMs, window.unit, window.timeZone);
  assertInstant(instantMs);
  const minute = Math.floor(instantMs / MINUTE_MS) * MINUTE_MS;
  return { startMs: minute - (window.minutes - 1) * MINUTE_MS, endMs: minute + MINUTE_MS };
}

/**
 * When the window containing `instantMs` ends and the next one starts: the end of the calendar
 * window, or for a rolling window the next whole minute (when it slides on).
 */
export function nextWindowStart(instantMs: number, window: RuleWindow): number {
  return windowFor(instantMs, window).endMs;
}
