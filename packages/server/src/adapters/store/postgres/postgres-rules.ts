import {
  type AlertQuery,
  type AlertRecord,
  type CompiledRule,
  compileRule,
  counterDeltas,
  counterKeyOf,
  type DeliveryOutcome,
  type DeliveryRecord,
  type DeliveryStatus,
  deliveryIdOf,
  evaluateBatch,
  type NewAlert,
  type PricedEvent,
  type Rule,
  type RuleCounter,
  type RuleStore,
  TokenwatchError,
  windowFor,
} from '@tokenwatch/core';
import type pg from 'pg';
import {
  type AlertRow,
  alertFromRow,
  type DeliveryRow,
  DIM_COLUMN,
  deliveryFromRow,
  METRIC_COLUMN,
} from '../sql-rows.js';
import { pgCode, pgError } from './pg-errors.js';
import { byKey } from './postgres-batch.js';
import type { PostgresStore, Queryable } from './postgres-store.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

const DELIVERY_COLUMNS =
  'd.delivery_id, d.alert_id, d.project_id, d.channel_index, d.channel, d.status, d.attempts, d.next_attempt_ms, d.last_error, d.created_at_ms, d.updated_at_ms, d.delivered_at_ms';

/**
 * Rules, counters, alerts and the outbox on PostgreSQL. `evaluate` runs in the caller's
 * (applyBatch's) transaction and is set-based: the counter deltas of the whole batch are
 * upserted in one statement that returns the new totals, the crossings are computed by the
 * shared `evaluateBatch`, and the alerts are inserted in one statement `ON CONFLICT DO NOTHING
 * RETURNING`, so a concurrent worker that fired the same alert first wins and this one does not
 * report or deliver it again.
 */
export class PostgresRules implements RuleStore {
  constructor(private readonly store: PostgresStore) {}

  async evaluate(
    c: Queryable,
    fresh: readonly PricedEvent[],
    rules: readonly CompiledRule[],
    nowMs: number,
  ): Promise<{ alerts: NewAlert[]; enforcedCounters: RuleCounter[] }> {
    if (rules.length === 0 || fresh.length === 0) return { alerts: [], enforcedCounters: [] };
    const deltas = counterDeltas(fresh, rules);
    if (deltas.length === 0) return { alerts: [], enforcedCounters: [] };
    const k3 = (rule: string, scope: string, bucket: number) =>
      `${rule}\u0000${scope}\u0000${bucket}`;
    const k2 = (rule: string, scope: string) => `${rule}\u0000${scope}`;

    // Rolling windows sum several counter rows: serialise the workers that touch the same
    // (rule, scope) so each sees the other's committed minutes (transaction-scoped lock).
    const rolling = new Map<
      string,
      { ruleId: string; scopeKey: string; from: number; to: number }
    >();
    // Counters are keyed by `counterKey` (rules measuring the same thing share them); alerts by rule.
    const rollingAlerts = new Map<string, { ruleId: string; scopeKey: string }>();
    for (const d of deltas) {
      const w = d.rule.rule.window;
      if (w.type !== 'rolling') continue;
      for (const c of d.rules)
        rollingAlerts.set(k2(c.rule.id, d.scopeKey), { ruleId: c.rule.id, scopeKey: d.scopeKey });
      const key = k2(d.counterKey, d.scopeKey);
      const span = w.minutes * MINUTE_MS;
      const r = rolling.get(key);
      if (r) {
        r.from = Math.min(r.from, d.bucketStartMs - span);
        r.to = Math.max(r.to, d.bucketStartMs);
      } else
        rolling.set(key, {
          ruleId: d.counterKey,
          scopeKey: d.scopeKey,
          from: d.bucketStartMs - span,
          to: d.bucketStartMs,
        });
    }
    if (rolling.size > 0) {
      await c.query(
        'SELECT pg_advisory_xact_lock(hashtextextended(k, 11)) FROM unnest($1::text[]) AS u(k)',
        [[...rolling.values()].map((r) => JSON.stringify([r.ruleId, r.scopeKey])).sort(byKey)],
      );
    }

    // Counters: one upsert for the batch, in key order, returning every new total.
    const sorted = [...deltas].sort(
      (a, b) =>
        byKey(a.counterKey, b.counterKey) ||
        byKey(a.scopeKey, b.scopeKey) ||
        a.bucketStartMs - b.bucketStartMs,
    );
    const upserted = await c.query<{
      rule_id: string;
      scope_key: string;
      bucket_start_ms: number;
      value: number;
    }>(
      `INSERT INTO rule_counters AS rc (rule_id, scope_key, bucket_start_ms, value, updated_at_ms)
       SELECT r, s, b, v, $5 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS u(r, s, b, v)
       ON CONFLICT (rule_id, scope_key, bucket_start_ms) DO UPDATE SET value = rc.value + EXCLUDED.value, updated_at_ms = EXCLUDED.updated_at_ms
       RETURNING rule_id, scope_key, bucket_start_ms, value`,
      [
        sorted.map((d) => d.counterKey),
        sorted.map((d) => d.scopeKey),
        sorted.map((d) => d.bucketStartMs),
        sorted.map((d) => d.delta),
        nowMs,
      ],
    );
    const totals = new Map<string, number>();
    for (const r of upserted.rows)
      totals.set(k3(r.rule_id, r.scope_key, r.bucket_start_ms), r.value);

    // Rolling windows: the minutes they span, and the latest alert window per level.
    const minutes = new Map<string, Array<{ bucket: number; value: number }>>();
    const alertEnds = new Map<string, number>();
    if (rolling.size > 0) {
      const list = [...rolling.values()];
      const rs = list.map((r) => r.ruleId);
      const ss = list.map((r) => r.scopeKey);
      const buckets = await c.query<{
        rule_id: string;
        scope_key: string;
        bucket_start_ms: number;
        value: number;
      }>(
        `SELECT c.rule_id, c.scope_key, c.bucket_start_ms, c.value FROM rule_counters c
         JOIN unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS q(r, s, f, t)
           ON c.rule_id = q.r AND c.scope_key = q.s AND c.bucket_start_ms > q.f AND c.bucket_start_ms <= q.t`,
        [rs, ss, list.map((r) => r.from), list.map((r) => r.to)],
      );
      for (const r of buckets.rows) {
        const key = k2(r.rule_id, r.scope_key);
        const arr = minutes.get(key) ?? [];
        arr.push({ bucket: r.bucket_start_ms, value: r.value });
        minutes.set(key, arr);
      }
      const ends = await c.query<{
        rule_id: string;
        scope_key: string;
        level_index: number;
        end_ms: number;
      }>(
        `SELECT a.rule_id, a.scope_key, a.level_index, MAX(a.window_end_ms) AS end_ms FROM alerts a
         JOIN unnest($1::text[], $2::text[]) AS q(r, s) ON a.rule_id = q.r AND a.scope_key = q.s
         GROUP BY a.rule_id, a.scope_key, a.level_index`,
        [
          [...rollingAlerts.values()].map((r) => r.ruleId),
          [...rollingAlerts.values()].map((r) => r.scopeKey),
        ],
      );
      for (const r of ends.rows)
        alertEnds.set(`${k2(r.rule_id, r.scope_key)}\u0000${r.level_index}`, Number(r.end_ms));
    }

    // The shared evaluation, over what the statements above returned.
    const pending: Array<{ alert: NewAlert; rule: Rule }> = [];
    const pendingIds = new Set<string>();
    const { alerts, enforcedCounters } = evaluateBatch(fresh, rules, nowMs, {
      add: (ruleId, scopeKey, bucket) => {
        const v = totals.get(k3(ruleId, scopeKey, bucket));
        if (v === undefined) throw new TokenwatchError('internal', 'counter upsert lost a row');
        return v;
      },
      sum: (ruleId, scopeKey, from, to) => {
        let total = 0;
        for (const m of minutes.get(k2(ruleId, scopeKey)) ?? [])
          if (m.bucket > from && m.bucket <= to) total += m.value;
        return total;
      },
      alertOverlaps: (ruleId, scopeKey, level, after) =>
        (alertEnds.get(`${k2(ruleId, scopeKey)}\u0000${level}`) ?? Number.NEGATIVE_INFINITY) >
        after,
      insertAlert: (alert, compiled) => {
        if (pendingIds.has(alert.alertId)) return false;
        pendingIds.add(alert.alertId);
        pending.push({ alert, rule: compiled.rule });
        const key = `${k2(alert.ruleId, alert.scopeKey)}\u0000${alert.levelIndex}`;
        alertEnds.set(key, Math.max(alertEnds.get(key) ?? 0, alert.windowEndMs));
        return true;
      },
    });
    if (pending.length === 0) return { alerts, enforcedCounters };

    pending.sort((a, b) => byKey(a.alert.alertId, b.alert.alertId));
    const inserted = await c.query<{ alert_id: string }>(
      `INSERT INTO alerts (alert_id, project_id, rule_id, scope_key, window_start_ms, window_end_ms, level_index, threshold, value, late, forecast, fired_at_ms, message)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::int[], $8::bigint[], $9::bigint[], $10::bool[], $11::bool[], $12::bigint[], $13::text[])
       ON CONFLICT DO NOTHING RETURNING alert_id`,
      [
        pending.map((p) => p.alert.alertId),
        pending.map((p) => p.alert.projectId),
        pending.map((p) => p.alert.ruleId),
        pending.map((p) => p.alert.scopeKey),
        pending.map((p) => p.alert.windowStartMs),
        pending.map((p) => p.alert.windowEndMs),
        pending.map((p) => p.alert.levelIndex),
        pending.map((p) => Math.round(p.alert.threshold)),
        pending.map((p) => Math.round(p.alert.value)),
        pending.map((p) => p.alert.late),
        pending.map((p) => p.alert.forecast),
        pending.map((p) => p.alert.firedAtMs),
        pending.map((p) => JSON.stringify(p.alert.message)),
      ],
    );
    const fired = new Set(inserted.rows.map((r) => r.alert_id));
    const dv: unknown[][] = [[], [], [], [], []];
    for (const p of pending) {
      if (!fired.has(p.alert.alertId)) continue;
      p.rule.channels.forEach((channel, i) => {
        dv[0]?.push(deliveryIdOf(p.alert.alertId, i));
        dv[1]?.push(p.alert.alertId);
        dv[2]?.push(p.alert.projectId);
        dv[3]?.push(i);
        dv[4]?.push(JSON.stringify(channel));
      });
    }
    if ((dv[0]?.length ?? 0) > 0) {
      await c.query(
        `INSERT INTO deliveries (delivery_id, alert_id, project_id, channel_index, channel, status, attempts, next_attempt_ms, created_at_ms, updated_at_ms)
         SELECT d, a, p, i, ch, 'pending', 0, $6, $6, $6 FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[]) AS u(d, a, p, i, ch)
         ON CONFLICT DO NOTHING`,
        [...dv, nowMs],
      );
    }
    return { alerts: alerts.filter((a) => fired.has(a.alertId)), enforcedCounters };
  }

  /** Sets a rule's counters for the current window from the rollups (a rule created mid-window). */
  private async seed(c: pg.PoolClient, rule: Rule, nowMs: number): Promise<void> {
    if (!rule.enabled) return;
    const counterKey = counterKeyOf(rule);
    // Another enabled rule keeps these counters current already: nothing to seed.
    const others = await c.query<{ definition: string }>(
      'SELECT definition FROM rules WHERE project_id = $1 AND enabled AND rule_id <> $2',
      [rule.projectId, rule.id],
    );
    if (others.rows.some((r) => counterKeyOf(JSON.parse(r.definition) as Rule) === counterKey))
      return;
    let fromMs: number;
    let toMs: number;
    let table: string;
    const params: unknown[] = [];
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    let bucketSql: string;
    if (rule.window.type === 'rolling') {
      const minute = nowMs - (nowMs % MINUTE_MS);
      fromMs = minute - (rule.window.minutes - 1) * MINUTE_MS;
      toMs = minute + MINUTE_MS;
      table = 'rollup_minute';
      bucketSql = 'r.bucket_ms';
    } else {
      const win = windowFor(nowMs, rule.window);
      fromMs = win.startMs;
      toMs = win.endMs;
      table = fromMs % HOUR_MS === 0 && toMs % HOUR_MS === 0 ? 'rollup_hour' : 'rollup_minute';
      bucketSql = `${Math.trunc(win.startMs)}::bigint`;
    }
    const bucketFrom =
      rule.window.type === 'rolling' ? fromMs : windowFor(nowMs, rule.window).startMs;
    await c.query(
      'DELETE FROM rule_counters WHERE rule_id = $1 AND bucket_start_ms >= $2 AND bucket_start_ms < $3',
      [counterKey, bucketFrom, toMs],
    );
    const dims = rule.scope.map((d) => DIM_COLUMN[d]);
    const where = [`s.project_id = ${p(rule.projectId)}`, `r.bucket_ms >= ${p(fromMs)}`];
    where.push(`r.bucket_ms < ${p(toMs)}`);
    for (const [dim, values] of Object.entries(rule.filters)) {
      if (!values || values.length === 0) continue;
      where.push(
        `${DIM_COLUMN[dim as keyof typeof DIM_COLUMN]} IN (${values.map((v) => p(v)).join(', ')})`,
      );
    }
    const select = [
      ...dims.map((col, i) => `${col} AS d${i}`),
      `${bucketSql} AS bucket`,
      `SUM(r.${METRIC_COLUMN[rule.metric]}) AS total`,
    ];
    const res = await c.query<Record<string, unknown>>(
      `SELECT ${select.join(', ')} FROM ${table} r JOIN series s ON s.series_id = r.series_id WHERE ${where.join(' AND ')} GROUP BY ${[...dims, bucketSql].join(', ')}`,
      params,
    );
    const rows = res.rows.filter((r) => Number(r.total ?? 0) !== 0);
    if (rows.length === 0) return;
    await c.query(
      `INSERT INTO rule_counters (rule_id, scope_key, bucket_start_ms, value, updated_at_ms)
       SELECT $1, s, b, v, $5 FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS u(s, b, v)
       ON CONFLICT (rule_id, scope_key, bucket_start_ms) DO UPDATE SET value = EXCLUDED.value, updated_at_ms = EXCLUDED.updated_at_ms`,
      [
        counterKey,
        rows.map((row) => JSON.stringify(rule.scope.map((_, i) => String(row[`d${i}`])))),
        rows.map((row) => Number(row.bucket)),
        rows.map((row) => String(row.total)),
        nowMs,
      ],
    );
  }

  async createRule(rule: Rule, nowMs: number): Promise<void> {
    compileRule(rule); // refuses a rule whose levels cannot be resolved
    try {
      await this.store.tx(async (c) => {
        try {
          await c.query(
            'INSERT INTO rules (rule_id, project_id, definition, enabled, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6)',
            [
              rule.id,
              rule.projectId,
              JSON.stringify(rule),
              rule.enabled,
              rule.createdAtMs,
              rule.updatedAtMs,
            ],
          );
        } catch (err) {
          if (pgCode(err) === '23503')
            throw new TokenwatchError('not_found', `project "${rule.projectId}" does not exist`);
          if (pgCode(err) === '23505')
            throw new TokenwatchError('conflict', `rule "${rule.id}" already exists`);
          throw err;
        }
        await this.seed(c, rule, nowMs);
      });
    } catch (err) {
      throw pgError(err, 'createRule');
    }
  }

  async updateRule(rule: Rule, nowMs: number): Promise<boolean> {
    compileRule(rule);
    try {
      return await this.store.tx(async (c) => {
        const existing = await c.query<{ definition: string }>(
          'SELECT definition FROM rules WHERE rule_id = $1 AND project_id = $2 FOR UPDATE',
          [rule.id, rule.projectId],
        );
        const row = existing.rows[0];
        if (!row) return false;
        await c.query(
          'UPDATE rules SET definition = $1, enabled = $2, updated_at_ms = $3 WHERE rule_id = $4 AND project_id = $5',
          [JSON.stringify(rule), rule.enabled, rule.updatedAtMs, rule.id, rule.projectId],
        );
        const before = JSON.parse(row.definition) as Rule;
        if (counterKeyOf(before) !== counterKeyOf(rule) || !before.enabled)
          await this.seed(c, rule, nowMs);
        return true;
      });
    } catch (err) {
      throw pgError(err, 'updateRule');
    }
  }

  async deleteRule(projectId: string, ruleId: string): Promise<boolean> {
    try {
      return await this.store.tx(async (c) => {
        const res = await c.query('DELETE FROM rules WHERE rule_id = $1 AND project_id = $2', [
          ruleId,
          projectId,
        ]);
        // Counters stay: other rules may share them; prune removes old buckets.
        return res.rowCount === 1;
      });
    } catch (err) {
      throw pgError(err, 'deleteRule');
    }
  }

  async getRule(projectId: string, ruleId: string): Promise<Rule | undefined> {
    const res = await this.store.query<{ definition: string }>(
      'getRule',
      'SELECT definition FROM rules WHERE rule_id = $1 AND project_id = $2',
      [ruleId, projectId],
    );
    const row = res.rows[0];
    return row ? (JSON.parse(row.definition) as Rule) : undefined;
  }

  async listRules(projectId?: string): Promise<Rule[]> {
    const res =
      projectId === undefined
        ? await this.store.query<{ definition: string }>(
            'listRules',
            'SELECT definition FROM rules ORDER BY project_id, created_at_ms, rule_id',
          )
        : await this.store.query<{ definition: string }>(
            'listRules',
            'SELECT definition FROM rules WHERE project_id = $1 ORDER BY created_at_ms, rule_id',
            [projectId],
          );
    return res.rows.map((r) => JSON.parse(r.definition) as Rule);
  }

  async readCounters(ruleId: string, fromMs: number, toMs: number): Promise<RuleCounter[]> {
    const res = await this.store.query<{
      scope_key: string;
      bucket_start_ms: number;
      value: number;
    }>(
      'readCounters',
      'SELECT scope_key, bucket_start_ms, value FROM rule_counters WHERE rule_id = $1 AND bucket_start_ms >= $2 AND bucket_start_ms < $3 ORDER BY bucket_start_ms, scope_key',
      [ruleId, fromMs, toMs],
    );
    return res.rows.map((r) => ({
      ruleId,
      scopeKey: r.scope_key,
      bucketStartMs: r.bucket_start_ms,
      value: r.value,
    }));
  }

  async listAlerts(q: AlertQuery): Promise<AlertRecord[]> {
    const params: unknown[] = [q.projectId];
    const where = ['project_id = $1'];
    if (q.ruleId !== undefined) {
      params.push(q.ruleId);
      where.push(`rule_id = $${params.length}`);
    }
    if (q.sinceMs !== undefined) {
      params.push(q.sinceMs);
      where.push(`fired_at_ms >= $${params.length}`);
    }
    if (q.acknowledged !== undefined)
      where.push(q.acknowledged ? 'acknowledged_at_ms IS NOT NULL' : 'acknowledged_at_ms IS NULL');
    params.push(q.limit);
    const res = await this.store.query<AlertRow>(
      'listAlerts',
      `SELECT * FROM alerts WHERE ${where.join(' AND ')} ORDER BY fired_at_ms DESC, alert_id LIMIT $${params.length}`,
      params,
    );
    return res.rows.map(alertFromRow);
  }

  async acknowledgeAlert(projectId: string, alertId: string, nowMs: number): Promise<boolean> {
    const res = await this.store.query(
      'acknowledgeAlert',
      'UPDATE alerts SET acknowledged_at_ms = COALESCE(acknowledged_at_ms, $1) WHERE project_id = $2 AND alert_id = $3',
      [nowMs, projectId, alertId],
    );
    return res.rowCount === 1;
  }

  /**
   * Leases due deliveries with `FOR UPDATE SKIP LOCKED`: a delivery another dispatcher is
   * leasing right now is skipped, not waited for, and once leased its `next_attempt_ms` is the
   * lease's end, so nobody else sees it as due until the lease expires.
   */
  async claimDeliveries(nowMs: number, limit: number, leaseMs: number): Promise<DeliveryRecord[]> {
    const res = await this.store.query<DeliveryRow & { due_ms: number }>(
      'claimDeliveries',
      `WITH due AS (
         SELECT delivery_id, next_attempt_ms AS due_ms FROM deliveries
         WHERE status IN ('pending', 'sending') AND next_attempt_ms <= $1
         ORDER BY next_attempt_ms, delivery_id LIMIT $2
         FOR UPDATE SKIP LOCKED)
       UPDATE deliveries d SET status = 'sending', attempts = d.attempts + 1, next_attempt_ms = $3, updated_at_ms = $1
       FROM due WHERE d.delivery_id = due.delivery_id
       RETURNING ${DELIVERY_COLUMNS}, due.due_ms, (SELECT a.message FROM alerts a WHERE a.alert_id = d.alert_id) AS message`,
      [nowMs, limit, nowMs + leaseMs],
    );
    return res.rows
      .sort((a, b) => a.due_ms - b.due_ms || byKey(a.delivery_id, b.delivery_id))
      .map(deliveryFromRow);
  }

  async completeDelivery(id: string, outcome: DeliveryOutcome, nowMs: number): Promise<void> {
    if (outcome.status === 'delivered') {
      await this.store.query(
        'completeDelivery',
        "UPDATE deliveries SET status = 'delivered', delivered_at_ms = $1, updated_at_ms = $1, last_error = NULL WHERE delivery_id = $2",
        [nowMs, id],
      );
    } else if (outcome.status === 'retry') {
      await this.store.query(
        'completeDelivery',
        "UPDATE deliveries SET status = 'pending', next_attempt_ms = $1, last_error = $2, updated_at_ms = $3 WHERE delivery_id = $4",
        [outcome.nextAttemptMs, outcome.error.slice(0, 1000), nowMs, id],
      );
    } else {
      await this.store.query(
        'completeDelivery',
        "UPDATE deliveries SET status = 'dead', last_error = $1, updated_at_ms = $2 WHERE delivery_id = $3",
        [outcome.error.slice(0, 1000), nowMs, id],
      );
    }
  }

  async listDeliveries(
    projectId: string,
    filter: { alertId?: string | undefined; status?: DeliveryStatus | undefined },
    limit: number,
  ): Promise<DeliveryRecord[]> {
    const params: unknown[] = [projectId];
    const where = ['d.project_id = $1'];
    if (filter.alertId !== undefined) {
      params.push(filter.alertId);
      where.push(`d.alert_id = $${params.length}`);
    }
    if (filter.status !== undefined) {
      params.push(filter.status);
      where.push(`d.status = $${params.length}`);
    }
    params.push(limit);
    const res = await this.store.query<DeliveryRow>(
      'listDeliveries',
      `SELECT ${DELIVERY_COLUMNS}, a.message FROM deliveries d JOIN alerts a ON a.alert_id = d.alert_id
       WHERE ${where.join(' AND ')} ORDER BY d.created_at_ms DESC, d.delivery_id LIMIT $${params.length}`,
      params,
    );
    return res.rows.map(deliveryFromRow);
  }
}
