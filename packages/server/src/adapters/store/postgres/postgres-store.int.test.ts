import { emptyLatencyHistogram } from '@tokenwatch/core';
import {
  makePricedEvent,
  makeQuery,
  runRuleContract,
  runRuleOracleContract,
  runStoreContract,
} from '@tokenwatch/core/testing';
import { describe, expect, it } from 'vitest';
import {
  dropSchema,
  postgresReachable,
  TEST_PG_URL,
  uniqueSchema,
} from '../../../testing/services.js';
import { whenServices } from '../../../testing/when-services.js';
import { LATENCY_COLUMNS, MEASURE_COLUMNS_ADDED } from '../sql-rows.js';
import { PostgresStore } from './postgres-store.js';
import { PG_LATENCY_TABLES, PG_MIGRATIONS } from './schema.js';

/** Drops the latency histogram's columns: the schema as it was before them. */
const DROP_LATENCY = PG_LATENCY_TABLES.map(
  (t) => `ALTER TABLE ${t} ${LATENCY_COLUMNS.map((c) => `DROP COLUMN ${c}`).join(', ')};`,
).join(' ');

const pgUp = await postgresReachable();

/** Each test gets its own schema (dropped afterwards) in the shared test database. */
async function openStore(poolSize = 3, sessionSettings?: Record<string, string>) {
  const schema = uniqueSchema('c');
  const store = new PostgresStore({ url: TEST_PG_URL, schema, poolSize, sessionSettings });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await dropSchema(schema);
    },
  };
}

/**
 * The oracle's store: a connection for each call in flight (4), and commits that do not wait for
 * the WAL's flush. The oracle checks what the rules decide, not durability (the crash tests do),
 * and its 20,000 commits waited on fsync for about a quarter of its time (2,000 cases: 20.4 s,
 * 15.7 s without). Set on this store's connections only, not on the shared database.
 */
function openOracleStore() {
  return openStore(5, { synchronous_commit: 'off' });
}

whenServices(
  { PostgreSQL: pgUp },
  () => {
    runStoreContract('PostgreSQL', openStore);
    runRuleContract('PostgreSQL', openStore);
    // Four applyBatch and createRule calls in flight at once, on disjoint projects: the workers'
    // concurrency, with the rule locks in play.
    // A connection for each call in flight: on a loaded machine a call waiting for a pooled
    // connection behind a long batch would hit the pool's connect timeout instead.
    runRuleOracleContract('PostgreSQL', openOracleStore, {
      cases: Number(process.env.TW_ORACLE_CASES ?? 10_000),
      seed: 20261205,
      concurrency: 4,
      chunkEvents: 5_000,
      // A schema per 1,000 cases: rule back-fills read every project's rows of their range.
      casesPerStore: 1_000,
    });

    describe('PostgreSQL store specifics', () => {
      it('prunes queue poison messages older than the history retention', async () => {
        const { store, cleanup } = await openStore();
        try {
          await store.migrate();
          const DAY = 86_400_000;
          const now = Date.UTC(2026, 5, 1);
          const poison = (streamSeq: number, nowMs: number) =>
            store.recordPoison({
              stream: 'TOKENWATCH',
              streamSeq,
              msgId: `m${streamSeq}`,
              deliveries: 5,
              reason: 'undecodable',
              payloadHead: '{',
              nowMs,
            });
          await poison(1, now - 91 * DAY);
          await poison(2, now - 89 * DAY);
          const result = await store.prune({
            nowMs: now,
            minuteRetentionMs: 7 * DAY,
            dedupeRetentionMs: 36 * DAY,
            historyRetentionMs: 90 * DAY,
          });
          expect(result.poisonMessagesDeleted).toBe(1);
          expect((await store.listPoison()).map((p) => p.streamSeq)).toEqual([2]);
        } finally {
          await cleanup();
        }
      });

      it('rolls back the whole batch when one statement fails, and retrying counts it once', async () => {
        const { store, cleanup } = await openStore();
        try {
          await store.migrate();
          await store.createProject({ id: 'p1', name: 'p1', createdAtMs: 0 });
          const good = makePricedEvent();
          // A token count past BIGINT fails the rollup upsert after the ids were claimed.
          const bad = makePricedEvent({ inputTokens: 2 ** 70 });
          await expect(store.applyBatch([good, bad], { nowMs: Date.now() })).rejects.toMatchObject({
            code: 'internal',
          });
          expect((await store.applyBatch([good], { nowMs: Date.now() })).accepted).toBe(1);
          const rows = await store.queryUsage(makeQuery({ groupBy: ['user'] }));
          expect(rows.map((r) => [r.user, r.requests])).toEqual([[good.userId, 1]]);
        } finally {
          await cleanup();
        }
      });

      it('upgrades a schema from before the added measures: old rows keep theirs, the new ones start at 0', async () => {
        const { store, cleanup } = await openStore();
        try {
          await store.migrate();
          await store.createProject({ id: 'p1', name: 'p1', createdAtMs: 0 });
          await store.applyBatch([makePricedEvent({ inputTokens: 7 })], { nowMs: Date.now() });
          // Back to the version before the measures were added (and the cost became NUMERIC).
          const tables = [
            'rollup_minute',
            'rollup_hour',
            'rollup_day',
            'rollup_tag_hour',
            'rollup_tag_day',
          ];
          await store.query(
            'downgrade',
            `${tables
              .map(
                (t) =>
                  `ALTER TABLE ${t} ${MEASURE_COLUMNS_ADDED.map((c) => `DROP COLUMN ${c}`).join(', ')}, ALTER COLUMN cost_nano_usd TYPE BIGINT;`,
              )
              .join(
                ' ',
              )} ${DROP_LATENCY} DELETE FROM schema_version WHERE version >= ${PG_MIGRATIONS.length - 2};`,
          );
          await store.migrate();
          await store.applyBatch(
            [
              makePricedEvent({
                status: 'no_usage',
                inputTokens: 0,
                outputTokens: 0,
                costNanoUsd: 0,
              }),
              makePricedEvent({
                status: 'denied',
                inputTokens: 0,
                outputTokens: 0,
                costNanoUsd: 0,
              }),
            ],
            { nowMs: Date.now() },
          );
          for (const resolution of ['minute', 'hour', 'day'] as const) {
            const [row] = await store.queryUsage(makeQuery({ resolution }));
            expect([
              row?.inputTokens,
              row?.requests,
              row?.noUsageRequests,
              row?.deniedRequests,
            ]).toEqual([7, 2, 1, 1]);
          }
        } finally {
          await cleanup();
        }
      });

      it('upgrades a schema from before the latency histogram: old rows read as empty ones', async () => {
        const { store, cleanup } = await openStore();
        try {
          await store.migrate();
          await store.createProject({ id: 'p1', name: 'p1', createdAtMs: 0 });
          await store.applyBatch([makePricedEvent({ latencyMs: 500 })], { nowMs: Date.now() });
          await store.query(
            'downgrade',
            `${DROP_LATENCY} DELETE FROM schema_version WHERE version >= ${PG_MIGRATIONS.length};`,
          );
          await store.migrate();
          const q = makeQuery({ groupBy: ['model'], latency: true });
          expect((await store.queryUsage(q)).map((r) => [r.requests, r.latency])).toEqual([
            [1, emptyLatencyHistogram()],
          ]);
          await store.applyBatch([makePricedEvent({ latencyMs: 30 })], { nowMs: Date.now() });
          const expected = emptyLatencyHistogram();
          expected[1] = 1;
          for (const resolution of ['hour', 'day'] as const) {
            const rows = await store.queryUsage({ ...q, resolution });
            expect(rows.map((r) => [r.requests, r.latency])).toEqual([[2, expected]]);
          }
        } finally {
          await cleanup();
        }
      });

      it('two stores applying the same events concurrently count each once', async () => {
        const schema = uniqueSchema('cc');
        const a = new PostgresStore({ url: TEST_PG_URL, schema, poolSize: 2 });
        const b = new PostgresStore({ url: TEST_PG_URL, schema, poolSize: 2 });
        try {
          await Promise.all([a.migrate(), b.migrate()]);
          await a.createProject({ id: 'p1', name: 'p1', createdAtMs: 0 });
          const events = Array.from({ length: 400 }, (_, i) =>
            makePricedEvent({ userId: `u${i % 13}`, inputTokens: i + 1 }),
          );
          const halves = [events.slice(0, 300), events.slice(100)];
          const results = await Promise.all([
            a.applyBatch(halves[0] ?? [], { nowMs: Date.now() }),
            b.applyBatch(halves[1] ?? [], { nowMs: Date.now() }),
            a.applyBatch([...events].reverse(), { nowMs: Date.now() }),
          ]);
          expect(results.reduce((s, r) => s + r.accepted, 0)).toBe(400);
          const [total] = await a.queryUsage(makeQuery());
          expect(total?.requests).toBe(400);
          expect(total?.inputTokens).toBe((400 * 401) / 2);
        } finally {
          await a.close();
          await b.close();
          await dropSchema(schema);
        }
      });

      it('answers unavailable (retryable) when the server cannot be reached', async () => {
        const store = new PostgresStore({ url: 'postgres://postgres@127.0.0.1:1/test' });
        try {
          await expect(store.listProjects()).rejects.toMatchObject({
            code: 'unavailable',
            retryable: true,
          });
        } finally {
          await store.close();
        }
      });
    });
  },
  'PostgreSQL store',
);
