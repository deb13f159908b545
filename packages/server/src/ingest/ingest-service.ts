import {
  ModelRefCache,
  type PricedEvent,
  priceEvent,
  TokenwatchError,
  type UsageEvent,
  validateBatch,
} from '@tokenwatch/core';
import type { Principal } from '../auth/api-keys.js';
import type { BatchCounts, EventSink } from './event-sink.js';
import type { ProjectCatalogs } from './project-catalogs.js';

/**
 * The ingest use case, independent of HTTP: validate a parsed body for a principal, normalise
 * and price every event with the project's catalog, then wait for the group commit.
 * The request is atomic: one invalid event refuses the whole request and stores nothing.
 */
export class IngestService {
  private readonly models = new ModelRefCache();

  constructor(
    private readonly sink: EventSink,
    private readonly catalogs: ProjectCatalogs,
    private readonly now: () => number = Date.now,
  ) {}

  async ingest(body: unknown, principal: Principal): Promise<BatchCounts> {
    const validation = validateBatch(body, { nowMs: this.now(), boundAppId: principal.key.appId });
    if (validation.issues.length > 0) {
      const forbidden = validation.issues.some((i) => i.reason.startsWith('this API key may only'));
      throw new TokenwatchError(
        forbidden ? 'forbidden' : 'invalid_event',
        forbidden
          ? 'The API key is bound to another app.'
          : 'One or more events are invalid; nothing of this request was stored.',
        { details: validation.issues },
      );
    }
    return this.ingestEvents(validation.events, principal);
  }

  /**
   * Prices events already validated against the contract (by `validateBatch`, or by the OTLP
   * span mapping, which validates each event with `validateEvent`) and waits for the sink.
   */
  async ingestEvents(events: readonly UsageEvent[], principal: Principal): Promise<BatchCounts> {
    if (events.length === 0) return { accepted: 0, duplicates: 0, conflicts: 0 };
    const catalog = await this.catalogs.forProject(principal.projectId);
    const priced: PricedEvent[] = events.map((e) =>
      priceEvent(e, principal.projectId, catalog, this.models),
    );
    return this.sink.submit(priced);
  }
}
