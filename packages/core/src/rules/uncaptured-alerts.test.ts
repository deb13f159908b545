import { describe, expect, it } from 'vitest';
import { makeRule } from '../testing/rule-contract.js';
import { compileRule } from './evaluate.js';
import { parseRuleInput } from './parse-rule.js';
import { uncapturedAlerts } from './uncaptured-alerts.js';

const HOUR = 3_600_000;
const DAY0 = Date.UTC(2026, 10, 30); // a Monday, 00:00 UTC

const rule = (overrides = {}) =>
  compileRule(
    makeRule({
      scope: ['model'],
      metric: 'uncapturedTokens',
      window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
      levels: [{ value: 100 }, { value: 1_000 }],
      countingSinceMs: DAY0 - HOUR,
      ...overrides,
    }),
  );

const hour = (modelId: string, h: number, difference: number, settled = true) => ({
  modelId,
  hourStartMs: DAY0 + h * HOUR,
  difference,
  settled,
});

const fired = (alerts: ReturnType<typeof uncapturedAlerts>) =>
  alerts
    .map(
      (a) =>
        `${a.scopeKey} ${new Date(a.windowStartMs).toISOString().slice(0, 10)} L${a.levelIndex} ${a.value}`,
    )
    .sort();

describe('uncapturedAlerts', () => {
  it('sums the settled, positive gaps of each model per window; levels fire on the sum', () => {
    const rows = [
      hour('m1', 1, 60),
      hour('m1', 2, 60), // 120 on day 0: level 0
      hour('m1', 3, -500), // tokenwatch counted more: adds nothing
      hour('m1', 4, 5_000, false), // not settled: not yet
      hour('m2', 5, 1_500), // both levels
      hour('m1', 25, 99), // day 1: below
    ];
    expect(fired(uncapturedAlerts(rule(), rows, DAY0 + 2 * 86_400_000))).toEqual([
      '["m1"] 2026-11-30 L0 120',
      '["m2"] 2026-11-30 L0 1500',
      '["m2"] 2026-11-30 L1 1500',
    ]);
  });

  it('a project-wide rule adds the models up; a model filter keeps only those', () => {
    const rows = [hour('m1', 1, 60), hour('m2', 1, 60), hour('m3', 1, 5_000)];
    expect(fired(uncapturedAlerts(rule({ scope: [] }), rows, DAY0))).toEqual([
      '[] 2026-11-30 L0 5120',
      '[] 2026-11-30 L1 5120',
    ]);
    expect(
      fired(uncapturedAlerts(rule({ scope: [], filters: { model: ['m1', 'm2'] } }), rows, DAY0)),
    ).toEqual(['[] 2026-11-30 L0 120']);
  });

  it('never fires for a window that ended before the rule started counting', () => {
    const late = rule({ countingSinceMs: DAY0 + 86_400_000 });
    expect(uncapturedAlerts(late, [hour('m1', 1, 5_000)], DAY0 + 2 * 86_400_000)).toEqual([]);
  });

  it('is refused with the reason where it cannot apply', () => {
    const base = {
      name: 'gap',
      metric: 'uncapturedTokens',
      window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
      levels: [{ value: 100 }],
      channels: [],
    };
    const fields = (raw: Record<string, unknown>) => {
      try {
        parseRuleInput(raw);
        return [];
      } catch (err) {
        return (err as { details: Array<{ field: string }> }).details.map((d) => d.field);
      }
    };
    expect(fields({ ...base, scope: ['model'] })).toEqual([]);
    expect(fields({ ...base, scope: ['user'] })).toEqual(['scope']);
    expect(fields({ ...base, scope: [], filters: { app: ['chat'] } })).toEqual(['filters.app']);
    expect(fields({ ...base, scope: [], window: { type: 'rolling', minutes: 60 } })).toEqual([
      'window',
    ]);
    expect(fields({ ...base, scope: [], enforce: true })).toEqual(['enforce']);
  });
});
