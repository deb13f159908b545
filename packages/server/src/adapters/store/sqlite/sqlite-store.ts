import {
  type AlertQuery,
  type AlertRecord,
  type ApiKeyRecord,
  type ApplyOptions,
  type ApplyResult,
  type ConflictRecord,
  type DeliveryOutcome,
  type DeliveryRecord,
  type DeliveryStatus,
  EventOutcome,
  type ModelPriceEntry,
  type PricedEvent,
  type Project,
  type PruneOptions,
  type PruneResult,
  type Rule,
  type RuleChange,
  type RuleCounter,
  type Store,
  TokenwatchError,
  type UsageQuery,
  type UsageRow,
} from '@tokenwatch/core';
import Database from 'better-sqlite3';
import { measuresFromRow } from '../sql-rows.js';
import { RollupWriter } from './rollup-writer.js';
import { MIGRATIONS } from './schema.js';
import { SqliteProjects } from './sqlite-projects.js';
import { SqliteRules } from './sqlite-rules.js';
import { compileUsageQuery } from './sqlite-usage-queries.js';

export interface SqliteStoreOptions {
  /** Database file path, or ':memory:'. */
  path: string;
  /**
   * `full` (default) fsyncs the WAL at every commit: a 202 survives a power loss.
   * `normal` survives a process crash but may lose the last commits on power loss.
   */
  synchronous?: 'full' | 'normal';
  /** A checkpointer thread copies the WAL into the database; the writer then never does. */
  externalCheckpoints?: boolean;
}

type Statement = Database.Statement<unknown[], unknown>;

/** SQLite error codes a caller may retry (the database was busy, or the disk had a hiccup). */
const RETRYABLE_SQLITE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|PROTOCOL)/;

function storeError(err: unknown, what: string): TokenwatchError {
  if (err instanceof TokenwatchError) return err;
  const code = (err as { code?: unknown }).code;
  const retryable = typeof code === 'string' && RETRYABLE_SQLITE.test(code);
  return new TokenwatchError(
    retryable ? 'unavailable' : 'internal',
    `SQLite ${what} failed: ${String((err as Error).message ?? err)}`,
    {
      retryable,
      cause: err,
      context: { sqliteCode: code },
    },
  );
}

interface RawUsageRow {
  [column: string]: unknown;
}

function toNumber(value: unknown): number {
  if (typeof value === 'bigint') return Number(value);
  return typeof value === 'number' ? value : 0;
}

/**
 * The embedded store: one SQLite file, synchronous driver (better-sqlite3). All methods are
 * synchronous inside and wrapped in promises by `SqliteStore` so the adapter fits the port.
 */
export class SqliteDatabase {
  readonly db: Database.Database;
  private statements: Record<string, Statement> = {};
  private rollups: RollupWriter | undefined;
  private ruleEngine: SqliteRules | undefined;
  private projectStore: SqliteProjects | undefined;

  constructor(options: SqliteStoreOptions) {
    try {
      this.db = new Database(options.path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
      this.db.pragma('busy_timeout = 5000');
      this.db.pragma('foreign_keys = ON');
      // Checkpoints run on another thread (see sqlite-checkpointer.ts) when one is attached;
      // otherwise fewer, larger ones than the default 1000 pages, which checkpoints on most commits.
      this.db.pragma(`wal_autocheckpoint = ${options.externalCheckpoints ? 0 : 10000}`);
      this.db.pragma('cache_size = -65536');
    } catch (err) {
      throw storeError(err, 'open');
    }
  }

  migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    const row = this.db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as {
      v: number | null;
    };
    const current = row.v ?? 0;
    const apply = this.db.transaction(() => {
      for (let v = current; v < MIGRATIONS.length; v++) {
        this.db.exec(MIGRATIONS[v] as string);
        this.db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(v + 1);
      }
    });
    apply.immediate();
    this.prepareStatements();
  }

  private prepareStatements(): void {
    const s = (sql: string) => this.db.prepare(sql);
    this.statements = {
      claimId: s(
        'INSERT OR IGNORE INTO event_ids (project_id, id, event_ms, fingerprint) VALUES (?, ?, ?, ?)',
      ),
      idFingerprint: s('SELECT fingerprint FROM event_ids WHERE project_id = ? AND id = ?').pluck(),
      insertConflict: s(
        'INSERT INTO conflicts (project_id, event_id, first_fingerprint, conflicting_fingerprint, seen_at_ms) VALUES (?, ?, ?, ?, ?)',
      ),
    };
    this.rollups = new RollupWriter(this.db);
    this.ruleEngine = new SqliteRules(this.db, (q) => this.queryUsage(q));
    this.projectStore = new SqliteProjects(this.db);
  }

  /** Rules, counters, alerts and the outbox (see SqliteRules). */
  rulesEngine(): SqliteRules {
    if (!this.ruleEngine)
      throw new TokenwatchError('internal', 'SQLite store used before migrate()');
    return this.ruleEngine;
  }

  private stmt(name: string): Statement {
    const statement = this.statements[name];
    if (!statement) throw new TokenwatchError('internal', 'SQLite store used before migrate()');
    return statement;
  }

  applyBatch(events: readonly PricedEvent[], options: ApplyOptions): ApplyResult {
    const claim = this.stmt('claimId');
    const lookup = this.stmt('idFingerprint');
    const conflict = this.stmt('insertConflict');
    const run = this.db.transaction((): ApplyResult => {
      const outcomes: EventOutcome[] = new Array(events.length);
      const fresh: PricedEvent[] = [];
      let duplicates = 0;
      let conflicts = 0;
      for (let i = 0; i < events.length; i++) {
        const e = events[i] as PricedEvent;
        if (claim.run(e.projectId, e.id, e.timestampMs, e.fingerprint).changes === 1) {
          outcomes[i] = EventOutcome.Accepted;
          fresh.push(e);
          continue;
        }
        const first = lookup.get(e.projectId, e.id) as string;
        if (first === e.fingerprint) {
          outcomes[i] = EventOutcome.Duplicate;
          duplicates++;
        } else {
          outcomes[i] = EventOutcome.Conflict;
          conflicts++;
          conflict.run(e.projectId, e.id, first, e.fingerprint, options.nowMs);
        }
      }
      if (fresh.length > 0) this.rollups?.write(fresh, options.nowMs);
      const { alerts, enforcedCounters } = this.rulesEngine().evaluate(fresh, options.nowMs);
      return { accepted: fresh.length, duplicates, conflicts, outcomes, alerts, enforcedCounters };
    });
    try {
      const result = run.immediate();
      this.rollups?.committed();
      return result;
    } catch (err) {
      this.rollups?.rolledBack();
      throw storeError(err, 'applyBatch');
    }
  }

  queryUsage(q: UsageQuery): UsageRow[] {
    const compiled = compileUsageQuery(q, { coarseRollups: true });
    try {
      const rows = this.db
        .prepare(compiled.sql)
        .safeIntegers(true)
        .all(...compiled.params) as RawUsageRow[];
      return rows.map((r) => {
        const row: UsageRow = measuresFromRow(r, toNumber);
        compiled.dimensions.forEach((dim, i) => {
          const value = String(r[`d${i}`]);
          if (dim.startsWith('tag:')) row.tag = { key: dim.slice(4), value };
          else row[dim as 'user' | 'app' | 'model' | 'provider'] = value;
        });
        if (q.interval) row.bucketMs = toNumber(r.bucket);
        return row;
      });
    } catch (err) {
      throw storeError(err, 'queryUsage');
    }
  }

  countGroups(q: UsageQuery): number {
    const compiled = compileUsageQuery(q, { coarseRollups: true, shape: 'count' });
    try {
      return this.db
        .prepare(compiled.sql)
        .pluck()
        .get(...compiled.params) as number;
    } catch (err) {
      throw storeError(err, 'countGroups');
    }
  }

  listConflicts(projectId: string, limit: number): ConflictRecord[] {
    const rows = this.db
      .prepare(
        'SELECT event_id, first_fingerprint, conflicting_fingerprint, seen_at_ms FROM conflicts WHERE project_id = ? ORDER BY seen_at_ms DESC, rowid DESC LIMIT ?',
      )
      .all(projectId, limit) as {
      event_id: string;
      first_fingerprint: string;
      conflicting_fingerprint: string;
      seen_at_ms: number;
    }[];
    return rows.map((r) => ({
      projectId,
      eventId: r.event_id,
      firstFingerprint: r.first_fingerprint,
      conflictingFingerprint: r.conflicting_fingerprint,
      seenAtMs: r.seen_at_ms,
    }));
  }

  prune(options: PruneOptions): PruneResult {
    try {
      const minute = this.db
        .prepare('DELETE FROM rollup_minute WHERE bucket_ms < ?')
        .run(options.nowMs - options.minuteRetentionMs);
      const ids = this.db
        .prepare('DELETE FROM event_ids WHERE event_ms < ?')
        .run(options.nowMs - options.dedupeRetentionMs);
      // Rule counters of windows that can no longer receive an event (older than the accepted
      // lateness, plus a month for the longest window).
      this.db
        .prepare('DELETE FROM rule_counters WHERE bucket_start_ms < ?')
        .run(options.nowMs - options.dedupeRetentionMs - 32 * 86_400_000);
      return { minuteRowsDeleted: minute.changes, eventIdsDeleted: ids.changes };
    } catch (err) {
      throw storeError(err, 'prune');
    }
  }

  /** Projects, keys and price overrides (see SqliteProjects). */
  projects(): SqliteProjects {
    if (!this.projectStore)
      throw new TokenwatchError('internal', 'SQLite store used before migrate()');
    return this.projectStore;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** The SQLite adapter of the `Store` port, in the calling thread. */
export class SqliteStore implements Store {
  readonly database: SqliteDatabase;

  constructor(options: SqliteStoreOptions) {
    this.database = new SqliteDatabase(options);
  }

  async migrate(): Promise<void> {
    this.database.migrate();
  }
  async applyBatch(events: readonly PricedEvent[], options: ApplyOptions): Promise<ApplyResult> {
    return this.database.applyBatch(events, options);
  }
  async queryUsage(query: UsageQuery): Promise<UsageRow[]> {
    return this.database.queryUsage(query);
  }
  async countGroups(query: UsageQuery): Promise<number> {
    return this.database.countGroups(query);
  }
  async listConflicts(projectId: string, limit: number): Promise<ConflictRecord[]> {
    return this.database.listConflicts(projectId, limit);
  }
  async prune(options: PruneOptions): Promise<PruneResult> {
    return this.database.prune(options);
  }
  async createProject(project: Project): Promise<void> {
    this.database.projects().createProject(project);
  }
  async getProject(id: string): Promise<Project | undefined> {
    return this.database.projects().getProject(id);
  }
  async listProjects(): Promise<Project[]> {
    return this.database.projects().listProjects();
  }
  async createKey(key: ApiKeyRecord): Promise<void> {
    this.database.projects().createKey(key);
  }
  async findKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    return this.database.projects().findKeyByHash(hash);
  }
  async listKeys(projectId: string): Promise<ApiKeyRecord[]> {
    return this.database.projects().listKeys(projectId);
  }
  async revokeKey(projectId: string, keyId: string, nowMs: number): Promise<boolean> {
    return this.database.projects().revokeKey(projectId, keyId, nowMs);
  }
  async listPriceOverrides(projectId: string): Promise<ModelPriceEntry[]> {
    return this.database.projects().listPriceOverrides(projectId);
  }
  async putPriceOverride(projectId: string, entry: ModelPriceEntry): Promise<void> {
    this.database.projects().putPriceOverride(projectId, entry);
  }
  async deletePriceOverride(
    projectId: string,
    provider: string,
    modelId: string,
    effectiveFrom: string,
  ): Promise<boolean> {
    return this.database
      .projects()
      .deletePriceOverride(projectId, provider, modelId, effectiveFrom);
  }
  async createRule(rule: Rule, nowMs: number): Promise<RuleChange> {
    return this.database.rulesEngine().createRule(rule, nowMs);
  }
  async updateRule(rule: Rule, nowMs: number): Promise<RuleChange | undefined> {
    return this.database.rulesEngine().updateRule(rule, nowMs);
  }
  async deleteRule(projectId: string, ruleId: string): Promise<boolean> {
    return this.database.rulesEngine().deleteRule(projectId, ruleId);
  }
  async getRule(projectId: string, ruleId: string): Promise<Rule | undefined> {
    return this.database.rulesEngine().getRule(projectId, ruleId);
  }
  async listRules(projectId?: string): Promise<Rule[]> {
    return this.database.rulesEngine().listRules(projectId);
  }
  async readCounters(
    ruleId: string,
    fromMs: number,
    toMs: number,
    scopeKey?: string,
  ): Promise<RuleCounter[]> {
    return this.database.rulesEngine().readCounters(ruleId, fromMs, toMs, scopeKey);
  }
  async listAlerts(query: AlertQuery): Promise<AlertRecord[]> {
    return this.database.rulesEngine().listAlerts(query);
  }
  async acknowledgeAlert(projectId: string, alertId: string, nowMs: number): Promise<boolean> {
    return this.database.rulesEngine().acknowledgeAlert(projectId, alertId, nowMs);
  }
  async claimDeliveries(nowMs: number, limit: number, leaseMs: number): Promise<DeliveryRecord[]> {
    return this.database.rulesEngine().claimDeliveries(nowMs, limit, leaseMs);
  }
  async completeDelivery(id: string, outcome: DeliveryOutcome, nowMs: number): Promise<void> {
    this.database.rulesEngine().completeDelivery(id, outcome, nowMs);
  }
  async listDeliveries(
    projectId: string,
    filter: { alertId?: string | undefined; status?: DeliveryStatus | undefined },
    limit: number,
  ): Promise<DeliveryRecord[]> {
    return this.database.rulesEngine().listDeliveries(projectId, filter, limit);
  }
  async close(): Promise<void> {
    this.database.close();
  }
}
