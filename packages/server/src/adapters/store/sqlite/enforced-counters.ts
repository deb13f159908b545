import type { RuleCounter } from '@tokenwatch/core';
import Database from 'better-sqlite3';

type Statement = Database.Statement<unknown[], unknown>;

/** `${counterKey}\0${scopeKey}` → bucket start → value at the batch's commit. */
type Values = Map<string, Map<number, number>>;

/**
 * The counters of enforcing rules, answered on the thread that serves `POST /v1/check`, so a
 * check never waits for the SQLite writer thread (its queue, a fold of the event log, or just
 * being scheduled on a busy machine): the folded values from a read-only connection of this
 * thread, plus the values the writer reported for every batch it has not folded yet.
 *
 * Why that sum is exact: each batch's result carries the values of the enforcing counters it
 * touched (folded + unfolded, at its commit) and the store generation at its commit. The writer
 * folds the event log in chunks, in log order, and bumps the generation when a fold begins; a
 * fold begins only once the previous one is done (see EventLogFold), and rule saves, deletions
 * and prunes fold everything and then bump it by two. So a read of the generation G and the
 * counter rows in one snapshot has every batch of generation G - 2 or lower in the rows; of the
 * batches of G - 1 and G, the rows hold those of a prefix of the log. Counters only grow between
 * rule changes (the enforcer forgets its cache on those), and a reported value is the total at
 * its batch's commit: if the last batch that touched a bucket is folded, the row is the current
 * value and every report is at most that; if not, its report is the current value and the row,
 * a sum over earlier batches, at most that. Either way the larger of the row and the reported
 * values of generations G - 1 and G is the current one. A batch whose result has not reached
 * this thread has no 202 yet. Another process's events are folded by the writer within its poll
 * (see sqlite-worker.ts).
 */
export class EnforcedCounters {
  /** Reported values by generation; only the generations not yet known to be folded are kept. */
  private readonly byGeneration = new Map<number, Values>();
  private newestGeneration = -1;
  private db: Database.Database | undefined;
  private readSnapshot: (() => { generation: number; rows: RuleCounter[] }) | undefined;
  private bind: { counterKey: string; scopeKey: string; fromMs: number; toMs: number } = {
    counterKey: '',
    scopeKey: '',
    fromMs: 0,
    toMs: 0,
  };

  constructor(private readonly path: string) {}

  /** After the writer migrated the file: opens this thread's read-only connection. */
  open(): void {
    if (this.db) return;
    const db = new Database(this.path, { readonly: true, fileMustExist: true });
    // A reader waits only for a WAL reset; a longer wait is answered by the writer instead.
    db.pragma('busy_timeout = 100');
    const generation = db
      .prepare('SELECT generation FROM store_generation WHERE id = 1')
      .pluck() as Statement;
    const counters = db.prepare(
      'SELECT bucket_start_ms AS bucketStartMs, value FROM rule_counters WHERE rule_id = ? AND scope_key = ? AND bucket_start_ms >= ? AND bucket_start_ms < ? ORDER BY bucket_start_ms',
    );
    // One read transaction: the generation and the rows are of the same snapshot.
    const snapshot = db.transaction(() => {
      const b = this.bind;
      return {
        generation: generation.get() as number,
        rows: (
          counters.all(b.counterKey, b.scopeKey, b.fromMs, b.toMs) as {
            bucketStartMs: number;
            value: number;
          }[]
        ).map((r) => ({
          ruleId: b.counterKey,
          scopeKey: b.scopeKey,
          bucketStartMs: r.bucketStartMs,
          value: r.value,
        })),
      };
    });
    this.db = db;
    this.readSnapshot = () => snapshot.deferred();
  }

  /** A batch committed (its result reached this thread, before its 202). */
  committed(generation: number, counters: readonly RuleCounter[]): void {
    this.forgetFoldedAt(generation);
    if (counters.length === 0) return;
    let values = this.byGeneration.get(generation);
    if (!values) {
      values = new Map();
      this.byGeneration.set(generation, values);
    }
    for (const c of counters) {
      const key = `${c.ruleId}\u0000${c.scopeKey}`;
      let buckets = values.get(key);
      if (!buckets) {
        buckets = new Map();
        values.set(key, buckets);
      }
      buckets.set(c.bucketStartMs, Math.max(buckets.get(c.bucketStartMs) ?? 0, c.value));
    }
  }

  /**
   * The store is at `generation`: batches of two generations before it or older are folded, so
   * what they reported is in the rows.
   */
  private forgetFoldedAt(generation: number): void {
    if (generation <= this.newestGeneration) return;
    this.newestGeneration = generation;
    for (const g of this.byGeneration.keys()) if (g < generation - 1) this.byGeneration.delete(g);
  }

  /**
   * The counter buckets of one scope key of an enforcing counter, bucket start in [fromMs, toMs),
   * or undefined when this thread cannot read them (no connection yet, or the file is busy).
   */
  read(
    counterKey: string,
    fromMs: number,
    toMs: number,
    scopeKey: string,
  ): RuleCounter[] | undefined {
    if (!this.readSnapshot) return undefined;
    this.bind = { counterKey, scopeKey, fromMs, toMs };
    let snapshot: { generation: number; rows: RuleCounter[] };
    try {
      snapshot = this.readSnapshot();
    } catch {
      return undefined;
    }
    this.forgetFoldedAt(snapshot.generation);
    const key = `${counterKey}\u0000${scopeKey}`;
    const merged = new Map<number, number>();
    for (const r of snapshot.rows) merged.set(r.bucketStartMs, r.value);
    for (const [g, values] of this.byGeneration) {
      if (g < snapshot.generation - 1) continue;
      for (const [bucket, value] of values.get(key) ?? []) {
        if (bucket >= fromMs && bucket < toMs)
          merged.set(bucket, Math.max(merged.get(bucket) ?? 0, value));
      }
    }
    return [...merged]
      .sort((a, b) => a[0] - b[0])
      .map(([bucketStartMs, value]) => ({ ruleId: counterKey, scopeKey, bucketStartMs, value }));
  }

  close(): void {
    this.db?.close();
    this.db = undefined;
    this.readSnapshot = undefined;
  }
}
