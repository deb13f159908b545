import { describe, expect, it, vi } from 'vitest';
import type { CalendarUnit, RuleWindow } from './rule.js';
import {
  calendarWindow,
  isValidTimeZone,
  nextWindowStart,
  type WindowInstance,
  windowFor,
} from './windows.js';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

const z = (iso: string): number => {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`bad date ${iso}`);
  return ms;
};

/** The window as ISO strings, for readable assertions. */
function iso(w: WindowInstance): [string, string] {
  return [new Date(w.startMs).toISOString(), new Date(w.endMs).toISOString()];
}

function cal(instant: string, unit: CalendarUnit, timeZone: string): [string, string] {
  return iso(calendarWindow(z(instant), unit, timeZone));
}

/** A small deterministic PRNG (mulberry32); fast-check is not installed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Local wall-clock fields by an independent formatter (en-GB, not the module's en-US). */
const oracleFormatters = new Map<string, Intl.DateTimeFormat>();
function local(ms: number, timeZone: string) {
  let f = oracleFormatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone,
      hourCycle: 'h23',
      weekday: 'short',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    oracleFormatters.set(timeZone, f);
  }
  const p = Object.fromEntries(f.formatToParts(ms).map((x) => [x.type, x.value]));
  return {
    weekday: p.weekday!,
    year: Number(p.year),
    month: Number(p.month),
    day: Number(p.day),
    hour: Number(p.hour) % 24,
    minute: Number(p.minute),
    second: Number(p.second),
  };
}

describe('isValidTimeZone', () => {
  it('accepts IANA names and UTC', () => {
    for (const tz of ['UTC', 'Etc/UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata']) {
      expect(isValidTimeZone(tz)).toBe(true);
    }
    expect(isValidTimeZone('Australia/Lord_Howe')).toBe(true);
  });

  it('refuses unknown names, offsets and junk', () => {
    for (const tz of [
      '',
      'Mars/Olympus',
      'Europe/Berlinn',
      '+01:00',
      '-05:00',
      ' UTC',
      'x'.repeat(65),
    ]) {
      expect(isValidTimeZone(tz)).toBe(false);
    }
    expect(isValidTimeZone(42 as unknown as string)).toBe(false);
  });
});

describe('calendarWindow: UTC', () => {
  it('hour, day, ISO week from Monday, month', () => {
    const t = '2026-03-29T12:34:56.789Z'; // a Sunday
    expect(cal(t, 'hour', 'UTC')).toEqual(['2026-03-29T12:00:00.000Z', '2026-03-29T13:00:00.000Z']);
    expect(cal(t, 'day', 'UTC')).toEqual(['2026-03-29T00:00:00.000Z', '2026-03-30T00:00:00.000Z']);
    expect(cal(t, 'week', 'UTC')).toEqual(['2026-03-23T00:00:00.000Z', '2026-03-30T00:00:00.000Z']);
    expect(cal(t, 'month', 'UTC')).toEqual([
      '2026-03-01T00:00:00.000Z',
      '2026-04-01T00:00:00.000Z',
    ]);
  });

  it('months of every length, year end, leap February', () => {
    expect(cal('2024-02-29T23:59:59.999Z', 'month', 'UTC')).toEqual([
      '2024-02-01T00:00:00.000Z',
      '2024-03-01T00:00:00.000Z',
    ]);
    expect(cal('2026-12-31T23:59:59.999Z', 'month', 'UTC')).toEqual([
      '2026-12-01T00:00:00.000Z',
      '2027-01-01T00:00:00.000Z',
    ]);
    // ISO week 1 of 2027 starts on Monday 2027-01-04; 2027-01-01 is in the week from 2026-12-28.
    expect(cal('2027-01-01T10:00:00Z', 'week', 'UTC')).toEqual([
      '2026-12-28T00:00:00.000Z',
      '2027-01-04T00:00:00.000Z',
    ]);
  });

  it('instants exactly on a boundary belong to the window that starts there', () => {
    expect(cal('2026-03-29T13:00:00.000Z', 'hour', 'UTC')[0]).toBe('2026-03-29T13:00:00.000Z');
    expect(cal('2026-03-29T12:59:59.999Z', 'hour', 'UTC')[0]).toBe('2026-03-29T12:00:00.000Z');
    expect(cal('2026-03-30T00:00:00.000Z', 'week', 'UTC')[0]).toBe('2026-03-30T00:00:00.000Z');
    expect(cal('2026-04-01T00:00:00.000Z', 'month', 'UTC')[0]).toBe('2026-04-01T00:00:00.000Z');
  });

  it('Etc/UTC and the generic path agree with the UTC fast path', () => {
    for (const unit of ['hour', 'day', 'week', 'month'] as const) {
      expect(cal('2026-07-15T08:20:00Z', unit, 'Etc/UTC')).toEqual(
        cal('2026-07-15T08:20:00Z', unit, 'UTC'),
      );
      expect(cal('2026-07-15T08:20:00Z', unit, 'Africa/Abidjan')).toEqual(
        cal('2026-07-15T08:20:00Z', unit, 'UTC'),
      );
    }
  });
});

describe('calendarWindow: Europe/Berlin DST', () => {
  const tz = 'Europe/Berlin';

  it('spring forward (2026-03-29): the day is 23 hours', () => {
    const w = calendarWindow(z('2026-03-29T10:00:00Z'), 'day', tz);
    expect(iso(w)).toEqual(['2026-03-28T23:00:00.000Z', '2026-03-29T22:00:00.000Z']);
    expect(w.endMs - w.startMs).toBe(23 * HOUR);
  });

  it('spring forward: the hour before the gap and the hour after it (02:00 does not exist)', () => {
    // 01:00 CET = 00:00Z; at 01:00Z clocks jump from 02:00 to 03:00 CEST.
    expect(cal('2026-03-29T00:59:59.999Z', 'hour', tz)).toEqual([
      '2026-03-29T00:00:00.000Z',
      '2026-03-29T01:00:00.000Z',
    ]);
    expect(cal('2026-03-29T01:00:00.000Z', 'hour', tz)).toEqual([
      '2026-03-29T01:00:00.000Z',
      '2026-03-29T02:00:00.000Z',
    ]);
  });

  it('fall back (2026-10-25): the day is 25 hours', () => {
    const w = calendarWindow(z('2026-10-25T12:00:00Z'), 'day', tz);
    expect(iso(w)).toEqual(['2026-10-24T22:00:00.000Z', '2026-10-25T23:00:00.000Z']);
    expect(w.endMs - w.startMs).toBe(25 * HOUR);
  });

  it('fall back: the repeated 02:00–03:00 hour is two distinct hour windows', () => {
    const first = calendarWindow(z('2026-10-25T00:30:00Z'), 'hour', tz); // 02:30 CEST
    const second = calendarWindow(z('2026-10-25T01:30:00Z'), 'hour', tz); // 02:30 CET
    expect(iso(first)).toEqual(['2026-10-25T00:00:00.000Z', '2026-10-25T01:00:00.000Z']);
    expect(iso(second)).toEqual(['2026-10-25T01:00:00.000Z', '2026-10-25T02:00:00.000Z']);
    expect(cal('2026-10-25T00:59:59.999Z', 'hour', tz)[0]).toBe('2026-10-25T00:00:00.000Z');
    expect(cal('2026-10-25T01:00:00.000Z', 'hour', tz)[0]).toBe('2026-10-25T01:00:00.000Z');
    expect(cal('2026-10-25T02:00:00.000Z', 'hour', tz)).toEqual([
      '2026-10-25T02:00:00.000Z',
      '2026-10-25T03:00:00.000Z',
    ]);
  });

  it('weeks and months across the changes', () => {
    expect(cal('2026-03-29T21:59:59.999Z', 'week', tz)).toEqual([
      '2026-03-22T23:00:00.000Z',
      '2026-03-29T22:00:00.000Z',
    ]);
    expect(cal('2026-03-29T22:00:00.000Z', 'week', tz)[0]).toBe('2026-03-29T22:00:00.000Z');
    expect(cal('2026-10-15T00:00:00Z', 'month', tz)).toEqual([
      '2026-09-30T22:00:00.000Z',
      '2026-10-31T23:00:00.000Z',
    ]);
  });
});

describe('calendarWindow: America/New_York', () => {
  const tz = 'America/New_York';

  it('March 2026 starts in EST and ends in EDT', () => {
    expect(cal('2026-03-15T12:00:00Z', 'month', tz)).toEqual([
      '2026-03-01T05:00:00.000Z',
      '2026-04-01T04:00:00.000Z',
    ]);
    // The last instant of February in New York is still February.
    expect(cal('2026-03-01T04:59:59.999Z', 'month', tz)).toEqual([
      '2026-02-01T05:00:00.000Z',
      '2026-03-01T05:00:00.000Z',
    ]);
  });

  it('weeks containing the spring and autumn changes are 167 and 169 hours', () => {
    const spring = calendarWindow(z('2026-03-08T12:00:00Z'), 'week', tz);
    expect(iso(spring)).toEqual(['2026-03-02T05:00:00.000Z', '2026-03-09T04:00:00.000Z']);
    expect(spring.endMs - spring.startMs).toBe(167 * HOUR);
    const autumn = calendarWindow(z('2026-11-01T12:00:00Z'), 'week', tz);
    expect(iso(autumn)).toEqual(['2026-10-26T04:00:00.000Z', '2026-11-02T05:00:00.000Z']);
    expect(autumn.endMs - autumn.startMs).toBe(169 * HOUR);
  });

  it('a Sunday evening local is still in the week from Monday (not yet the next UTC week)', () => {
    // Sunday 2026-03-29 22:00 EDT = Monday 02:00Z.
    expect(cal('2026-03-30T02:00:00Z', 'week', tz)).toEqual([
      '2026-03-23T04:00:00.000Z',
      '2026-03-30T04:00:00.000Z',
    ]);
  });
});

describe('calendarWindow: half-hour zones', () => {
  it('Asia/Kolkata: hours start at UTC :30', () => {
    expect(cal('2026-05-01T10:45:00Z', 'hour', 'Asia/Kolkata')).toEqual([
      '2026-05-01T10:30:00.000Z',
      '2026-05-01T11:30:00.000Z',
    ]);
    expect(cal('2026-05-01T10:29:59.999Z', 'hour', 'Asia/Kolkata')[0]).toBe(
      '2026-05-01T09:30:00.000Z',
    );
    expect(cal('2026-05-01T10:30:00.000Z', 'hour', 'Asia/Kolkata')[0]).toBe(
      '2026-05-01T10:30:00.000Z',
    );
    expect(cal('2026-05-01T10:45:00Z', 'day', 'Asia/Kolkata')).toEqual([
      '2026-04-30T18:30:00.000Z',
      '2026-05-01T18:30:00.000Z',
    ]);
  });

  it('Australia/Lord_Howe: DST start (02:00 → 02:30) makes a 30-minute hour', () => {
    const tz = 'Australia/Lord_Howe';
    // 2026-10-04 02:00 +10:30 = 2026-10-03T15:30Z, clocks go to 02:30 +11.
    expect(cal('2026-10-03T15:29:59.999Z', 'hour', tz)).toEqual([
      '2026-10-03T14:30:00.000Z',
      '2026-10-03T15:30:00.000Z',
    ]);
    expect(cal('2026-10-03T15:45:00Z', 'hour', tz)).toEqual([
      '2026-10-03T15:30:00.000Z',
      '2026-10-03T16:00:00.000Z',
    ]);
    const day = calendarWindow(z('2026-10-04T00:00:00Z'), 'day', tz);
    expect(iso(day)).toEqual(['2026-10-03T13:30:00.000Z', '2026-10-04T13:00:00.000Z']);
    expect(day.endMs - day.startMs).toBe(23.5 * HOUR);
  });

  it('Australia/Lord_Howe: DST end (02:00 → 01:30) makes a 90-minute hour and a 24.5-hour day', () => {
    const tz = 'Australia/Lord_Howe';
    // 2026-04-05 02:00 +11 = 2026-04-04T15:00Z, clocks go back to 01:30 +10:30.
    const hour = calendarWindow(z('2026-04-04T15:10:00Z'), 'hour', tz);
    expect(iso(hour)).toEqual(['2026-04-04T14:00:00.000Z', '2026-04-04T15:30:00.000Z']);
    const day = calendarWindow(z('2026-04-04T15:10:00Z'), 'day', tz);
    expect(iso(day)).toEqual(['2026-04-04T13:00:00.000Z', '2026-04-05T13:30:00.000Z']);
    expect(day.endMs - day.startMs).toBe(24.5 * HOUR);
  });
});

describe('calendarWindow: midnight does not exist or repeats', () => {
  it('America/Santiago: DST starts at 24:00, the day starts at 01:00 local', () => {
    const tz = 'America/Santiago';
    // Sat 2026-09-05 24:00 -04 (04:00Z) becomes Sun 01:00 -03.
    expect(cal('2026-09-06T03:59:59.999Z', 'day', tz)).toEqual([
      '2026-09-05T04:00:00.000Z',
      '2026-09-06T04:00:00.000Z',
    ]);
    expect(cal('2026-09-06T04:00:00.000Z', 'day', tz)).toEqual([
      '2026-09-06T04:00:00.000Z',
      '2026-09-07T03:00:00.000Z',
    ]);
    // 2026-09-07 is a Monday: the week from Monday 2026-08-31 00:00 -04 ends at 03:00Z.
    expect(cal('2026-09-06T12:00:00Z', 'week', tz)).toEqual([
      '2026-08-31T04:00:00.000Z',
      '2026-09-07T03:00:00.000Z',
    ]);
  });

  it('America/Santiago: DST ends at 24:00 → 23:00, the Saturday is 25 hours', () => {
    const tz = 'America/Santiago';
    expect(cal('2026-04-05T03:30:00Z', 'day', tz)).toEqual([
      '2026-04-04T03:00:00.000Z',
      '2026-04-05T04:00:00.000Z',
    ]);
  });

  it('historic America/Sao_Paulo: 2018-11-04 starts at 01:00 local', () => {
    const tz = 'America/Sao_Paulo';
    expect(cal('2018-11-04T12:00:00Z', 'day', tz)).toEqual([
      '2018-11-04T03:00:00.000Z',
      '2018-11-05T02:00:00.000Z',
    ]);
    expect(cal('2018-11-04T02:59:59.999Z', 'day', tz)).toEqual([
      '2018-11-03T03:00:00.000Z',
      '2018-11-04T03:00:00.000Z',
    ]);
    // November 2018 started in standard time (-03) and ended in summer time (-02).
    expect(cal('2018-11-04T12:00:00Z', 'month', tz)).toEqual([
      '2018-11-01T03:00:00.000Z',
      '2018-12-01T02:00:00.000Z',
    ]);
  });

  it('America/Havana: midnight 2026-03-08 does not exist (00:00 → 01:00)', () => {
    expect(cal('2026-03-08T12:00:00Z', 'day', 'America/Havana')).toEqual([
      '2026-03-08T05:00:00.000Z',
      '2026-03-09T04:00:00.000Z',
    ]);
  });

  it('America/Havana: midnight 2026-11-01 repeats (01:00 → 00:00): one 25-hour day, two hours', () => {
    const tz = 'America/Havana';
    expect(cal('2026-11-01T05:30:00Z', 'day', tz)).toEqual([
      '2026-11-01T04:00:00.000Z',
      '2026-11-02T05:00:00.000Z',
    ]);
    expect(cal('2026-11-01T04:30:00Z', 'hour', tz)).toEqual([
      '2026-11-01T04:00:00.000Z',
      '2026-11-01T05:00:00.000Z',
    ]);
    expect(cal('2026-11-01T05:30:00Z', 'hour', tz)).toEqual([
      '2026-11-01T05:00:00.000Z',
      '2026-11-01T06:00:00.000Z',
    ]);
  });

  it('Asia/Beirut: Sunday 00:00 → Saturday 23:00, the Saturday is 25 hours', () => {
    expect(cal('2026-10-24T21:30:00Z', 'day', 'Asia/Beirut')).toEqual([
      '2026-10-23T21:00:00.000Z',
      '2026-10-24T22:00:00.000Z',
    ]);
  });
});

describe('calendarWindow: errors and cache', () => {
  it('an unknown zone or a non-finite instant is invalid_argument', () => {
    expect(() => calendarWindow(0, 'day', 'Mars/Olympus')).toThrow(
      expect.objectContaining({ code: 'invalid_argument' }),
    );
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, 8.64e15, -8.64e15]) {
      expect(() => calendarWindow(bad, 'day', 'Europe/Berlin')).toThrow(
        expect.objectContaining({ code: 'invalid_argument' }),
      );
      expect(() => windowFor(bad, { type: 'rolling', minutes: 5 })).toThrow(
        expect.objectContaining({ code: 'invalid_argument' }),
      );
    }
    // The first and last instants supported still work.
    expect(cal('0001-01-01T00:00:00Z', 'month', 'UTC')[0]).toBe('0001-01-01T00:00:00.000Z');
    expect(cal('9999-12-31T23:59:59.999Z', 'day', 'Europe/Berlin')[0]).toBe(
      '9999-12-31T23:00:00.000Z',
    );
    expect(cal('0050-06-15T12:00:00Z', 'day', 'Asia/Tokyo')[0]).toMatch(/^0050-06-1[45]T/);
  });

  it('cached windows are returned for instants inside them, and stay correct when alternating', () => {
    const tz = 'Europe/Paris';
    const a = calendarWindow(z('2026-06-01T10:10:00Z'), 'hour', tz);
    expect(calendarWindow(z('2026-06-01T10:50:00Z'), 'hour', tz)).toBe(a);
    const b = calendarWindow(z('2026-06-01T11:10:00Z'), 'hour', tz);
    expect(calendarWindow(z('2026-06-01T10:20:00Z'), 'hour', tz)).toBe(a);
    expect(calendarWindow(z('2026-06-01T11:20:00Z'), 'hour', tz)).toBe(b);
    expect(iso(calendarWindow(z('2026-06-01T09:20:00Z'), 'hour', tz))).toEqual([
      '2026-06-01T09:00:00.000Z',
      '2026-06-01T10:00:00.000Z',
    ]);
    expect(Object.isFrozen(a)).toBe(true);
  });

  // How fast these are is the business of a benchmark; what a test can hold without timing the
  // machine is the work done: the zone lookups through Intl, the expensive part.
  it('answers from its cache without asking Intl while the instants stay in one window', () => {
    const window: RuleWindow = { type: 'calendar', unit: 'hour', timeZone: 'Europe/Berlin' };
    const t0 = z('2026-06-01T10:00:00Z');
    const first = windowFor(t0, window);
    const intl = vi.spyOn(Intl.DateTimeFormat.prototype, 'formatToParts');
    try {
      for (let i = 0; i < 200_000; i++) expect(windowFor(t0 + (i % 3_600_000), window)).toBe(first);
      expect(intl).not.toHaveBeenCalled();
    } finally {
      intl.mockRestore();
    }
  });

  it('asks Intl a bounded number of times per window uncached (every hour of a year in a DST zone)', () => {
    const window: RuleWindow = { type: 'calendar', unit: 'hour', timeZone: 'America/Chicago' };
    const t0 = z('2025-01-01T00:30:00Z');
    const intl = vi.spyOn(Intl.DateTimeFormat.prototype, 'formatToParts');
    try {
      for (let i = 0; i < 24 * 365; i++) windowFor(t0 + i * HOUR, window);
      // One offset per UTC day (the year, the day after it, and the probes a day either side),
      // and a bisection to the second on each of the year's two DST days: 402, against 8,760
      // windows. A cache that stopped working would ask several times per window.
      const bisection = Math.ceil(Math.log2(86_400));
      expect(intl.mock.calls.length).toBeLessThanOrEqual(365 + 3 + 2 * bisection);
    } finally {
      intl.mockRestore();
    }
  });
});

describe('windowFor and nextWindowStart', () => {
  it('calendar windows delegate to calendarWindow', () => {
    const w: RuleWindow = { type: 'calendar', unit: 'day', timeZone: 'Europe/Berlin' };
    expect(iso(windowFor(z('2026-10-25T12:00:00Z'), w))).toEqual([
      '2026-10-24T22:00:00.000Z',
      '2026-10-25T23:00:00.000Z',
    ]);
    expect(new Date(nextWindowStart(z('2026-10-25T12:00:00Z'), w)).toISOString()).toBe(
      '2026-10-25T23:00:00.000Z',
    );
  });

  it('rolling N minutes: the N whole minutes ending with the instant’s minute', () => {
    const w: RuleWindow = { type: 'rolling', minutes: 60 };
    const t = z('2026-05-01T10:15:42.123Z');
    expect(iso(windowFor(t, w))).toEqual(['2026-05-01T09:16:00.000Z', '2026-05-01T10:16:00.000Z']);
    expect(nextWindowStart(t, w)).toBe(z('2026-05-01T10:16:00.000Z'));
    expect(iso(windowFor(z('2026-05-01T10:15:00.000Z'), { type: 'rolling', minutes: 1 }))).toEqual([
      '2026-05-01T10:15:00.000Z',
      '2026-05-01T10:16:00.000Z',
    ]);
    const week = windowFor(t, { type: 'rolling', minutes: 10_080 });
    expect(week.endMs - week.startMs).toBe(10_080 * MIN);
  });
});

describe('property: random instants and zones', () => {
  const zones = [
    'UTC',
    'Europe/Berlin',
    'Europe/London',
    'America/New_York',
    'America/Santiago',
    'America/Sao_Paulo',
    'America/Havana',
    'America/St_Johns',
    'Asia/Kolkata',
    'Asia/Kathmandu',
    'Asia/Beirut',
    'Asia/Tehran',
    'Australia/Lord_Howe',
    'Australia/Adelaide',
    'Pacific/Chatham',
    'Pacific/Apia',
    'Pacific/Kiritimati',
    'Africa/Casablanca',
    'Antarctica/Troll',
    'America/Godthab',
  ].filter(isValidTimeZone);
  const units: CalendarUnit[] = ['hour', 'day', 'week', 'month'];
  const lengthBounds: Record<CalendarUnit, [number, number]> = {
    hour: [1, 3 * HOUR],
    day: [20 * HOUR, 28 * HOUR],
    week: [6 * DAY - 4 * HOUR, 7 * DAY + 4 * HOUR], // Pacific/Apia skipped 2011-12-30
    month: [27 * DAY, 32 * DAY],
  };

  /** True when the local clock reads the unit's boundary at `ms`, or a transition happens there. */
  function isBoundary(ms: number, unit: CalendarUnit, tz: string): boolean {
    const l = local(ms, tz);
    const prev = local(ms - 1000, tz);
    const jumped = isTransition(prev, l);
    const atHour = l.minute === 0 && l.second === 0;
    const atMidnight = atHour && l.hour === 0;
    switch (unit) {
      case 'hour':
        return atHour || jumped;
      case 'day':
        return atMidnight || jumped;
      case 'week':
        return (atMidnight && l.weekday === 'Mon') || jumped;
      case 'month':
        return (atMidnight && l.day === 1) || jumped;
    }
  }

  function isTransition(prev: ReturnType<typeof local>, cur: ReturnType<typeof local>): boolean {
    const a = Date.UTC(prev.year, prev.month - 1, prev.day, prev.hour, prev.minute, prev.second);
    const b = Date.UTC(cur.year, cur.month - 1, cur.day, cur.hour, cur.minute, cur.second);
    return b - a !== 1000;
  }

  it('start ≤ instant < end; windowFor(start) is the same window; windowFor(end) starts at end', () => {
    const random = rng(20260329);
    const from = z('1990-01-01T00:00:00Z');
    const to = z('2040-01-01T00:00:00Z');
    let checked = 0;
    for (let i = 0; i < 3_000; i++) {
      const tz = zones[Math.floor(random() * zones.length)]!;
      const unit = units[Math.floor(random() * units.length)]!;
      // Half of the instants near a DST change season, to hit transitions often.
      let t = Math.floor(from + random() * (to - from));
      if (random() < 0.5) t = Math.floor(t / HOUR) * HOUR + (random() < 0.5 ? 0 : -1);
      const window: RuleWindow = { type: 'calendar', unit, timeZone: tz };
      const w = windowFor(t, window);
      const ctx = `${tz} ${unit} ${new Date(t).toISOString()} → ${iso(w).join(' .. ')}`;
      expect(w.startMs, ctx).toBeLessThanOrEqual(t);
      expect(w.endMs, ctx).toBeGreaterThan(t);
      expect(iso(windowFor(w.startMs, window)), ctx).toEqual(iso(w));
      expect(iso(windowFor(w.endMs - 1, window)), ctx).toEqual(iso(w));
      expect(windowFor(w.endMs, window).startMs, ctx).toBe(w.endMs);
      expect(nextWindowStart(t, window), ctx).toBe(w.endMs);
      const [min, max] = lengthBounds[unit];
      expect(w.endMs - w.startMs, ctx).toBeGreaterThanOrEqual(unit === 'hour' ? 15 * MIN : min);
      expect(w.endMs - w.startMs, ctx).toBeLessThanOrEqual(max);
      expect(isBoundary(w.startMs, unit, tz), `start ${ctx}`).toBe(true);
      expect(isBoundary(w.endMs, unit, tz), `end ${ctx}`).toBe(true);
      checked++;
    }
    expect(checked).toBe(3_000);
  });

  it('consecutive windows tile time without gaps or overlaps (a year of days in each zone)', () => {
    for (const tz of zones) {
      const window: RuleWindow = { type: 'calendar', unit: 'day', timeZone: tz };
      let w = windowFor(z('2026-01-01T12:00:00Z'), window);
      let days = 0;
      while (w.startMs < z('2027-01-01T00:00:00Z')) {
        const next = windowFor(w.endMs, window);
        expect(next.startMs, tz).toBe(w.endMs);
        // The start's local date advances by exactly one day.
        const a = local(w.startMs, tz);
        const b = local(next.startMs, tz);
        expect(
          Date.UTC(b.year, b.month - 1, b.day) - Date.UTC(a.year, a.month - 1, a.day),
          tz,
        ).toBe(DAY);
        w = next;
        days++;
      }
      expect(days, tz).toBeGreaterThanOrEqual(365);
    }
  });
});
