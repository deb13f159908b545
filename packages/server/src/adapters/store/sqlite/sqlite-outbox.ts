import type {
  AlertQuery,
  AlertRecord,
  DeliveryOutcome,
  DeliveryRecord,
  DeliveryStatus,
} from '@tokenwatch/core';
import type Database from 'better-sqlite3';
import { type AlertRow, alertFromRow, type DeliveryRow, deliveryFromRow } from '../sql-rows.js';
import { immediate } from './write-lock.js';

/** A WHERE clause and its parameters; `and` adds a condition when its value is given. */
function conditions(first: string, value: unknown) {
  const where = [first];
  const params: unknown[] = [value];
  return {
    where,
    params,
    and(sql: string, v: unknown): void {
      if (v === undefined) return;
      where.push(sql);
      params.push(v);
    },
  };
}

/**
 * Alerts and their deliveries (the outbox) on SQLite, once they exist: listing and
 * acknowledging alerts, and the dispatcher's claims (a lease per delivery) and outcomes.
 * SqliteRules, which fires the alerts and creates the deliveries, extends it.
 */
export class SqliteAlertsOutbox {
  constructor(protected readonly db: Database.Database) {}

  listAlerts(q: AlertQuery): AlertRecord[] {
    const { where, params, and } = conditions('project_id = ?', q.projectId);
    and('rule_id = ?', q.ruleId);
    and('fired_at_ms >= ?', q.sinceMs);
    if (q.acknowledged !== undefined)
      where.push(q.acknowledged ? 'acknowledged_at_ms IS NOT NULL' : 'acknowledged_at_ms IS NULL');
    params.push(q.limit);
    const rows = this.db
      .prepare(
        `SELECT * FROM alerts WHERE ${where.join(' AND ')} ORDER BY fired_at_ms DESC, alert_id LIMIT ?`,
      )
      .all(...params) as AlertRow[];
    return rows.map(alertFromRow);
  }

  acknowledgeAlert(projectId: string, alertId: string, nowMs: number): boolean {
    return (
      this.db
        .prepare(
          'UPDATE alerts SET acknowledged_at_ms = COALESCE(acknowledged_at_ms, ?) WHERE project_id = ? AND alert_id = ?',
        )
        .run(nowMs, projectId, alertId).changes === 1
    );
  }

  claimDeliveries(nowMs: number, limit: number, leaseMs: number): DeliveryRecord[] {
    return immediate(this.db, () => {
      const rows = this.db
        .prepare(
          `SELECT d.*, a.message FROM deliveries d JOIN alerts a ON a.alert_id = d.alert_id
           WHERE d.status IN ('pending', 'sending') AND d.next_attempt_ms <= ?
           ORDER BY d.next_attempt_ms, d.delivery_id LIMIT ?`,
        )
        .all(nowMs, limit) as DeliveryRow[];
      const lease = this.db.prepare(
        "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, next_attempt_ms = ?, updated_at_ms = ? WHERE delivery_id = ?",
      );
      return rows.map((r) => {
        lease.run(nowMs + leaseMs, nowMs, r.delivery_id);
        return deliveryFromRow({
          ...r,
          status: 'sending',
          attempts: r.attempts + 1,
          next_attempt_ms: nowMs + leaseMs,
        });
      });
    });
  }

  completeDelivery(id: string, outcome: DeliveryOutcome, nowMs: number): void {
    if (outcome.status === 'delivered') {
      this.db
        .prepare(
          "UPDATE deliveries SET status = 'delivered', delivered_at_ms = ?, updated_at_ms = ?, last_error = NULL WHERE delivery_id = ?",
        )
        .run(nowMs, nowMs, id);
    } else if (outcome.status === 'retry') {
      this.db
        .prepare(
          "UPDATE deliveries SET status = 'pending', next_attempt_ms = ?, last_error = ?, updated_at_ms = ? WHERE delivery_id = ?",
        )
        .run(outcome.nextAttemptMs, outcome.error.slice(0, 1000), nowMs, id);
    } else {
      this.db
        .prepare(
          "UPDATE deliveries SET status = 'dead', last_error = ?, updated_at_ms = ? WHERE delivery_id = ?",
        )
        .run(outcome.error.slice(0, 1000), nowMs, id);
    }
  }

  listDeliveries(
    projectId: string,
    filter: { alertId?: string | undefined; status?: DeliveryStatus | undefined },
    limit: number,
  ): DeliveryRecord[] {
    const { where, params, and } = conditions('d.project_id = ?', projectId);
    and('d.alert_id = ?', filter.alertId);
    and('d.status = ?', filter.status);
    params.push(limit);
    const rows = this.db
      .prepare(
        `SELECT d.*, a.message FROM deliveries d JOIN alerts a ON a.alert_id = d.alert_id WHERE ${where.join(' AND ')} ORDER BY d.created_at_ms DESC, d.delivery_id LIMIT ?`,
      )
      .all(...params) as DeliveryRow[];
    return rows.map(deliveryFromRow);
  }
}
