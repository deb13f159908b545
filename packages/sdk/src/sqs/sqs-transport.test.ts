import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTokenwatch } from '../client.js';
import type { DropInfo } from '../client-options.js';
import { createSqsTransport, packMessages } from './index.js';

interface Entry {
  Id: string;
  MessageBody: string;
  MessageAttributes?: Record<string, { DataType: string; StringValue?: string }>;
  MessageGroupId?: string;
  MessageDeduplicationId?: string;
}

/**
 * A loopback stand-in for the SQS JSON protocol (AWS JSON 1.0, `X-Amz-Target:
 * AmazonSQS.SendMessageBatch`), with the MD5 digests the SDK verifies on every reply.
 */
class SqsStandIn {
  readonly calls: {
    headers: IncomingHttpHeaders;
    target: string;
    body: { QueueUrl: string; Entries: Entry[] };
  }[] = [];
  /** Per call: entry ids to fail (sender fault or not), or 'throttle' for a 400 throttling reply. */
  plan: ({ fail: { id: string; senderFault: boolean }[] } | 'throttle')[] = [];
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        const target = String(req.headers['x-amz-target']);
        this.calls.push({ headers: req.headers, target, body });
        const step = this.plan.shift();
        if (step === 'throttle') {
          res.writeHead(400, {
            'content-type': 'application/x-amz-json-1.0',
            'x-amzn-query-error': 'RequestThrottled;Sender',
          });
          res.end(
            JSON.stringify({ __type: 'com.amazonaws.sqs#RequestThrottled', message: 'slow down' }),
          );
          return;
        }
        const fail = new Map((step?.fail ?? []).map((f) => [f.id, f.senderFault]));
        const Successful = [];
        const Failed = [];
        for (const e of body.Entries as Entry[]) {
          if (fail.has(e.Id)) {
            Failed.push({
              Id: e.Id,
              SenderFault: fail.get(e.Id),
              Code: 'InjectedFailure',
              Message: 'injected',
            });
            continue;
          }
          Successful.push({
            Id: e.Id,
            MessageId: `m-${this.calls.length}-${e.Id}`,
            MD5OfMessageBody: createHash('md5').update(e.MessageBody).digest('hex'),
          });
        }
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(JSON.stringify({ Successful, Failed }));
      });
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server?.close(() => r()));
  }

  /** Every event id that reached the queue, per message. */
  delivered(): string[] {
    const ids: string[] = [];
    for (const c of this.calls) {
      for (const e of c.body.Entries) {
        for (const ev of JSON.parse(e.MessageBody).events) ids.push(ev.id);
      }
    }
    return ids;
  }
}

const sqs = new SqsStandIn();
beforeAll(() => sqs.start());
afterAll(() => sqs.stop());
beforeEach(() => {
  sqs.calls.length = 0;
  sqs.plan = [];
});

const queueUrl = 'https://sqs.us-east-1.amazonaws.com/123456789012/tokenwatch-usage';

function setup(extra: { maxMessageBytes?: number; queueUrl?: string } = {}) {
  const client = new SQSClient({
    region: 'us-east-1',
    endpoint: sqs.url,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
    maxAttempts: 1,
  });
  const drops: DropInfo[] = [];
  const tw = createTokenwatch({
    transport: createSqsTransport({ client, queueUrl: extra.queueUrl ?? queueUrl, ...extra }),
    appId: 'seed-app',
    flushOnExit: false,
    initialBackoffMs: 5,
    maxBackoffMs: 10,
    onDrop: (d) => drops.push(d),
  });
  return { tw, drops };
}

const usage = (i: number) => ({
  userId: `u-${i}`,
  modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
  provider: 'bedrock',
  inputTokens: i,
  outputTokens: 1,
  tags: { pad: 'x'.repeat(200) },
});

describe('createSqsTransport', () => {
  it('sends SendMessageBatch over the SQS JSON protocol, signed, with /v1/events bodies', async () => {
    const { tw } = setup();
    for (let i = 0; i < 5; i++) tw.record(usage(i));
    await tw.flush();
    expect(sqs.calls).toHaveLength(1);
    const call = sqs.calls[0]!;
    expect(call.target).toBe('AmazonSQS.SendMessageBatch');
    expect(call.headers['content-type']).toBe('application/x-amz-json-1.0');
    expect(call.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d+\/us-east-1\/sqs\//,
    );
    expect(call.body.QueueUrl).toBe(queueUrl);
    const entry = call.body.Entries[0]!;
    expect(entry.MessageAttributes?.['tokenwatch-contract']).toEqual({
      DataType: 'String',
      StringValue: 'v1',
    });
    const body = JSON.parse(entry.MessageBody);
    expect(Object.keys(body)).toEqual(['events']);
    expect(body.events).toHaveLength(5);
    expect(body.events[0]).toMatchObject({
      userId: 'u-0',
      appId: 'seed-app',
      inputTokens: 0,
      status: 'ok',
    });
    expect(tw.stats()).toMatchObject({ sent: 5, dropped: 0 });
  });

  it('packs by message size and at most 10 entries per call', async () => {
    const { tw } = setup({ maxMessageBytes: 2048 });
    for (let i = 0; i < 100; i++) tw.record(usage(i));
    await tw.flush();
    for (const c of sqs.calls) {
      expect(c.body.Entries.length).toBeLessThanOrEqual(10);
      for (const e of c.body.Entries)
        expect(Buffer.byteLength(e.MessageBody)).toBeLessThanOrEqual(2048);
    }
    expect(new Set(sqs.delivered()).size).toBe(100);
    expect(tw.stats().sent).toBe(100);
  });

  it('resends only the failed entries with the same ids; drops sender faults', async () => {
    const { tw, drops } = setup({ maxMessageBytes: 1024 });
    sqs.plan = [
      {
        fail: [
          { id: '1', senderFault: false },
          { id: '2', senderFault: true },
        ],
      },
    ];
    for (let i = 0; i < 9; i++) tw.record(usage(i)); // ~3 events per message
    await tw.flush();
    const first = sqs.calls[0]!.body.Entries.map((e) =>
      JSON.parse(e.MessageBody).events.map((x: { id: string }) => x.id),
    );
    const second = sqs.calls[1]!.body.Entries.flatMap((e) =>
      JSON.parse(e.MessageBody).events.map((x: { id: string }) => x.id),
    );
    expect(second).toEqual(first[1]);
    expect(drops.find((d) => d.reason === 'rejected')?.events.map((e) => e.id)).toEqual(first[2]);
    const s = tw.stats();
    expect(s.sent + s.dropped).toBe(9);
    expect(s.droppedByReason.rejected).toBe(first[2].length);
  });

  it('retries a throttled call', async () => {
    const { tw } = setup();
    sqs.plan = ['throttle'];
    tw.record(usage(1));
    await tw.flush();
    expect(sqs.calls).toHaveLength(2);
    expect(tw.stats()).toMatchObject({ sent: 1, retried: 1 });
  });

  it('sets group and stable deduplication ids on FIFO queues', async () => {
    const { tw } = setup({ queueUrl: `${queueUrl}.fifo` });
    tw.record(usage(1));
    await tw.flush();
    const e = sqs.calls[0]!.body.Entries[0]!;
    expect(e.MessageGroupId).toBe('tokenwatch');
    expect(e.MessageDeduplicationId).toMatch(/^1-[0-9a-f]+$/);
  });

  it('packMessages refuses an event larger than a message', () => {
    const big = {
      ...usage(1),
      id: 'x',
      timestamp: 0,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      status: 'ok' as const,
    };
    const { messages, tooLarge } = packMessages([big], 100);
    expect(messages).toHaveLength(0);
    expect(tooLarge).toHaveLength(1);
  });
});
