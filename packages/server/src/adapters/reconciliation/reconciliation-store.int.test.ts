import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReconciliationRow, ReconciliationStore } from '@tokenwatch/core';
import { describe, expect, it } from 'vitest';
import { MemoryReconciliationStore } from '../../bedrock/reconciliation-store.js';
import {
  dropSchema,
  postgresReachable,
  TEST_PG_URL,
  uniqueSchema,
} from '../../testing/services.js';
import { whenServices } from '../../testing/when-services.js';
import { DynamoDbStore } from '../store/dynamodb/dynamodb-store.js';
import { startDynalite } from '../store/dynamodb/testing/dynalite.js';
import { DynamoDbReconciliationStore } from './dynamodb-reconciliation-store.js';
import { PostgresReconciliationStore } from './postgres-reconciliation-store.js';
import { SqliteReconciliationStore } from './sqlite-reconciliation-store.js';

const H = 3_600_000;
const T = Date.UTC(2026, 10, 27, 0);
const row = (
  hour: number,
  modelId: string,
  metric: ReconciliationRow['metric'],
  reported: number,
  captured: number,
): ReconciliationRow => ({
  modelId,
  hourStartMs: T + hour * H,
  metric,
  reported,
  captured,
  difference: reported - captured,
  percent: reported === 0 ? null : Math.round(((reported - captured) / reported) * 10_000) / 100,
  settled: hour < 2,
});

/** The same behaviour from every adapter (the memory one is the reference). */
function contract(
  name: string,
  open: () => Promise<{ store: ReconciliationStore; cleanup(): Promise<void> }>,
) {
  describe(`reconciliation store: ${name}`, () => {
    it('replace swaps a range of one project and region set; list reads it back in order', async () => {
      const { store, cleanup } = await open();
      try {
        await store.replace(
          'p1',
          'us-east-1',
          T,
          T + 3 * H,
          [
            row(1, 'm-b', 'outputTokens', 10, 10),
            row(0, 'm-a', 'inputTokens', 100, 90),
            row(1, 'm-a', 'cacheReadTokens', 5, 0),
            row(1, 'm-a', 'inputTokens', 7, 7),
            row(2, 'm-a', 'inputTokens', 1, 0),
          ],
          111,
        );
        await store.replace(
          'p2',
          'us-east-1',
          T,
          T + 3 * H,
          [row(0, 'm-a', 'inputTokens', 1, 1)],
          111,
        );
        await store.replace(
          'p1',
          'eu-west-1',
          T,
          T + 3 * H,
          [row(0, 'm-a', 'inputTokens', 3, 0)],
          111,
        );
        // A later run over hours 1..2 only: hour 0 stays, hours 1..2 are replaced.
        await store.replace(
          'p1',
          'us-east-1',
          T + H,
          T + 3 * H,
          [row(1, 'm-a', 'inputTokens', 8, 8)],
          222,
        );
        const rows = await store.list('p1', T, T + 3 * H);
        expect(
          rows.map((r) => [
            r.hourStartMs - T,
            r.regions,
            r.modelId,
            r.metric,
            r.reported,
            r.captured,
            r.difference,
            r.percent,
            r.settled,
            r.computedAtMs,
          ]),
        ).toEqual([
          [0, 'eu-west-1', 'm-a', 'inputTokens', 3, 0, 3, 100, true, 111],
          [0, 'us-east-1', 'm-a', 'inputTokens', 100, 90, 10, 10, true, 111],
          [H, 'us-east-1', 'm-a', 'inputTokens', 8, 8, 0, 0, true, 222],
        ]);
        expect((await store.list('p1', T + H, T + 2 * H)).map((r) => r.hourStartMs - T)).toEqual([
          H,
        ]);
        expect(await store.list('p3', T, T + 3 * H)).toEqual([]);
      } finally {
        await cleanup();
      }
    });
  });
}

contract('memory', async () => ({
  store: new MemoryReconciliationStore(),
  cleanup: async () => {},
}));

contract('SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-recon-'));
  const store = new SqliteReconciliationStore(join(dir, 'tokenwatch.db'));
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

contract('DynamoDB (dynalite)', async () => {
  const local = await startDynalite();
  const tableName = `recon-${process.pid}`;
  const usage = new DynamoDbStore({
    tableName,
    endpoint: local.endpoint,
    region: local.region,
    credentials: local.credentials,
  });
  await usage.migrate();
  const store = new DynamoDbReconciliationStore({
    tableName,
    endpoint: local.endpoint,
    region: local.region,
    credentials: local.credentials,
  });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await usage.close();
      await local.close();
    },
  };
});

const pgUp = await postgresReachable();
whenServices({ PostgreSQL: pgUp }, () => {
  contract('PostgreSQL', async () => {
    const schema = uniqueSchema('recon');
    const store = new PostgresReconciliationStore({ url: TEST_PG_URL, schema });
    return {
      store,
      cleanup: async () => {
        await store.close();
        await dropSchema(schema);
      },
    };
  });
});
