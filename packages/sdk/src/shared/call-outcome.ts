import type { CallStatus, UsageRecord } from '../event.js';

/** The token classes of one call, as the contract counts them. */
export type Tokens = Pick<
  UsageRecord,
  'inputTokens' | 'outputTokens' | 'cacheReadTokens' | 'cacheWriteTokens'
>;

/**
 * How a call ended, as far as the integration saw: `done` (the result, or the stream's last
 * event), `failed` (the provider or the network threw), `abandoned` (the caller stopped reading
 * a stream before its end).
 */
export type CallEnd = 'done' | 'failed' | 'abandoned';

/** The tag (and its value) that marks a stream its caller stopped reading before the usage came. */
export const ABANDONED_TAG = 'tokenwatch.stream';
export const ABANDONED = 'abandoned';

/**
 * A failure is an error; otherwise the provider's usage report decides: `ok` when it arrived,
 * `no_usage` when not, so a call without usage is never a silent 0-token success.
 */
export function callStatus(end: CallEnd, reported: boolean): CallStatus {
  if (end === 'failed') return 'error';
  return reported ? 'ok' : 'no_usage';
}

/**
 * The record of a finished call: the tokens known (the full report, or what was seen before the
 * call ended: e.g. the input count of a stream abandoned after its first event), its status, and
 * the abandoned mark when the caller's leaving is why the usage is missing. Completes `base`
 * in place (each call has its own) and returns it.
 */
export function finishRecord(
  base: UsageRecord,
  end: CallEnd,
  tokens: Tokens | undefined,
  reported: boolean,
  latencyMs: number,
): UsageRecord {
  if (tokens) {
    if (tokens.inputTokens !== undefined) base.inputTokens = tokens.inputTokens;
    if (tokens.outputTokens !== undefined) base.outputTokens = tokens.outputTokens;
    if (tokens.cacheReadTokens !== undefined) base.cacheReadTokens = tokens.cacheReadTokens;
    if (tokens.cacheWriteTokens !== undefined) base.cacheWriteTokens = tokens.cacheWriteTokens;
  }
  base.status = callStatus(end, reported);
  base.latencyMs = latencyMs;
  if (end === 'abandoned' && !reported) base.tags = { ...base.tags, [ABANDONED_TAG]: ABANDONED };
  return base;
}
