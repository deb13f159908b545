import { describe, expect, it } from 'vitest';
import {
  loadAlerts,
  loadRuleStatuses,
  normaliseAlert,
  normaliseAlerts,
  normaliseRuleStatus,
  progressOf,
} from './rules.js';
import { ApiClient, ApiError } from './usage-api.js';

/** An API client answering from a table of paths (no network). */
class FakeApi extends ApiClient {
  constructor(private readonly answers: Record<string, unknown>) {
    super('http://x', 'k');
  }
  override async request<T>(_method: string, path: string): Promise<T> {
    const a = this.answers[path];
    if (a === undefined) throw new ApiError(404, 'not_found', `No route for ${path}.`);
    if (a instanceof Error) throw a;
    return a as T;
  }
}

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
          acknowledgedAt: null,
        },
        {
          id: 'a0',
          ruleName: 'Per user',
          scope: { user: 'bob' },
          level: { value: 5, threshold: 5 },
          firedAt: '2026-01-06T09:00:00Z',
          acknowledgedAt: '2026-01-06T09:30:00Z',
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
        acknowledged: false,
      },
      {
        id: 'a0',
        ruleName: 'Per user',
        scopeValues: { user: 'bob' },
        scope: 'user=bob',
        level: '5',
        value: undefined,
        threshold: 5,
        firedAtMs: Date.parse('2026-01-06T09:00:00Z'),
        metric: '',
        acknowledged: true,
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

describe('rules loaders', () => {
  it('a server without the rules API: "unavailable", saying which route answered 404', async () => {
    const api = new FakeApi({});
    expect(await loadRuleStatuses(api)).toEqual({
      state: 'unavailable',
      message: 'No rules API on this server yet (GET /v1/rules answered 404).',
    });
    expect(await loadAlerts(api, 10)).toEqual({
      state: 'unavailable',
      message: 'No rules API on this server yet (GET /v1/alerts answered 404).',
    });
  });

  it('other failures are errors, not "unavailable"', async () => {
    const api = new FakeApi({ '/v1/alerts': new ApiError(500, 'internal', 'boom') });
    expect(await loadAlerts(api, 10)).toEqual({ state: 'error', message: 'boom' });
  });

  it('a read key (403 on the admin-only rules list) is told why, not shown a bare error', async () => {
    const api = new FakeApi({ '/v1/rules': new ApiError(403, 'forbidden', 'forbidden') });
    expect(await loadRuleStatuses(api)).toEqual({
      state: 'error',
      message: 'the server lists rules to admin keys only.',
    });
  });

  it("reads rules with their status; a user page keeps that user's scopes", async () => {
    const rule = {
      id: 'r1',
      name: 'R',
      metric: 'totalTokens',
      window: { type: 'rolling', minutes: 60 },
      levels: [{ value: 10 }],
      enabled: true,
    };
    const api = new FakeApi({
      '/v1/rules': { rules: [rule, { ...rule, id: 'off', enabled: false }] },
      '/v1/rules/r1/status': {
        status: {
          window: {},
          scopes: [
            { scope: { user: 'a' }, value: 4 },
            { scope: { user: 'b' }, value: 12 },
          ],
        },
      },
      '/v1/alerts': {
        alerts: [
          {
            id: 'x',
            ruleName: 'R',
            scope: { user: 'b' },
            level: { value: 10, threshold: 10 },
            value: 12,
            firedAt: 5,
          },
        ],
      },
    });
    const all = await loadRuleStatuses(api);
    expect(all.state === 'ok' && all.items.map((s) => [s.scope, s.value, s.rolling])).toEqual([
      ['user=a', 4, true],
      ['user=b', 12, true],
    ]);
    const mine = await loadRuleStatuses(api, 'b');
    expect(mine.state === 'ok' && mine.items.map((s) => s.scope)).toEqual(['user=b']);
    const alerts = await loadAlerts(api, 10, 'a');
    expect(alerts).toEqual({ state: 'ok', items: [] });
  });
});
