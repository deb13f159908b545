import type {
  ReconciliationRow,
  ReconciliationStore,
  StoredReconciliationRow,
} from '@tokenwatch/core';
import pg from 'pg';
import { pgError } from '../store/postgres/pg-errors.js';
import { storedRow } from './sqlite-reconciliation-store.js';

/** Reconciliation results in the scale-out PostgreSQL database, in the store's schema. */
export class PostgresReconciliationStore implements ReconciliationStore {
  private readonly pool: pg.Pool;
  private readonly schema: string;
  private readonly table: string;
  private ready: Promise<void> | undefined;

  constructor(options: { url: string; schema: string }) {
    this.pool = new pg.Pool({ connectionString: options.url, max: 2 });
    this.pool.on('error', () => {
      // an idle connection went away; the next statement fails on its own and is mapped
    });
    this.schema = `"${options.schema.replace(/"/g, '""')}"`;
    this.table = `${this.schema}.bedrock_reconciliation`;
  }

  private migrate(): Promise<void> {
    this.ready ??= this.pool
      .query(
        `CREATE SCHEMA IF NOT EXISTS ${this.schema};
        CREATE TABLE IF NOT EXISTS ${this.table} (
          project_id TEXT NOT NULL,
          hour_start_ms BIGINT NOT NULL,
          regions TEXT NOT NULL,
          model_id TEXT NOT NULL,
          metric TEXT NOT NULL,
          reported BIGINT NOT NULL,
          captured BIGINT NOT NULL,
          settled BOOLEAN NOT NULL,
          computed_at_ms BIGINT NOT NULL,
          PRIMARY KEY (project_id, hour_start_ms, regions, model_id, metric)
        )`,
      )
      .then(
        () => undefined,
        (err: unknown) => {
          this.ready = undefined;
          throw pgError(err, 'create reconciliation table');
        },
      );
    return this.ready;
  }

  async replace(
    projectId: string,
    regions: string,
    fromMs: number,
    toMs: number,
    rows: readonly ReconciliationRow[],
    computedAtMs: number,
  ): Promise<void> {
    await this.migrate();
    const client = await this.pool.connect().catch((err: unknown) => {
      throw pgError(err, 'connect');
    });
    try {
      await client.query('BEGIN');
      await client.query(
        `DELETE FROM ${this.table} WHERE project_id = $1 AND regions = $2 AND hour_start_ms >= $3 AND hour_start_ms < $4`,
        [projectId, regions, fromMs, toMs],
      );
      for (const r of rows) {
        await client.query(
          `INSERT INTO ${this.table} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
          [
            projectId,
            r.hourStartMs,
            regions,
            r.modelId,
            r.metric,
            r.reported,
            r.captured,
            r.settled,
            computedAtMs,
          ],
        );
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw pgError(err, 'replace reconciliation');
    } finally {
      client.release();
    }
  }

  async list(projectId: string, fromMs: number, toMs: number): Promise<StoredReconciliationRow[]> {
    await this.migrate();
    try {
      const result = await this.pool.query<Record<string, string | boolean>>(
        `SELECT * FROM ${this.table} WHERE project_id = $1 AND hour_start_ms >= $2 AND hour_start_ms < $3
         ORDER BY hour_start_ms, regions, model_id,
           CASE metric WHEN 'inputTokens' THEN 0 WHEN 'outputTokens' THEN 1 WHEN 'cacheReadTokens' THEN 2 ELSE 3 END`,
        [projectId, fromMs, toMs],
      );
      return result.rows.map((r) =>
        storedRow({
          projectId: String(r.project_id),
          regions: String(r.regions),
          hourStartMs: Number(r.hour_start_ms),
          modelId: String(r.model_id),
          metric: String(r.metric),
          reported: Number(r.reported),
          captured: Number(r.captured),
          settled: r.settled === true,
          computedAtMs: Number(r.computed_at_ms),
        }),
      );
    } catch (err) {
      throw pgError(err, 'list reconciliation');
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
