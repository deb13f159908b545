import { backoffDelay } from './backoff.js';
import { type DropReason, TokenwatchError } from './errors.js';
import type { UsageEvent } from './event.js';
import { unrefTimer } from './exit-hook.js';
import type { SendResult, Transport } from './transport.js';

/**
 * What delivering a batch needs from its client. Every event of a batch reaches exactly one final
 * outcome, `delivered` or `dropped`, and only once: the client's pending count relies on it.
 */
export interface DeliveryContext {
  transport: Transport;
  requestTimeoutMs: number;
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  maxRetryAfterMs: number;
  random: () => number;
  /** The requests in flight, so a shutdown can abort them. */
  controllers: Set<AbortController>;
  /** True while the client gives up on everything pending (a shutdown past its deadline). */
  isAborting(): boolean;
  /** `count` events the collector made durable, `duplicates` of them seen before. */
  delivered(count: number, duplicates: number): void;
  /** Events lost for good. */
  dropped(events: readonly UsageEvent[], reason: DropReason, error?: TokenwatchError): void;
  reportError(error: TokenwatchError): void;
  /** A send that will be tried again after `ms` (the client counts the wait as backing off). */
  retryAfter(ms: number): Promise<void>;
}

/** One request, with its timeout; a transport that throws is a retryable failure. */
async function sendOnce(ctx: DeliveryContext, batch: readonly UsageEvent[]): Promise<SendResult> {
  const ac = new AbortController();
  ctx.controllers.add(ac);
  const t = setTimeout(() => ac.abort(), ctx.requestTimeoutMs);
  unrefTimer(t);
  try {
    return await ctx.transport.send(batch, ac.signal);
  } catch (cause) {
    return {
      kind: 'retry',
      error: new TokenwatchError('transport', `transport threw: ${(cause as Error)?.message}`, {
        retryable: true,
        cause,
      }),
    };
  } finally {
    clearTimeout(t);
    ctx.controllers.delete(ac);
  }
}

/**
 * Delivers one batch to a final outcome for each of its events: sent; split in halves when too
 * large; the events at fault dropped and the others sent again when the request is refused in
 * part (requests are atomic); retried with backoff (or the server's Retry-After) up to
 * `maxAttempts`; dropped as `shutdown` once the client aborts.
 */
export async function deliverBatch(
  ctx: DeliveryContext,
  initial: readonly UsageEvent[],
): Promise<void> {
  let batch = initial;
  let attempt = 1;
  for (;;) {
    if (ctx.isAborting()) {
      ctx.dropped(batch, 'shutdown');
      return;
    }
    const result = await sendOnce(ctx, batch);
    if (ctx.isAborting() && result.kind !== 'ok') {
      ctx.dropped(batch, 'shutdown', result.error);
      return;
    }
    if (
      (result.kind === 'ok' || result.kind === 'retry') &&
      result.rejected &&
      result.rejected.events.length > 0
    ) {
      const { events: gone, error } = result.rejected;
      ctx.reportError(error);
      ctx.dropped(gone, 'rejected', error);
      if (result.kind === 'ok') {
        ctx.delivered(batch.length - gone.length, result.duplicates);
        return;
      }
      const keep = new Set(gone);
      batch = batch.filter((e) => !keep.has(e));
    }
    switch (result.kind) {
      case 'ok':
        ctx.delivered(batch.length, result.duplicates);
        return;
      case 'split': {
        if (batch.length === 1) {
          ctx.reportError(result.error);
          ctx.dropped(batch, 'too_large', result.error);
          return;
        }
        const half = Math.ceil(batch.length / 2);
        await deliverBatch(ctx, batch.slice(0, half));
        await deliverBatch(ctx, batch.slice(half));
        return;
      }
      case 'reject': {
        ctx.reportError(result.error);
        const bad = new Set((result.invalid ?? []).filter((i) => i >= 0 && i < batch.length));
        if (bad.size === 0 || bad.size === batch.length) {
          ctx.dropped(batch, 'rejected', result.error);
          return;
        }
        // The request is atomic: drop the events at fault and send the others again.
        ctx.dropped(
          batch.filter((_, i) => bad.has(i)),
          'rejected',
          result.error,
        );
        batch = batch.filter((_, i) => !bad.has(i));
        continue;
      }
      case 'fatal':
        ctx.reportError(result.error);
        ctx.dropped(batch, result.reason, result.error);
        return;
      case 'retry': {
        ctx.reportError(result.error);
        if (result.events) {
          // The server took some: only the rest is tried again.
          ctx.delivered(batch.length - result.events.length, 0);
          batch = result.events;
        }
        if (attempt >= ctx.maxAttempts) {
          ctx.dropped(batch, 'retries_exhausted', result.error);
          return;
        }
        const delay =
          result.afterMs !== undefined
            ? Math.min(result.afterMs, ctx.maxRetryAfterMs)
            : backoffDelay(attempt, ctx.initialBackoffMs, ctx.maxBackoffMs, ctx.random);
        attempt++;
        await ctx.retryAfter(delay);
      }
    }
  }
}
