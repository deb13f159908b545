import type { PricedEvent } from '@tokenwatch/core';
import type Database from 'better-sqlite3';

type Statement = Database.Statement<unknown[], unknown>;

/** The fields of a `PricedEvent` in the order a log row stores them. */
const FIELDS = [
  'projectId',
  'id',
  'timestampMs',
  'userId',
  'appId',
  'modelId',
  'provider',
  'inputTokens',
  'outputTokens',
  'cacheReadTokens',
  'cacheWriteTokens',
  'latencyMs',
  'status',
  'tags',
  'costNanoUsd',
  'priced',
  'fingerprint',
] as const satisfies ReadonlyArray<keyof PricedEvent>;

function encode(events: readonly PricedEvent[]): string {
  return JSON.stringify(events.map((e) => FIELDS.map((f) => e[f] ?? null)));
}

function decode(text: string): PricedEvent[] {
  return (JSON.parse(text) as unknown[][]).map((values) => {
    const e: Record<string, unknown> = {};
    FIELDS.forEach((f, i) => {
      e[f] = values[i] ?? undefined;
    });
    return e as unknown as PricedEvent;
  });
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

  /** Appends a batch's new events (inside the caller's transaction); returns its log position. */
  append(fresh: readonly PricedEvent[]): number {
    return Number(this.insert.run(encode(fresh)).lastInsertRowid);
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
    for (const r of rows) for (const e of decode(r.events)) events.push(e);
    return {
      events,
      upToSeq: rows.length > 0 ? (rows[rows.length - 1] as { seq: number }).seq : 0,
    };
  }
}
