import {
  type AlertQuery,
  type AlertRecord,
  type DeliveryOutcome,
  type DeliveryRecord,
  type DeliveryStatus,
  deliveryIdOf,
  type NewAlert,
  type Rule,
} from '@tokenwatch/core';
import { type AlertRow, alertFromRow, type DeliveryRow, deliveryFromRow } from '../sql-rows.js';
import { byKey } from './postgres-batch.js';
import type { PostgresStore, Queryable } from './postgres-store.js';

const DELIVERY_COLUMNS =
  'd.delivery_id, d.alert_id, d.project_id, d.channel_index, d.channel, d.status, d.attempts, d.next_attempt_ms, d.last_error, d.created_at_ms, d.updated_at_ms, d.delivered_at_ms';

/**
 * Alerts and their deliveries (the outbox) on PostgreSQL. Alerts are inserted inside the
 * transaction that counted their crossing (`insert`, called by PostgresRules); the rest reads and
 * leases them for the API and the dispatchers of `serve` and every worker.
 */
export class PostgresAlerts {
  constructor(private readonly store: PostgresStore) {}

  /** Inserts the alerts that do not exist yet, with their deliveries; returns the inserted ones. */
  async insert(
    c: Queryable,
    candidates: readonly NewAlert[],
    rules: ReadonlyMap<string, Rule>,
    nowMs: number,
  ): Promise<NewAlert[]> {
    if (candidates.length === 0) return [];
    const pending = [...candidates].sort((a, b) => byKey(a.alertId, b.alertId));
    const inserted = await c.query<{ alert_id: string }>(
      `INSERT INTO alerts (alert_id, project_id, rule_id, scope_key, window_start_ms, window_end_ms, level_index, threshold, value, late, forecast, fired_at_ms, message)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::int[], $8::bigint[], $9::bigint[], $10::bool[], $11::bool[], $12::bigint[], $13::text[])
       ON CONFLICT DO NOTHING RETURNING alert_id`,
      [
        pending.map((a) => a.alertId),
        pending.map((a) => a.projectId),
        pending.map((a) => a.ruleId),
        pending.map((a) => a.scopeKey),
        pending.map((a) => a.windowStartMs),
        pending.map((a) => a.windowEndMs),
        pending.map((a) => a.levelIndex),
        pending.map((a) => Math.round(a.threshold)),
        pending.map((a) => Math.round(a.value)),
        pending.map((a) => a.late),
        pending.map((a) => a.forecast),
        pending.map((a) => a.firedAtMs),
        pending.map((a) => JSON.stringify(a.message)),
      ],
    );
    const fired = new Set(inserted.rows.map((r) => r.alert_id));
    const dv: unknown[][] = [[], [], [], [], []];
    for (const alert of pending) {
      if (!fired.has(alert.alertId)) continue;
      rules.get(alert.ruleId)?.channels.forEach((channel, i) => {
        dv[0]?.push(deliveryIdOf(alert.alertId, i));
        dv[1]?.push(alert.alertId);
        dv[2]?.push(alert.projectId);
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
    return candidates.filter((a) => fired.has(a.alertId));
  }

  async list(q: AlertQuery): Promise<AlertRecord[]> {
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

  async acknowledge(projectId: string, alertId: string, nowMs: number): Promise<boolean> {
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
