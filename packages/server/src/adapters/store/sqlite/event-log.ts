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

/** A batch's events waiting in the log (several batches' rows, after a re-read of the log). */
interface PendingBatch {
  firstSeq: number;
  /** Its (last) log row. */
  seq: number;
  events: readonly PricedEvent[];
  appendedMs: number;
}

/** Log rows to fold in one transaction, in log order. */
export interface FoldChunk {
  events: PricedEvent[];
  /** The last log row of the chunk: the fold deletes every row up to it. */
  upToSeq: number;
}

/**
 * The durable part of a 202 on SQLite: each batch's new events are appended to `event_log` as
 * ONE row, in the batch's transaction (with the id claims and the alerts it fired), and folded
 * into the rollups and rule counters later, in chunks of whole rows in log order, each in a
 * transaction that also deletes the rows it folded. So the log holds exactly the events not
 * folded yet: after a crash they are replayed (`unfolded`), and nothing is counted twice or lost.
 */
export class EventLog {
  private readonly insert: Statement;
  private readonly deleteUpTo: Statement;
  /** The unfolded batches, in log order, from `head` on. */
  private batches: PendingBatch[] = [];
  private head = 0;
  private events = 0;

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

  /**
   * The batch's transaction committed: its events wait for the fold. `firstSeq`: its first log
   * row when it spans several (a re-read of the log), else `seq`.
   */
  appended(fresh: readonly PricedEvent[], seq: number, nowMs: number, firstSeq = seq): void {
    this.batches.push({ firstSeq, seq, events: fresh, appendedMs: nowMs });
    this.events += fresh.length;
  }

  get pendingEvents(): number {
    return this.events;
  }

  /** When the oldest pending event was appended (undefined when none is pending). */
  get pendingSinceMs(): number | undefined {
    return this.batches[this.head]?.appendedMs;
  }

  /**
   * The first pending batches, in log order, up to the one at `lastSeq`, with at most
   * `maxEvents` events (but at least one batch, however large: a batch is one log row).
   */
  chunk(maxEvents: number, lastSeq: number): FoldChunk {
    const events: PricedEvent[] = [];
    let upToSeq = 0;
    for (let i = this.head; i < this.batches.length; i++) {
      const batch = this.batches[i] as PendingBatch;
      if (batch.seq > lastSeq) break;
      if (events.length > 0 && events.length + batch.events.length > maxEvents) break;
      for (const e of batch.events) events.push(e);
      upToSeq = batch.seq;
    }
    return { events, upToSeq };
  }

  /** Inside the fold's transaction: the folded rows leave the log. */
  deleteFolded(upToSeq: number): void {
    this.deleteUpTo.run(upToSeq);
  }

  /** The fold (chunk) that deleted the rows up to `upToSeq` committed. */
  folded(upToSeq: number): void {
    let i = this.head;
    while (i < this.batches.length && (this.batches[i] as PendingBatch).seq <= upToSeq) {
      this.events -= (this.batches[i] as PendingBatch).events.length;
      this.batches[i] = undefined as unknown as PendingBatch;
      i++;
    }
    this.head = i;
    if (this.head === this.batches.length) {
      this.batches = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.batches.length) {
      this.batches = this.batches.slice(this.head);
      this.head = 0;
    }
  }

  /** The first log row this connection knows of (0: it knows of none). */
  get firstRowSeq(): number {
    return this.batches[this.head]?.firstSeq ?? 0;
  }

  /** The last log row this connection knows of (0: it knows of none). */
  get lastRowSeq(): number {
    return this.batches.length > this.head
      ? (this.batches[this.batches.length - 1] as PendingBatch).seq
      : 0;
  }

  /** Memory no longer matches the log (another process wrote it): `unfolded` reads it again. */
  forget(): void {
    this.batches = [];
    this.head = 0;
    this.events = 0;
  }

  /**
   * The events not folded yet, in log order (the log as it is now, whoever appended them), as
   * one part, or two when `splitAfterSeq` falls inside the log: the rows up to it and the rest
   * (a fold chunk left half written ends there, and is folded again exactly; see EventLogFold).
   */
  unfolded(
    splitAfterSeq?: number,
  ): Array<{ events: PricedEvent[]; firstSeq: number; upToSeq: number }> {
    const rows = this.db.prepare('SELECT seq, events FROM event_log ORDER BY seq').all() as Array<{
      seq: number;
      events: string;
    }>;
    const parts: Array<{ events: PricedEvent[]; firstSeq: number; upToSeq: number }> = [];
    for (const r of rows) {
      let part = parts[parts.length - 1];
      const split =
        part !== undefined &&
        splitAfterSeq !== undefined &&
        part.upToSeq <= splitAfterSeq &&
        r.seq > splitAfterSeq;
      if (part === undefined || split) {
        part = { events: [], firstSeq: r.seq, upToSeq: r.seq };
        parts.push(part);
      }
      for (const e of decodeEvents(r.events)) part.events.push(e);
      part.upToSeq = r.seq;
    }
    return parts;
  }
}
