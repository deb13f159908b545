import type { ReconciliationStore } from '@tokenwatch/core';
import { type Config, sqlitePath } from '../../config/config-schema.js';

/** The reconciliation results store beside the configured usage store (same file or database). */
export async function openReconciliationStore(config: Config): Promise<ReconciliationStore> {
  switch (config.store.driver) {
    case 'sqlite': {
      const { SqliteReconciliationStore } = await import('./sqlite-reconciliation-store.js');
      return new SqliteReconciliationStore(sqlitePath(config));
    }
    case 'postgres': {
      const { PostgresReconciliationStore } = await import('./postgres-reconciliation-store.js');
      return new PostgresReconciliationStore({
        url: config.store.url,
        schema: config.store.schema,
      });
    }
  }
}
