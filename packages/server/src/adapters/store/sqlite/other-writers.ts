import type Database from 'better-sqlite3';

type Statement = Database.Statement<unknown[], unknown>;

/**
 * Other processes may write the same SQLite file: the CLI (`keys create`, a rule saved with the
 * server down, an import), or a second server. Each keeps the unfolded events, their counter
 * deltas and folded counter values in memory, so each write transaction first asks whether
 * another connection changed what that memory mirrors; if so, the caller reads the event log
 * again. The log is the truth: an event is folded exactly once, by whichever process deletes its
 * row in the same transaction. `data_version` moves on any other commit (a checkpoint too), so it
 * only says when to look: the store generation (bumped by folds, counter rebuilds and prunes)
 * and the log's last row say whether anything the memory mirrors changed.
 */
export class OtherWriters {
  /** `PRAGMA data_version` when memory was last synced with the log (-1: sync before use). */
  private seenDataVersion = -1;
  /** The store generation this connection's memory mirrors. */
  private generation = -1;
  private readonly readGeneration: Statement;
  private readonly bumpGeneration: Statement;
  private readonly lastLogSeq: Statement;

  constructor(private readonly db: Database.Database) {
    this.readGeneration = db
      .prepare('SELECT generation FROM store_generation WHERE id = 1')
      .pluck();
    this.bumpGeneration = db
      .prepare(
        'UPDATE store_generation SET generation = generation + 1 WHERE id = 1 RETURNING generation',
      )
      .pluck();
    this.lastLogSeq = db.prepare('SELECT MAX(seq) FROM event_log').pluck();
  }

  /**
   * Inside a write transaction: calls `reload` when another connection changed the log or the
   * counters since this one last looked (`lastRowSeq`: the last log row this connection knows).
   * Returns whether it did.
   */
  sync(lastRowSeq: number, reload: () => void): boolean {
    const version = this.db.pragma('data_version', { simple: true }) as number;
    if (version === this.seenDataVersion) return false;
    const generation = this.readGeneration.get() as number;
    const lastSeq = (this.lastLogSeq.get() as number | null) ?? 0;
    const unchanged =
      this.seenDataVersion !== -1 && generation === this.generation && lastSeq === lastRowSeq;
    if (!unchanged) reload();
    this.generation = generation;
    this.seenDataVersion = version;
    return !unchanged;
  }

  /**
   * The store generation as of this connection's last sync or bump: inside a write transaction
   * (after `sync`), the generation its commit belongs to.
   */
  get currentGeneration(): number {
    return this.generation;
  }

  /** Inside a transaction that leaves other connections' memory stale. */
  bump(): void {
    this.generation = this.bumpGeneration.get() as number;
  }

  /** Another connection committed since this one last synced. */
  committedSinceSync(): boolean {
    return this.db.pragma('data_version', { simple: true }) !== this.seenDataVersion;
  }

  /** A write transaction rolled back: what it synced into memory is not to be trusted. */
  distrust(): void {
    this.seenDataVersion = -1;
  }
}
