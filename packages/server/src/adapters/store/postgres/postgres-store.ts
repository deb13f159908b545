import {
  type ApiKeyRecord,
  type ApplyOptions,
  type ApplyResult,
  type ConflictRecord,
  type ModelPriceEntry,
  type PricedEvent,
  type Project,
  type PruneOptions,
  type PruneResult,
  type Store,
  TokenwatchError,
  type UsageQuery,
  type UsageRow,
  type UserSearch,
  userSearchQuery,
} from '@tokenwatch/core';
import pg from 'pg';
import { RuleStoreDelegate } from '../rule-store-delegate.js';
import { measuresFromRow } from '../sql-rows.js';
import { compileUsageQuery } from '../sqlite/sqlite-usage-queries.js';
import { isTransientConflict, pgError } from './pg-errors.js';
import { connectionOptions } from './pg-session.js';
import { PostgresBatchWriter } from './postgres-batch.js';
import { PostgresProjects } from './postgres-projects.js';
import { PostgresRules } from './postgres-rules.js';
import { PG_MIGRATIONS } from './schema.js';

export interface PostgresStoreOptions {
  /** postgres://user@host:port/database */
  url: string;
  /** Schema the tables live in (created by `migrate`); default `public`. One schema = one tokenwatch. */
  schema?: string | undefined;
  /** Connections in the pool (default 4). */
  poolSize?: number | undefined;
  /** How long `applyBatch` waits for a row lock before giving up with a retryable error. */
  lockTimeoutMs?: number | undefined;
  /** Called when an idle pooled connection fails (e.g. the server restarted); default: ignore. */
  onPoolError?: ((err: Error) => void) | undefined;
  /**
   * Server settings of this store's connections, set as each one opens (`-c name=value`), such
   * as `{ synchronous_commit: 'off' }` for a store whose commits need not wait for the flush.
   */
  sessionSettings?: Readonly<Record<string, string>> | undefined;
}

/** A connection (pooled client) the store runs statements on. */
export type Queryable = Pick<pg.PoolClient, 'query'>;

const INT8_OID = 20;

function quoteIdent(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)) {
    throw new TokenwatchError('invalid_config', `invalid PostgreSQL schema name "${name}"`);
  }
  return `"${name}"`;
}

/** `SUM(...)` comes back as numeric text; counts are safe integers, costs are bigints. */
function num(value: unknown): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : Number(value);
}

/**
 * The PostgreSQL adapter of the `Store` port (scale-out mode): any number of workers apply
 * batches concurrently against one database.
 *
 * How a batch is applied (one transaction, a constant number of set-based statements whatever
 * its size; see DESIGN.md § data flow):
 * 1. series and tag ids are resolved from a cached dictionary; misses are upserted beforehand in
 *    their own statement (a dictionary row without usage is harmless, so a failed batch may
 *    leave one behind);
 * 2. `INSERT INTO event_ids … SELECT FROM unnest(…) ON CONFLICT DO NOTHING RETURNING` claims the
 *    new ids (the exactly-once step: a redelivered message finds its ids claimed);
 * 3. the new events, pre-aggregated in memory, are upserted into every rollup in ONE statement;
 * 4. rule counters are upserted with `RETURNING` (the total after this batch), crossings insert
 *    alerts `ON CONFLICT DO NOTHING RETURNING` and their outbox rows.
 * Rows are written in a fixed order (sorted keys), so concurrent workers queue on row locks
 * instead of deadlocking; a deadlock or serialization failure that still happens reruns the
 * transaction (it commits nothing until the end).
 */
export class PostgresStore extends RuleStoreDelegate implements Store {
  readonly pool: pg.Pool;
  readonly schema: string;
  protected readonly rules: PostgresRules;
  private readonly batches: PostgresBatchWriter;
  private readonly projects: PostgresProjects;
  private readonly lockTimeoutMs: number;

  constructor(options: PostgresStoreOptions) {
    super();
    this.schema = options.schema ?? 'public';
    quoteIdent(this.schema);
    this.lockTimeoutMs = options.lockTimeoutMs ?? 15_000;
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 4,
      connectionTimeoutMillis: 5_000,
      application_name: 'tokenwatch',
      idleTimeoutMillis: 30_000,
      // Every connection of this store sees only its schema.
      options: connectionOptions(this.schema, options.sessionSettings ?? {}),
      // BIGINT columns come back as numbers (counters, ms timestamps); SUMs (numeric) stay text.
      types: {
        getTypeParser: ((oid: number, format?: string) =>
          oid === INT8_OID
            ? (v: string) => Number(v)
            : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
      },
    });
    // A client whose server went away (restart, failover) emits 'error', idle in the pool or
    // checked out between two statements; unhandled, that would end the process. The statement
    // in flight fails on its own and is mapped to `unavailable`.
    const onError = options.onPoolError ?? (() => {});
    this.pool.on('error', onError);
    this.pool.on('connect', (client) => client.on('error', onError));
    this.rules = new PostgresRules(this);
    this.batches = new PostgresBatchWriter(this.pool, this.rules);
    this.projects = new PostgresProjects(this);
  }

  /** Runs `fn` in one transaction on one pooled connection. */
  async tx<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query(`BEGIN; SET LOCAL lock_timeout = ${Math.round(this.lockTimeoutMs)}`);
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackErr) {
        broken = rollbackErr as Error; // the connection is unusable: drop it from the pool
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /** A statement on any pooled connection, with errors mapped. */
  async query<R extends pg.QueryResultRow = Record<string, unknown>>(
    what: string,
    sql: string,
    params: unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(sql, params);
    } catch (err) {
      throw pgError(err, what);
    }
  }

  async migrate(): Promise<void> {
    const schema = quoteIdent(this.schema);
    try {
      await this.tx(async (c) => {
        // Several processes may start at once: one migrates, the others wait and find it done.
        await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 7))', [
          `tokenwatch-migrate:${this.schema}`,
        ]);
        await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
        await c.query(
          `CREATE TABLE IF NOT EXISTS ${schema}.schema_version (version INTEGER NOT NULL)`,
        );
        const row = await c.query<{ v: number | null }>(
          `SELECT MAX(version) AS v FROM ${schema}.schema_version`,
        );
        const current = row.rows[0]?.v ?? 0;
        if (current > PG_MIGRATIONS.length) {
          throw new TokenwatchError(
            'internal',
            `the database schema (version ${current}) is newer than this tokenwatch (${PG_MIGRATIONS.length}); upgrade tokenwatch`,
          );
        }
        await c.query(`SET LOCAL search_path = ${schema}`);
        for (let v = current; v < PG_MIGRATIONS.length; v++) {
          await c.query(PG_MIGRATIONS[v] as string);
          await c.query(`INSERT INTO ${schema}.schema_version (version) VALUES ($1)`, [v + 1]);
        }
      });
    } catch (err) {
      throw pgError(err, 'migrate');
    }
  }

  // ---------------------------------------------------------------- usage

  async applyBatch(events: readonly PricedEvent[], options: ApplyOptions): Promise<ApplyResult> {
    if (events.length === 0) {
      return {
        accepted: 0,
        duplicates: 0,
        conflicts: 0,
        outcomes: [],
        alerts: [],
        enforcedCounters: [],
      };
    }
    try {
      await this.batches.resolveDictionary(events);
    } catch (err) {
      throw pgError(err, 'applyBatch (series)');
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.tx((c) => this.batches.applyIn(c, events, options));
      } catch (err) {
        if (isTransientConflict(err) && attempt < 5) continue;
        throw pgError(err, 'applyBatch');
      }
    }
  }

  async queryUsage(q: UsageQuery): Promise<UsageRow[]> {
    try {
      return await this.queryUsageOn(this.pool, q);
    } catch (err) {
      throw pgError(err, 'queryUsage');
    }
  }

  /** `queryUsage` on a given connection (e.g. inside a transaction that rebuilds rule counters). */
  async queryUsageOn(c: Queryable, q: UsageQuery): Promise<UsageRow[]> {
    const compiled = compilePostgresUsageQuery(q, 'rows');
    const res = await c.query<Record<string, unknown>>(compiled.sql, compiled.params);
    return res.rows.map((r) => {
      const row: UsageRow = measuresFromRow(r, num);
      compiled.dimensions.forEach((dim, i) => {
        const value = String(r[`d${i}`]);
        if (dim.startsWith('tag:')) row.tag = { key: dim.slice(4), value };
        else row[dim as 'user' | 'app' | 'model' | 'provider'] = value;
      });
      if (q.interval) row.bucketMs = num(r.bucket);
      return row;
    });
  }

  async searchUsers(search: UserSearch): Promise<UsageRow[]> {
    return this.queryUsage(userSearchQuery(search));
  }

  async countGroups(q: UsageQuery): Promise<number> {
    const compiled = compilePostgresUsageQuery(q, 'count');
    const res = await this.query<{ n: string }>('countGroups', compiled.sql, compiled.params);
    return Number(res.rows[0]?.n ?? 0);
  }

  async listConflicts(projectId: string, limit: number): Promise<ConflictRecord[]> {
    const res = await this.query<{
      event_id: string;
      first_fingerprint: string;
      conflicting_fingerprint: string;
      seen_at_ms: number;
    }>(
      'listConflicts',
      'SELECT event_id, first_fingerprint, conflicting_fingerprint, seen_at_ms FROM conflicts WHERE project_id = $1 ORDER BY seen_at_ms DESC, seq DESC LIMIT $2',
      [projectId, limit],
    );
    return res.rows.map((r) => ({
      projectId,
      eventId: r.event_id,
      firstFingerprint: r.first_fingerprint,
      conflictingFingerprint: r.conflicting_fingerprint,
      seenAtMs: r.seen_at_ms,
    }));
  }

  async prune(options: PruneOptions): Promise<PruneResult> {
    const minute = await this.query('prune', 'DELETE FROM rollup_minute WHERE bucket_ms < $1', [
      options.nowMs - options.minuteRetentionMs,
    ]);
    const ids = await this.query('prune', 'DELETE FROM event_ids WHERE event_ms < $1', [
      options.nowMs - options.dedupeRetentionMs,
    ]);
    // Rule counters of windows that can no longer receive an event (older than the accepted
    // lateness, plus a month for the longest window).
    await this.query('prune', 'DELETE FROM rule_counters WHERE bucket_start_ms < $1', [
      options.nowMs - options.dedupeRetentionMs - 32 * 86_400_000,
    ]);
    const cutoff = options.nowMs - options.historyRetentionMs;
    const deliveries = await this.query(
      'prune',
      "DELETE FROM deliveries WHERE status IN ('delivered', 'dead') AND updated_at_ms < $1",
      [cutoff],
    );
    const alerts = await this.query(
      'prune',
      'DELETE FROM alerts a WHERE window_end_ms < $1 AND fired_at_ms < $1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.alert_id)',
      [cutoff],
    );
    const conflicts = await this.query('prune', 'DELETE FROM conflicts WHERE seen_at_ms < $1', [
      cutoff,
    ]);
    const poison = await this.query('prune', 'DELETE FROM poison_messages WHERE seen_at_ms < $1', [
      cutoff,
    ]);
    return {
      minuteRowsDeleted: minute.rowCount ?? 0,
      eventIdsDeleted: ids.rowCount ?? 0,
      alertsDeleted: alerts.rowCount ?? 0,
      deliveriesDeleted: deliveries.rowCount ?? 0,
      conflictsDeleted: conflicts.rowCount ?? 0,
      poisonMessagesDeleted: poison.rowCount ?? 0,
    };
  }

  // ---------------------------------------------------------------- projects and keys (see PostgresProjects)

  createProject(project: Project): Promise<void> {
    return this.projects.createProject(project);
  }

  getProject(id: string): Promise<Project | undefined> {
    return this.projects.getProject(id);
  }

  listProjects(): Promise<Project[]> {
    return this.projects.listProjects();
  }

  createKey(key: ApiKeyRecord): Promise<void> {
    return this.projects.createKey(key);
  }

  findKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    return this.projects.findKeyByHash(hash);
  }

  listKeys(projectId: string): Promise<ApiKeyRecord[]> {
    return this.projects.listKeys(projectId);
  }

  revokeKey(projectId: string, keyId: string, nowMs: number): Promise<boolean> {
    return this.projects.revokeKey(projectId, keyId, nowMs);
  }

  listPriceOverrides(projectId: string): Promise<ModelPriceEntry[]> {
    return this.projects.listPriceOverrides(projectId);
  }

  putPriceOverride(projectId: string, e: ModelPriceEntry): Promise<void> {
    return this.projects.putPriceOverride(projectId, e);
  }

  deletePriceOverride(
    projectId: string,
    provider: string,
    modelId: string,
    effectiveFrom: string,
  ): Promise<boolean> {
    return this.projects.deletePriceOverride(projectId, provider, modelId, effectiveFrom);
  }

  // ---------------------------------------------------------------- queue poison log

  /**
   * Records a queue message the worker gave up on (terminated: undecodable, or failing past
   * max_deliver), where an operator finds it: `SELECT * FROM poison_messages`. Idempotent per
   * (stream, sequence).
   */
  async recordPoison(p: {
    stream: string;
    streamSeq: number;
    msgId: string | undefined;
    deliveries: number;
    reason: string;
    payloadHead: string;
    nowMs: number;
  }): Promise<void> {
    await this.query(
      'recordPoison',
      `INSERT INTO poison_messages (stream, stream_seq, msg_id, deliveries, reason, payload_head, seen_at_ms)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (stream, stream_seq) DO NOTHING`,
      [
        p.stream,
        p.streamSeq,
        p.msgId ?? null,
        p.deliveries,
        p.reason.slice(0, 2000),
        p.payloadHead,
        p.nowMs,
      ],
    );
  }

  async listPoison(
    limit = 100,
  ): Promise<Array<{ stream: string; streamSeq: number; msgId: string | null; reason: string }>> {
    const res = await this.query<{
      stream: string;
      stream_seq: number;
      msg_id: string | null;
      reason: string;
    }>(
      'listPoison',
      'SELECT stream, stream_seq, msg_id, reason FROM poison_messages ORDER BY seq DESC LIMIT $1',
      [limit],
    );
    return res.rows.map((r) => ({
      stream: r.stream,
      streamSeq: r.stream_seq,
      msgId: r.msg_id,
      reason: r.reason,
    }));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** The shared usage SQL in PostgreSQL's dialect. */
function compilePostgresUsageQuery(q: UsageQuery, shape: 'rows' | 'count') {
  const compiled = compileUsageQuery(q, {
    placeholder: (i) => `$${i}`,
    monthBucketSql: (column) =>
      `(floor(extract(epoch FROM date_trunc('month', to_timestamp(${column} / 1000.0) AT TIME ZONE 'UTC'))) * 1000)::bigint`,
    shape,
  });
  // The shared SQL pins SQLite's join order with CROSS JOIN … ON, which PostgreSQL spells JOIN.
  return { ...compiled, sql: compiled.sql.replaceAll(' CROSS JOIN ', ' JOIN ') };
}
