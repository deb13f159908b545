import {
  createInvocationLogReader,
  type InvocationLogMapping,
  type LogTextProblem,
  MAX_EVENTS_PER_REQUEST,
  type PricedEvent,
  priceEvent,
  type SkipReason,
  validateEvent,
} from '@tokenwatch/core';
import type { BatchCounts } from '../ingest/event-sink.js';
import type { ProjectCatalogs } from '../ingest/project-catalogs.js';

/** Why a record (or a part of a file) was not imported: the reader's reasons and two more. */
export type ImportSkipReason =
  | SkipReason
  /** The reader made an event, but the usage-event contract refused it (e.g. older than 35 days). */
  | 'invalid_event'
  /** Text that is not JSON, a truncated gzip or JSON document, an unreadable file. */
  | 'unreadable';

export interface ImportExample {
  reason: ImportSkipReason;
  detail: string;
  requestId?: string;
  /** File (and line) or request index the record came from. */
  where?: string;
}

/** What an import did: every record is imported, a duplicate, a conflict, or skipped with a reason. */
export interface ImportTally {
  records: number;
  /** Newly counted. */
  imported: number;
  /** Already counted with the same token counts (a re-import, or the SDK saw the call first). */
  duplicates: number;
  /** Already counted with different token counts: the first stays; listed by GET /v1/conflicts. */
  conflicts: number;
  skipped: number;
  skippedByReason: Partial<Record<ImportSkipReason, number>>;
  /** The first few skips, with their details. */
  examples: ImportExample[];
}

const MAX_EXAMPLES = 20;

export function emptyTally(): ImportTally {
  return {
    records: 0,
    imported: 0,
    duplicates: 0,
    conflicts: 0,
    skipped: 0,
    skippedByReason: {},
    examples: [],
  };
}

export function addSkip(tally: ImportTally, example: ImportExample): void {
  tally.skipped++;
  tally.skippedByReason[example.reason] = (tally.skippedByReason[example.reason] ?? 0) + 1;
  if (tally.examples.length < MAX_EXAMPLES) tally.examples.push(example);
}

/** Unusable parts of a text (not JSON, truncated) count as skipped, with where they were. */
export function addProblems(
  tally: ImportTally,
  problems: readonly LogTextProblem[],
  where: string,
): void {
  for (const p of problems) {
    tally.records++;
    addSkip(tally, { reason: 'unreadable', detail: p.reason, where: `${where}:${p.line}` });
  }
}

export function mergeTally(into: ImportTally, from: ImportTally): void {
  into.records += from.records;
  into.imported += from.imported;
  into.duplicates += from.duplicates;
  into.conflicts += from.conflicts;
  into.skipped += from.skipped;
  for (const [reason, n] of Object.entries(from.skippedByReason)) {
    const key = reason as ImportSkipReason;
    into.skippedByReason[key] = (into.skippedByReason[key] ?? 0) + (n ?? 0);
  }
  for (const e of from.examples) if (into.examples.length < MAX_EXAMPLES) into.examples.push(e);
}

export interface ImportTarget {
  projectId: string;
  /** The app an ingest key is bound to: records of other apps are refused, as on /v1/events. */
  boundAppId?: string | undefined;
}

/**
 * Invocation-log records into the ordinary ingest path: read (core), validated against the
 * usage-event contract, priced with the project's catalog, then handed to the same sink as
 * `POST /v1/events` (group commit into the store, or the durable queue), where the event id
 * dedupes them and the project's rules count them. Each record is judged on its own: a bad
 * one is skipped with its reason and never costs the others.
 */
export class InvocationLogImporter {
  private readonly read: ReturnType<typeof createInvocationLogReader>;

  constructor(
    private readonly sink: { submit(events: readonly PricedEvent[]): Promise<BatchCounts> },
    private readonly catalogs: Pick<ProjectCatalogs, 'forProject'>,
    mapping: InvocationLogMapping,
    private readonly now: () => number = Date.now,
  ) {
    this.read = createInvocationLogReader(mapping);
  }

  /**
   * Imports records; resolves once every event is durable (as a 202 of /v1/events would).
   * A sink failure rejects (nothing after the failing chunk was submitted; re-running the
   * same import is safe: what was committed comes back as duplicates).
   */
  async importRecords(
    records: readonly unknown[],
    target: ImportTarget,
    where?: (index: number) => string,
  ): Promise<ImportTally> {
    const tally = emptyTally();
    const nowMs = this.now();
    const catalog = await this.catalogs.forProject(target.projectId);
    const events: PricedEvent[] = [];
    for (const [index, raw] of records.entries()) {
      tally.records++;
      const at = where?.(index);
      const result = this.read(raw);
      if (!result.ok) {
        addSkip(tally, {
          reason: result.reason,
          detail: result.detail,
          ...(result.requestId !== undefined ? { requestId: result.requestId.slice(0, 100) } : {}),
          ...(at !== undefined ? { where: at } : {}),
        });
        continue;
      }
      const valid = validateEvent(result.event, { nowMs, boundAppId: target.boundAppId });
      if (!valid.ok) {
        addSkip(tally, {
          reason: 'invalid_event',
          detail: valid.issues.map((i) => `${i.field}: ${i.reason}`).join('; '),
          requestId: result.requestId,
          ...(at !== undefined ? { where: at } : {}),
        });
        continue;
      }
      events.push(priceEvent(valid.event, target.projectId, catalog));
    }
    for (let i = 0; i < events.length; i += MAX_EVENTS_PER_REQUEST) {
      const counts = await this.sink.submit(events.slice(i, i + MAX_EVENTS_PER_REQUEST));
      tally.imported += counts.accepted;
      tally.duplicates += counts.duplicates;
      tally.conflicts += counts.conflicts;
    }
    return tally;
  }
}
