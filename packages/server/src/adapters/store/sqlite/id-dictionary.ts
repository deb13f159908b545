import type Database from 'better-sqlite3';
import { GenerationalCache } from '../../../util/generational-cache.js';

type Statement = Database.Statement<unknown[], unknown>;

/**
 * What the writer's id caches hold at most, by estimate (see GenerationalCache): past it the
 * least recently used ids are dropped and read again from the database when seen again. Sized
 * in bytes, not entries: a long tail of users makes a series key ~100 characters, and a cap of
 * a million entries per dictionary (reached only after hours) held hundreds of MiB.
 */
export const DEFAULT_ID_CACHE_BUDGET_BYTES = 64 * 1024 * 1024;
/**
 * Heap bytes of a string-keyed entry, measured on a heap snapshot of the soak bench: a key
 * built by a template literal is a tree of cons strings that keeps its parts alive, ~2 bytes
 * per character all told, plus ~100 for the map's slot and the string headers.
 */
export function stringEntryBytes(key: string): number {
  return 2 * key.length + 96;
}

/**
 * A cached string → integer id dictionary over one table (series, tags, ...). Ids created inside
 * a transaction that rolls back do not exist: they are forgotten again (`rolledBack`).
 */
export class IdDictionary {
  private readonly ids: GenerationalCache<string, number>;
  private pending: string[] = [];
  private readonly find: Statement;
  private readonly insert: Statement;

  constructor(
    db: Database.Database,
    table: string,
    idColumn: string,
    columns: string[],
    budgetBytes: number,
  ) {
    this.ids = new GenerationalCache(budgetBytes, stringEntryBytes);
    this.find = db
      .prepare(
        `SELECT ${idColumn} FROM ${table} WHERE ${columns.map((c) => `${c} = ?`).join(' AND ')}`,
      )
      .pluck();
    // A key not in the cache is most often new (a long tail of users): try the insert first,
    // and look the id up only when it existed already (one statement instead of two).
    this.insert = db
      .prepare(
        `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})
         ON CONFLICT DO NOTHING RETURNING ${idColumn}`,
      )
      .pluck();
  }

  idOf(key: string, values: readonly string[]): number {
    let id = this.ids.get(key);
    if (id === undefined) {
      const inserted = this.insert.get(...values) as number | undefined;
      id = inserted ?? (this.find.get(...values) as number);
      this.ids.set(key, id);
      if (inserted !== undefined) this.pending.push(key);
    }
    return id;
  }

  get bytes(): number {
    return this.ids.bytes;
  }

  /** Ids inserted by the running transaction. */
  get inserted(): number {
    return this.pending.length;
  }

  committed(): void {
    this.pending = [];
  }

  rolledBack(): void {
    for (const k of this.pending) this.ids.delete(k);
    this.pending = [];
  }
}
