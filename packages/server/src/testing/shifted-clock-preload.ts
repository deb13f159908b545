/**
 * A preload for tests that must run the real server at another instant (`node --import` this
 * file's build, with `TW_TEST_CLOCK_SHIFT_MS`): `Date.now()` and `new Date()` read the real clock
 * plus the shift, in the main thread and in worker threads (which run the same preload). Some
 * behaviour can only be reached at certain dates: no time zone changes its UTC offset between
 * early November and early February, so a DST change is not within the 35 days an event may be
 * late for a quarter of the year. Only tests load this; the product never does.
 */

const raw = process.env.TW_TEST_CLOCK_SHIFT_MS ?? '0';
const shiftMs = Number(raw);
if (!Number.isSafeInteger(shiftMs)) {
  throw new Error(`TW_TEST_CLOCK_SHIFT_MS must be an integer number of milliseconds, got "${raw}"`);
}

if (shiftMs !== 0) {
  const RealDate = Date;
  class ShiftedDate extends RealDate {
    constructor(...args: ConstructorParameters<DateConstructor> | []) {
      if (args.length === 0) super(RealDate.now() + shiftMs);
      else super(...(args as ConstructorParameters<DateConstructor>));
    }
    static override now(): number {
      return RealDate.now() + shiftMs;
    }
  }
  globalThis.Date = ShiftedDate as DateConstructor;
}
