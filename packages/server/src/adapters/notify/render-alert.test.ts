import { describe, expect, it } from 'vitest';
import {
  clean,
  escapeHtml,
  formatCompact,
  formatInteger,
  formatUsd,
  formatWindow,
  renderAlert,
} from './render-alert.js';
import { sampleMessage } from './testing/receiver.js';

describe('number formatting', () => {
  it('formats tokens exactly and compactly, and cost in dollars', () => {
    expect(formatInteger(12_345)).toBe('12,345');
    expect(formatInteger(10_000)).toBe('10,000');
    expect(formatCompact(12_345)).toBe('12.3k');
    expect(formatCompact(10_000)).toBe('10k');
    expect(formatCompact(950)).toBe('950');
    expect(formatCompact(1_250_000)).toBe('1.3M');
    expect(formatCompact(999_999)).toBe('1M');
    expect(formatUsd(1234.561)).toBe('$1,234.56');
    expect(formatUsd(200)).toBe('$200.00');
    expect(formatUsd(0.0042)).toBe('$0.0042');
  });
});

describe('renderAlert', () => {
  it("gives the seed's alert a subject with user, level per window, model and value", () => {
    const r = renderAlert(sampleMessage());
    expect(r.subject).toBe(
      '[tokenwatch] alice exceeded 10,000 tokens/hour on anthropic.claude-3-haiku… (12,345)',
    );
    expect(r.headline).toBe(
      'alice exceeded 10,000 tokens/hour on anthropic.claude-3-haiku-20240307-v1:0 (12,345)',
    );
    expect(r.facts).toEqual([
      { label: 'Rule', value: 'seed' },
      { label: 'User', value: 'alice' },
      { label: 'Model', value: 'anthropic.claude-3-haiku-20240307-v1:0' },
      { label: 'Project', value: 'default' },
      { label: 'Window', value: '2024-10-08 14:00–15:00 UTC' },
      { label: 'Value', value: '12,345 tokens' },
      { label: 'Level', value: '10,000 tokens per hour' },
      { label: 'Fired at', value: '2024-10-08 14:37 UTC' },
    ]);
    expect(r.compact).toEqual({
      value: '12.3k tokens',
      level: '10k tokens',
      percentOfLevel: '123%',
    });
    expect(r.marks).toEqual([]);
  });

  it('states budget percentages in dollars, marks late and forecast alerts', () => {
    const r = renderAlert(
      sampleMessage({
        rule: {
          id: 'r',
          name: 'team budget',
          metric: 'costUsd',
          window: { type: 'calendar', unit: 'month', timeZone: 'Europe/Berlin' },
        },
        scope: { app: 'chat' },
        window: {
          start: '2024-09-30T22:00:00.000Z',
          end: '2024-10-31T23:00:00.000Z',
          timeZone: 'Europe/Berlin',
        },
        level: { index: 1, threshold: 160e9, percent: 80, budget: 200 },
        value: 1234.567,
        late: true,
        forecast: true,
      }),
    );
    expect(r.subject).toBe(
      '[tokenwatch] [forecast] [late] app chat is on track to exceed 80% of $200.00/month ($1,234.57)',
    );
    expect(r.facts.find((f) => f.label === 'Window')?.value).toBe('2024-10 Europe/Berlin');
    expect(r.facts.find((f) => f.label === 'Level')?.value).toBe(
      '80% of $200.00 ($160.00) per month',
    );
    expect(r.notes).toHaveLength(2);
    expect(r.compact.value).toBe('$1,234.57');
  });

  it('formats windows in their own zone, across a DST change, and rolling windows', () => {
    const base = sampleMessage();
    const at = (
      unit: 'hour' | 'day' | 'week',
      start: string,
      end: string,
      timeZone = 'America/New_York',
    ) =>
      formatWindow({
        ...base,
        rule: { ...base.rule, window: { type: 'calendar', unit, timeZone } },
        window: { start, end, timeZone },
      });
    // 2024-11-03 01:00 EDT → 01:00 EST (the repeated hour) in New York.
    expect(at('hour', '2024-11-03T05:00:00Z', '2024-11-03T06:00:00Z')).toBe(
      '2024-11-03 01:00 GMT-4 – 01:00 GMT-5 America/New_York',
    );
    expect(at('hour', '2024-11-03T06:00:00Z', '2024-11-03T07:00:00Z')).toBe(
      '2024-11-03 01:00–02:00 America/New_York',
    );
    expect(at('hour', '2024-10-08T23:00:00Z', '2024-10-09T00:00:00Z', 'UTC')).toBe(
      '2024-10-08 23:00–24:00 UTC',
    );
    // The 25-hour day.
    expect(at('day', '2024-11-03T04:00:00Z', '2024-11-04T05:00:00Z')).toBe(
      '2024-11-03 America/New_York',
    );
    expect(at('week', '2024-10-07T04:00:00Z', '2024-10-14T04:00:00Z')).toBe(
      '2024-10-07 – 2024-10-13 America/New_York',
    );
    expect(
      formatWindow({
        ...base,
        rule: { ...base.rule, window: { type: 'rolling', minutes: 60 } },
        window: { start: '2024-10-08T13:32:00Z', end: '2024-10-08T14:32:00Z', timeZone: 'UTC' },
      }),
    ).toBe('2024-10-08 13:32–14:32 UTC (last 60 min)');
  });

  it('scope wording: user with app, app alone, whole project; rolling windows say "in"', () => {
    const m = sampleMessage();
    expect(renderAlert({ ...m, scope: { user: 'bob', app: 'chat' } }).headline).toBe(
      'bob (app chat) exceeded 10,000 tokens/hour (12,345)',
    );
    expect(renderAlert({ ...m, scope: {} }).headline).toBe(
      'project default exceeded 10,000 tokens/hour (12,345)',
    );
    expect(
      renderAlert({
        ...m,
        rule: { ...m.rule, metric: 'requests', window: { type: 'rolling', minutes: 15 } },
        scope: { provider: 'openai' },
        level: { index: 0, threshold: 100, value: 100 },
        value: 101,
      }).headline,
    ).toBe('project default exceeded 100 requests in 15 min on openai (101)');
  });

  it('drops control characters from event values (no header injection) and escapes HTML', () => {
    expect(clean('alice\r\nBcc: x@evil')).toBe('alice  Bcc: x@evil');
    const r = renderAlert(sampleMessage({ scope: { user: 'a\nb' } }));
    expect(r.subject).not.toMatch(/[\r\n]/);
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe(
      '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;',
    );
  });

  it('only http(s) links are used', () => {
    expect(renderAlert(sampleMessage({ url: 'javascript:alert(1)' })).url).toBeUndefined();
    expect(renderAlert(sampleMessage({ url: 'https://tw.example.com/x' })).url).toBe(
      'https://tw.example.com/x',
    );
  });
});
