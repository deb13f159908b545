import { DEFAULT_DISPATCHER_OPTIONS } from '../alerts/dispatcher.js';
import type { LambdaRuntime } from './lambda-runtime.js';

/** The parts of an EventBridge scheduled event the ingest function reads. */
export interface ScheduledEvent {
  source: 'aws.events';
  'detail-type': 'Scheduled Event';
  time?: string;
  resources?: string[];
}

export function isScheduledEvent(event: unknown): event is ScheduledEvent {
  return (
    typeof event === 'object' &&
    event !== null &&
    (event as { source?: unknown }).source === 'aws.events' &&
    (event as { 'detail-type'?: unknown })['detail-type'] === 'Scheduled Event'
  );
}

export interface OutboxPassResult {
  /** Deliveries leased and attempted in this invocation (sent, retried later or dead). */
  attempted: number;
  passes: number;
}

/** A pass leases at most the dispatcher's batch size; a backlog gets a few passes per tick. */
const MAX_PASSES = 10;

/**
 * The stack's EventBridge schedule (default every minute) invokes the ingest function with a
 * scheduled event: without usage no other invocation would send the outbox, so a failed SNS,
 * webhook or Slack delivery would wait for traffic and be dead-lettered after 24 hours of quiet.
 * Each pass leases the due deliveries and records every outcome (a delivery that fails again
 * gets its next backoff, so it is not leased again in the same tick). A throw fails the
 * invocation (the Errors alarm); the next tick tries again: the outbox loses nothing.
 */
export function createOutboxHandler(rt: LambdaRuntime): () => Promise<OutboxPassResult> {
  // The runtime's dispatcher leases this many per pass (lambda-runtime.ts).
  const batchSize = DEFAULT_DISPATCHER_OPTIONS.batchSize;
  return async () => {
    let attempted = 0;
    let passes = 0;
    while (passes < MAX_PASSES) {
      const claimed = await rt.dispatcher.runOnce();
      passes++;
      attempted += claimed;
      if (claimed < batchSize) break;
    }
    if (attempted > 0) rt.logger.info('outbox pass', { attempted, passes });
    return { attempted, passes };
  };
}
