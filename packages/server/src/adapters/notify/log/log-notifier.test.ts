import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../logging/logger.js';
import { sampleDelivery, sampleMessage } from '../testing/receiver.js';
import { createLogNotifier } from './log-notifier.js';

describe('log notifier', () => {
  it('writes the alert as one structured warn line with the headline and its fields', async () => {
    const lines: string[] = [];
    const logger = createLogger('info', { service: 'tokenwatch' }, (l) => lines.push(l));
    const delivery = sampleDelivery({ type: 'log' }, sampleMessage({ late: true }));
    await createLogNotifier({ logger }).send(delivery, new AbortController().signal);
    expect(lines).toHaveLength(1);
    const record = JSON.parse(lines[0]!);
    expect(record).toMatchObject({
      level: 'warn',
      msg: 'alert',
      service: 'tokenwatch',
      event: 'tokenwatch.alert',
      summary:
        '[late] alice exceeded 10,000 tokens/hour on anthropic.claude-3-haiku-20240307-v1:0 (12,345)',
      alertId: 'alr_01J9ZK5W3Q8X',
      deliveryId: delivery.id,
      ruleName: 'seed',
      metric: 'totalTokens',
      scope: { user: 'alice', model: 'anthropic.claude-3-haiku-20240307-v1:0' },
      windowStart: '2024-10-08T14:00:00.000Z',
      windowEnd: '2024-10-08T15:00:00.000Z',
      timeZone: 'UTC',
      value: 12_345,
      alertLevel: { index: 0, threshold: 10_000, value: 10_000 },
      late: true,
      forecast: false,
    });
    expect(lines[0]!.endsWith('\n')).toBe(true);
  });
});
