import { describe, expect, it } from 'vitest';
import { emptyRuleForm, ruleBody, ruleFormOf } from './rule-form.js';

describe('rule form ↔ rule API body', () => {
  it('turns the fields into the body the rules API takes', () => {
    const v = emptyRuleForm('Europe/Berlin');
    Object.assign(v, {
      name: 'Daily budget',
      scope: ['user', 'model'],
      metric: 'costUsd',
      budget: '200',
      levels: '50%, 80% ,100%',
      webhookUrl: 'https://hooks.example.com/tw',
      emailTo: 'a@example.com, b@example.com',
      enforce: true,
    });
    v.filters.app = 'chat, support-bot';
    expect(ruleBody(v)).toEqual({
      name: 'Daily budget',
      scope: ['user', 'model'],
      filters: { app: ['chat', 'support-bot'] },
      metric: 'costUsd',
      window: { type: 'calendar', unit: 'day', timeZone: 'Europe/Berlin' },
      budget: 200,
      levels: [{ percent: 50 }, { percent: 80 }, { percent: 100 }],
      forecast: false,
      channels: [
        { type: 'webhook', url: 'https://hooks.example.com/tw' },
        { type: 'email', to: ['a@example.com', 'b@example.com'] },
        { type: 'log' },
      ],
      enforce: true,
      enabled: true,
    });
  });

  it('sends what is not a number as typed, for the server to name', () => {
    const v = emptyRuleForm('UTC');
    Object.assign(v, { windowType: 'rolling', minutes: 'sixty', levels: '10k, 1e3' });
    const body = ruleBody(v);
    expect(body.window).toEqual({ type: 'rolling', minutes: 'sixty' });
    expect(body.levels).toEqual([{ value: '10k' }, { value: 1000 }]);
  });

  it('reads a stored rule back into the same body (webhook secret kept while its URL stays)', () => {
    const stored = {
      id: 'rule_1',
      name: 'r',
      scope: ['app'],
      filters: { user: ['alice'] },
      metric: 'totalTokens',
      window: { type: 'rolling', minutes: 90 },
      levels: [{ value: 1000 }, { value: 5000 }],
      forecast: true,
      channels: [
        { type: 'webhook', url: 'https://h.example.com', secret: 'whsec_x' },
        { type: 'sns', topicArn: 'arn:aws:sns:eu-west-1:123456789012:t' },
        { type: 'log' },
      ],
      enforce: false,
      enabled: false,
    };
    const v = ruleFormOf(stored, 'UTC');
    expect(v.levels).toBe('1000, 5000');
    const body = ruleBody(v);
    expect(body.channels).toEqual([
      { type: 'webhook', url: 'https://h.example.com', secret: 'whsec_x' },
      { type: 'log' },
      { type: 'sns', topicArn: 'arn:aws:sns:eu-west-1:123456789012:t' },
    ]);
    expect(body).toMatchObject({ window: { type: 'rolling', minutes: 90 }, enabled: false });
    v.webhookUrl = 'https://other.example.com';
    expect((ruleBody(v).channels as unknown[])[0]).toEqual({
      type: 'webhook',
      url: 'https://other.example.com',
    });
  });
});
