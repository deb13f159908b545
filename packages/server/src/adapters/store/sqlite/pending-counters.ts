import type { CounterDelta, CounterRange, RuleCounter } from '@tokenwatch/core';
import type Database from 'better-sqlite3';

type Statement = Database.Statement<unknown[], unknown>;
/** `${counterKey}\0${scopeKey}` → bucket start → amount. */
export type CounterDeltas = Map<string, Map<number, number>>;

interface CounterRow {
  rule_id: string;
  scope_key: string;
  bucket_start_ms: number;
  value: number;
}

function keyOf(counterKey: string, scopeKey: string): string {
  return `${counterKey}\u0000${scopeKey}`;
}

/**
 * Rule counters between two folds: the `rule_counters` rows hold what has been folded, and the
 * deltas of the batches appended since (their events are in the event log) live here, so the
 * rule engine and `readCounters` see every event that got its 202. After a crash the deltas are
 * gone with the process and come back when the event log is replayed.
 */
export class PendingCounters {
  private readonly deltas: CounterDeltas = new Map();
  private readonly readFolded: Statement;
  private readonly addFolded: Statement;

  constructor(db: Database.Database) {
    this.readFolded = db.prepare(
      'SELECT rule_id, scope_key, bucket_start_ms, value FROM rule_counters WHERE rule_id = ? AND scope_key = ? AND bucket_start_ms >= ? AND bucket_start_ms <= ?',
    );
    this.addFolded = db.prepare(
      `INSERT INTO rule_counters (rule_id, scope_key, bucket_start_ms, value, updated_at_ms) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (rule_id, scope_key, bucket_start_ms) DO UPDATE SET value = value + excluded.value, updated_at_ms = excluded.updated_at_ms`,
    );
  }

  get isEmpty(): boolean {
    return this.deltas.size === 0;
  }

  /** A batch's deltas, kept apart until its transaction commits (`commit`). */
  stage(deltas: readonly CounterDelta[]): CounterDeltas {
    const staged: CounterDeltas = new Map();
    for (const d of deltas) {
      const key = keyOf(d.counterKey, d.scopeKey);
      let buckets = staged.get(key);
      if (!buckets) {
        buckets = new Map();
        staged.set(key, buckets);
      }
      buckets.set(d.bucketStartMs, (buckets.get(d.bucketStartMs) ?? 0) + d.delta);
    }
    return staged;
  }

  commit(staged: CounterDeltas): void {
    for (const [key, buckets] of staged) {
      let mine = this.deltas.get(key);
      if (!mine) {
        mine = new Map();
        this.deltas.set(key, mine);
      }
      for (const [b, v] of buckets) mine.set(b, (mine.get(b) ?? 0) + v);
    }
  }

  /** The counters in `reads` as they are with the pending and the staged deltas. */
  rows(reads: readonly CounterRange[], staged: CounterDeltas): RuleCounter[] {
    const out: RuleCounter[] = [];
    for (const r of reads) {
      const values = new Map<number, number>();
      for (const row of this.readFolded.all(
        r.counterKey,
        r.scopeKey,
        r.fromMs,
        r.toMs,
      ) as CounterRow[])
        values.set(row.bucket_start_ms, row.value);
      const key = keyOf(r.counterKey, r.scopeKey);
      for (const extra of [this.deltas.get(key), staged.get(key)]) {
        for (const [b, v] of extra ?? []) {
          if (b >= r.fromMs && b <= r.toMs) values.set(b, (values.get(b) ?? 0) + v);
        }
      }
      for (const [bucketStartMs, value] of values)
        out.push({ ruleId: r.counterKey, scopeKey: r.scopeKey, bucketStartMs, value });
    }
    return out;
  }

  /** Adds the pending deltas to counter rows read from the table (bucket starts in [fromMs, toMs)). */
  merge(
    rows: RuleCounter[],
    counterKey: string,
    fromMs: number,
    toMs: number,
    scopeKey: string | undefined,
  ): RuleCounter[] {
    if (this.deltas.size === 0) return rows;
    const byKey = new Map(rows.map((r) => [`${r.scopeKey}\u0000${r.bucketStartMs}`, r]));
    const prefix = `${counterKey}\u0000`;
    for (const [key, buckets] of this.deltas) {
      if (!key.startsWith(prefix)) continue;
      const scope = key.slice(prefix.length);
      if (scopeKey !== undefined && scope !== scopeKey) continue;
      for (const [b, v] of buckets) {
        if (b < fromMs || b >= toMs) continue;
        const existing = byKey.get(`${scope}\u0000${b}`);
        if (existing) existing.value += v;
        else {
          const row = { ruleId: counterKey, scopeKey: scope, bucketStartMs: b, value: v };
          byKey.set(`${scope}\u0000${b}`, row);
          rows.push(row);
        }
      }
    }
    return rows.sort(
      (a, b) =>
        a.bucketStartMs - b.bucketStartMs ||
        (a.scopeKey < b.scopeKey ? -1 : a.scopeKey > b.scopeKey ? 1 : 0),
    );
  }

  /** Writes the pending deltas into `rule_counters` (inside the fold's transaction). */
  fold(nowMs: number): void {
    for (const [key, buckets] of this.deltas) {
      const cut = key.indexOf('\u0000');
      const counterKey = key.slice(0, cut);
      const scopeKey = key.slice(cut + 1);
      for (const [b, v] of buckets) this.addFolded.run(counterKey, scopeKey, b, v, nowMs);
    }
  }

  /** The fold committed: the table holds the deltas now. */
  clear(): void {
    this.deltas.clear();
  }
}
