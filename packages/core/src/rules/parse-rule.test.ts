import { describe, expect, it } from 'vitest';
import { TokenwatchError, type ValidationIssue } from '../errors.js';
import type { PricedEvent } from '../event/usage-event.js';
import { metricOf, parseRuleInput, RULE_METRICS, resolveLevels, toUserUnit } from './parse-rule.js';
import type { RuleMetric } from './rule.js';

const ISSUE_EXAMPLE =
  '{"name":"seed","scope":["user","model"],"metric":"totalTokens","window":{"type":"calendar","unit":"hour","timeZone":"UTC"},"levels":[{"value":10000}],"channels":[{"type":"webhook","url":"http://127.0.0.1:9999/hook"}]}';

type Raw = Record<string, unknown>;

function base(overrides: Raw = {}): Raw {
  return { ...(JSON.parse(ISSUE_EXAMPLE) as Raw), ...overrides };
}

function issuesOf(raw: unknown, field?: string): ValidationIssue[] {
  try {
    parseRuleInput(raw, field);
  } catch (e) {
    expect(e).toBeInstanceOf(TokenwatchError);
    const err = e as TokenwatchError;
    expect(err.code).toBe('invalid_argument');
    expect(err.details.length).toBeGreaterThan(0);
    return err.details;
  }
  throw new Error(`expected a refusal of ${JSON.stringify(raw)}`);
}

function fieldsOf(raw: unknown, field?: string): string[] {
  return issuesOf(raw, field).map((i) => i.field);
}

function expectOnly(raw: unknown, field: string, reason?: RegExp): void {
  const issues = issuesOf(raw);
  expect(issues.map((i) => i.field)).toEqual([field]);
  if (reason) expect(issues[0]?.reason).toMatch(reason);
}

describe('parseRuleInput: valid rules', () => {
  it('parses the exact JSON of the issue, with defaults', () => {
    expect(parseRuleInput(JSON.parse(ISSUE_EXAMPLE))).toEqual({
      name: 'seed',
      scope: ['user', 'model'],
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'hour', timeZone: 'UTC' },
      levels: [{ value: 10000 }],
      channels: [{ type: 'webhook', url: 'http://127.0.0.1:9999/hook' }],
      forecast: false,
      enforce: false,
      enabled: true,
    });
  });

  it('defaults the time zone to UTC and channels to none; keeps budget and filters', () => {
    const rule = parseRuleInput({
      name: 'monthly budget',
      scope: [],
      filters: { app: ['chat', 'search'] },
      metric: 'costUsd',
      window: { type: 'calendar', unit: 'month' },
      budget: 200,
      levels: [{ percent: 50 }, { percent: 80 }, { percent: 100 }],
      forecast: true,
      enforce: true,
      enabled: false,
    });
    expect(rule).toEqual({
      name: 'monthly budget',
      scope: [],
      filters: { app: ['chat', 'search'] },
      metric: 'costUsd',
      window: { type: 'calendar', unit: 'month', timeZone: 'UTC' },
      budget: 200,
      levels: [{ percent: 50 }, { percent: 80 }, { percent: 100 }],
      forecast: true,
      channels: [],
      enforce: true,
      enabled: false,
    });
    expect('filters' in parseRuleInput(base())).toBe(false);
    expect('budget' in parseRuleInput(base())).toBe(false);
  });

  it('accepts every channel type and rolling windows', () => {
    const rule = parseRuleInput(
      base({
        window: { type: 'rolling', minutes: 10_080 },
        channels: [
          { type: 'webhook', url: 'https://hooks.example.com/a?x=1#f', secret: 'whsec_abc' },
          { type: 'slack', url: 'https://hooks.slack.com/services/T000/B000/XXXX' },
          { type: 'email', to: ['ops@example.com', 'Jane.Doe+alerts@mail.example.co.uk'] },
          { type: 'log' },
          { type: 'sns', topicArn: 'arn:aws:sns:eu-west-1:123456789012:alerts.fifo' },
          { type: 'webhook', url: 'http://[::1]:8080/hook' },
          { type: 'email', to: ['root@localhost'] },
        ],
      }),
    );
    expect(rule.window).toEqual({ type: 'rolling', minutes: 10_080 });
    expect(rule.channels).toHaveLength(7);
    expect(rule.channels[0]).toEqual({
      type: 'webhook',
      url: 'https://hooks.example.com/a?x=1#f',
      secret: 'whsec_abc',
    });
  });

  it('accepts IANA zones and normalises their case', () => {
    const w = (timeZone: string) =>
      parseRuleInput(base({ window: { type: 'calendar', unit: 'day', timeZone } })).window;
    expect(w('Europe/Berlin')).toEqual({
      type: 'calendar',
      unit: 'day',
      timeZone: 'Europe/Berlin',
    });
    expect(w('europe/berlin')).toEqual({
      type: 'calendar',
      unit: 'day',
      timeZone: 'Europe/Berlin',
    });
    expect(w('Asia/Kolkata')).toMatchObject({ timeZone: 'Asia/Kolkata' });
  });

  it('accepts the limits exactly', () => {
    expect(() =>
      parseRuleInput(
        base({
          name: 'n'.repeat(128),
          scope: ['user', 'app', 'model', 'provider'],
          filters: { user: Array.from({ length: 100 }, (_, i) => `u${i}`.padEnd(512, 'x')) },
          levels: Array.from({ length: 10 }, (_, i) => ({ value: i + 1 })),
          channels: Array.from({ length: 10 }, () => ({ type: 'log' })),
          window: { type: 'rolling', minutes: 1 },
        }),
      ),
    ).not.toThrow();
    expect(() =>
      parseRuleInput(base({ metric: 'costUsd', budget: 1, levels: [{ percent: 1000 }] })),
    ).not.toThrow();
    expect(() =>
      parseRuleInput(base({ metric: 'costUsd', levels: [{ value: 0.000001 }] })),
    ).not.toThrow();
  });

  it('does not mutate or keep references to its input', () => {
    const raw = base({ filters: { model: ['gpt-4o'] } });
    const copy = JSON.parse(JSON.stringify(raw));
    const rule = parseRuleInput(raw);
    expect(raw).toEqual(copy);
    expect(rule.filters?.model).not.toBe((raw.filters as Raw).model);
    expect(rule.scope).not.toBe(raw.scope);
  });
});

describe('parseRuleInput: errors name every problem and its field', () => {
  it('a non-object', () => {
    for (const raw of [null, undefined, 42, 'rule', [], [base()]]) {
      expect(fieldsOf(raw)).toEqual(['']);
    }
    expect(fieldsOf(null, 'rules[2]')).toEqual(['rules[2]']);
  });

  it('missing required fields, all at once', () => {
    expect(fieldsOf({})).toEqual(['name', 'scope', 'metric', 'window', 'levels']);
  });

  it('lists every problem, prefixed with the field given', () => {
    const raw = {
      name: '',
      scope: ['user', 'team'],
      metric: 'tokens',
      window: { type: 'calendar', unit: 'day', timeZone: 'Mars/Olympus' },
      levels: [{ value: 10 }, { percent: 0 }],
      channels: [{ type: 'webhook', url: 'ftp://example.com/x' }],
      colour: 'red',
    };
    expect(fieldsOf(raw)).toEqual([
      'colour',
      'name',
      'scope[1]',
      'metric',
      'window.timeZone',
      'levels[1].percent',
      'channels[0].url',
    ]);
    expect(fieldsOf(raw, 'rules[2]')).toEqual([
      'rules[2].colour',
      'rules[2].name',
      'rules[2].scope[1]',
      'rules[2].metric',
      'rules[2].window.timeZone',
      'rules[2].levels[1].percent',
      'rules[2].channels[0].url',
    ]);
  });

  it('the message summarises the problems', () => {
    try {
      parseRuleInput(base({ name: 7 }));
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toMatch(/invalid rule: name must be a string/);
    }
  });

  it('name', () => {
    expectOnly(base({ name: '' }), 'name', /empty/);
    expectOnly(base({ name: 'n'.repeat(129) }), 'name', /at most 128/);
    expectOnly(base({ name: 42 }), 'name', /string/);
    expectOnly(base({ name: 'a\nb' }), 'name', /control/);
    expectOnly(base({ name: '   ' }), 'name', /blank/);
  });

  it('scope', () => {
    expectOnly(base({ scope: 'user' }), 'scope', /array/);
    expectOnly(base({ scope: ['user', 'user'] }), 'scope[1]', /repeats/);
    expectOnly(base({ scope: ['tag:team'] }), 'scope[0]', /one of user, app, model, provider/);
    expectOnly(base({ scope: [null] }), 'scope[0]');
  });

  it('filters', () => {
    expectOnly(base({ filters: [] }), 'filters', /object/);
    expectOnly(base({ filters: { team: ['a'] } }), 'filters.team', /not a known field/);
    expectOnly(base({ filters: { app: 'chat' } }), 'filters.app', /array/);
    expectOnly(base({ filters: { app: [] } }), 'filters.app', /1 to 100/);
    expectOnly(
      base({ filters: { app: Array.from({ length: 101 }, (_, i) => `a${i}`) } }),
      'filters.app',
      /1 to 100/,
    );
    expectOnly(base({ filters: { app: ['chat', ''] } }), 'filters.app[1]', /empty/);
    expectOnly(base({ filters: { app: ['x'.repeat(513)] } }), 'filters.app[0]', /512/);
    expectOnly(base({ filters: { model: [3] } }), 'filters.model[0]', /string/);
  });

  it('metric', () => {
    expectOnly(base({ metric: 'tokens' }), 'metric', /one of totalTokens/);
    expectOnly(base({ metric: undefined }), 'metric');
    expectOnly(base({ metric: 10n }), 'metric', /a bigint/); // messages never throw
  });

  it('window', () => {
    expectOnly(base({ window: 'hour' }), 'window', /calendar|rolling/);
    expectOnly(base({ window: { type: 'sliding' } }), 'window.type', /calendar, rolling/);
    expectOnly(base({ window: { type: 'calendar', unit: 'year' } }), 'window.unit', /hour, day/);
    expectOnly(
      base({ window: { type: 'calendar', unit: 'day', timeZone: 'CEST+2' } }),
      'window.timeZone',
    );
    expectOnly(
      base({ window: { type: 'calendar', unit: 'day', timeZone: '+02:00' } }),
      'window.timeZone',
    );
    expectOnly(
      base({ window: { type: 'calendar', unit: 'day', timeZone: null } }),
      'window.timeZone',
    );
    expectOnly(
      base({ window: { type: 'calendar', unit: 'day', minutes: 5 } }),
      'window.minutes',
      /not a known field/,
    );
    expectOnly(base({ window: { type: 'rolling', minutes: 0 } }), 'window.minutes', /1 to 10080/);
    expectOnly(base({ window: { type: 'rolling', minutes: 10_081 } }), 'window.minutes');
    expectOnly(base({ window: { type: 'rolling', minutes: 1.5 } }), 'window.minutes');
    expectOnly(base({ window: { type: 'rolling', minutes: '60' } }), 'window.minutes');
    expectOnly(base({ window: { type: 'rolling' } }), 'window.minutes');
    expectOnly(
      base({ window: { type: 'rolling', minutes: 60, timeZone: 'UTC' } }),
      'window.timeZone',
      /not a known field/,
    );
  });

  it('budget', () => {
    expectOnly(base({ budget: 0 }), 'budget', /greater than 0/);
    expectOnly(base({ budget: -5 }), 'budget');
    expectOnly(base({ budget: '200' }), 'budget', /finite number/);
    expectOnly(base({ budget: Number.POSITIVE_INFINITY }), 'budget');
  });

  it('levels', () => {
    expectOnly(base({ levels: [] }), 'levels', /1 to 10/);
    expectOnly(
      base({ levels: Array.from({ length: 11 }, (_, i) => ({ value: i + 1 })) }),
      'levels',
    );
    expectOnly(base({ levels: { value: 1 } }), 'levels', /array/);
    expectOnly(base({ levels: [5] }), 'levels[0]', /value|percent/);
    expectOnly(base({ levels: [{}] }), 'levels[0]', /exactly one of value or percent/);
    expectOnly(
      base({ budget: 10, levels: [{ value: 1, percent: 5 }] }),
      'levels[0]',
      /exactly one/,
    );
    expectOnly(base({ levels: [{ value: 1 }, { value: 0 }] }), 'levels[1].value', /greater than 0/);
    expectOnly(base({ levels: [{ value: Number.NaN }] }), 'levels[0].value', /finite/);
    expectOnly(base({ levels: [{ value: 10.5 }] }), 'levels[0].value', /whole number/);
    expectOnly(base({ metric: 'requests', levels: [{ value: 0.5 }] }), 'levels[0].value', /whole/);
    expectOnly(base({ levels: [{ value: 1, note: 'x' }] }), 'levels[0].note', /not a known field/);
    expectOnly(base({ budget: 10, levels: [{ percent: 1000.5 }] }), 'levels[0].percent', /1000/);
    expectOnly(base({ budget: 10, levels: [{ percent: -1 }] }), 'levels[0].percent');
    expectOnly(base({ levels: [{ value: 2 ** 53 }] }), 'levels[0].value', /too large/);
    expectOnly(
      base({ metric: 'costUsd', levels: [{ value: 10_000_000 }] }),
      'levels[0].value',
      /too large/,
    );
  });

  it('percent levels require a budget', () => {
    expectOnly(base({ levels: [{ value: 5 }, { percent: 50 }] }), 'budget', /levels\[1\]/);
    // No duplicate complaint when the budget itself is wrong.
    expectOnly(base({ budget: 0, levels: [{ percent: 50 }] }), 'budget', /greater than 0/);
  });

  it('forecast, enforce, enabled must be booleans', () => {
    expectOnly(base({ forecast: 'yes' }), 'forecast', /true or false/);
    expectOnly(base({ enforce: 1 }), 'enforce');
    expectOnly(base({ enabled: null }), 'enabled');
  });

  it('channels', () => {
    expectOnly(base({ channels: {} }), 'channels', /array/);
    expectOnly(base({ channels: Array.from({ length: 11 }, () => ({ type: 'log' })) }), 'channels');
    expectOnly(base({ channels: ['log'] }), 'channels[0]', /object/);
    expectOnly(base({ channels: [{ type: 'sms' }] }), 'channels[0].type', /webhook, slack/);
    expectOnly(base({ channels: [{ url: 'https://x.example' }] }), 'channels[0].type');
    expectOnly(base({ channels: [{ type: 'webhook' }] }), 'channels[0].url', /string/);
    for (const url of [
      'ftp://example.com/x',
      'example.com/hook',
      'http://',
      'http:///path',
      'https://exa mple.com/',
      'http://host:99999/',
      'http://host:port/',
      'javascript:alert(1)',
      `https://example.com/${'a'.repeat(2048)}`,
    ]) {
      expect(fieldsOf(base({ channels: [{ type: 'webhook', url }] })), url).toEqual([
        'channels[0].url',
      ]);
    }
    expectOnly(
      base({ channels: [{ type: 'webhook', url: 'https://x.example/h', secret: '' }] }),
      'channels[0].secret',
    );
    expectOnly(
      base({ channels: [{ type: 'slack', url: 'https://x.example/h', secret: 's' }] }),
      'channels[0].secret',
      /not a known field/,
    );
    expectOnly(
      base({ channels: [{ type: 'email', to: 'a@example.com' }] }),
      'channels[0].to',
      /array/,
    );
    expectOnly(base({ channels: [{ type: 'email', to: [] }] }), 'channels[0].to', /1 to 20/);
    expectOnly(
      base({
        channels: [{ type: 'email', to: Array.from({ length: 21 }, (_, i) => `a${i}@x.io`) }],
      }),
      'channels[0].to',
    );
    for (const to of [
      'not-an-email',
      'a@',
      '@example.com',
      'a b@example.com',
      'a@exa_mple.com',
      'a@b@c.com',
      'x@example.com\r\nBcc: y@evil.com',
    ]) {
      expect(
        fieldsOf(base({ channels: [{ type: 'email', to: ['ok@example.com', to] }] })),
        to,
      ).toEqual(['channels[0].to[1]']);
    }
    expectOnly(base({ channels: [{ type: 'log', level: 'warn' }] }), 'channels[0].level');
    expectOnly(
      base({ channels: [{ type: 'sns', topicArn: 'arn:aws:sqs:us-east-1:123456789012:q' }] }),
      'channels[0].topicArn',
      /SNS topic ARN/,
    );
    expectOnly(base({ channels: [{ type: 'sns' }] }), 'channels[0].topicArn');
    expect(
      fieldsOf(
        base({
          channels: [
            { type: 'log' },
            { type: 'webhook', url: 'nope' },
            { type: 'email', to: ['bad'] },
          ],
        }),
      ),
    ).toEqual(['channels[1].url', 'channels[2].to[0]']);
  });

  it('refuses __proto__ keys anywhere and leaves Object.prototype alone', () => {
    const before = Object.getOwnPropertyNames(Object.prototype).sort();
    expectOnly(
      JSON.parse(ISSUE_EXAMPLE.replace('{"name"', '{"__proto__":{"polluted":1},"name"')),
      '__proto__',
      /not allowed/,
    );
    expectOnly(base({ filters: JSON.parse('{"__proto__":["x"]}') }), 'filters.__proto__');
    expectOnly(
      base({ window: JSON.parse('{"type":"calendar","unit":"day","__proto__":{"x":1}}') }),
      'window.__proto__',
    );
    expectOnly(
      base({ channels: [JSON.parse('{"type":"log","__proto__":{"x":1}}')] }),
      'channels[0].__proto__',
    );
    expectOnly(
      base({ levels: [JSON.parse('{"value":1,"__proto__":{"x":1}}')] }),
      'levels[0].__proto__',
    );
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(before);
    expect(({} as Raw).polluted).toBeUndefined();
  });

  it('refuses class instances and objects with exotic prototypes', () => {
    class Fake {
      name = 'x';
    }
    expect(fieldsOf(new Fake())).toEqual(['']);
    expect(fieldsOf(base({ window: new Date() }))).toEqual(['window']);
  });
});

describe('resolveLevels', () => {
  it('50/80/100 % of $200 are exact nano-USD', () => {
    expect(
      resolveLevels({
        metric: 'costUsd',
        budget: 200,
        levels: [{ percent: 50 }, { percent: 80 }, { percent: 100 }],
      }),
    ).toEqual([
      { index: 0, threshold: 100_000_000_000, value: undefined, percent: 50 },
      { index: 1, threshold: 160_000_000_000, value: undefined, percent: 80 },
      { index: 2, threshold: 200_000_000_000, value: undefined, percent: 100 },
    ]);
  });

  it('USD values are exact from the decimal text, rounded up to the nano-USD', () => {
    const t = (value: number) =>
      resolveLevels({ metric: 'costUsd', levels: [{ value }] })[0]?.threshold;
    expect(t(0.1)).toBe(100_000_000);
    expect(t(0.3)).toBe(300_000_000);
    expect(t(1.1)).toBe(1_100_000_000);
    expect(t(0.07)).toBe(70_000_000); // 0.07 * 1e9 is 70000000.00000001 in floats
    expect(t(4.35)).toBe(4_350_000_000); // 4.35 * 1e9 is 4349999999.999999 in floats
    expect(t(1e-9)).toBe(1);
    expect(t(1e-12)).toBe(1);
    expect(t(1.0000000001)).toBe(1_000_000_001);
    expect(t(9_007_199.25474099)).toBe(9_007_199_254_740_990); // shortest text of the double
  });

  it('percent levels are exact and rounded up', () => {
    const t = (metric: RuleMetric, budget: number, percent: number) =>
      resolveLevels({ metric, budget, levels: [{ percent }] })[0]?.threshold;
    expect(t('costUsd', 0.3, 10)).toBe(30_000_000);
    expect(t('costUsd', 19.99, 33.3)).toBe(6_656_670_000);
    expect(t('totalTokens', 10_000, 33)).toBe(3_300);
    expect(t('totalTokens', 10_000, 33.33333)).toBe(3_334); // 3333.333 rounds up
    expect(t('requests', 3, 50)).toBe(2); // 1.5 rounds up
    expect(t('totalTokens', 1, 1000)).toBe(10);
    expect(t('costUsd', 1e-7, 0.5)).toBe(1); // 0.5 nano-USD rounds up
  });

  it('token values are integers (ceil), sorted ascending, duplicates removed keeping the first', () => {
    expect(
      resolveLevels({
        metric: 'totalTokens',
        budget: 1000,
        levels: [
          { value: 900 },
          { percent: 50 },
          { value: 500 },
          { value: 100.2 },
          { percent: 90 },
        ],
      }),
    ).toEqual([
      { index: 3, threshold: 101, value: 100.2, percent: undefined },
      { index: 1, threshold: 500, value: undefined, percent: 50 },
      { index: 0, threshold: 900, value: 900, percent: undefined },
    ]);
  });

  it('accepts a stored rule whose budget is undefined', () => {
    expect(
      resolveLevels({ metric: 'requests', budget: undefined, levels: [{ value: 3 }] }),
    ).toEqual([{ index: 0, threshold: 3, value: 3, percent: undefined }]);
  });

  it('throws invalid_argument for a percent without budget or a non-positive level', () => {
    expect(() => resolveLevels({ metric: 'costUsd', levels: [{ percent: 50 }] })).toThrow(
      expect.objectContaining({
        code: 'invalid_argument',
        details: [{ field: 'levels[0].percent', reason: 'needs a positive budget' }],
      }),
    );
    expect(() => resolveLevels({ metric: 'costUsd', levels: [{ value: -1 }] })).toThrow(
      TokenwatchError,
    );
    expect(() => resolveLevels({ metric: 'totalTokens', levels: [{ value: 2 ** 60 }] })).toThrow(
      /too large/,
    );
  });

  it('agrees with parseRuleInput for what it accepts', () => {
    const rule = parseRuleInput(
      base({
        metric: 'costUsd',
        budget: 200,
        levels: [{ percent: 100 }, { percent: 50 }, { value: 100 }],
      }),
    );
    expect(resolveLevels(rule).map((l) => [l.index, l.threshold])).toEqual([
      [1, 100_000_000_000],
      [0, 200_000_000_000],
    ]);
  });
});

describe('metricOf and toUserUnit', () => {
  const event: PricedEvent = {
    projectId: 'p',
    id: 'e1',
    timestampMs: 0,
    userId: 'u',
    appId: 'a',
    modelId: 'gpt-4o',
    provider: 'openai',
    inputTokens: 100,
    outputTokens: 20,
    cacheReadTokens: 3,
    cacheWriteTokens: 4,
    latencyMs: undefined,
    status: 'ok',
    tags: undefined,
    costNanoUsd: 1_234_567,
    priced: true,
    fingerprint: 'f',
  };

  it('each metric, priced', () => {
    const expected: Record<RuleMetric, number> = {
      totalTokens: 127,
      inputTokens: 100,
      outputTokens: 20,
      cacheReadTokens: 3,
      cacheWriteTokens: 4,
      costUsd: 1_234_567,
      requests: 1,
      unpricedTokens: 0,
      // Counted by reconciliation runs, never by events.
      uncapturedTokens: 0,
    };
    for (const m of RULE_METRICS) expect(metricOf(m, event), m).toBe(expected[m]);
  });

  it('unpriced events count their tokens as unpriced and cost 0', () => {
    const unpriced = { ...event, priced: false, costNanoUsd: 0 };
    expect(metricOf('unpricedTokens', unpriced)).toBe(127);
    expect(metricOf('costUsd', unpriced)).toBe(0);
    expect(metricOf('requests', { ...unpriced, status: 'error' })).toBe(1);
  });

  it('toUserUnit: nano-USD → USD for cost, identity otherwise', () => {
    expect(toUserUnit('costUsd', 160_000_000_000)).toBe(160);
    expect(toUserUnit('costUsd', 1)).toBe(1e-9);
    expect(toUserUnit('totalTokens', 10_000)).toBe(10_000);
    expect(toUserUnit('requests', 3)).toBe(3);
  });
});
