import {
  type ApiKeyRecord,
  type ModelPriceEntry,
  type Project,
  TokenwatchError,
} from '@tokenwatch/core';
import type pg from 'pg';
import {
  KEY_COLUMNS,
  type KeyRow,
  keyFromRow,
  keyParams,
  type PriceOverrideRow,
  priceOverrideFromRow,
  priceOverrideParams,
} from '../sql-rows.js';
import { pgCode, pgError } from './pg-errors.js';

/** What the project tables need of the store: its pool and its error-mapping query. */
export interface PostgresConnection {
  readonly pool: pg.Pool;
  query<R extends pg.QueryResultRow = Record<string, unknown>>(
    what: string,
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>>;
}

/** Projects, API keys (hashed) and per-project price overrides on PostgreSQL. */
export class PostgresProjects {
  constructor(private readonly db: PostgresConnection) {}

  async createProject(project: Project): Promise<void> {
    try {
      await this.db.pool.query(
        'INSERT INTO projects (id, name, created_at_ms) VALUES ($1, $2, $3)',
        [project.id, project.name, project.createdAtMs],
      );
    } catch (err) {
      if (pgCode(err) === '23505')
        throw new TokenwatchError('conflict', `project "${project.id}" already exists`);
      throw pgError(err, 'createProject');
    }
  }

  async getProject(id: string): Promise<Project | undefined> {
    const res = await this.db.query<{ id: string; name: string; created_at_ms: number }>(
      'getProject',
      'SELECT id, name, created_at_ms FROM projects WHERE id = $1',
      [id],
    );
    const row = res.rows[0];
    return row ? { id: row.id, name: row.name, createdAtMs: row.created_at_ms } : undefined;
  }

  async listProjects(): Promise<Project[]> {
    const res = await this.db.query<{ id: string; name: string; created_at_ms: number }>(
      'listProjects',
      'SELECT id, name, created_at_ms FROM projects ORDER BY id',
    );
    return res.rows.map((r) => ({ id: r.id, name: r.name, createdAtMs: r.created_at_ms }));
  }

  async createKey(key: ApiKeyRecord): Promise<void> {
    try {
      await this.db.pool.query(
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
    const res = await this.db.query<KeyRow>(
      'findKeyByHash',
      'SELECT * FROM api_keys WHERE hash = $1',
      [hash],
    );
    return res.rows[0] ? keyFromRow(res.rows[0]) : undefined;
  }

  async listKeys(projectId: string): Promise<ApiKeyRecord[]> {
    const res = await this.db.query<KeyRow>(
      'listKeys',
      'SELECT * FROM api_keys WHERE project_id = $1 ORDER BY created_at_ms, id',
      [projectId],
    );
    return res.rows.map(keyFromRow);
  }

  async revokeKey(projectId: string, keyId: string, nowMs: number): Promise<boolean> {
    const res = await this.db.query(
      'revokeKey',
      'UPDATE api_keys SET revoked_at_ms = COALESCE(revoked_at_ms, $1) WHERE project_id = $2 AND id = $3',
      [nowMs, projectId, keyId],
    );
    return res.rowCount === 1;
  }

  async listPriceOverrides(projectId: string): Promise<ModelPriceEntry[]> {
    const res = await this.db.query<PriceOverrideRow>(
      'listPriceOverrides',
      'SELECT * FROM price_overrides WHERE project_id = $1 ORDER BY provider, model_id, effective_from',
      [projectId],
    );
    return res.rows.map(priceOverrideFromRow);
  }

  async putPriceOverride(projectId: string, e: ModelPriceEntry): Promise<void> {
    try {
      await this.db.pool.query(
        `INSERT INTO price_overrides (project_id, provider, model_id, effective_from, input, output, cache_read, cache_write)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (project_id, provider, model_id, effective_from) DO UPDATE SET
           input = EXCLUDED.input, output = EXCLUDED.output,
           cache_read = EXCLUDED.cache_read, cache_write = EXCLUDED.cache_write`,
        priceOverrideParams(projectId, e),
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
    const res = await this.db.query(
      'deletePriceOverride',
      'DELETE FROM price_overrides WHERE project_id = $1 AND provider = $2 AND model_id = $3 AND effective_from = $4',
      [projectId, provider, modelId, effectiveFrom],
    );
    return res.rowCount === 1;
  }
}
