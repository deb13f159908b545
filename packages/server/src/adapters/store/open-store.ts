import type { Store } from '@tokenwatch/core';
import { type Config, sqlitePath } from '../../config/config-schema.js';
import type { SqliteStoreOptions } from './sqlite/sqlite-options.js';

/**
 * Opens the configured store. Drivers are imported lazily, so a process only loads the driver
 * it uses (and optional drivers need not be installed unless configured).
 */
export async function openStore(
  config: Config,
  options: {
    thread?: 'worker' | 'main';
    /**
     * SQLite: a batch's deliveries are created leased to this process for so long, for its
     * dispatcher to send at once (see SqliteStoreOptions.leaseNewDeliveriesMs). Only for the
     * process that runs the dispatcher and applies the batches (embedded `serve`).
     */
    leaseNewDeliveriesMs?: number;
  } = {},
): Promise<Store> {
  switch (config.store.driver) {
    case 'sqlite': {
      const sqliteOptions: SqliteStoreOptions = {
        path: sqlitePath(config),
        synchronous: config.store.synchronous,
        foldIntervalMs: config.store.foldIntervalMs,
        foldMaxEvents: config.store.foldMaxEvents,
        maxWalMiB: config.store.maxWalMiB,
        idCacheMiB: config.store.idCacheMiB,
        counterCacheMiB: config.store.counterCacheMiB,
      };
      // Unset: derived from maxWalMiB by the store (defaultFoldChunkEvents).
      if (config.store.foldChunkEvents !== undefined)
        sqliteOptions.foldChunkEvents = config.store.foldChunkEvents;
      // Unset: derived from maxWalMiB by the store (defaultFoldSliceRows).
      if (config.store.foldSliceRows !== undefined)
        sqliteOptions.foldSliceRows = config.store.foldSliceRows;
      if (options.leaseNewDeliveriesMs !== undefined)
        sqliteOptions.leaseNewDeliveriesMs = options.leaseNewDeliveriesMs;
      if ((options.thread ?? config.store.thread) === 'worker') {
        const { ThreadedSqliteStore } = await import('./sqlite/threaded-sqlite-store.js');
        return new ThreadedSqliteStore(sqliteOptions);
      }
      const { SqliteStore } = await import('./sqlite/sqlite-store.js');
      return new SqliteStore(sqliteOptions);
    }
    case 'postgres': {
      const { PostgresStore } = await import('./postgres/postgres-store.js');
      return new PostgresStore({
        url: config.store.url,
        schema: config.store.schema,
        poolSize: config.store.poolSize,
      });
    }
  }
}
