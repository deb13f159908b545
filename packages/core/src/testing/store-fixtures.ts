import type { PricedEvent } from '../event/usage-event.js';
import type { UsageQuery } from '../query/usage-query.js';

const DAY = 86_400_000;

/** 2026-03-10T10:00:00Z: a fixed instant so buckets are predictable. */
export const CONTRACT_T0 = Date.UTC(2026, 2, 10, 10, 0, 0);

let sequence = 0;
/** A priced event with sensible defaults; each call gets a new time-ordered id. */
export function makePricedEvent(overrides: Partial<PricedEvent> = {}): PricedEvent {
  sequence++;
  return {
    projectId: 'p1',
    id: `evt-${String(sequence).padStart(8, '0')}`,
    timestampMs: CONTRACT_T0 + 5 * 60_000,
    userId: 'alice',
    appId: 'chat',
    modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
    provider: 'bedrock',
    inputTokens: 100,
    outputTokens: 50,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    latencyMs: 120,
    status: 'ok',
    tags: undefined,
    costNanoUsd: 87_500,
    priced: true,
    fingerprint: `fp-${sequence}`,
    ...overrides,
  };
}

export function makeQuery(overrides: Partial<UsageQuery> = {}): UsageQuery {
  return {
    projectId: 'p1',
    fromMs: CONTRACT_T0 - DAY,
    toMs: CONTRACT_T0 + DAY,
    interval: undefined,
    resolution: 'hour',
    groupBy: [],
    filters: {},
    tagFilter: undefined,
    orderBy: 'totalTokens',
    order: 'desc',
    limit: 1000,
    ...overrides,
  };
}
