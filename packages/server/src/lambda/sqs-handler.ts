import { type PricedEvent, priceEvent, TokenwatchError, validateBatch } from '@tokenwatch/core';
import { createLambdaRuntime, type LambdaRuntime, loadLambdaConfig } from './lambda-runtime.js';
import {
  createOutboxHandler,
  isScheduledEvent,
  type OutboxPassResult,
  type ScheduledEvent,
} from './outbox-handler.js';

/** The parts of an SQS event source mapping's event the handler reads. */
export interface SqsRecord {
  messageId: string;
  body: string;
  attributes?: { ApproximateReceiveCount?: string } & Record<string, string | undefined>;
  messageAttributes?: Record<string, { stringValue?: string; dataType?: string }>;
}
export interface SqsEvent {
  Records: SqsRecord[];
}
/** With `ReportBatchItemFailures` on the mapping, only these messages return to the queue. */
export interface SqsBatchResponse {
  batchItemFailures: Array<{ itemIdentifier: string }>;
}

/**
 * The queue consumer. Each message body is a `POST /v1/events` body (what `@tokenwatch/sdk/sqs`
 * sends). Per invocation:
 *
 * 1. every message is parsed and validated on its own; an invalid one (a poison message) is
 *    reported in `batchItemFailures` and never holds up the others: after the queue's
 *    `maxReceiveCount` receives it moves to the dead-letter queue;
 * 2. the valid messages' events are priced and applied in ONE `applyBatch` with the project's
 *    rules (exactly once per event id: redeliveries and duplicates add nothing, alerts are
 *    unique per rule × scope × window × level); if that fails, each message is retried on its
 *    own, so a message the store refuses is the only one reported;
 * 3. the outbox is sent (SNS, webhooks, Slack) before returning; a delivery that fails stays in
 *    the outbox with its backoff for a later invocation.
 */
export function createSqsHandler(
  rt: LambdaRuntime,
): (event: SqsEvent) => Promise<SqsBatchResponse> {
  const { logger, store, config } = rt;
  return async (event) => {
    const nowMs = rt.now();
    const failures: string[] = [];
    const good: Array<{ record: SqsRecord; events: PricedEvent[] }> = [];
    const catalog = await rt.catalogs.forProject(config.projectId);
    for (const record of event.Records) {
      let body: unknown;
      try {
        body = JSON.parse(record.body);
      } catch {
        body = undefined;
      }
      const validation =
        body === undefined
          ? { events: [], issues: [{ field: '', reason: 'is not JSON' }] }
          : validateBatch(body, { nowMs, boundAppId: undefined });
      if (validation.issues.length > 0) {
        failures.push(record.messageId);
        logger.warn('poison message: left for the dead-letter queue', {
          messageId: record.messageId,
          receiveCount: Number(record.attributes?.ApproximateReceiveCount ?? 0),
          issues: validation.issues.slice(0, 5),
        });
        continue;
      }
      if (validation.events.length === 0) continue;
      good.push({
        record,
        events: validation.events.map((e) => priceEvent(e, config.projectId, catalog)),
      });
    }

    if (good.length > 0) {
      const apply = (events: PricedEvent[]) => store.applyBatch(events, { nowMs: rt.now() });
      try {
        const result = await apply(good.flatMap((g) => g.events));
        logger.info('applied', {
          messages: good.length,
          accepted: result.accepted,
          duplicates: result.duplicates,
          conflicts: result.conflicts,
          alerts: result.alerts.length,
        });
      } catch (err) {
        logger.warn('batch apply failed; applying message by message', { error: err as Error });
        for (const g of good) {
          try {
            await apply(g.events);
          } catch (inner) {
            failures.push(g.record.messageId);
            logger.error('message not applied; SQS will redeliver it', {
              messageId: g.record.messageId,
              retryable: inner instanceof TokenwatchError ? inner.retryable : undefined,
              error: inner as Error,
            });
          }
        }
      }
    }

    try {
      await rt.dispatcher.runOnce();
    } catch (err) {
      // The outbox keeps them: the next invocation (or the lease's expiry) sends them.
      logger.warn('outbox pass failed', { error: err as Error });
    }
    return { batchItemFailures: failures.map((itemIdentifier) => ({ itemIdentifier })) };
  };
}

let runtime: Promise<LambdaRuntime> | undefined;

/**
 * The function's entry point (`sqs-handler.handler`), one runtime per warm container: SQS
 * batches from the event source mapping, and the EventBridge schedule's outbox passes.
 */
export async function handler(event: SqsEvent): Promise<SqsBatchResponse>;
export async function handler(event: ScheduledEvent): Promise<OutboxPassResult>;
export async function handler(
  event: SqsEvent | ScheduledEvent,
): Promise<SqsBatchResponse | OutboxPassResult> {
  runtime ??= createLambdaRuntime(loadLambdaConfig(process.env));
  const rt = await runtime;
  if (isScheduledEvent(event)) return createOutboxHandler(rt)();
  if (!Array.isArray((event as SqsEvent).Records)) {
    throw new Error('ingest function: expected an SQS batch (Records) or a scheduled event');
  }
  return createSqsHandler(rt)(event as SqsEvent);
}
