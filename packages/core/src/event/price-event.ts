import { isBedrockRequestEventId } from '../bedrock/request-event-id.js';
import { type ModelRefCache, normaliseModel } from '../model/index.js';
import { costNanoUsd } from '../pricing/cost.js';
import type { PriceCatalog } from '../pricing/price-catalog.js';
import { fingerprint } from '../util/fingerprint.js';
import type { PricedEvent, UsageEvent } from './usage-event.js';

function payloadFingerprint(e: UsageEvent): string {
  if (isBedrockRequestEventId(e.id)) {
    // One Bedrock call seen by two paths (the SDK middleware and the invocation log) carries
    // two attributions, clocks and latencies, but ONE measurement by AWS: its token counts.
    // Only those decide whether the second sighting is a duplicate or a real conflict.
    return fingerprint(
      [
        'bedrock-request',
        e.inputTokens,
        e.outputTokens,
        e.cacheReadTokens,
        e.cacheWriteTokens,
      ].join('\u0000'),
    );
  }
  let tags = '';
  if (e.tags) {
    for (const key of Object.keys(e.tags).sort()) tags += `${key}=${e.tags[key]}\u0001`;
  }
  return fingerprint(
    [
      e.timestampMs,
      e.userId,
      e.appId,
      e.modelId,
      e.provider ?? '',
      e.inputTokens,
      e.outputTokens,
      e.cacheReadTokens,
      e.cacheWriteTokens,
      e.latencyMs ?? '',
      e.status,
      tags,
    ].join('\u0000'),
  );
}

/**
 * Normalises the model id and prices one validated event with the project's catalog.
 * A model without a price is never $0 silently: the event is marked `priced: false` and its
 * tokens are counted as unpriced in every rollup.
 */
export function priceEvent(
  event: UsageEvent,
  projectId: string,
  catalog: PriceCatalog,
  /** Remembers model ids already normalised (a hot ingest path passes one). */
  models?: ModelRefCache,
): PricedEvent {
  const ref = models
    ? models.of(event.provider, event.modelId)
    : normaliseModel(event.provider, event.modelId);
  const price = ref.opaque ? undefined : catalog.lookup(ref, event.timestampMs);
  return {
    projectId,
    id: event.id,
    timestampMs: event.timestampMs,
    userId: event.userId,
    appId: event.appId,
    modelId: ref.modelId,
    provider: ref.provider,
    inputTokens: event.inputTokens,
    outputTokens: event.outputTokens,
    cacheReadTokens: event.cacheReadTokens,
    cacheWriteTokens: event.cacheWriteTokens,
    latencyMs: event.latencyMs,
    status: event.status,
    tags: event.tags,
    costNanoUsd: price ? costNanoUsd(price, event) : 0,
    priced: price !== undefined,
    fingerprint: payloadFingerprint(event),
  };
}
