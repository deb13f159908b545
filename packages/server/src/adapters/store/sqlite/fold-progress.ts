import type Database from 'better-sqlite3';
import type { RowKey } from './rollup-plan.js';

type Statement = Database.Statement<unknown[], unknown>;

interface ProgressRow {
  table_name: string;
  up_to_seq: number;
  bucket_ms: number;
  tag_id: number;
  series_id: number;
}

/** A fold chunk left half written: its last log row, and per rollup table the last row written. */
export interface StoredProgress {
  upToSeq: number;
  written: Map<string, RowKey>;
}

/** The stored progress rows as one comparable text (order-independent). */
function fingerprint(rows: readonly ProgressRow[]): string {
  return rows
    .map((r) => `${r.table_name}:${r.up_to_seq}:${r.bucket_ms}:${r.tag_id}:${r.series_id}`)
    .sort()
    .join('|');
}

/**
 * `fold_progress`: how far the fold chunk in progress has written its rollup rows (see
 * EventLogFold). Also tells whether the rows stored are still the ones this connection wrote
 * last: if another process wrote some meanwhile (it resumed the chunk), this connection's own
 * count of rows written is stale and the chunk must be planned again from what is stored.
 */
export class FoldProgress {
  private readonly readAll: Statement;
  private readonly upsert: Statement;
  private readonly deleteAll: Statement;
  /** The stored rows as of this connection's last commit or read (undefined: not known). */
  private known: string | undefined = '';
  /** What `known` becomes if the running transaction commits. */
  private staged: ProgressRow[] | undefined;
  /** The rows this connection believes stored (the base `record` adds to). */
  private rows: ProgressRow[] = [];

  constructor(db: Database.Database) {
    this.readAll = db.prepare(
      'SELECT table_name, up_to_seq, bucket_ms, tag_id, series_id FROM fold_progress',
    );
    this.upsert = db.prepare(
      `INSERT INTO fold_progress (table_name, up_to_seq, bucket_ms, tag_id, series_id) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (table_name) DO UPDATE SET up_to_seq = excluded.up_to_seq, bucket_ms = excluded.bucket_ms, tag_id = excluded.tag_id, series_id = excluded.series_id`,
    );
    this.deleteAll = db.prepare('DELETE FROM fold_progress');
  }

  /** Inside a transaction: whether the stored rows are those this connection knows of. */
  unchanged(): boolean {
    if (this.known === undefined) return false;
    return fingerprint(this.readAll.all() as ProgressRow[]) === this.known;
  }

  /** Inside a transaction: the progress stored (undefined: no chunk is half written). */
  read(): StoredProgress | undefined {
    const rows = this.readAll.all() as ProgressRow[];
    this.rows = rows;
    this.known = fingerprint(rows);
    if (rows.length === 0) return undefined;
    const upToSeq = (rows[0] as ProgressRow).up_to_seq;
    if (rows.some((r) => r.up_to_seq !== upToSeq)) {
      throw new Error(`fold progress rows are of different chunks: ${this.known}`);
    }
    return {
      upToSeq,
      written: new Map(
        rows.map((r) => [
          r.table_name,
          { bucketMs: r.bucket_ms, tagId: r.tag_id, seriesId: r.series_id },
        ]),
      ),
    };
  }

  /** Inside a transaction: the last row written per table, of the chunk ending at `upToSeq`. */
  record(upToSeq: number, last: ReadonlyMap<string, RowKey>): void {
    const next = new Map(this.rows.map((r) => [r.table_name, r]));
    for (const [table, key] of last) {
      this.upsert.run(table, upToSeq, key.bucketMs, key.tagId, key.seriesId);
      next.set(table, {
        table_name: table,
        up_to_seq: upToSeq,
        bucket_ms: key.bucketMs,
        tag_id: key.tagId,
        series_id: key.seriesId,
      });
    }
    this.staged = [...next.values()];
  }

  /** Inside a transaction: the chunk is done (its log rows are deleted in the same one). */
  clear(): void {
    this.deleteAll.run();
    this.staged = [];
  }

  committed(): void {
    if (this.staged === undefined) return;
    this.rows = this.staged;
    this.known = fingerprint(this.staged);
    this.staged = undefined;
  }

  /** The transaction rolled back: what is stored is read again before it is trusted. */
  rolledBack(): void {
    this.staged = undefined;
    this.known = undefined;
  }

  /** The chunk the stored progress belongs to, if any (for a read of the log that must split there). */
  static storedUpToSeq(db: Database.Database): number | undefined {
    const seq = db.prepare('SELECT MIN(up_to_seq) FROM fold_progress').pluck().get() as
      | number
      | null;
    return seq ?? undefined;
  }
}
