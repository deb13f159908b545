import { EventOutcome, type PricedEvent, TokenwatchError } from '@tokenwatch/core';
import type Database from 'better-sqlite3';

function assertString(e: PricedEvent, field: string, value: unknown): void {
  if (typeof value !== 'string')
    throw new TokenwatchError('internal', `event ${e.id}: ${field} is not a string`);
}

function assertSafeInteger(e: PricedEvent, field: string, value: unknown): void {
  if (!Number.isSafeInteger(value))
    throw new TokenwatchError('internal', `event ${e.id}: ${field} is not a safe integer`);
}

/**
 * What the fold will need of an event, checked before it is accepted: an event the fold cannot
 * write would otherwise stop every later fold. (Validation upstream guarantees all of it; this
 * keeps the store's own contract whoever calls it.) Field by field, not over a list of names:
 * it runs for every event, and reads by a computed name are several times slower.
 */
function assertStorable(e: PricedEvent): void {
  assertString(e, 'projectId', e.projectId);
  assertString(e, 'userId', e.userId);
  assertString(e, 'appId', e.appId);
  assertString(e, 'modelId', e.modelId);
  assertString(e, 'provider', e.provider);
  assertSafeInteger(e, 'timestampMs', e.timestampMs);
  assertSafeInteger(e, 'inputTokens', e.inputTokens);
  assertSafeInteger(e, 'outputTokens', e.outputTokens);
  assertSafeInteger(e, 'cacheReadTokens', e.cacheReadTokens);
  assertSafeInteger(e, 'cacheWriteTokens', e.cacheWriteTokens);
  assertSafeInteger(e, 'costNanoUsd', e.costNanoUsd);
}

/** What claiming a batch's ids decided, event by event. */
export interface ClaimedBatch {
  /** The events whose id was new: they are counted. */
  fresh: PricedEvent[];
  duplicates: number;
  conflicts: number;
  /** Per event of the batch, in its order. */
  outcomes: EventOutcome[];
}

/**
 * The dedupe claims of the embedded store: one `event_ids` row per (project, id), inserted in the
 * batch's transaction. An id seen before is a duplicate when its payload's fingerprint is the
 * first one's, and a conflict (recorded, not counted) when it is not: the first payload wins.
 */
export class EventClaims {
  private readonly claimId: Database.Statement<unknown[], unknown>;
  private readonly idFingerprint: Database.Statement<unknown[], unknown>;
  private readonly insertConflict: Database.Statement<unknown[], unknown>;

  constructor(db: Database.Database) {
    this.claimId = db.prepare(
      'INSERT OR IGNORE INTO event_ids (project_id, id, event_ms, fingerprint) VALUES (?, ?, ?, ?)',
    );
    this.idFingerprint = db
      .prepare('SELECT fingerprint FROM event_ids WHERE project_id = ? AND id = ?')
      .pluck();
    this.insertConflict = db.prepare(
      'INSERT INTO conflicts (project_id, event_id, first_fingerprint, conflicting_fingerprint, seen_at_ms) VALUES (?, ?, ?, ?, ?)',
    );
  }

  /**
   * Claims the ids of `events` in the caller's transaction. Throws (and the caller's transaction
   * rolls back) when a new event is one the fold could not write.
   */
  claim(events: readonly PricedEvent[], nowMs: number): ClaimedBatch {
    const outcomes: EventOutcome[] = new Array(events.length);
    const fresh: PricedEvent[] = [];
    let duplicates = 0;
    let conflicts = 0;
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as PricedEvent;
      if (this.claimId.run(e.projectId, e.id, e.timestampMs, e.fingerprint).changes === 1) {
        // The rollups are written later, by the fold: refuse here what would make it fail.
        assertStorable(e);
        outcomes[i] = EventOutcome.Accepted;
        fresh.push(e);
        continue;
      }
      const first = this.idFingerprint.get(e.projectId, e.id) as string;
      if (first === e.fingerprint) {
        outcomes[i] = EventOutcome.Duplicate;
        duplicates++;
      } else {
        outcomes[i] = EventOutcome.Conflict;
        conflicts++;
        this.insertConflict.run(e.projectId, e.id, first, e.fingerprint, nowMs);
      }
    }
    return { fresh, duplicates, conflicts, outcomes };
  }
}
