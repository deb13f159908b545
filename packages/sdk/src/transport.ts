import type { TokenwatchError } from './errors.js';
import type { UsageEvent } from './event.js';

/**
 * What became of one send. Transports never throw: every outcome is one of these.
 * - `ok`: the collector made the events durable (duplicates included: the server dedupes on id),
 *   except those in `rejected`.
 * - `retry`: nothing (or only part) was made durable; resend `events` (default: the whole batch)
 *   with the SAME ids after `afterMs` (Retry-After) or a backoff.
 * - `split`: the batch was too large (413); send it in halves.
 * - `reject`: the collector refused the batch and resending it cannot succeed; `invalid` lists
 *   the indices of the events at fault when known, and the others may be sent again.
 * - `fatal`: the batch cannot be delivered (bad key, no fetch); drop it and report.
 */
export type SendResult =
  | { kind: 'ok'; accepted: number; duplicates: number; rejected?: Rejected }
  | {
      kind: 'retry';
      error: TokenwatchError;
      afterMs?: number;
      /** Only these still need sending (the others were made durable, or are in `rejected`). */
      events?: readonly UsageEvent[];
      rejected?: Rejected;
    }
  | { kind: 'split'; error: TokenwatchError }
  | { kind: 'reject'; error: TokenwatchError; invalid?: readonly number[] }
  | { kind: 'fatal'; error: TokenwatchError; reason: 'unauthorized' | 'rejected' };

/** Events the destination refused for good while it took the others (a partial batch failure). */
export interface Rejected {
  events: readonly UsageEvent[];
  error: TokenwatchError;
}

/** Ships one batch. HTTP is the default; `@tokenwatch/sdk/sqs` provides another. */
export interface Transport {
  send(events: readonly UsageEvent[], signal: AbortSignal): Promise<SendResult>;
}
