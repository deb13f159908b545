import type {
  ReconciledMetric,
  ReconciliationRow,
  ReconciliationStore,
  StoredReconciliationRow,
} from '@tokenwatch/core';
import { TokenwatchError } from '@tokenwatch/core';
import Database from 'better-sqlite3';
import { createPrivateDatabaseFile, isOnDisk } from '../../util/private-files.js';

/** Busy or locked is worth a retry; anything else is a bug or a broken file. */
function storeError(err: unknown, what: string): TokenwatchError {
  const code = (err as { code?: string }).code ?? '';
  const busy = code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED');
  return new TokenwatchError(
    busy ? 'unavailable' : 'internal',
    `SQLite ${what} failed: ${(err as Error).message}`,
    {
      cause: err,
    },
  );
}

interface Row {
  project_id: string;
  regions: string;
  hour_start_ms: number;
  model_id: string;
  metric: string;
  reported: number;
  captured: number;
  settled: number;
  computed_at_ms: number;
}

/** Rebuilds a stored row's derived fields. */
export function storedRow(r: {
  projectId: string;
  regions: string;
  hourStartMs: number;
  modelId: string;
  metric: string;
  reported: number;
  captured: number;
  settled: boolean;
  computedAtMs: number;
}): StoredReconciliationRow {
  const difference = r.reported - r.captured;
  return {
    projectId: r.projectId,
    regions: r.regions,
    modelId: r.modelId,
    hourStartMs: r.hourStartMs,
    metric: r.metric as ReconciledMetric,
    reported: r.reported,
    captured: r.captured,
    difference,
    percent: r.reported === 0 ? null : Math.round((difference / r.reported) * 10_000) / 100,
    settled: r.settled,
    computedAtMs: r.computedAtMs,
  };
}

/**
 * Reconciliation results in the embedded SQLite file, on a connection of their own (the usage
 * store keeps its writer thread; these are a few hundred rows an hour, WAL lets both write).
 */
export class SqliteReconciliationStore implements ReconciliationStore {
  private readonly db: Database.Database;

  constructor(path: string) {
    try {
      if (isOnDisk(path)) createPrivateDatabaseFile(path);
      this.db = new Database(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('busy_timeout = 5000');
      this.db.exec(`CREATE TABLE IF NOT EXISTS bedrock_reconciliation (
        project_id TEXT NOT NULL,
        hour_start_ms INTEGER NOT NULL,
        regions TEXT NOT NULL,
        model_id TEXT NOT NULL,
        metric TEXT NOT NULL,
        reported INTEGER NOT NULL,
        captured INTEGER NOT NULL,
        settled INTEGER NOT NULL,
        computed_at_ms INTEGER NOT NULL,
        PRIMARY KEY (project_id, hour_start_ms, regions, model_id, metric)
      ) WITHOUT ROWID`);
    } catch (err) {
      throw storeError(err, 'open reconciliation');
    }
  }

  async replace(
    projectId: string,
    regions: string,
    fromMs: number,
    toMs: number,
    rows: readonly ReconciliationRow[],
    computedAtMs: number,
  ): Promise<void> {
    const del = this.db.prepare(
      'DELETE FROM bedrock_reconciliation WHERE project_id = ? AND regions = ? AND hour_start_ms >= ? AND hour_start_ms < ?',
    );
    const ins = this.db.prepare(
      'INSERT INTO bedrock_reconciliation VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    try {
      this.db.transaction(() => {
        del.run(projectId, regions, fromMs, toMs);
        for (const r of rows) {
          ins.run(
            projectId,
            r.hourStartMs,
            regions,
            r.modelId,
            r.metric,
            r.reported,
            r.captured,
            r.settled ? 1 : 0,
            computedAtMs,
          );
        }
      })();
    } catch (err) {
      throw storeError(err, 'replace reconciliation');
    }
  }

  async list(projectId: string, fromMs: number, toMs: number): Promise<StoredReconciliationRow[]> {
    try {
      const rows = this.db
        .prepare(
          `SELECT * FROM bedrock_reconciliation WHERE project_id = ? AND hour_start_ms >= ? AND hour_start_ms < ?
           ORDER BY hour_start_ms, regions, model_id,
             CASE metric WHEN 'inputTokens' THEN 0 WHEN 'outputTokens' THEN 1 WHEN 'cacheReadTokens' THEN 2 ELSE 3 END`,
        )
        .all(projectId, fromMs, toMs) as Row[];
      return rows.map((r) =>
        storedRow({
          projectId: r.project_id,
          regions: r.regions,
          hourStartMs: r.hour_start_ms,
          modelId: r.model_id,
          metric: r.metric,
          reported: r.reported,
          captured: r.captured,
          settled: r.settled === 1,
          computedAtMs: r.computed_at_ms,
        }),
      );
    } catch (err) {
      throw storeError(err, 'list reconciliation');
    }
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
