import type { PricedEvent } from '@tokenwatch/core';
import type Database from 'better-sqlite3';

type Statement = Database.Statement<unknown[], unknown>;

/**
 * A log row holds its events as a JSON array of arrays, one value per field in the order of
 * `rowOfEvent` (missing optional fields as null): about half the text of objects, and what the writer
 * thread receives from the HTTP thread (`encodeEvents` there, `decodeEvents` here), so a batch
 * that is all new is appended as it came, not encoded again.
 */
/** One event as a log row's array (the fields written out, not looped over: it runs per event). */
function rowOfEvent(e: PricedEvent): unknown[] {
  return [
    e.projectId,
    e.id,
    e.timestampMs,
    e.userId,
    e.appId,
    e.modelId,
    e.provider,
    e.inputTokens,
    e.outputTokens,
    e.cacheReadTokens,
    e.cacheWriteTokens,
    e.latencyMs ?? null,
    e.status,
    e.tags ?? null,
    e.costNanoUsd,
    e.priced,
    e.fingerprint,
  ];
}

/** The events as a log row's text. */
export function encodeEvents(events: readonly PricedEvent[]): string {
  const rows: unknown[][] = new Array(events.length);
  for (let i = 0; i < events.length; i++) rows[i] = rowOfEvent(events[i] as PricedEvent);
  return JSON.stringify(rows);
}

/**
 * The events of a log row's text. What a row may hold that a `PricedEvent` may not (a null
 * count: JSON has no NaN) comes back as undefined, and the store refuses it before the fold.
 */
export function decodeEvents(text: string): PricedEvent[] {
  const rows = JSON.parse(text) as unknown[][];
  const events: PricedEvent[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const v = rows[i] as unknown[];
    events[i] = {
      projectId: v[0] ?? undefined,
      id: v[1] ?? undefined,
      timestampMs: v[2] ?? undefined,
      userId: v[3] ?? undefined,
      appId: v[4] ?? undefined,
      modelId: v[5] ?? undefined,
      provider: v[6] ?? undefined,
      inputTokens: v[7] ?? undefined,
      outputTokens: v[8] ?? undefined,
      cacheReadTokens: v[9] ?? undefined,
      cacheWriteTokens: v[10] ?? undefined,
      latencyMs: v[11] ?? undefined,
      status: v[12] ?? undefined,
      tags: v[13] ?? undefined,
      costNanoUsd: v[14] ?? undefined,
      priced: v[15] ?? undefined,
      fingerprint: v[16] ?? undefined,
    } as PricedEvent;
  }
  return events;
}

/**
 * The durable part of a 202 on SQLite: each batch's new events are appended to `event_log` as
 * ONE row, in the batch's transaction (with the id claims and the alerts it fired), and folded
 * into the rollups and rule counters later, many batches at a time, in a transaction that also
 * deletes the rows it folded. So the log holds exactly the events not folded yet: after a crash
 * they are replayed (`unfolded`), and nothing is counted twice or lost.
 */
export class EventLog {
  private readonly insert: Statement;
  private readonly deleteUpTo: Statement;
  private pending: PricedEvent[] = [];
  private lastSeq = 0;
  private oldestMs: number | undefined;

  constructor(private readonly db: Database.Database) {
    this.insert = db.prepare('INSERT INTO event_log (events) VALUES (?)');
    this.deleteUpTo = db.prepare('DELETE FROM event_log WHERE seq <= ?');
  }

  /**
   * Appends a batch's new events (inside the caller's transaction); returns its log position.
   * `encoded`: their text already (`encodeEvents` of exactly `fresh`), when the caller has it.
   */
  append(fresh: readonly PricedEvent[], encoded?: string): number {
    return Number(this.insert.run(encoded ?? encodeEvents(fresh)).lastInsertRowid);
  }

  /** The batch's transaction committed: its events wait for the next fold. */
  appended(fresh: readonly PricedEvent[], seq: number, nowMs: number): void {
    for (const e of fresh) this.pending.push(e);
    this.lastSeq = seq;
    this.oldestMs ??= nowMs;
  }

  get pendingEvents(): number {
    return this.pending.length;
  }

  /** When the oldest pending event was appended (undefined when none is pending). */
  get pendingSinceMs(): number | undefined {
    return this.oldestMs;
  }

  /** The events to fold, and the log position they end at. */
  toFold(): { events: PricedEvent[]; upToSeq: number } {
    return { events: this.pending, upToSeq: this.lastSeq };
  }

  /** Inside the fold's transaction: the folded rows leave the log. */
  deleteFolded(upToSeq: number): void {
    this.deleteUpTo.run(upToSeq);
  }

  /** The fold committed. */
  folded(): void {
    this.pending = [];
    this.oldestMs = undefined;
  }

  /** The last log row this connection knows of (0: it knows of none). */
  get lastRowSeq(): number {
    return this.pending.length > 0 ? this.lastSeq : 0;
  }

  /** Memory no longer matches the log (another process wrote it): `unfolded` reads it again. */
  forget(): void {
    this.pending = [];
    this.lastSeq = 0;
    this.oldestMs = undefined;
  }

  /** The events not folded yet, in log order (the log as it is now, whoever appended them). */
  unfolded(): { events: PricedEvent[]; upToSeq: number } {
    const rows = this.db.prepare('SELECT seq, events FROM event_log ORDER BY seq').all() as Array<{
      seq: number;
      events: string;
    }>;
    const events: PricedEvent[] = [];
    for (const r of rows) for (const e of decodeEvents(r.events)) events.push(e);
    return {
      events,
      upToSeq: rows.length > 0 ? (rows[rows.length - 1] as { seq: number }).seq : 0,
    };
  }
}
