import type { Store } from '@tokenwatch/core';
import { type Config, sqlitePath } from '../../config/config-schema.js';

/**
 * Opens the configured store. Drivers are imported lazily, so a process only loads the driver
 * it uses (and optional drivers need not be installed unless configured).
 */
export async function openStore(config: Config): Promise<Store> {
  switch (config.store.driver) {
    case 'sqlite': {
      const { SqliteStore } = await import('./sqlite/sqlite-store.js');
      return new SqliteStore({ path: sqlitePath(config), synchronous: config.store.synchronous });
    }
  }
}
