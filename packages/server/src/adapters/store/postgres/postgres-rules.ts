import {
  type AlertQuery,
  type AlertRecord,
  activate,
  type CompiledRule,
  compileRule,
  counterKeyOf,
  countersFromRows,
  crossingsAtStart,
  type DeliveryOutcome,
  type DeliveryRecord,
  type DeliveryStatus,
  enforcedCounters,
  findCrossings,
  firstCountedBucket,
  type NewAlert,
  type PricedEvent,
  planBatch,
  type Rule,
  type RuleChange,
  type RuleCounter,
  type RuleStore,
  seedQueries,
  startCounterFloor,
  TokenwatchError,
} from '@tokenwatch/core';
import type pg from 'pg';
import { pgCode, pgError } from './pg-errors.js';
import { PostgresAlerts } from './postgres-alerts.js';
import { byKey } from './postgres-batch.js';
import { type CounterRow, toCounter, writeCounters } from './postgres-counters.js';
import type { PostgresStore, Queryable } from './postgres-store.js';
import { ruleLockSlot } from './rule-locks.js';

/**
 * Rules, counters, alerts and the outbox on PostgreSQL: the rule engine of core over SQL rows.
 *
 * Workers apply batches concurrently and `serve` saves rules, so two locks keep every count
 * exact (the rule engine's contract, see RuleStore):
 * - per project, an advisory lock (one of 256 slots per schema, rule-locks.ts): a batch holds it
 *   SHARED for its whole transaction and reads the project's rule epoch under it; saving a rule
 *   holds it EXCLUSIVE, bumps the epoch and rebuilds the counters from the rollups. So a batch
 *   either committed before the rule was saved (its events are in the rollups the counters are
 *   rebuilt from) or sees the rule and counts into it: never both, never neither.
 * - per (counter key, scope key) of a rolling window, a row lock on its lock row (bucket −1,
 *   value 0; see rule-locks.ts and postgres-counters.ts), upserted with its minutes: the window
 *   sums several rows, and a worker must see the other's minutes.
 * Neither grows with the batch in PostgreSQL's shared lock table (see rule-locks.ts): one
 * advisory lock per project and one per rolling scope did, and a batch touching thousands of
 * users or projects failed with "out of shared memory", with every other session of the cluster.
 * `evaluate` is set-based: one upsert for all counter deltas (returning the calendar windows'
 * new values) and one read of the rolling windows' minutes (writeCounters), one insert of the alerts `ON CONFLICT
 * DO NOTHING RETURNING` (a concurrent worker that fired the same alert first wins and this one
 * does not report or deliver it again).
 */
export class PostgresRules implements RuleStore {
  /** Enabled rules per project, and the epoch they were read at. */
  private readonly cache = new Map<string, { epoch: number; rules: CompiledRule[] }>();

  private readonly alerts: PostgresAlerts;

  constructor(private readonly store: PostgresStore) {
    this.alerts = new PostgresAlerts(store);
  }

  /**
   * The project's rule lock: one of RULE_LOCK_SLOTS per schema, not one per project, so
   * that a batch spanning thousands of projects takes at most that many advisory locks (they
   * live in the cluster's shared lock table). Batches only ever take them SHARED; a rule save
   * takes its slot EXCLUSIVE and so also waits for batches of the other projects in that slot,
   * for the length of a batch.
   */
  private lockKey(projectId: string): string {
    return `tokenwatch-rules:${this.store.schema}:${ruleLockSlot(projectId)}`;
  }

  /**
   * Takes the projects' rule locks SHARED (first thing in a batch transaction) and returns their
   * enabled rules as of this transaction.
   */
  async rulesForBatch(c: Queryable, projectIds: readonly string[]): Promise<CompiledRule[]> {
    if (projectIds.length === 0) return [];
    const sorted = [...projectIds].sort(byKey);
    await c.query(
      'SELECT pg_advisory_xact_lock_shared(hashtextextended(k, 12)) FROM unnest($1::text[]) WITH ORDINALITY AS u(k, n) ORDER BY n',
      [[...new Set(sorted.map((p) => this.lockKey(p)))].sort(byKey)],
    );
    // Read after the lock: a rule saved meanwhile has committed its epoch by now.
    const epochs = await c.query<{ project_id: string; epoch: string }>(
      'SELECT project_id, epoch FROM rule_epochs WHERE project_id = ANY($1::text[])',
      [sorted],
    );
    const epochOf = new Map(epochs.rows.map((r) => [r.project_id, Number(r.epoch)]));
    const stale = sorted.filter((p) => this.cache.get(p)?.epoch !== (epochOf.get(p) ?? 0));
    if (stale.length > 0) {
      const res = await c.query<{ project_id: string; definition: string }>(
        'SELECT project_id, definition FROM rules WHERE enabled AND project_id = ANY($1::text[])',
        [stale],
      );
      const fresh = new Map<string, CompiledRule[]>(stale.map((p) => [p, []]));
      for (const r of res.rows)
        fresh.get(r.project_id)?.push(compileRule(JSON.parse(r.definition) as Rule));
      for (const [p, rules] of fresh) this.cache.set(p, { epoch: epochOf.get(p) ?? 0, rules });
    }
    return sorted.flatMap((p) => this.cache.get(p)?.rules ?? []);
  }

  /** Adds a batch's new events to the counters of `rules` and records the crossings (in the caller's transaction). */
  async evaluate(
    c: Queryable,
    fresh: readonly PricedEvent[],
    rules: readonly CompiledRule[],
    nowMs: number,
  ): Promise<{ alerts: NewAlert[]; enforcedCounters: RuleCounter[] }> {
    if (rules.length === 0 || fresh.length === 0) return { alerts: [], enforcedCounters: [] };
    const plan = planBatch(fresh, rules);
    if (plan.deltas.length === 0) return { alerts: [], enforcedCounters: [] };

    const rows = await writeCounters(c, plan, nowMs);
    const byId = new Map(rules.map((x) => [x.rule.id, x.rule]));
    const alerts = await this.alerts.insert(c, findCrossings(plan, rows, nowMs), byId, nowMs);
    return { alerts, enforcedCounters: enforcedCounters(plan, rows) };
  }

  async fireAlerts(alerts: readonly NewAlert[], nowMs: number): Promise<NewAlert[]> {
    if (alerts.length === 0) return [];
    try {
      return await this.store.tx(async (c) => {
        const res = await c.query<{ definition: string }>(
          'SELECT definition FROM rules WHERE rule_id = ANY($1::text[])',
          [[...new Set(alerts.map((a) => a.ruleId))]],
        );
        const rules = new Map(
          res.rows.map((r) => {
            const rule = JSON.parse(r.definition) as Rule;
            return [rule.id, rule] as const;
          }),
        );
        const known = alerts.filter((a) => rules.get(a.ruleId)?.projectId === a.projectId);
        return this.alerts.insert(c, known, rules, nowMs);
      });
    } catch (err) {
      throw pgError(err, 'fireAlerts');
    }
  }

  /**
   * Saves a rule in a transaction that holds the project's rule lock EXCLUSIVE (see the class
   * comment) and, when the rule starts counting, rebuilds its counters from the rollups and
   * fires what they have reached.
   */
  private async save(
    rule: Rule,
    nowMs: number,
    write: (c: pg.PoolClient, previous: Rule | undefined, next: Rule) => Promise<void>,
    requireExisting: boolean,
  ): Promise<RuleChange | undefined> {
    return this.store.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 12))', [
        this.lockKey(rule.projectId),
      ]);
      const existing = await c.query<{ definition: string }>(
        'SELECT definition FROM rules WHERE rule_id = $1 AND project_id = $2',
        [rule.id, rule.projectId],
      );
      const previous = existing.rows[0]
        ? (JSON.parse(existing.rows[0].definition) as Rule)
        : undefined;
      if (requireExisting && !previous) return undefined;
      const counterKey = counterKeyOf(rule);
      const others = await c.query<{ definition: string }>(
        'SELECT definition FROM rules WHERE project_id = $1 AND enabled AND rule_id <> $2',
        [rule.projectId, rule.id],
      );
      const shared = others.rows.some(
        (r) => counterKeyOf(JSON.parse(r.definition) as Rule) === counterKey,
      );
      const activation = activate(previous, rule, nowMs, shared);
      await write(c, previous, activation.rule);
      await c.query(
        `INSERT INTO rule_epochs (project_id, epoch) VALUES ($1, 1)
         ON CONFLICT (project_id) DO UPDATE SET epoch = rule_epochs.epoch + 1`,
        [rule.projectId],
      );
      const first = firstCountedBucket(activation.rule);
      if (activation.seed) {
        await c.query('DELETE FROM rule_counters WHERE rule_id = $1 AND bucket_start_ms >= $2', [
          counterKey,
          first,
        ]);
        const counters: RuleCounter[] = [];
        for (const seed of seedQueries(activation.rule, nowMs))
          counters.push(
            ...countersFromRows(
              activation.rule,
              seed,
              await this.store.queryUsageOn(c, seed.query),
            ),
          );
        if (counters.length > 0) {
          await c.query(
            `INSERT INTO rule_counters (rule_id, scope_key, bucket_start_ms, value, updated_at_ms)
             SELECT r, s, b, v, $5 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS u(r, s, b, v)`,
            [
              counters.map((x) => x.ruleId),
              counters.map((x) => x.scopeKey),
              counters.map((x) => x.bucketStartMs),
              counters.map((x) => x.value),
              nowMs,
            ],
          );
        }
      }
      let alerts: NewAlert[] = [];
      if (activation.starts) {
        const compiled = compileRule(activation.rule);
        // Only the buckets that can have reached a level (see startCounterFloor).
        const res = await c.query<CounterRow>(
          'SELECT rule_id, scope_key, bucket_start_ms, value FROM rule_counters WHERE rule_id = $1 AND bucket_start_ms >= $2 AND value >= $3',
          [counterKey, first, startCounterFloor(compiled) ?? 1],
        );
        alerts = await this.alerts.insert(
          c,
          crossingsAtStart(compiled, res.rows.map(toCounter), nowMs),
          new Map([[rule.id, activation.rule]]),
          nowMs,
        );
      }
      return { rule: activation.rule, alerts };
    });
  }

  async createRule(rule: Rule, nowMs: number): Promise<RuleChange> {
    compileRule(rule); // refuses a rule whose levels cannot be resolved
    try {
      const change = await this.save(
        rule,
        nowMs,
        async (c, previous, next) => {
          if (previous) throw new TokenwatchError('conflict', `rule "${rule.id}" already exists`);
          try {
            await c.query(
              'INSERT INTO rules (rule_id, project_id, definition, enabled, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6)',
              [
                next.id,
                next.projectId,
                JSON.stringify(next),
                next.enabled,
                next.createdAtMs,
                next.updatedAtMs,
              ],
            );
          } catch (err) {
            if (pgCode(err) === '23503')
              throw new TokenwatchError('not_found', `project "${rule.projectId}" does not exist`);
            if (pgCode(err) === '23505')
              throw new TokenwatchError('conflict', `rule "${rule.id}" already exists`);
            throw err;
          }
        },
        false,
      );
      return change as RuleChange;
    } catch (err) {
      throw pgError(err, 'createRule');
    }
  }

  async updateRule(rule: Rule, nowMs: number): Promise<RuleChange | undefined> {
    compileRule(rule);
    try {
      return await this.save(
        rule,
        nowMs,
        async (c, _previous, next) => {
          await c.query(
            'UPDATE rules SET definition = $1, enabled = $2, updated_at_ms = $3 WHERE rule_id = $4 AND project_id = $5',
            [JSON.stringify(next), next.enabled, next.updatedAtMs, next.id, next.projectId],
          );
        },
        true,
      );
    } catch (err) {
      throw pgError(err, 'updateRule');
    }
  }

  async deleteRule(projectId: string, ruleId: string): Promise<boolean> {
    try {
      return await this.store.tx(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 12))', [
          this.lockKey(projectId),
        ]);
        const res = await c.query('DELETE FROM rules WHERE rule_id = $1 AND project_id = $2', [
          ruleId,
          projectId,
        ]);
        if (res.rowCount !== 1) return false;
        await c.query('UPDATE rule_epochs SET epoch = epoch + 1 WHERE project_id = $1', [
          projectId,
        ]);
        // Counters stay: other rules may share them; prune removes old buckets.
        return true;
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

  async readCounters(
    ruleId: string,
    fromMs: number,
    toMs: number,
    scopeKey?: string,
  ): Promise<RuleCounter[]> {
    const res = await this.store.query<CounterRow>(
      'readCounters',
      `SELECT rule_id, scope_key, bucket_start_ms, value FROM rule_counters
       WHERE rule_id = $1 AND bucket_start_ms >= $2 AND bucket_start_ms < $3 AND ($4::text IS NULL OR scope_key = $4)
       ORDER BY bucket_start_ms, scope_key`,
      [ruleId, fromMs, toMs, scopeKey ?? null],
    );
    return res.rows.map(toCounter);
  }

  listAlerts(q: AlertQuery): Promise<AlertRecord[]> {
    return this.alerts.list(q);
  }

  acknowledgeAlert(projectId: string, alertId: string, nowMs: number): Promise<boolean> {
    return this.alerts.acknowledge(projectId, alertId, nowMs);
  }

  claimDeliveries(nowMs: number, limit: number, leaseMs: number): Promise<DeliveryRecord[]> {
    return this.alerts.claimDeliveries(nowMs, limit, leaseMs);
  }

  completeDelivery(id: string, outcome: DeliveryOutcome, nowMs: number): Promise<void> {
    return this.alerts.completeDelivery(id, outcome, nowMs);
  }

  listDeliveries(
    projectId: string,
    filter: { alertId?: string | undefined; status?: DeliveryStatus | undefined },
    limit: number,
  ): Promise<DeliveryRecord[]> {
    return this.alerts.listDeliveries(projectId, filter, limit);
  }
}
