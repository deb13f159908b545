import type { TokenwatchError } from '@tokenwatch/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type Receiver,
  sampleDelivery,
  sampleMessage,
  startReceiver,
} from '../testing/receiver.js';
import { createSlackNotifier, type SlackPayload, slackPayload } from './slack-notifier.js';

/** Issue 3, Slack incoming webhook: the message shape as a loopback receiver gets it. */

const ALLOW = { allowPrivateNetworks: true };
let slack: Receiver;

beforeAll(async () => {
  // Slack answers 200 with the body "ok".
  slack = await startReceiver(() => ({ status: 200, body: 'ok' }), '127.0.0.1');
});
afterAll(async () => {
  await slack.close();
});
beforeEach(() => {
  slack.requests.length = 0;
  slack.reply(() => ({ status: 200, body: 'ok' }));
});

describe('Slack notifier', () => {
  it('posts a readable message: fallback text, header with the numbers, fields, link', async () => {
    const delivery = sampleDelivery({
      type: 'slack',
      url: `${slack.url}/services/T000/B000/XXXX`,
    });
    await createSlackNotifier({ policy: ALLOW }).send(delivery, AbortSignal.timeout(5_000));
    expect(slack.requests).toHaveLength(1);
    const req = slack.requests[0]!;
    expect(req.url).toBe('/services/T000/B000/XXXX');
    expect(req.headers['content-type']).toBe('application/json; charset=utf-8');
    const payload = JSON.parse(req.body) as SlackPayload;
    expect(payload.text).toBe(
      '[tokenwatch] alice exceeded 10,000 tokens/hour on anthropic.claude-3-haiku… (12,345) <http://localhost:8080/ui/usage?user=alice|Open in tokenwatch>',
    );
    expect(payload.blocks.map((b) => b.type)).toEqual(['header', 'section', 'section', 'actions']);
    const [header, headline, facts, actions] = payload.blocks as any[];
    expect(header.text).toEqual({
      type: 'plain_text',
      text: '12.3k tokens of 10k tokens (123%) · seed',
      emoji: true,
    });
    expect(headline.text.text).toContain(
      '*alice exceeded 10,000 tokens/hour on anthropic.claude-3-haiku-20240307-v1:0 (12,345)*',
    );
    const fields = facts.fields.map((f: { text: string }) => f.text);
    expect(fields).toEqual([
      '*Rule*\nseed',
      '*User*\nalice',
      '*Model*\nanthropic.claude-3-haiku-20240307-v1:0',
      '*Project*\ndefault',
      '*Window*\n2024-10-08 14:00–15:00 UTC',
      '*Value*\n12,345 tokens',
      '*Level*\n10,000 tokens per hour',
      '*Fired at*\n2024-10-08 14:37 UTC',
    ]);
    expect(actions.elements[0]).toMatchObject({
      type: 'button',
      url: 'http://localhost:8080/ui/usage?user=alice',
    });
  });

  it('shows cost in dollars and the late / forecast marks, and escapes user values', async () => {
    const message = sampleMessage({
      rule: {
        id: 'r',
        name: 'monthly $',
        metric: 'costUsd',
        window: { type: 'calendar', unit: 'month', timeZone: 'UTC' },
      },
      scope: { user: '<!channel> & co' },
      window: { start: '2024-10-01T00:00:00Z', end: '2024-11-01T00:00:00Z', timeZone: 'UTC' },
      level: { index: 2, threshold: 200e9, percent: 100, budget: 200 },
      value: 1234.56,
      late: true,
      forecast: false,
    });
    delete (message as { url?: string }).url;
    await createSlackNotifier({ policy: ALLOW }).send(
      sampleDelivery({ type: 'slack', url: `${slack.url}/hook` }, message),
      AbortSignal.timeout(5_000),
    );
    const payload = JSON.parse(slack.requests[0]!.body) as SlackPayload;
    const all = JSON.stringify(payload);
    expect(all).toContain('$1,234.56');
    expect(all).toContain('100% of $200.00');
    expect(all).not.toContain('<!channel>');
    expect(all).toContain('&lt;!channel&gt; &amp; co');
    expect((payload.blocks[0] as any).text.text).toContain('[late]');
    expect(payload.blocks.map((b) => b.type)).toEqual(['header', 'section', 'section', 'context']);
    expect((payload.blocks[3] as any).elements[0].text).toMatch(/^Late:/);
  });

  it('Slack errors: 404 no_service is final, 500 is retried, 3xx is not followed', async () => {
    const notifier = createSlackNotifier({ policy: ALLOW });
    const send = () =>
      notifier.send(
        sampleDelivery({ type: 'slack', url: `${slack.url}/hook` }),
        AbortSignal.timeout(5_000),
      );
    slack.reply(() => ({ status: 404, body: 'no_service' }));
    let err = (await send().catch((e: unknown) => e)) as TokenwatchError;
    expect([err.retryable, err.message.includes('no_service')]).toEqual([false, true]);
    slack.reply(() => ({ status: 500, body: 'rollup_error' }));
    err = (await send().catch((e: unknown) => e)) as TokenwatchError;
    expect(err.retryable).toBe(true);
    slack.reply(() => ({ status: 302, headers: { location: 'http://127.0.0.1:1/' } }));
    err = (await send().catch((e: unknown) => e)) as TokenwatchError;
    expect(err.retryable).toBe(false);
  });

  it('keeps within Slack limits for very long values', () => {
    const payload = slackPayload(
      sampleMessage({ rule: { ...sampleMessage().rule, name: 'r'.repeat(500) } }),
    );
    expect((payload.blocks[0] as any).text.text.length).toBeLessThanOrEqual(150);
  });
});
