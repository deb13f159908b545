/**
 * What became of the call an event describes:
 * - `ok`: the provider answered and reported its usage;
 * - `error`: the call failed (the provider refused it, the network broke, the stream failed);
 * - `no_usage`: the provider was called but its usage report never arrived (streaming without
 *   usage, a proxy that drops it, a stream the caller abandoned): the tokens are what was known,
 *   possibly none, and the call is counted so it is never a silent free success;
 * - `denied`: a budget guard refused the call before the provider received it; no tokens.
 */
export const EVENT_STATUSES = ['ok', 'error', 'no_usage', 'denied'] as const;
export type EventStatus = (typeof EVENT_STATUSES)[number];

/**
 * The usage event, wire contract version 1 (see README § Event contract).
 *
 * `inputTokens` are UNCACHED input tokens (Bedrock / Anthropic meaning); cache reads and cache
 * writes are their own classes; `outputTokens` include reasoning tokens. So
 * `totalTokens = inputTokens + cacheReadTokens + cacheWriteTokens + outputTokens`.
 * Prompts and completions are never part of the contract.
 */
export interface UsageEvent {
  /** Idempotency key, unique per project. The SDK makes a time-ordered UUIDv7. */
  id: string;
  /** Event time in epoch milliseconds (UTC); decides the bucket. */
  timestampMs: number;
  userId: string;
  appId: string;
  /** The model id exactly as the caller sent it; normalised later (see `normaliseModel`). */
  modelId: string;
  /** Lower-cased provider as sent, or undefined to infer it from the model id. */
  provider: string | undefined;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  latencyMs: number | undefined;
  status: EventStatus;
  /** Null-prototype map, or undefined when the event had no tags. */
  tags: Readonly<Record<string, string>> | undefined;
}

/** An accepted event after normalisation and pricing: what the store applies. */
export interface PricedEvent {
  projectId: string;
  id: string;
  timestampMs: number;
  userId: string;
  appId: string;
  /** Canonical model id (ARN wrapper removed, geo prefix kept). */
  modelId: string;
  provider: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  latencyMs: number | undefined;
  status: EventStatus;
  tags: Readonly<Record<string, string>> | undefined;
  /** Cost in nano-USD (1e-9 USD), an exact integer; 0 when unpriced. */
  costNanoUsd: number;
  /** False when no price was found: the tokens count as unpriced, never as $0. */
  priced: boolean;
  /**
   * Hash of the event's payload as received. Two events with the same id but different
   * fingerprints are a conflict: the first wins, the second is counted and reported.
   */
  fingerprint: string;
}

export function totalTokens(e: {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}): number {
  return e.inputTokens + e.outputTokens + e.cacheReadTokens + e.cacheWriteTokens;
}

/** Limits of the contract, exported so the SDK, docs and tests quote one source. */
export const EVENT_LIMITS = {
  idMaxLength: 128,
  userIdMaxLength: 256,
  appIdMaxLength: 256,
  modelIdMaxLength: 512,
  providerMaxLength: 64,
  maxTokensPerField: 1_000_000_000,
  maxLatencyMs: 86_400_000,
  maxTags: 16,
  tagKeyMaxLength: 64,
  tagValueMaxLength: 256,
  /** Events may be this late (35 days) ... */
  maxAgeMs: 35 * 24 * 3_600_000,
  /** ... and this far in the future (clock skew allowance). */
  maxFutureMs: 5 * 60_000,
} as const;
