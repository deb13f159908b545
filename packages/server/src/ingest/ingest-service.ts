import { type PricedEvent, priceEvent, TokenwatchError, validateBatch } from '@tokenwatch/core';
import type { Principal } from '../auth/api-keys.js';
import type { BatchCounts, EventSink } from './event-sink.js';
import type { ProjectCatalogs } from './project-catalogs.js';

/**
 * The ingest use case, independent of HTTP: validate a parsed body for a principal, normalise
 * and price every event with the project's catalog, then wait for the group commit.
 * The request is atomic: one invalid event refuses the whole request and stores nothing.
 */
export class IngestService {
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
    const catalog = await this.catalogs.forProject(principal.projectId);
    const priced: PricedEvent[] = validation.events.map((e) =>
      priceEvent(e, principal.projectId, catalog),
    );
    return this.sink.submit(priced);
  }
}
