import {
  type ApiKeyRecord,
  type ModelPriceEntry,
  type Project,
  TokenwatchError,
} from '@tokenwatch/core';
import type Database from 'better-sqlite3';
import {
  KEY_COLUMNS,
  type KeyRow,
  keyFromRow,
  keyParams,
  type PriceOverrideRow,
  priceOverrideFromRow,
  priceOverrideParams,
} from '../sql-rows.js';

/** SQLite errors of a write the caller may retry are surfaced by the database class; these are CRUD. */
function rethrow(err: unknown, what: string): never {
  if (err instanceof TokenwatchError) throw err;
  throw new TokenwatchError(
    'internal',
    `SQLite ${what} failed: ${String((err as Error).message ?? err)}`,
    { cause: err },
  );
}

/** Projects (tenants), their hashed API keys and their price overrides, on SQLite. */
export class SqliteProjects {
  constructor(private readonly db: Database.Database) {}

  createProject(project: Project): void {
    try {
      this.db
        .prepare('INSERT INTO projects (id, name, created_at_ms) VALUES (?, ?, ?)')
        .run(project.id, project.name, project.createdAtMs);
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('SQLITE_CONSTRAINT')) {
        throw new TokenwatchError('conflict', `project "${project.id}" already exists`);
      }
      rethrow(err, 'createProject');
    }
  }

  getProject(id: string): Project | undefined {
    const row = this.db
      .prepare('SELECT id, name, created_at_ms FROM projects WHERE id = ?')
      .get(id) as { id: string; name: string; created_at_ms: number } | undefined;
    return row ? { id: row.id, name: row.name, createdAtMs: row.created_at_ms } : undefined;
  }

  listProjects(): Project[] {
    const rows = this.db
      .prepare('SELECT id, name, created_at_ms FROM projects ORDER BY id')
      .all() as {
      id: string;
      name: string;
      created_at_ms: number;
    }[];
    return rows.map((r) => ({ id: r.id, name: r.name, createdAtMs: r.created_at_ms }));
  }

  createKey(key: ApiKeyRecord): void {
    try {
      this.db
        .prepare(`INSERT INTO api_keys (${KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(...keyParams(key));
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
        throw new TokenwatchError('not_found', `project "${key.projectId}" does not exist`);
      }
      if (code?.startsWith('SQLITE_CONSTRAINT')) {
        throw new TokenwatchError('conflict', 'a key with this id or hash already exists');
      }
      rethrow(err, 'createKey');
    }
  }

  findKeyByHash(hash: string): ApiKeyRecord | undefined {
    const row = this.db.prepare('SELECT * FROM api_keys WHERE hash = ?').get(hash) as
      | KeyRow
      | undefined;
    return row ? keyFromRow(row) : undefined;
  }

  listKeys(projectId: string): ApiKeyRecord[] {
    const rows = this.db
      .prepare('SELECT * FROM api_keys WHERE project_id = ? ORDER BY created_at_ms, id')
      .all(projectId) as KeyRow[];
    return rows.map(keyFromRow);
  }

  revokeKey(projectId: string, keyId: string, nowMs: number): boolean {
    const result = this.db
      .prepare(
        'UPDATE api_keys SET revoked_at_ms = COALESCE(revoked_at_ms, ?) WHERE project_id = ? AND id = ?',
      )
      .run(nowMs, projectId, keyId);
    return result.changes === 1;
  }

  listPriceOverrides(projectId: string): ModelPriceEntry[] {
    const rows = this.db
      .prepare(
        'SELECT * FROM price_overrides WHERE project_id = ? ORDER BY provider, model_id, effective_from',
      )
      .all(projectId) as PriceOverrideRow[];
    return rows.map(priceOverrideFromRow);
  }

  putPriceOverride(projectId: string, e: ModelPriceEntry): void {
    try {
      this.db
        .prepare(
          `INSERT INTO price_overrides (project_id, provider, model_id, effective_from, input, output, cache_read, cache_write)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (project_id, provider, model_id, effective_from) DO UPDATE SET
             input = excluded.input, output = excluded.output,
             cache_read = excluded.cache_read, cache_write = excluded.cache_write`,
        )
        .run(...priceOverrideParams(projectId, e));
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
        throw new TokenwatchError('not_found', `project "${projectId}" does not exist`);
      }
      rethrow(err, 'putPriceOverride');
    }
  }

  deletePriceOverride(
    projectId: string,
    provider: string,
    modelId: string,
    effectiveFrom: string,
  ): boolean {
    return (
      this.db
        .prepare(
          'DELETE FROM price_overrides WHERE project_id = ? AND provider = ? AND model_id = ? AND effective_from = ?',
        )
        .run(projectId, provider, modelId, effectiveFrom).changes === 1
    );
  }
}
