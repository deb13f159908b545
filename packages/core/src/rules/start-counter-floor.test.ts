import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RuleCounter } from '../ports/rule-store.js';
import { makeRule } from '../testing/rule-contract.js';
import { compileRule } from './evaluate.js';
import { crossingsAtStart, startCounterFloor } from './rule-engine.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 2, 10, 10, 0, 0);

describe('startCounterFloor', () => {
  it('a calendar rule starts with the same alerts from the counters at or past it as from all', () => {
    fc.assert(
      fc.property(
        // Levels and values meet at the edges often: a value equal to a level, one below it.
        fc.uniqueArray(fc.constantFrom(1, 999, 1_000, 2_500, 5_000), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.boolean(),
        fc.constantFrom('hour', 'day'),
        fc.array(
          fc.record({
            scope: fc.constantFrom('["ana"]', '["ben"]', '["cy"]', '["dee"]'),
            bucket: fc.integer({ min: -3, max: 3 }),
            value: fc.oneof(
              fc.integer({ min: 0, max: 6_000 }),
              fc.constantFrom(0, 1, 998, 999, 1_000, 1_001, 2_499, 2_500, 4_999, 5_000),
            ),
          }),
          { maxLength: 40 },
        ),
        (levels, forecast, unit, raw) => {
          const rule = makeRule({
            scope: ['user'],
            levels: [...levels].sort((a, b) => a - b).map((value) => ({ value })),
            window: { type: 'calendar', unit, timeZone: 'UTC' },
            forecast,
            createdAtMs: T0 - 5 * HOUR,
            updatedAtMs: T0 - 5 * HOUR,
          });
          const compiled = compileRule(rule);
          const size = unit === 'hour' ? HOUR : 24 * HOUR;
          // One counter per (scope, bucket), as a store holds them.
          const byKey = new Map<string, RuleCounter>();
          for (const r of raw) {
            const bucketStartMs = T0 + r.bucket * size;
            byKey.set(`${r.scope}|${bucketStartMs}`, {
              ruleId: compiled.counterKey,
              scopeKey: r.scope,
              bucketStartMs,
              value: r.value,
            });
          }
          const all = [...byKey.values()];
          const floor = startCounterFloor(compiled);
          expect(floor).toBe(Math.min(...levels));
          const atOrPast = all.filter((c) => c.value >= (floor as number));
          const ids = (counters: RuleCounter[]) =>
            crossingsAtStart(compiled, counters, T0 + 30 * 60_000)
              .map((a) => a.alertId)
              .sort();
          expect(ids(atOrPast)).toEqual(ids(all));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a rolling rule reads every counter (its value sums minute buckets)', () => {
    const rule = makeRule({ window: { type: 'rolling', minutes: 60 } });
    expect(startCounterFloor(compileRule(rule))).toBeUndefined();
  });
});
