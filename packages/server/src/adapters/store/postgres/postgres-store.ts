import {
  type ApiKeyRecord,
  type ApplyOptions,
  type ApplyResult,
  aggregateEvents,
  type ConflictRecord,
  EventOutcome,
  type ModelPriceEntry,
  type PricedEvent,
  type Project,
  type PruneOptions,
  type PruneResult,
  type RollupDelta,
  type Store,
  type TagRollupDelta,
  TokenwatchError,
  type UsageQuery,
  type UsageRow,
} from '@tokenwatch/core';
import pg from 'pg';
import { RuleStoreDelegate } from '../rule-store-delegate.js';
import { KEY_COLUMNS, type KeyRow, keyFromRow, keyParams } from '../sql-rows.js';
import { compileUsageQuery } from '../sqlite/sqlite-usage-queries.js';
import { isTransientConflict, pgCode, pgError } from './pg-errors.js';
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
}

/** A connection (pooled client) the store runs statements on. */
export type Queryable = Pick<pg.PoolClient, 'query'>;

/** Dictionary caches are dropped (and refilled from the database) past this many entries. */
const MAX_CACHED_IDS = 1_000_000;
const INT8_OID = 20;
const ROLLUP_COLUMNS =
  'input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, total_tokens, requests, errors, cost_nano_usd, unpriced_tokens, unpriced_requests';
const MEASURE_NAMES = ROLLUP_COLUMNS.split(', ');

function seriesKey(e: {
  projectId: string;
  userId: string;
  appId: string;
  modelId: string;
  provider: string;
}): string {
  return `${e.projectId}\u0000${e.userId}\u0000${e.appId}\u0000${e.modelId}\u0000${e.provider}`;
}

function byKey(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

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
  private readonly seriesIds = new Map<string, number>();
  private readonly tagIds = new Map<string, number>();
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
      options: `-c search_path=${this.schema}`,
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
      await this.resolveDictionary(events);
    } catch (err) {
      throw pgError(err, 'applyBatch (series)');
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.tx((c) => this.applyIn(c, events, options));
      } catch (err) {
        if (isTransientConflict(err) && attempt < 5) continue;
        throw pgError(err, 'applyBatch');
      }
    }
  }

  /** Upserts the series and tags this batch needs that are not cached yet. */
  private async resolveDictionary(events: readonly PricedEvent[]): Promise<void> {
    const missing = new Map<string, PricedEvent>();
    const missingTags = new Map<string, [string, string, string]>();
    for (const e of events) {
      const key = seriesKey(e);
      if (!this.seriesIds.has(key)) missing.set(key, e);
      if (e.tags) {
        for (const k of Object.keys(e.tags)) {
          const v = e.tags[k] as string;
          const tagKey = `${e.projectId}\u0000${k}\u0000${v}`;
          if (!this.tagIds.has(tagKey)) missingTags.set(tagKey, [e.projectId, k, v]);
        }
      }
    }
    if (missing.size > 0) {
      // Sorted: concurrent workers lock dictionary rows in the same order.
      const keys = [...missing.keys()].sort(byKey);
      const cols: string[][] = [[], [], [], [], []];
      for (const k of keys) {
        const e = missing.get(k) as PricedEvent;
        cols[0]?.push(e.projectId);
        cols[1]?.push(e.userId);
        cols[2]?.push(e.appId);
        cols[3]?.push(e.modelId);
        cols[4]?.push(e.provider);
      }
      // DO UPDATE (a no-op) instead of DO NOTHING: RETURNING then yields rows that already
      // existed too, including ones another worker committed a moment ago.
      const res = await this.pool.query<{
        series_id: number;
        project_id: string;
        user_id: string;
        app_id: string;
        model_id: string;
        provider: string;
      }>(
        `INSERT INTO series (project_id, user_id, app_id, model_id, provider)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
         ON CONFLICT (project_id, user_id, app_id, model_id, provider) DO UPDATE SET provider = EXCLUDED.provider
         RETURNING series_id, project_id, user_id, app_id, model_id, provider`,
        cols,
      );
      if (this.seriesIds.size + res.rows.length > MAX_CACHED_IDS) this.seriesIds.clear();
      for (const r of res.rows) {
        this.seriesIds.set(
          seriesKey({
            projectId: r.project_id,
            userId: r.user_id,
            appId: r.app_id,
            modelId: r.model_id,
            provider: r.provider,
          }),
          r.series_id,
        );
      }
    }
    if (missingTags.size > 0) {
      const keys = [...missingTags.keys()].sort(byKey);
      const cols: string[][] = [[], [], []];
      for (const k of keys) {
        const [p, tk, tv] = missingTags.get(k) as [string, string, string];
        cols[0]?.push(p);
        cols[1]?.push(tk);
        cols[2]?.push(tv);
      }
      const res = await this.pool.query<{
        tag_id: number;
        project_id: string;
        tag_key: string;
        tag_value: string;
      }>(
        `INSERT INTO tags (project_id, tag_key, tag_value)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
         ON CONFLICT (project_id, tag_key, tag_value) DO UPDATE SET tag_value = EXCLUDED.tag_value
         RETURNING tag_id, project_id, tag_key, tag_value`,
        cols,
      );
      if (this.tagIds.size + res.rows.length > MAX_CACHED_IDS) this.tagIds.clear();
      for (const r of res.rows) {
        this.tagIds.set(`${r.project_id}\u0000${r.tag_key}\u0000${r.tag_value}`, r.tag_id);
      }
    }
  }

  private async applyIn(
    c: pg.PoolClient,
    events: readonly PricedEvent[],
    options: ApplyOptions,
  ): Promise<ApplyResult> {
    // 1. Claim ids: the first occurrence of each (project, id) of the batch, in key order.
    const firstIndex = new Map<string, number>();
    events.forEach((e, i) => {
      const key = `${e.projectId}\u0000${e.id}`;
      if (!firstIndex.has(key)) firstIndex.set(key, i);
    });
    const uniqueKeys = [...firstIndex.keys()].sort(byKey);
    const claimCols: unknown[][] = [[], [], [], []];
    for (const key of uniqueKeys) {
      const e = events[firstIndex.get(key) as number] as PricedEvent;
      claimCols[0]?.push(e.projectId);
      claimCols[1]?.push(e.id);
      claimCols[2]?.push(e.timestampMs);
      claimCols[3]?.push(e.fingerprint);
    }
    const claimedRows = await c.query<{ project_id: string; id: string }>(
      `INSERT INTO event_ids (project_id, id, event_ms, fingerprint)
       SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
       ON CONFLICT DO NOTHING RETURNING project_id, id`,
      claimCols,
    );
    const claimed = new Set(claimedRows.rows.map((r) => `${r.project_id}\u0000${r.id}`));
    // Fingerprints of ids applied before (only when the batch has any: a redelivery).
    const stored = new Map<string, string>();
    if (claimed.size < uniqueKeys.length) {
      const p: string[] = [];
      const ids: string[] = [];
      for (const key of uniqueKeys) {
        if (claimed.has(key)) continue;
        const e = events[firstIndex.get(key) as number] as PricedEvent;
        p.push(e.projectId);
        ids.push(e.id);
      }
      const res = await c.query<{ project_id: string; id: string; fingerprint: string }>(
        `SELECT e.project_id, e.id, e.fingerprint FROM event_ids e
         JOIN unnest($1::text[], $2::text[]) AS u(project_id, id) ON e.project_id = u.project_id AND e.id = u.id`,
        [p, ids],
      );
      for (const r of res.rows) stored.set(`${r.project_id}\u0000${r.id}`, r.fingerprint);
    }

    const outcomes: EventOutcome[] = new Array(events.length);
    const fresh: PricedEvent[] = [];
    let duplicates = 0;
    let conflicts = 0;
    const conflictCols: unknown[][] = [[], [], [], []];
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as PricedEvent;
      const key = `${e.projectId}\u0000${e.id}`;
      const first = firstIndex.get(key) as number;
      if (first === i && claimed.has(key)) {
        outcomes[i] = EventOutcome.Accepted;
        fresh.push(e);
        continue;
      }
      const firstFingerprint = claimed.has(key)
        ? (events[first] as PricedEvent).fingerprint
        : stored.get(key);
      if (firstFingerprint === undefined) {
        // Claimed by a transaction that has since been rolled back? Never silently count it.
        throw new TokenwatchError('unavailable', `event id ${e.id} vanished during the batch`, {
          retryAfterSeconds: 1,
        });
      }
      if (firstFingerprint === e.fingerprint) {
        outcomes[i] = EventOutcome.Duplicate;
        duplicates++;
      } else {
        outcomes[i] = EventOutcome.Conflict;
        conflicts++;
        conflictCols[0]?.push(e.projectId);
        conflictCols[1]?.push(e.id);
        conflictCols[2]?.push(firstFingerprint);
        conflictCols[3]?.push(e.fingerprint);
      }
    }
    if (conflicts > 0) {
      await c.query(
        `INSERT INTO conflicts (project_id, event_id, first_fingerprint, conflicting_fingerprint, seen_at_ms)
         SELECT p, i, f1, f2, $5 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u(p, i, f1, f2, n) ORDER BY n`,
        [...conflictCols, options.nowMs],
      );
    }

    // 2. Rollups: one statement for every table.
    if (fresh.length > 0) await this.writeRollups(c, fresh, options.nowMs);

    // 3. Rules.
    const { alerts, enforcedCounters } = await this.rules.evaluate(
      c,
      fresh,
      options.rules ?? [],
      options.nowMs,
    );
    return { accepted: fresh.length, duplicates, conflicts, outcomes, alerts, enforcedCounters };
  }

  private async writeRollups(c: Queryable, fresh: PricedEvent[], nowMs: number): Promise<void> {
    const deltas = aggregateEvents(fresh);
    const params: unknown[] = [];
    const ctes: string[] = [];
    const tables: Array<[string, RollupDelta[], boolean]> = [
      ['rollup_minute', deltas.minute, false],
      ['rollup_hour', deltas.hour, false],
      ['rollup_day', deltas.day, false],
      ['rollup_tag_hour', deltas.tagHour, true],
      ['rollup_tag_day', deltas.tagDay, true],
    ];
    params.push(nowMs);
    for (const [table, rows, tagged] of tables) {
      if (rows.length === 0) continue;
      const keyed = rows.map((d) => {
        const sid = this.seriesIds.get(seriesKey(d));
        const tag = d as Partial<TagRollupDelta>;
        const tid = tagged
          ? this.tagIds.get(`${d.projectId}\u0000${tag.tagKey}\u0000${tag.tagValue}`)
          : 0;
        if (sid === undefined || tid === undefined) {
          throw new TokenwatchError('unavailable', 'series dictionary changed during the batch', {
            retryAfterSeconds: 1,
          });
        }
        return { d, sid, tid };
      });
      keyed.sort((a, b) => a.d.bucketMs - b.d.bucketMs || a.tid - b.tid || a.sid - b.sid);
      const arrays: unknown[][] = [keyed.map((k) => k.d.bucketMs)];
      if (tagged) arrays.push(keyed.map((k) => k.tid));
      arrays.push(keyed.map((k) => k.sid));
      arrays.push(
        keyed.map((k) => k.d.inputTokens),
        keyed.map((k) => k.d.outputTokens),
        keyed.map((k) => k.d.cacheReadTokens),
        keyed.map((k) => k.d.cacheWriteTokens),
        keyed.map((k) => k.d.totalTokens),
        keyed.map((k) => k.d.requests),
        keyed.map((k) => k.d.errors),
        keyed.map((k) => k.d.costNanoUsd.toString()),
        keyed.map((k) => k.d.unpricedTokens),
        keyed.map((k) => k.d.unpricedRequests),
      );
      const refs = arrays.map((a, i) => {
        params.push(a);
        const type = i === 0 || i >= (tagged ? 3 : 2) ? 'bigint[]' : 'int[]';
        return `$${params.length}::${type}`;
      });
      const keyCols = tagged ? 'bucket_ms, tag_id, series_id' : 'bucket_ms, series_id';
      ctes.push(
        `INSERT INTO ${table} AS r (${keyCols}, ${ROLLUP_COLUMNS}, first_update_ms, last_update_ms)
         SELECT *, $1::bigint, $1::bigint FROM unnest(${refs.join(', ')})
         ON CONFLICT (${keyCols}) DO UPDATE SET ${MEASURE_NAMES.map((m) => `${m} = r.${m} + EXCLUDED.${m}`).join(', ')}, last_update_ms = EXCLUDED.last_update_ms`,
      );
    }
    if (ctes.length === 0) return;
    // Unreferenced data-modifying CTEs run once each, in order: the same lock order in every worker.
    const last = ctes.pop() as string;
    const sql =
      ctes.length > 0 ? `WITH ${ctes.map((s, i) => `w${i} AS (${s})`).join(', ')} ${last}` : last;
    await c.query(sql, params);
  }

  async queryUsage(q: UsageQuery): Promise<UsageRow[]> {
    const compiled = compilePostgresUsageQuery(q, 'rows');
    const res = await this.query<Record<string, unknown>>(
      'queryUsage',
      compiled.sql,
      compiled.params,
    );
    return res.rows.map((r) => {
      const row: UsageRow = {
        inputTokens: num(r.input_tokens),
        outputTokens: num(r.output_tokens),
        cacheReadTokens: num(r.cache_read_tokens),
        cacheWriteTokens: num(r.cache_write_tokens),
        totalTokens: num(r.total_tokens),
        requests: num(r.requests),
        errors: num(r.errors),
        costNanoUsd: BigInt((r.cost_nano_usd as string | null) ?? 0),
        unpricedTokens: num(r.unpriced_tokens),
        unpricedRequests: num(r.unpriced_requests),
      };
      compiled.dimensions.forEach((dim, i) => {
        const value = String(r[`d${i}`]);
        if (dim.startsWith('tag:')) row.tag = { key: dim.slice(4), value };
        else row[dim as 'user' | 'app' | 'model' | 'provider'] = value;
      });
      if (q.interval) row.bucketMs = num(r.bucket);
      return row;
    });
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
    return { minuteRowsDeleted: minute.rowCount ?? 0, eventIdsDeleted: ids.rowCount ?? 0 };
  }

  // ---------------------------------------------------------------- projects and keys

  async createProject(project: Project): Promise<void> {
    try {
      await this.pool.query('INSERT INTO projects (id, name, created_at_ms) VALUES ($1, $2, $3)', [
        project.id,
        project.name,
        project.createdAtMs,
      ]);
    } catch (err) {
      if (pgCode(err) === '23505')
        throw new TokenwatchError('conflict', `project "${project.id}" already exists`);
      throw pgError(err, 'createProject');
    }
  }

  async getProject(id: string): Promise<Project | undefined> {
    const res = await this.query<{ id: string; name: string; created_at_ms: number }>(
      'getProject',
      'SELECT id, name, created_at_ms FROM projects WHERE id = $1',
      [id],
    );
    const row = res.rows[0];
    return row ? { id: row.id, name: row.name, createdAtMs: row.created_at_ms } : undefined;
  }

  async listProjects(): Promise<Project[]> {
    const res = await this.query<{ id: string; name: string; created_at_ms: number }>(
      'listProjects',
      'SELECT id, name, created_at_ms FROM projects ORDER BY id',
    );
    return res.rows.map((r) => ({ id: r.id, name: r.name, createdAtMs: r.created_at_ms }));
  }

  async createKey(key: ApiKeyRecord): Promise<void> {
    try {
      await this.pool.query(
        `INSERT INTO api_keys (${KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        keyParams(key),
      );
    } catch (err) {
      const code = pgCode(err);
      if (code === '23503')
        throw new TokenwatchError('not_found', `project "${key.projectId}" does not exist`);
      if (code === '23505')
        throw new TokenwatchError('conflict', 'a key with this id or hash already exists');
      throw pgError(err, 'createKey');
    }
  }

  async findKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const res = await this.query<KeyRow>(
      'findKeyByHash',
      'SELECT * FROM api_keys WHERE hash = $1',
      [hash],
    );
    return res.rows[0] ? keyFromRow(res.rows[0]) : undefined;
  }

  async listKeys(projectId: string): Promise<ApiKeyRecord[]> {
    const res = await this.query<KeyRow>(
      'listKeys',
      'SELECT * FROM api_keys WHERE project_id = $1 ORDER BY created_at_ms, id',
      [projectId],
    );
    return res.rows.map(keyFromRow);
  }

  async revokeKey(projectId: string, keyId: string, nowMs: number): Promise<boolean> {
    const res = await this.query(
      'revokeKey',
      'UPDATE api_keys SET revoked_at_ms = COALESCE(revoked_at_ms, $1) WHERE project_id = $2 AND id = $3',
      [nowMs, projectId, keyId],
    );
    return res.rowCount === 1;
  }

  async listPriceOverrides(projectId: string): Promise<ModelPriceEntry[]> {
    const res = await this.query<{
      provider: string;
      model_id: string;
      effective_from: string;
      input: string;
      output: string;
      cache_read: string | null;
      cache_write: string | null;
    }>(
      'listPriceOverrides',
      'SELECT * FROM price_overrides WHERE project_id = $1 ORDER BY provider, model_id, effective_from',
      [projectId],
    );
    return res.rows.map((r) => {
      const entry: ModelPriceEntry = {
        provider: r.provider,
        modelId: r.model_id,
        effectiveFrom: r.effective_from,
        input: r.input,
        output: r.output,
      };
      if (r.cache_read !== null) entry.cacheRead = r.cache_read;
      if (r.cache_write !== null) entry.cacheWrite = r.cache_write;
      return entry;
    });
  }

  async putPriceOverride(projectId: string, e: ModelPriceEntry): Promise<void> {
    try {
      await this.pool.query(
        `INSERT INTO price_overrides (project_id, provider, model_id, effective_from, input, output, cache_read, cache_write)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (project_id, provider, model_id, effective_from) DO UPDATE SET
           input = EXCLUDED.input, output = EXCLUDED.output,
           cache_read = EXCLUDED.cache_read, cache_write = EXCLUDED.cache_write`,
        [
          projectId,
          e.provider,
          e.modelId,
          e.effectiveFrom,
          e.input,
          e.output,
          e.cacheRead ?? null,
          e.cacheWrite ?? null,
        ],
      );
    } catch (err) {
      if (pgCode(err) === '23503')
        throw new TokenwatchError('not_found', `project "${projectId}" does not exist`);
      throw pgError(err, 'putPriceOverride');
    }
  }

  async deletePriceOverride(
    projectId: string,
    provider: string,
    modelId: string,
    effectiveFrom: string,
  ): Promise<boolean> {
    const res = await this.query(
      'deletePriceOverride',
      'DELETE FROM price_overrides WHERE project_id = $1 AND provider = $2 AND model_id = $3 AND effective_from = $4',
      [projectId, provider, modelId, effectiveFrom],
    );
    return res.rowCount === 1;
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
