import type { PricedEvent } from '@tokenwatch/core';

/** Per-request counts the ingest API answers with. */
export interface BatchCounts {
  accepted: number;
  duplicates: number;
  conflicts: number;
}

/**
 * Where validated, priced events go. `submit` resolves only once the events are durable —
 * committed to the store (embedded: the group committer) or acknowledged by a durable queue
 * (scale-out: a JetStream publish ack) — and rejects with a retryable `TokenwatchError`
 * otherwise, so a 202 is never followed by a drop.
 */
export interface EventSink {
  submit(events: readonly PricedEvent[]): Promise<BatchCounts>;
  /** Events accepted by `submit` but not yet durable (for /metrics and /readyz). */
  readonly backlog: number;
  /**
   * Why events cannot be made durable right now (a queue broker unreachable), for /readyz;
   * undefined when they can. Bounded in time, never rejects. Sinks without a remote dependency
   * leave it out (the store check covers them).
   */
  check?(): Promise<string | undefined>;
  /** Stops taking events; resolves when every accepted `submit` has been answered. */
  close(): Promise<void>;
}
