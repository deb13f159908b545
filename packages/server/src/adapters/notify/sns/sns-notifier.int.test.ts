import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AlertMessage, Delivery } from '@tokenwatch/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../logging/logger.js';
import { createNotifiers } from '../notifier-registry.js';
import { createSnsNotifier, SNS_SUBJECT_MAX } from './sns-notifier.js';

/** A loopback stand-in for the SNS Query API: records each request, answers as SNS does. */
interface Recorded {
  path: string;
  headers: IncomingMessage['headers'];
  form: URLSearchParams;
}
let server: Server;
let endpoint: string;
const requests: Recorded[] = [];
let answer: { status: number; body: string } | undefined;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({
        path: req.url ?? '',
        headers: req.headers,
        form: new URLSearchParams(Buffer.concat(chunks).toString('utf8')),
      });
      res.setHeader('content-type', 'text/xml');
      if (answer) {
        res.statusCode = answer.status;
        res.end(answer.body);
        return;
      }
      res.end(
        '<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>94f20ce6-13c5-43a0-9a9e-ca52d816e90b</MessageId></PublishResult><ResponseMetadata><RequestId>f187a3c1-376f-11df-8963-01868b7c937a</RequestId></ResponseMetadata></PublishResponse>',
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:tokenwatch-alerts';

function message(overrides: Partial<AlertMessage> = {}): AlertMessage {
  return {
    alertId: 'alr_abc_123',
    projectId: 'default',
    rule: {
      id: 'seed-hourly',
      name: 'Seed: 10k tokens per user and model per hour',
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'hour', timeZone: 'UTC' },
    },
    scope: { user: 'alice', model: 'anthropic.claude-3-haiku-20240307-v1:0' },
    window: { start: '2026-03-10T10:00:00.000Z', end: '2026-03-10T11:00:00.000Z', timeZone: 'UTC' },
    level: { index: 0, threshold: 10_000, value: 10_000 },
    value: 12_345,
    late: false,
    forecast: false,
    firedAt: '2026-03-10T10:20:00.000Z',
    ...overrides,
  };
}

function delivery(m: AlertMessage, topicArn = TOPIC): Delivery {
  return { id: 'dlv_abc_123_0', attempt: 1, channel: { type: 'sns', topicArn }, message: m };
}

function attributes(form: URLSearchParams): Record<string, [string, string]> {
  const out: Record<string, [string, string]> = {};
  for (let i = 1; form.has(`MessageAttributes.entry.${i}.Name`); i++) {
    out[form.get(`MessageAttributes.entry.${i}.Name`) as string] = [
      form.get(`MessageAttributes.entry.${i}.Value.DataType`) as string,
      form.get(`MessageAttributes.entry.${i}.Value.StringValue`) as string,
    ];
  }
  return out;
}

const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'local' };

describe('SNS notifier (real @aws-sdk/client-sns against a loopback endpoint)', () => {
  it('publishes topic, subject, message and filterable attributes', async () => {
    requests.length = 0;
    answer = undefined;
    const sns = createSnsNotifier({ endpoint, credentials });
    await sns.send(delivery(message()), new AbortController().signal);
    sns.close();
    expect(requests).toHaveLength(1);
    const { form, headers } = requests[0] as Recorded;
    expect(form.get('Action')).toBe('Publish');
    expect(form.get('TopicArn')).toBe(TOPIC);
    // Signed for the topic's region.
    expect(String(headers.authorization)).toContain('/eu-west-1/sns/aws4_request');
    expect(form.get('Subject')).toBe(
      '[tokenwatch] alice exceeded 10,000 tokens/hour on anthropic.claude-3-haiku... (12,345)',
    );
    const body = form.get('Message') as string;
    expect(body.split('\n')[0]).toBe(
      'alice exceeded 10,000 tokens/hour on anthropic.claude-3-haiku-20240307-v1:0 (12,345)',
    );
    expect(body).toContain('Rule: Seed: 10k tokens per user and model per hour');
    expect(body).toContain('Value: 12,345 tokens');
    expect(body).toContain('Window: 2026-03-10 10:00–11:00 UTC');
    expect(attributes(form)).toEqual({
      project: ['String', 'default'],
      rule: ['String', 'seed-hourly'],
      metric: ['String', 'totalTokens'],
      level: ['String', '10000'],
      levelIndex: ['Number', '0'],
      user: ['String', 'alice'],
      model: ['String', 'anthropic.claude-3-haiku-20240307-v1:0'],
      late: ['String', 'false'],
    });
  });

  it('keeps the subject ASCII and under 100 characters; percent levels filter as "80%"', async () => {
    requests.length = 0;
    answer = undefined;
    const sns = createSnsNotifier({ endpoint, credentials });
    const m = message({
      scope: { user: `Zoë-${'x'.repeat(120)}`, app: 'support-bot' },
      rule: { ...message().rule, metric: 'costUsd' },
      level: { index: 1, threshold: 160, percent: 80, budget: 200 },
      value: 161.5,
    });
    await sns.send(delivery(m), new AbortController().signal);
    sns.close();
    const { form } = requests[0] as Recorded;
    const subject = form.get('Subject') as string;
    expect(subject.length).toBeLessThanOrEqual(SNS_SUBJECT_MAX);
    expect(/^[\x20-\x7e]+$/.test(subject)).toBe(true);
    expect(subject.startsWith('[tokenwatch] Zoe-xxx')).toBe(true);
    expect(attributes(form)).toMatchObject({
      level: ['String', '80%'],
      user: ['String', `Zoë-${'x'.repeat(120)}`],
      app: ['String', 'support-bot'],
    });
  });

  it('maps SNS errors: authorization is permanent, a 500 is retried', async () => {
    const sns = createSnsNotifier({ endpoint, credentials, maxAttempts: 1 });
    answer = {
      status: 403,
      body: '<ErrorResponse><Error><Type>Sender</Type><Code>AuthorizationError</Code><Message>not allowed</Message></Error><RequestId>x</RequestId></ErrorResponse>',
    };
    await expect(sns.send(delivery(message()), new AbortController().signal)).rejects.toMatchObject(
      {
        retryable: false,
      },
    );
    answer = {
      status: 500,
      body: '<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code><Message>oops</Message></Error><RequestId>x</RequestId></ErrorResponse>',
    };
    await expect(sns.send(delivery(message()), new AbortController().signal)).rejects.toMatchObject(
      {
        retryable: true,
      },
    );
    answer = undefined;
    sns.close();
  });

  it('is registered for the sns channel type when configured', () => {
    const sns = createSnsNotifier({ endpoint, credentials });
    const policy = { allowPrivateNetworks: false };
    const logger = createLogger('silent');
    expect(createNotifiers({ logger, policy }).has('sns')).toBe(false);
    expect(createNotifiers({ logger, policy, sns }).get('sns')).toBe(sns);
    sns.close();
  });
});
