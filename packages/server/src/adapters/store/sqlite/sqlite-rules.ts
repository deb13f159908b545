import {
  type AlertQuery,
  type AlertRecord,
  type CompiledRule,
  compileRule,
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
  TokenwatchError,
  windowFor,
} from '@tokenwatch/core';
import type Database from 'better-sqlite3';
import {
  type AlertRow,
  alertFromRow,
  type DeliveryRow,
  DIM_COLUMN,
  deliveryFromRow,
  METRIC_COLUMN,
} from '../sql-rows.js';

type Statement = Database.Statement<unknown[], unknown>;

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

/**
 * Rules, counters, alerts and the outbox on SQLite. `evaluate` runs inside the caller's
 * (applyBatch's) transaction; the other methods are their own transactions.
 */
export class SqliteRules {
  private readonly st: Record<string, Statement>;

  constructor(private readonly db: Database.Database) {
    const s = (sql: string) => db.prepare(sql);
    this.st = {
      upsertCounter: s(
        `INSERT INTO rule_counters (rule_id, scope_key, bucket_start_ms, value, updated_at_ms) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (rule_id, scope_key, bucket_start_ms) DO UPDATE SET value = value + excluded.value, updated_at_ms = excluded.updated_at_ms
         RETURNING value`,
      ).pluck(),
      rollingSum: s(
        'SELECT COALESCE(SUM(value), 0) FROM rule_counters WHERE rule_id = ? AND scope_key = ? AND bucket_start_ms > ? AND bucket_start_ms <= ?',
      ).pluck(),
      overlappingAlert: s(
        'SELECT 1 FROM alerts WHERE rule_id = ? AND scope_key = ? AND level_index = ? AND window_end_ms > ? LIMIT 1',
      ).pluck(),
      insertAlert: s(
        `INSERT OR IGNORE INTO alerts (alert_id, project_id, rule_id, scope_key, window_start_ms, window_end_ms, level_index, threshold, value, late, forecast, fired_at_ms, message)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertDelivery: s(
        `INSERT OR IGNORE INTO deliveries (delivery_id, alert_id, project_id, channel_index, channel, status, attempts, next_attempt_ms, created_at_ms, updated_at_ms)
         VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)`,
      ),
      insertCounter: s(
        `INSERT INTO rule_counters (rule_id, scope_key, bucket_start_ms, value, updated_at_ms) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (rule_id, scope_key, bucket_start_ms) DO UPDATE SET value = excluded.value, updated_at_ms = excluded.updated_at_ms`,
      ),
    };
  }

  /** Adds a batch's new events to the rules' counters and records the crossings (in the caller's transaction). */
  evaluate(
    fresh: readonly PricedEvent[],
    rules: readonly CompiledRule[],
    nowMs: number,
  ): { alerts: NewAlert[]; enforcedCounters: RuleCounter[] } {
    return evaluateBatch(fresh, rules, nowMs, {
      add: (ruleId, scopeKey, bucket, delta) =>
        Number(this.st.upsertCounter?.get(ruleId, scopeKey, bucket, delta, nowMs)),
      sum: (ruleId, scopeKey, from, to) =>
        Number(this.st.rollingSum?.get(ruleId, scopeKey, from, to)),
      alertOverlaps: (ruleId, scopeKey, level, after) =>
        this.st.overlappingAlert?.get(ruleId, scopeKey, level, after) !== undefined,
      insertAlert: (alert, compiled) => this.insertAlert(alert, compiled.rule, nowMs),
    });
  }

  private insertAlert(alert: NewAlert, rule: Rule, nowMs: number): boolean {
    const inserted = this.st.insertAlert?.run(
      alert.alertId,
      alert.projectId,
      alert.ruleId,
      alert.scopeKey,
      alert.windowStartMs,
      alert.windowEndMs,
      alert.levelIndex,
      alert.threshold,
      alert.value,
      alert.late ? 1 : 0,
      alert.forecast ? 1 : 0,
      alert.firedAtMs,
      JSON.stringify(alert.message),
    );
    if (inserted?.changes !== 1) return false; // fired before: a redelivery or another flush got there first
    rule.channels.forEach((channel, i) => {
      this.st.insertDelivery?.run(
        deliveryIdOf(alert.alertId, i),
        alert.alertId,
        alert.projectId,
        i,
        JSON.stringify(channel),
        nowMs,
        nowMs,
        nowMs,
      );
    });
    return true;
  }

  /** Sets a rule's counters for the current window from the rollups (a rule created mid-window). */
  /** Whether another enabled rule of the project keeps these counters current already. */
  private sharedWithEnabledRule(rule: Rule): boolean {
    const key = counterKeyOf(rule);
    const others = this.db
      .prepare('SELECT definition FROM rules WHERE project_id = ? AND enabled = 1 AND rule_id != ?')
      .pluck()
      .all(rule.projectId, rule.id) as string[];
    return others.some((d) => counterKeyOf(JSON.parse(d) as Rule) === key);
  }

  /**
   * Sets the CURRENT window of a rule's counters from the rollups (a rule created mid-window, or
   * re-enabled, or measuring something new). Other windows' buckets are left alone.
   */
  private seed(rule: Rule, nowMs: number): void {
    if (!rule.enabled || this.sharedWithEnabledRule(rule)) return;
    const counterKey = counterKeyOf(rule);
    let fromMs: number;
    let toMs: number;
    let table: string;
    let bucketSql: string;
    const params: unknown[] = [];
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
      // Hour rollups when the window is made of whole UTC hours; minutes otherwise (e.g. UTC+5:30).
      table = fromMs % HOUR_MS === 0 && toMs % HOUR_MS === 0 ? 'rollup_hour' : 'rollup_minute';
      bucketSql = String(win.startMs);
    }
    const bucketFrom =
      rule.window.type === 'rolling' ? fromMs : windowFor(nowMs, rule.window).startMs;
    this.db
      .prepare(
        'DELETE FROM rule_counters WHERE rule_id = ? AND bucket_start_ms >= ? AND bucket_start_ms < ?',
      )
      .run(counterKey, bucketFrom, toMs);
    const dims = rule.scope.map((d) => DIM_COLUMN[d]);
    const where = ['s.project_id = ?', 'r.bucket_ms >= ?', 'r.bucket_ms < ?'];
    params.push(rule.projectId, fromMs, toMs);
    for (const [dim, values] of Object.entries(rule.filters)) {
      if (!values || values.length === 0) continue;
      where.push(
        `${DIM_COLUMN[dim as keyof typeof DIM_COLUMN]} IN (${values.map(() => '?').join(', ')})`,
      );
      params.push(...values);
    }
    const select = [
      ...dims.map((c, i) => `${c} AS d${i}`),
      `${bucketSql} AS bucket`,
      `SUM(r.${METRIC_COLUMN[rule.metric]}) AS total`,
    ];
    const rows = this.db
      .prepare(
        `SELECT ${select.join(', ')} FROM ${table} r CROSS JOIN series s ON s.series_id = r.series_id WHERE ${where.join(' AND ')} GROUP BY ${[...dims, bucketSql].join(', ')}`,
      )
      .all(...params) as Array<Record<string, unknown>>;
    for (const row of rows) {
      const total = Number(row.total ?? 0);
      if (total === 0) continue;
      const scopeKey = JSON.stringify(rule.scope.map((_, i) => String(row[`d${i}`])));
      this.st.insertCounter?.run(counterKey, scopeKey, Number(row.bucket), total, nowMs);
    }
  }

  createRule(rule: Rule, nowMs: number): void {
    compileRule(rule); // refuses a rule whose levels cannot be resolved
    this.db
      .transaction(() => {
        try {
          this.db
            .prepare(
              'INSERT INTO rules (rule_id, project_id, definition, enabled, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?)',
            )
            .run(
              rule.id,
              rule.projectId,
              JSON.stringify(rule),
              rule.enabled ? 1 : 0,
              rule.createdAtMs,
              rule.updatedAtMs,
            );
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY')
            throw new TokenwatchError('not_found', `project "${rule.projectId}" does not exist`);
          if (code?.startsWith('SQLITE_CONSTRAINT'))
            throw new TokenwatchError('conflict', `rule "${rule.id}" already exists`);
          throw err;
        }
        this.seed(rule, nowMs);
      })
      .immediate();
  }

  updateRule(rule: Rule, nowMs: number): boolean {
    compileRule(rule);
    return this.db
      .transaction(() => {
        const existing = this.getRule(rule.projectId, rule.id);
        if (!existing) return false;
        this.db
          .prepare(
            'UPDATE rules SET definition = ?, enabled = ?, updated_at_ms = ? WHERE rule_id = ? AND project_id = ?',
          )
          .run(
            JSON.stringify(rule),
            rule.enabled ? 1 : 0,
            rule.updatedAtMs,
            rule.id,
            rule.projectId,
          );
        if (counterKeyOf(existing) !== counterKeyOf(rule) || !existing.enabled)
          this.seed(rule, nowMs);
        return true;
      })
      .immediate();
  }

  deleteRule(projectId: string, ruleId: string): boolean {
    return this.db
      .transaction(() => {
        const deleted =
          this.db
            .prepare('DELETE FROM rules WHERE rule_id = ? AND project_id = ?')
            .run(ruleId, projectId).changes === 1;
        return deleted;
      })
      .immediate();
  }

  getRule(projectId: string, ruleId: string): Rule | undefined {
    const row = this.db
      .prepare('SELECT definition FROM rules WHERE rule_id = ? AND project_id = ?')
      .pluck()
      .get(ruleId, projectId) as string | undefined;
    return row ? (JSON.parse(row) as Rule) : undefined;
  }

  listRules(projectId?: string): Rule[] {
    const rows = (
      projectId === undefined
        ? this.db
            .prepare('SELECT definition FROM rules ORDER BY project_id, created_at_ms, rule_id')
            .pluck()
            .all()
        : this.db
            .prepare(
              'SELECT definition FROM rules WHERE project_id = ? ORDER BY created_at_ms, rule_id',
            )
            .pluck()
            .all(projectId)
    ) as string[];
    return rows.map((r) => JSON.parse(r) as Rule);
  }

  readCounters(ruleId: string, fromMs: number, toMs: number): RuleCounter[] {
    const rows = this.db
      .prepare(
        'SELECT scope_key, bucket_start_ms, value FROM rule_counters WHERE rule_id = ? AND bucket_start_ms >= ? AND bucket_start_ms < ? ORDER BY bucket_start_ms, scope_key',
      )
      .all(ruleId, fromMs, toMs) as Array<{
      scope_key: string;
      bucket_start_ms: number;
      value: number;
    }>;
    return rows.map((r) => ({
      ruleId,
      scopeKey: r.scope_key,
      bucketStartMs: r.bucket_start_ms,
      value: r.value,
    }));
  }

  listAlerts(q: AlertQuery): AlertRecord[] {
    const where = ['project_id = ?'];
    const params: unknown[] = [q.projectId];
    if (q.ruleId !== undefined) {
      where.push('rule_id = ?');
      params.push(q.ruleId);
    }
    if (q.sinceMs !== undefined) {
      where.push('fired_at_ms >= ?');
      params.push(q.sinceMs);
    }
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
    return this.db
      .transaction(() => {
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
      })
      .immediate();
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
    const where = ['d.project_id = ?'];
    const params: unknown[] = [projectId];
    if (filter.alertId !== undefined) {
      where.push('d.alert_id = ?');
      params.push(filter.alertId);
    }
    if (filter.status !== undefined) {
      where.push('d.status = ?');
      params.push(filter.status);
    }
    params.push(limit);
    const rows = this.db
      .prepare(
        `SELECT d.*, a.message FROM deliveries d JOIN alerts a ON a.alert_id = d.alert_id WHERE ${where.join(' AND ')} ORDER BY d.created_at_ms DESC, d.delivery_id LIMIT ?`,
      )
      .all(...params) as DeliveryRow[];
    return rows.map(deliveryFromRow);
  }
}
