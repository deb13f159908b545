import { type BatchPlan, inLockOrder, type RuleCounter } from '@tokenwatch/core';
import type { Queryable } from './postgres-store.js';
import { ROLLING_LOCK_BUCKET } from './rule-locks.js';

export interface CounterRow {
  rule_id: string;
  scope_key: string;
  bucket_start_ms: string | number;
  value: string | number;
}

export function toCounter(r: CounterRow): RuleCounter {
  return {
    ruleId: r.rule_id,
    scopeKey: r.scope_key,
    bucketStartMs: Number(r.bucket_start_ms),
    value: Number(r.value),
  };
}

/**
 * A batch's rule-counter writes, in the caller's transaction: adds the plan's deltas and returns
 * the counter rows the rule engine reads (the calendar buckets it added to, the rolling windows'
 * minutes). Each rolling scope's lock row is upserted with them (see PostgresRules).
 */
export async function writeCounters(
  c: Queryable,
  plan: BatchPlan,
  nowMs: number,
): Promise<RuleCounter[]> {
  // Each rolling scope's lock row sorts before its minutes: the upsert locks it first, and two
  // workers lock every row in the same order (no deadlock).
  const lockRows = plan.touches
    .filter((t) => t.window.type === 'rolling')
    .map((t) => ({
      counterKey: t.counterKey,
      scopeKey: t.scopeKey,
      bucketStartMs: ROLLING_LOCK_BUCKET,
      delta: 0,
    }));
  const deltas = inLockOrder(lockRows.length > 0 ? [...lockRows, ...plan.deltas] : plan.deltas);
  // A calendar window reads exactly the buckets it added to: their new values come back from
  // the upsert. A rolling one sums minutes this batch may not have touched: read after it.
  // An existing lock row is locked, not rewritten: ON CONFLICT DO UPDATE locks every
  // conflicting row, also those its WHERE leaves unchanged (no new tuple version per batch and
  // scope).
  const rollingKeys = new Set(lockRows.map((r) => r.counterKey));
  const upserted = await c.query<CounterRow>(
    `INSERT INTO rule_counters AS rc (rule_id, scope_key, bucket_start_ms, value, updated_at_ms)
     SELECT r, s, b, v, $5 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) WITH ORDINALITY AS u(r, s, b, v, n) ORDER BY n
     ON CONFLICT (rule_id, scope_key, bucket_start_ms) DO UPDATE SET value = rc.value + EXCLUDED.value, updated_at_ms = EXCLUDED.updated_at_ms
       WHERE rc.bucket_start_ms <> ${ROLLING_LOCK_BUCKET}
     RETURNING rc.rule_id, rc.scope_key, rc.bucket_start_ms, rc.value`,
    [
      deltas.map((d) => d.counterKey),
      deltas.map((d) => d.scopeKey),
      deltas.map((d) => d.bucketStartMs),
      deltas.map((d) => d.delta),
      nowMs,
    ],
  );
  const rows: RuleCounter[] = [];
  for (const r of upserted.rows) if (!rollingKeys.has(r.rule_id)) rows.push(toCounter(r));
  const rollingReads = plan.reads.filter((r) => rollingKeys.has(r.counterKey));
  if (rollingReads.length > 0) {
    const read = await c.query<CounterRow>(
      `SELECT c.rule_id, c.scope_key, c.bucket_start_ms, c.value FROM rule_counters c
       JOIN unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS q(r, s, f, t)
         ON c.rule_id = q.r AND c.scope_key = q.s AND c.bucket_start_ms >= q.f AND c.bucket_start_ms <= q.t`,
      [
        rollingReads.map((r) => r.counterKey),
        rollingReads.map((r) => r.scopeKey),
        rollingReads.map((r) => r.fromMs),
        rollingReads.map((r) => r.toMs),
      ],
    );
    for (const r of read.rows) rows.push(toCounter(r));
  }
  return rows;
}
