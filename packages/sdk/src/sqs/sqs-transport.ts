import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { TokenwatchError } from '../errors.js';
import type { UsageEvent } from '../event.js';
import type { SendResult, Transport } from '../transport.js';

export interface SqsTransportOptions {
  /** An `SQSClient` from `@aws-sdk/client-sqs` (its credentials, region and retries apply). */
  client: Pick<SQSClient, 'send'>;
  queueUrl: string;
  /**
   * Largest message body. SQS allows 256 KiB on every queue (1 MiB on newer ones); each message
   * is one `{"events":[...]}` body, exactly what `POST /v1/events` takes. Default 256 KiB.
   */
  maxMessageBytes?: number;
  /** FIFO queues (`.fifo`) need a group id. Default `tokenwatch`. */
  messageGroupId?: string;
}

const MAX_ENTRIES = 10; // SendMessageBatch limit
const encoder = new TextEncoder();

/** FNV-1a over the ids: a stable deduplication id for the same events resent to a FIFO queue. */
function dedupeId(events: readonly UsageEvent[]): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (const e of events) {
    for (let i = 0; i < e.id.length; i++) {
      const c = e.id.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
      h2 = Math.imul(h2 ^ c, 0x5bd1e995) >>> 0;
    }
  }
  return `${events.length}-${h1.toString(16)}${h2.toString(16)}`;
}

interface Message {
  body: string;
  events: UsageEvent[];
}

/** Packs events into message bodies no larger than `max` bytes, in order. */
export function packMessages(
  events: readonly UsageEvent[],
  max: number,
): { messages: Message[]; tooLarge: UsageEvent[] } {
  const messages: Message[] = [];
  const tooLarge: UsageEvent[] = [];
  const overhead = encoder.encode('{"events":[]}').byteLength;
  let parts: string[] = [];
  let group: UsageEvent[] = [];
  let size = overhead;
  const close = (): void => {
    if (group.length === 0) return;
    messages.push({ body: `{"events":[${parts.join(',')}]}`, events: group });
    parts = [];
    group = [];
    size = overhead;
  };
  for (const e of events) {
    const json = JSON.stringify(e);
    const bytes = encoder.encode(json).byteLength;
    if (overhead + bytes > max) {
      tooLarge.push(e);
      continue;
    }
    if (size + bytes + (group.length > 0 ? 1 : 0) > max) close();
    parts.push(json);
    group.push(e);
    size += bytes + (group.length > 1 ? 1 : 0);
  }
  close();
  return { messages, tooLarge };
}

/**
 * Sends batches to an Amazon SQS queue instead of HTTP, for the AWS deployment (the seed's
 * LangChain → SQS → Lambda path). A message body is the HTTP body, `{"events":[...]}`, so the
 * queue consumer validates it exactly like `POST /v1/events`; events keep their ids, so a
 * message delivered twice is counted once.
 */
export function createSqsTransport(opts: SqsTransportOptions): Transport {
  const max = opts.maxMessageBytes ?? 256 * 1024;
  const fifo = opts.queueUrl.endsWith('.fifo');
  return {
    async send(events, signal): Promise<SendResult> {
      const { messages, tooLarge } = packMessages(events, max);
      const rejected: UsageEvent[] = [...tooLarge];
      let rejectError: TokenwatchError | undefined =
        tooLarge.length > 0
          ? new TokenwatchError('too_large', `event larger than ${max} bytes`)
          : undefined;
      const retry: UsageEvent[] = [];
      let retryError: TokenwatchError | undefined;
      let accepted = 0;
      for (let i = 0; i < messages.length; i += MAX_ENTRIES) {
        const chunk = messages.slice(i, i + MAX_ENTRIES);
        if (retryError) {
          for (const m of chunk) retry.push(...m.events);
          continue;
        }
        try {
          const out = await opts.client.send(
            new SendMessageBatchCommand({
              QueueUrl: opts.queueUrl,
              Entries: chunk.map((m, j) => ({
                Id: String(j),
                MessageBody: m.body,
                MessageAttributes: {
                  'tokenwatch-contract': { DataType: 'String', StringValue: 'v1' },
                },
                ...(fifo
                  ? {
                      MessageGroupId: opts.messageGroupId ?? 'tokenwatch',
                      MessageDeduplicationId: dedupeId(m.events),
                    }
                  : {}),
              })),
            }),
            { abortSignal: signal },
          );
          for (const s of out.Successful ?? []) accepted += chunk[Number(s.Id)]?.events.length ?? 0;
          for (const f of out.Failed ?? []) {
            const m = chunk[Number(f.Id)];
            if (!m) continue;
            if (f.SenderFault) {
              rejected.push(...m.events);
              rejectError = new TokenwatchError(
                'rejected',
                `SQS refused a message: ${f.Code}: ${f.Message}`,
              );
            } else {
              retry.push(...m.events);
              retryError = new TokenwatchError(
                'transport',
                `SQS failed a message: ${f.Code}: ${f.Message}`,
                {
                  retryable: true,
                },
              );
            }
          }
        } catch (cause) {
          for (const m of chunk) retry.push(...m.events);
          retryError = new TokenwatchError(
            'transport',
            `SQS SendMessageBatch failed: ${(cause as Error)?.message}`,
            {
              retryable: true,
              cause,
            },
          );
        }
      }
      const gone =
        rejected.length > 0 && rejectError
          ? { rejected: { events: rejected, error: rejectError } }
          : {};
      if (retryError) return { kind: 'retry', error: retryError, events: retry, ...gone };
      return { kind: 'ok', accepted, duplicates: 0, ...gone };
    },
  };
}
