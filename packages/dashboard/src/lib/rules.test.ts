import { describe, expect, it } from 'vitest';
import { normaliseAlert, normaliseAlerts, normaliseRuleStatus, progressOf } from './rules.js';

const HOUR = 3_600_000;

describe('rules adapter', () => {
  it('reads a rule and its status into one entry per scope', () => {
    const rule = {
      id: 'r1',
      name: 'Daily budget per user',
      metric: 'costUsd',
      window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
      budget: 10,
      levels: [{ percent: 80 }, { percent: 50 }, { percent: 100 }],
      scope: ['user'],
    };
    const status = {
      status: {
        ruleId: 'r1',
        window: {
          start: '2026-01-06T00:00:00.000Z',
          end: '2026-01-07T00:00:00.000Z',
          resetsInMs: 1,
        },
        scopes: [
          { scope: { user: 'alice' }, value: 6, projectedValue: 12 },
          { scope: { user: '<b>bob</b>' }, value: 'x' },
        ],
      },
    };
    const [s, ...rest] = normaliseRuleStatus(rule, status);
    expect(rest).toHaveLength(0);
    expect(s).toMatchObject({
      ruleName: 'Daily budget per user',
      scope: 'user=alice',
      value: 6,
      rolling: false,
      projectedValue: 12,
      levels: [
        { threshold: 5, label: '50%' },
        { threshold: 8, label: '80%' },
        { threshold: 10, label: '100%' },
      ],
    });
    const p = progressOf(s!, Date.parse('2026-01-06T12:00:00Z'));
    expect(p.fractions).toEqual([1.2, 0.75, 0.6]);
    expect(p.forecast).toBe(12);
    expect(p.forecastCrosses?.label).toBe('80%');
    expect(p.resetInMs).toBe(12 * HOUR);
  });

  it('forecasts by itself when the server gives no projection, not too early', () => {
    const base = {
      ruleId: 'r',
      ruleName: 'r',
      metric: 'totalTokens',
      scopeValues: {},
      scope: 'whole project',
      value: 100,
      levels: [{ threshold: 300, label: '300' }],
      windowStartMs: 0,
      windowEndMs: 10 * HOUR,
      rolling: false,
      projectedValue: undefined,
    };
    expect(progressOf(base, 2 * HOUR).forecast).toBe(500);
    expect(progressOf(base, 0.1 * HOUR).forecast).toBeUndefined();
    expect(progressOf({ ...base, rolling: true }, 2 * HOUR)).toMatchObject({
      forecast: undefined,
      resetInMs: undefined,
    });
  });

  it('reads alerts, skipping what it cannot', () => {
    const alerts = normaliseAlerts({
      alerts: [
        {
          id: 'a1',
          ruleName: 'Per user',
          scope: { user: 'alice', model: 'm' },
          level: { index: 1, threshold: 8, percent: 80 },
          value: 8.5,
          forecast: false,
          firedAt: '2026-01-06T10:00:00Z',
        },
        { id: 'broken' },
      ],
    });
    expect(alerts).toEqual([
      {
        id: 'a1',
        ruleName: 'Per user',
        scopeValues: { user: 'alice', model: 'm' },
        scope: 'user=alice, model=m',
        level: '80%',
        value: 8.5,
        threshold: 8,
        firedAtMs: Date.parse('2026-01-06T10:00:00Z'),
        metric: '',
      },
    ]);
    expect(
      normaliseAlert({
        alertId: 'x',
        rule: { name: 'R', metric: 'costUsd' },
        scope: {},
        level: { value: 5, threshold: 5 },
        value: 6,
        forecast: true,
        firedAt: 1,
      }),
    ).toMatchObject({
      id: 'x',
      ruleName: 'R',
      scope: 'whole project',
      level: 'forecast',
      metric: 'costUsd',
    });
    expect(normaliseAlerts({ nope: 1 })).toEqual([]);
  });
});
