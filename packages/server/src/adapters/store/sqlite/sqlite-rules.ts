import {
  activate,
  type CompiledRule,
  compileRule,
  counterKeyOf,
  countersFromRows,
  crossingsAtStart,
  type DeliveryRecord,
  deliveryIdOf,
  enforcedCounters,
  findCrossings,
  firstCountedBucket,
  type NewAlert,
  type PricedEvent,
  planBatch,
  type Rule,
  type RuleChange,
  type RuleCounter,
  seedQueries,
  startCounterFloor,
  TokenwatchError,
  type UsageQuery,
  type UsageRow,
} from '@tokenwatch/core';
import type Database from 'better-sqlite3';
import { PendingCounters } from './pending-counters.js';
import { SqliteAlertsOutbox } from './sqlite-outbox.js';
import { immediate } from './write-lock.js';

type Statement = Database.Statement<unknown[], unknown>;

interface CounterRow {
  rule_id: string;
  scope_key: string;
  bucket_start_ms: number;
  value: number;
}

function toCounter(r: CounterRow): RuleCounter {
  return {
    ruleId: r.rule_id,
    scopeKey: r.scope_key,
    bucketStartMs: r.bucket_start_ms,
    value: r.value,
  };
}

/**
 * Rules, counters, alerts and the outbox on SQLite: the rule engine of core over SQL rows (the
 * outbox's reads and claims are SqliteAlertsOutbox's).
 * `evaluate` runs inside the caller's (applyBatch's) transaction, with the rules as they are in
 * that transaction (another process, e.g. the CLI, may have changed them: `data_version` says
 * so). What a batch adds to the counters stays pending (see PendingCounters) until the event
 * log is folded; the alerts it fires are inserted at once. Saving a rule is its own IMMEDIATE
 * transaction after a fold, so it is serialised with every batch.
 */
export class SqliteRules extends SqliteAlertsOutbox {
  /** Counter deltas of the batches appended since the last fold. */
  readonly pending: PendingCounters;
  private readonly st: Record<
    'insertAlert' | 'insertDelivery' | 'insertLeasedDelivery' | 'setCounter' | 'enabledRules',
    Statement
  >;
  /** Enabled rules by project, as of `dataVersion`. */
  private cache: { dataVersion: number; byProject: Map<string, CompiledRule[]> } | undefined;

  constructor(
    db: Database.Database,
    /** Reads the rollups on this connection (inside the running transaction). */
    private readonly queryRollups: (query: UsageQuery) => UsageRow[],
    /** Heap the folded rule-counter values may hold (see PendingCounters). */
    counterCacheBytes?: number,
    /** A batch's deliveries are created leased to this process for so long (see SqliteStoreOptions). */
    private readonly leaseNewDeliveriesMs?: number,
  ) {
    super(db);
    this.pending = new PendingCounters(db, counterCacheBytes);
    const s = (sql: string) => db.prepare(sql);
    this.st = {
      insertAlert: s(
        `INSERT OR IGNORE INTO alerts (alert_id, project_id, rule_id, scope_key, window_start_ms, window_end_ms, level_index, threshold, value, late, forecast, fired_at_ms, message)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertDelivery: s(
        `INSERT OR IGNORE INTO deliveries (delivery_id, alert_id, project_id, channel_index, channel, status, attempts, next_attempt_ms, created_at_ms, updated_at_ms)
         VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)`,
      ),
      // Leased at birth, as a claim would lease it: its first attempt has begun.
      insertLeasedDelivery: s(
        `INSERT OR IGNORE INTO deliveries (delivery_id, alert_id, project_id, channel_index, channel, status, attempts, next_attempt_ms, created_at_ms, updated_at_ms)
         VALUES (?, ?, ?, ?, ?, 'sending', 1, ?, ?, ?)`,
      ),
      setCounter: s(
        `INSERT INTO rule_counters (rule_id, scope_key, bucket_start_ms, value, updated_at_ms) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (rule_id, scope_key, bucket_start_ms) DO UPDATE SET value = excluded.value, updated_at_ms = excluded.updated_at_ms`,
      ),
      enabledRules: s('SELECT definition FROM rules WHERE enabled = 1').pluck(),
    };
  }

  /** The enabled rules of these projects, reloaded when the database changed under us. */
  private enabledRules(projectIds: Iterable<string>): CompiledRule[] {
    const dataVersion = this.db.pragma('data_version', { simple: true }) as number;
    if (this.cache?.dataVersion !== dataVersion) {
      const byProject = new Map<string, CompiledRule[]>();
      for (const definition of this.st.enabledRules.all() as string[]) {
        const rule = JSON.parse(definition) as Rule;
        const list = byProject.get(rule.projectId) ?? [];
        list.push(compileRule(rule));
        byProject.set(rule.projectId, list);
      }
      this.cache = { dataVersion, byProject };
    }
    const out: CompiledRule[] = [];
    for (const id of projectIds) out.push(...(this.cache.byProject.get(id) ?? []));
    return out;
  }

  /**
   * Evaluates a batch's new events against the rules (in the caller's transaction): inserts the
   * alerts it fires, and returns its counter deltas to `commit` once that transaction commits
   * (with the batch's event-log row, which the fold chunk holding it deletes).
   */
  evaluate(
    fresh: readonly PricedEvent[],
    nowMs: number,
  ): {
    alerts: NewAlert[];
    enforcedCounters: RuleCounter[];
    /** The new deliveries, leased to this process (with `leaseNewDeliveriesMs`). */
    leasedDeliveries: DeliveryRecord[];
    commit: (logSeq: number) => void;
  } {
    const none = {
      alerts: [],
      enforcedCounters: [],
      leasedDeliveries: [],
      commit: (_logSeq: number) => {},
    };
    if (fresh.length === 0) return none;
    const rules = this.enabledRules(new Set(fresh.map((e) => e.projectId)));
    if (rules.length === 0) return none;
    const plan = planBatch(fresh, rules);
    if (plan.deltas.length === 0) return none;
    const staged = this.pending.stage(plan);
    const rows = this.pending.values(plan.reads, staged);
    const byId = new Map(rules.map((c) => [c.rule.id, c.rule]));
    const leasedDeliveries: DeliveryRecord[] = [];
    const alerts = findCrossings(plan, rows, nowMs).filter((a) =>
      this.insertAlert(a, byId.get(a.ruleId) as Rule, nowMs, leasedDeliveries),
    );
    return {
      alerts,
      enforcedCounters: enforcedCounters(plan, rows),
      leasedDeliveries,
      commit: (logSeq: number) => this.pending.commit(staged, logSeq),
    };
  }

  /** Alerts raised outside a batch (see RuleStore.fireAlerts), in one transaction. */
  fireAlerts(alerts: readonly NewAlert[], nowMs: number): NewAlert[] {
    return immediate(this.db, () =>
      alerts.filter((a) => {
        const rule = this.getRule(a.projectId, a.ruleId);
        return rule !== undefined && this.insertAlert(a, rule, nowMs);
      }),
    );
  }

  /**
   * Inserts an alert and its deliveries; false when it exists already. With `leased` (a batch's
   * alerts, when this process sends them itself) the deliveries are created leased and added to it.
   */
  private insertAlert(
    alert: NewAlert,
    rule: Rule,
    nowMs: number,
    leased?: DeliveryRecord[],
  ): boolean {
    const inserted = this.st.insertAlert.run(
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
    const leaseMs = leased === undefined ? undefined : this.leaseNewDeliveriesMs;
    rule.channels.forEach((channel, i) => {
      const id = deliveryIdOf(alert.alertId, i);
      const nextAttemptMs = leaseMs === undefined ? nowMs : nowMs + leaseMs;
      const insert = leaseMs === undefined ? this.st.insertDelivery : this.st.insertLeasedDelivery;
      const row = [id, alert.alertId, alert.projectId, i, JSON.stringify(channel)];
      if (insert.run(...row, nextAttemptMs, nowMs, nowMs).changes !== 1 || leaseMs === undefined)
        return;
      leased?.push({
        id,
        alertId: alert.alertId,
        projectId: alert.projectId,
        channelIndex: i,
        channel,
        status: 'sending',
        attempts: 1,
        nextAttemptMs,
        lastError: undefined,
        createdAtMs: nowMs,
        updatedAtMs: nowMs,
        deliveredAtMs: undefined,
        message: alert.message,
      });
    });
    return true;
  }

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
   * Stores a rule (in the caller's transaction) and, when it starts counting, rebuilds its
   * counters from the rollups and fires the levels they have reached (see `activate`).
   */
  private save(previous: Rule | undefined, next: Rule, nowMs: number): RuleChange {
    const activation = activate(previous, next, nowMs, this.sharedWithEnabledRule(next));
    const rule = activation.rule;
    const row = [JSON.stringify(rule), rule.enabled ? 1 : 0, rule.updatedAtMs];
    if (previous) {
      this.db
        .prepare(
          'UPDATE rules SET definition = ?, enabled = ?, updated_at_ms = ? WHERE rule_id = ? AND project_id = ?',
        )
        .run(...row, rule.id, rule.projectId);
    } else {
      try {
        this.db
          .prepare(
            'INSERT INTO rules (definition, enabled, updated_at_ms, rule_id, project_id, created_at_ms) VALUES (?, ?, ?, ?, ?, ?)',
          )
          .run(...row, rule.id, rule.projectId, rule.createdAtMs);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY')
          throw new TokenwatchError('not_found', `project "${rule.projectId}" does not exist`);
        if (code?.startsWith('SQLITE_CONSTRAINT'))
          throw new TokenwatchError('conflict', `rule "${rule.id}" already exists`);
        throw err;
      }
    }
    this.cache = undefined;
    this.pending.forgetFolded();
    const counterKey = counterKeyOf(rule);
    const first = firstCountedBucket(rule);
    if (activation.seed) {
      this.db
        .prepare('DELETE FROM rule_counters WHERE rule_id = ? AND bucket_start_ms >= ?')
        .run(counterKey, first);
      for (const seed of seedQueries(rule, nowMs)) {
        for (const c of countersFromRows(rule, seed, this.queryRollups(seed.query)))
          this.st.setCounter.run(c.ruleId, c.scopeKey, c.bucketStartMs, c.value, nowMs);
      }
    }
    let alerts: NewAlert[] = [];
    if (activation.starts) {
      const compiled = compileRule(rule);
      const counters = this.countersAtStart(compiled, counterKey, first);
      alerts = crossingsAtStart(compiled, counters, nowMs).filter((a) =>
        this.insertAlert(a, rule, nowMs),
      );
    }
    return { rule, alerts };
  }

  /**
   * The counters whose levels a starting rule has already reached: those at or past its
   * `startCounterFloor` when no unfolded delta could lift another one there (a rule save folds
   * first, so usually none is left), else all of them.
   */
  private countersAtStart(
    compiled: CompiledRule,
    counterKey: string,
    first: number,
  ): RuleCounter[] {
    const floor = startCounterFloor(compiled);
    if (floor === undefined || !this.pending.isEmpty) {
      return this.readCounters(counterKey, first, Number.MAX_SAFE_INTEGER);
    }
    const rows = this.db
      .prepare(
        'SELECT rule_id, scope_key, bucket_start_ms, value FROM rule_counters WHERE rule_id = ? AND bucket_start_ms >= ? AND value >= ? ORDER BY bucket_start_ms, scope_key',
      )
      .all(counterKey, first, floor) as CounterRow[];
    return rows.map(toCounter);
  }

  createRule(rule: Rule, nowMs: number): RuleChange {
    compileRule(rule); // refuses a rule whose levels cannot be resolved
    return immediate(this.db, () => this.save(undefined, rule, nowMs));
  }

  updateRule(rule: Rule, nowMs: number): RuleChange | undefined {
    compileRule(rule);
    return immediate(this.db, () => {
      const existing = this.getRule(rule.projectId, rule.id);
      return existing ? this.save(existing, rule, nowMs) : undefined;
    });
  }

  deleteRule(projectId: string, ruleId: string): boolean {
    this.cache = undefined;
    return immediate(this.db, () => {
      const deleted =
        this.db
          .prepare('DELETE FROM rules WHERE rule_id = ? AND project_id = ?')
          .run(ruleId, projectId).changes === 1;
      return deleted;
    });
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

  readCounters(ruleId: string, fromMs: number, toMs: number, scopeKey?: string): RuleCounter[] {
    const rows = (
      scopeKey === undefined
        ? this.db
            .prepare(
              'SELECT rule_id, scope_key, bucket_start_ms, value FROM rule_counters WHERE rule_id = ? AND bucket_start_ms >= ? AND bucket_start_ms < ? ORDER BY bucket_start_ms, scope_key',
            )
            .all(ruleId, fromMs, toMs)
        : this.db
            .prepare(
              'SELECT rule_id, scope_key, bucket_start_ms, value FROM rule_counters WHERE rule_id = ? AND scope_key = ? AND bucket_start_ms >= ? AND bucket_start_ms < ? ORDER BY bucket_start_ms',
            )
            .all(ruleId, scopeKey, fromMs, toMs)
    ) as CounterRow[];
    return this.pending.merge(rows.map(toCounter), ruleId, fromMs, toMs, scopeKey);
  }
}
