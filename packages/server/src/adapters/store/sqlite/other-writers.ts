import type Database from 'better-sqlite3';

type Statement = Database.Statement<unknown[], unknown>;

/**
 * Other processes may write the same SQLite file: the CLI (`keys create`, a rule saved with the
 * server down, an import), or a second server. Each keeps the unfolded events, their counter
 * deltas and folded counter values in memory, so each write transaction first asks whether
 * another connection changed what that memory mirrors; if so, the caller reads the event log
 * again. The log is the truth: an event is folded exactly once, by whichever process deletes its
 * row in the same transaction. `data_version` moves on any other commit (a checkpoint too), so it
 * only says when to look: the store generation (bumped when a fold begins, by counter rebuilds
 * and prunes) and the log's first and last rows say whether anything the memory mirrors changed.
 * A fold runs in chunks (see EventLogFold) that bump the generation only at its start;
 * each later chunk deletes the log's first rows, which moves its first row (or empties it).
 */
export class OtherWriters {
  /** `PRAGMA data_version` when memory was last synced with the log (-1: sync before use). */
  private seenDataVersion = -1;
  /** The store generation this connection's memory mirrors. */
  private generation = -1;
  private readonly readGeneration: Statement;
  private readonly bumpGeneration: Statement;
  private readonly logEnds: Statement;

  constructor(private readonly db: Database.Database) {
    this.readGeneration = db
      .prepare('SELECT generation FROM store_generation WHERE id = 1')
      .pluck();
    this.bumpGeneration = db
      .prepare(
        'UPDATE store_generation SET generation = generation + ? WHERE id = 1 RETURNING generation',
      )
      .pluck();
    // Two subqueries: SQLite finds a lone MIN or MAX of the key in the b-tree, both at once by a scan.
    this.logEnds = db
      .prepare('SELECT (SELECT MIN(seq) FROM event_log), (SELECT MAX(seq) FROM event_log)')
      .raw();
  }

  /**
   * Inside a write transaction: calls `reload` when another connection changed the log or the
   * counters since this one last looked (`firstRowSeq`, `lastRowSeq`: the first and last log rows
   * this connection knows, 0 for none). Returns whether it did.
   */
  sync(firstRowSeq: number, lastRowSeq: number, reload: () => void): boolean {
    const version = this.db.pragma('data_version', { simple: true }) as number;
    if (version === this.seenDataVersion) return false;
    const generation = this.readGeneration.get() as number;
    const [first, last] = this.logEnds.get() as [number | null, number | null];
    const unchanged =
      this.seenDataVersion !== -1 &&
      generation === this.generation &&
      (first ?? 0) === firstRowSeq &&
      (last ?? 0) === lastRowSeq;
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

  /** Inside a transaction that leaves other connections' memory stale (`by`: 2 skips one). */
  bump(by: 1 | 2 = 1): void {
    this.generation = this.bumpGeneration.get(by) as number;
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
