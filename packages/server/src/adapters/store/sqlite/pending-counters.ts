import type { BatchPlan, CounterRange, CounterValues, RuleCounter } from '@tokenwatch/core';
import type Database from 'better-sqlite3';
import { stringEntryBytes } from './id-dictionary.js';

type Statement = Database.Statement<unknown[], unknown>;
/** `${counterKey}\0${scopeKey}` → bucket start → amount. */
export type CounterDeltas = Map<string, Map<number, number>>;

interface CounterRow {
  rule_id: string;
  scope_key: string;
  bucket_start_ms: number;
  value: number;
}

/**
 * What the folded values cached in memory hold at most, by estimate: past it the buckets read
 * least recently are dropped (and read again when needed). In bytes, not values: a scope key
 * is often ~100 characters, and the former cap of 2,000,000 values (hours of hourly buckets
 * of a rule scoped by user × model) held hundreds of MiB.
 */
export const DEFAULT_FOLDED_CACHE_BUDGET_BYTES = 32 * 1024 * 1024;
/** A bucket read this many times one scope key at a time is read whole instead. */
const READS_BEFORE_WHOLE_BUCKET = 64;

/** Folded values of one counter bucket (`${counterKey}\0${bucket}`) this process has read. */
interface BucketCache {
  /** Scope key → folded value (0: no row). */
  values: Map<string, number>;
  /** Every scope key of the bucket is in `values`: a missing one is 0. */
  whole: boolean;
  reads: number;
  /** Estimated heap bytes of `values`. */
  bytes: number;
  /** When it was read last (`now()`): buckets read within HOT_MS are never dropped. */
  readAtMs: number;
}

/**
 * Buckets read within this long are the working set (the current windows of the rules in use): they
 * are kept whatever the budget. Dropping them thrashed: with 10k users over their apps and models,
 * the current hour's bucket of a per-user rule outgrew the 32 MiB budget, was dropped at every read
 * and read whole again, and ingest fell from 12–29k to 2–4k events/s (docs/benchmarks-history.md §
 * Soak). The budget bounds the buckets nobody reads any more.
 */
const HOT_MS = 2_000;

/** A cached value's heap bytes: its scope key (often a slice of a longer key) and its slot. */
function valueBytes(scopeKey: string): number {
  return stringEntryBytes(scopeKey);
}

function keyOf(counterKey: string, scopeKey: string): string {
  return `${counterKey}\u0000${scopeKey}`;
}

/** One bucket's pending delta, and how many unfolded batches it sums. */
interface PendingDelta {
  value: number;
  /** At 0 the entry goes: a batch whose delta is 0 still makes the bucket exist (a 0 row). */
  batches: number;
}

/** A batch's deltas, kept until the fold chunk holding its log row commits. */
interface BatchDeltas {
  /** The batch's (last) event-log row. */
  seq: number;
  deltas: CounterDeltas;
}

/**
 * Rule counters between two folds: the `rule_counters` rows hold what has been folded, and the
 * deltas of the batches appended since (their events are in the event log) live here, so the
 * rule engine and `readCounters` see every event that got its 202. After a crash the deltas are
 * gone with the process and come back when the event log is replayed.
 *
 * The fold runs in chunks of log rows (see EventLogFold), so each batch's deltas are kept
 * apart by log position: a chunk writes exactly the deltas of the rows it deletes. Their sum is
 * kept too, for reads; a chunk's deltas leave it when the chunk commits.
 */
export class PendingCounters {
  /** The sum of every unfolded batch's deltas (what reads add to the folded values). */
  private readonly deltas = new Map<string, Map<number, PendingDelta>>();
  /** The unfolded batches' deltas, in log order (from `head` on). */
  private batches: BatchDeltas[] = [];
  private head = 0;
  /** What the fold chunk in progress wrote (applied to memory when it commits). */
  private chunk: { upToSeq: number; deltas: CounterDeltas } | undefined;
  /**
   * Folded values of calendar buckets read before, kept equal to the table: a fold adds its
   * deltas to them, a rule save clears them. A calendar rule reads one bucket per scope key and
   * batch; a bucket read often (the current window of a rule scoped by user) is read whole
   * once, after which a scope key it does not hold is known to be 0 without a query.
   */
  private readonly folded = new Map<string, BucketCache>();
  /** Estimated heap bytes of every bucket's values (at most `budgetBytes` between reads). */
  private cachedBytes = 0;
  /** The bucket read last (already last in `folded`'s order). */
  private lastBucketKey: string | undefined;
  private readonly readFolded: Statement;
  private readonly readOne: Statement;
  private readonly readBucket: Statement;
  private readonly addFolded: Statement;

  constructor(
    db: Database.Database,
    private readonly budgetBytes = DEFAULT_FOLDED_CACHE_BUDGET_BYTES,
    private readonly now: () => number = Date.now,
  ) {
    this.readFolded = db.prepare(
      'SELECT rule_id, scope_key, bucket_start_ms, value FROM rule_counters WHERE rule_id = ? AND scope_key = ? AND bucket_start_ms >= ? AND bucket_start_ms <= ?',
    );
    this.readOne = db
      .prepare(
        'SELECT value FROM rule_counters WHERE rule_id = ? AND scope_key = ? AND bucket_start_ms = ?',
      )
      .pluck();
    this.readBucket = db.prepare(
      'SELECT scope_key, value FROM rule_counters WHERE rule_id = ? AND bucket_start_ms = ?',
    );
    this.addFolded = db.prepare(
      `INSERT INTO rule_counters (rule_id, scope_key, bucket_start_ms, value, updated_at_ms) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (rule_id, scope_key, bucket_start_ms) DO UPDATE SET value = value + excluded.value, updated_at_ms = excluded.updated_at_ms`,
    );
  }

  /** Estimated heap bytes of the folded values cached now. */
  get foldedCacheBytes(): number {
    return this.cachedBytes;
  }

  get isEmpty(): boolean {
    return this.deltas.size === 0;
  }

  /** Counter rows (scope × bucket) the unfolded batches touch: what folding them all writes. */
  get pendingRows(): number {
    let rows = 0;
    for (const buckets of this.deltas.values()) rows += buckets.size;
    return rows;
  }

  /** A batch's deltas (its plan's touches), kept apart until its transaction commits. */
  stage(plan: BatchPlan): CounterDeltas {
    const staged: CounterDeltas = new Map();
    for (const t of plan.touches) staged.set(keyOf(t.counterKey, t.scopeKey), t.deltas);
    return staged;
  }

  /** The batch's transaction committed; `seq`: its event-log row (the last, for several). */
  commit(staged: CounterDeltas, seq: number): void {
    for (const [key, buckets] of staged) {
      let mine = this.deltas.get(key);
      if (!mine) {
        mine = new Map();
        this.deltas.set(key, mine);
      }
      for (const [b, v] of buckets) {
        const pending = mine.get(b);
        if (pending) {
          pending.value += v;
          pending.batches++;
        } else mine.set(b, { value: v, batches: 1 });
      }
    }
    this.batches.push({ seq, deltas: staged });
  }

  /**
   * The counters in `reads` as they are with the pending and the staged deltas (a calendar read
   * is one bucket: its staged delta is added once, as its pending one).
   */
  values(reads: readonly CounterRange[], staged: CounterDeltas): CounterValues {
    const out = new Map<string, Map<number, number>>();
    for (const r of reads) {
      const key = keyOf(r.counterKey, r.scopeKey);
      let values = out.get(key);
      if (!values) {
        values = new Map();
        out.set(key, values);
      }
      if (r.fromMs === r.toMs) {
        const value = this.foldedValue(r.counterKey, r.scopeKey, r.fromMs);
        if (value !== 0) values.set(r.fromMs, value);
      } else {
        for (const row of this.readFolded.all(
          r.counterKey,
          r.scopeKey,
          r.fromMs,
          r.toMs,
        ) as CounterRow[])
          values.set(row.bucket_start_ms, row.value);
      }
      for (const [b, d] of this.deltas.get(key) ?? []) {
        if (b >= r.fromMs && b <= r.toMs) values.set(b, (values.get(b) ?? 0) + d.value);
      }
      for (const [b, v] of staged.get(key) ?? []) {
        if (b >= r.fromMs && b <= r.toMs) values.set(b, (values.get(b) ?? 0) + v);
      }
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
      for (const [b, d] of buckets) {
        if (b < fromMs || b >= toMs) continue;
        const existing = byKey.get(`${scope}\u0000${b}`);
        if (existing) existing.value += d.value;
        else {
          const row = { ruleId: counterKey, scopeKey: scope, bucketStartMs: b, value: d.value };
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

  /**
   * Writes the deltas of the batches whose log rows are at or before `upToSeq` into
   * `rule_counters`, summed per bucket (inside the fold chunk's transaction, which deletes
   * exactly those log rows).
   */
  fold(upToSeq: number, nowMs: number): void {
    const deltas = this.deltasUpTo(upToSeq);
    for (const [key, buckets] of deltas) {
      const cut = key.indexOf('\u0000');
      const counterKey = key.slice(0, cut);
      const scopeKey = key.slice(cut + 1);
      for (const [b, v] of buckets) this.addFolded.run(counterKey, scopeKey, b, v, nowMs);
    }
    this.chunk = { upToSeq, deltas };
  }

  /** The sum of the deltas of the batches at or before `upToSeq`. */
  private deltasUpTo(upToSeq: number): CounterDeltas {
    const last = this.batches[this.batches.length - 1];
    if (last !== undefined && last.seq <= upToSeq) {
      // Every pending batch: their sum is kept already.
      const all: CounterDeltas = new Map();
      for (const [key, buckets] of this.deltas) {
        const values = new Map<number, number>();
        for (const [b, d] of buckets) values.set(b, d.value);
        all.set(key, values);
      }
      return all;
    }
    const sum: CounterDeltas = new Map();
    for (let i = this.head; i < this.batches.length; i++) {
      const batch = this.batches[i] as BatchDeltas;
      if (batch.seq > upToSeq) break;
      for (const [key, buckets] of batch.deltas) {
        let mine = sum.get(key);
        if (!mine) {
          mine = new Map();
          sum.set(key, mine);
        }
        for (const [b, v] of buckets) mine.set(b, (mine.get(b) ?? 0) + v);
      }
    }
    return sum;
  }

  /** The fold chunk's transaction rolled back: the table holds none of its deltas. */
  rolledBack(): void {
    this.chunk = undefined;
  }

  /**
   * The fold chunk committed: the table holds its deltas now, so they move from the pending
   * sum to the cached folded values.
   */
  foldCommitted(): void {
    const chunk = this.chunk;
    if (!chunk) return;
    this.chunk = undefined;
    for (const [key, buckets] of chunk.deltas) {
      const cut = key.indexOf('\u0000');
      const counterKey = key.slice(0, cut);
      const scopeKey = key.slice(cut + 1);
      for (const [b, v] of buckets) {
        const cache = this.folded.get(`${counterKey}\u0000${b}`);
        if (!cache) continue;
        const value = cache.values.get(scopeKey);
        if (value !== undefined) cache.values.set(scopeKey, value + v);
        else if (cache.whole) {
          cache.values.set(scopeKey, v);
          cache.bytes += valueBytes(scopeKey);
          this.cachedBytes += valueBytes(scopeKey);
        }
      }
    }
    const last = this.batches[this.batches.length - 1];
    if (last === undefined || last.seq <= chunk.upToSeq) {
      // Every pending batch was folded: nothing is left of the sum.
      this.deltas.clear();
      this.dropBatchesBefore(this.batches.length);
      return;
    }
    let i = this.head;
    while (i < this.batches.length && (this.batches[i] as BatchDeltas).seq <= chunk.upToSeq) {
      this.subtract((this.batches[i] as BatchDeltas).deltas);
      i++;
    }
    this.dropBatchesBefore(i);
  }

  /** A folded batch's deltas leave the pending sum. */
  private subtract(deltas: CounterDeltas): void {
    for (const [key, buckets] of deltas) {
      const mine = this.deltas.get(key);
      if (!mine) continue;
      for (const [b, v] of buckets) {
        const pending = mine.get(b);
        if (!pending) continue;
        pending.value -= v;
        if (--pending.batches === 0) mine.delete(b);
      }
      if (mine.size === 0) this.deltas.delete(key);
    }
  }

  /** Forgets the batches before index `end` (compacting the queue now and then). */
  private dropBatchesBefore(end: number): void {
    for (let i = this.head; i < end; i++) this.batches[i] = undefined as unknown as BatchDeltas;
    this.head = end;
    if (this.head === this.batches.length) {
      this.batches = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.batches.length) {
      this.batches = this.batches.slice(this.head);
      this.head = 0;
    }
  }

  /** Counters were written outside the fold (a rule save rebuilt them): forget what was read. */
  forgetFolded(): void {
    this.folded.clear();
    this.cachedBytes = 0;
  }

  /** Another process wrote: the deltas are read again from the log, the folded values from the table. */
  forgetAll(): void {
    this.deltas.clear();
    this.batches = [];
    this.head = 0;
    this.chunk = undefined;
    this.forgetFolded();
  }

  /**
   * Drops the buckets read least recently until the cache holds three quarters of its budget
   * (a bucket is dropped whole: a `whole` one must stay complete or go). The current window's
   * bucket, read at every batch, is the most recent; an hour-old one goes first.
   */
  private evictPastBudget(nowMs: number): void {
    if (this.cachedBytes <= this.budgetBytes) return;
    for (const [key, cache] of this.folded) {
      if (this.cachedBytes <= (this.budgetBytes * 3) / 4) break;
      // In recency order: this one and all after it are the working set.
      if (nowMs - cache.readAtMs < HOT_MS) break;
      this.folded.delete(key);
      this.cachedBytes -= cache.bytes;
    }
  }

  private foldedValue(counterKey: string, scopeKey: string, bucket: number): number {
    const nowMs = this.now();
    this.evictPastBudget(nowMs);
    const bucketKey = `${counterKey}\u0000${bucket}`;
    let cache = this.folded.get(bucketKey);
    if (!cache) {
      cache = { values: new Map(), whole: false, reads: 0, bytes: 0, readAtMs: nowMs };
      this.folded.set(bucketKey, cache);
    } else if (this.lastBucketKey !== bucketKey) {
      // Map order is the recency order eviction walks: move this bucket to the end.
      this.folded.delete(bucketKey);
      this.folded.set(bucketKey, cache);
    }
    cache.readAtMs = nowMs;
    this.lastBucketKey = bucketKey;
    const known = cache.values.get(scopeKey);
    if (known !== undefined) return known;
    if (cache.whole) return 0;
    if (++cache.reads >= READS_BEFORE_WHOLE_BUCKET) {
      for (const row of this.readBucket.all(counterKey, bucket) as Array<{
        scope_key: string;
        value: number;
      }>) {
        if (!cache.values.has(row.scope_key)) {
          cache.bytes += valueBytes(row.scope_key);
          this.cachedBytes += valueBytes(row.scope_key);
        }
        cache.values.set(row.scope_key, row.value);
      }
      cache.whole = true;
      return cache.values.get(scopeKey) ?? 0;
    }
    const value = (this.readOne.get(counterKey, scopeKey, bucket) as number | undefined) ?? 0;
    cache.values.set(scopeKey, value);
    cache.bytes += valueBytes(scopeKey);
    this.cachedBytes += valueBytes(scopeKey);
    return value;
  }
}
