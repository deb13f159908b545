import { counterKeyOf } from '@tokenwatch/core';
import { CONTRACT_T0, makePricedEvent, makeQuery, makeRule } from '@tokenwatch/core/testing';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import {
  dropSchema,
  postgresReachable,
  TEST_PG_URL,
  uniqueSchema,
} from '../../../testing/services.js';
import { whenServices } from '../../../testing/when-services.js';
import { PostgresStore } from './postgres-store.js';

/**
 * The locks of a batch on PostgreSQL. Rolling-window rules, where workers apply batches concurrently: a window sums
 * several minute rows, so two transactions adding to different minutes of one scope must be
 * serialised (each scope's lock row), or neither sees the other's minutes and a crossing of
 * their sum is missed. And the lock must not cost a shared resource per scope: a batch touching
 * tens of thousands of users took as many advisory locks, which live in the cluster-wide lock
 * table, and failed with "out of shared memory" (and made every other session fail with it); so did a
 * batch spanning as many projects (a shared advisory lock per project).
 */
const pgUp = await postgresReachable();
const MINUTE = 60_000;

/** Input tokens per user over a rolling window of `minutes`, one level. */
const perUserRolling = (minutes: number, level: number) =>
  makeRule({
    scope: ['user'],
    metric: 'inputTokens',
    window: { type: 'rolling', minutes },
    levels: [{ value: level }],
    channels: [{ type: 'log' }],
  });

whenServices({ PostgreSQL: pgUp }, () => {
  describe('PostgreSQL: the locks of a batch', () => {
    const cleanups: Array<() => Promise<void>> = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0)) await c();
    });

    /** Entries of the cluster's shared lock table (what PostgreSQL sizes it by). */
    async function lockTableSize(): Promise<number> {
      const admin = new pg.Client({ connectionString: TEST_PG_URL });
      await admin.connect();
      try {
        const setting = async (name: string) =>
          Number((await admin.query(`SHOW ${name}`)).rows[0]?.[name]);
        return (
          (await setting('max_locks_per_transaction')) *
          ((await setting('max_connections')) + (await setting('max_prepared_transactions')))
        );
      } finally {
        await admin.end();
      }
    }

    async function twoStores() {
      const schema = uniqueSchema('roll');
      const a = new PostgresStore({ url: TEST_PG_URL, schema, poolSize: 2 });
      await a.migrate();
      await a.createProject({ id: 'p1', name: 'p1', createdAtMs: CONTRACT_T0 });
      const b = new PostgresStore({ url: TEST_PG_URL, schema, poolSize: 2 });
      cleanups.push(async () => {
        await a.close();
        await b.close();
        await dropSchema(schema);
      });
      return { schema, a, b };
    }

    it('a batch touching 3 × the cluster lock table size in scopes commits, and counts each one', async () => {
      const { a } = await twoStores();
      const users = 3 * (await lockTableSize());
      const rule = perUserRolling(60, 5);
      await a.createRule(rule, CONTRACT_T0);
      const at = CONTRACT_T0 + 10 * MINUTE;
      const events = Array.from({ length: users }, (_, i) =>
        makePricedEvent({ userId: `u${i}`, inputTokens: 1, outputTokens: 0, timestampMs: at }),
      );
      const result = await a.applyBatch(events, { nowMs: at });
      expect(result.accepted).toBe(users);
      const counters = await a.readCounters(counterKeyOf(rule), at - MINUTE, at + MINUTE);
      expect(counters.length).toBe(users);
      expect(counters.every((c) => c.value === 1)).toBe(true);
    }, 120_000);

    it('a batch spanning 3 × the cluster lock table size in projects commits', async () => {
      const { a } = await twoStores();
      const projects = 3 * (await lockTableSize());
      const at = CONTRACT_T0 + 10 * MINUTE;
      const events = Array.from({ length: projects }, (_, i) =>
        makePricedEvent({
          projectId: `tenant-${i}`,
          inputTokens: 2,
          outputTokens: 0,
          timestampMs: at,
        }),
      );
      const result = await a.applyBatch(events, { nowMs: at });
      expect(result.accepted).toBe(projects);
      const usage = await a.queryUsage(makeQuery({ projectId: `tenant-${projects - 1}` }));
      expect(usage.map((r) => r.inputTokens)).toEqual([2]);
    }, 120_000);

    it('two transactions adding to two minutes of one scope: the second sees the first, and the crossing of their sum fires', async () => {
      const { schema, a, b } = await twoStores();
      const rule = perUserRolling(10, 100);
      await a.createRule(rule, CONTRACT_T0);
      const gate = new pg.Client({ connectionString: TEST_PG_URL });
      await gate.connect();
      const rounds = 8;
      let fired = 0;
      try {
        for (let round = 0; round < rounds; round++) {
          const at = CONTRACT_T0 + (20 * round + 10) * MINUTE;
          const user = `racer-${round}`;
          // Two apps: two series, so no rollup row is shared (its row lock would serialise the
          // two transactions anyway). Both wait at their rollup write, then reach the counters
          // together.
          await gate.query('BEGIN');
          await gate.query(`LOCK TABLE "${schema}".rollup_hour IN EXCLUSIVE MODE`);
          const first = a.applyBatch(
            [
              makePricedEvent({
                userId: user,
                appId: 'first-app',
                inputTokens: 60,
                outputTokens: 0,
                timestampMs: at,
              }),
            ],
            { nowMs: at + MINUTE },
          );
          const second = b.applyBatch(
            [
              makePricedEvent({
                userId: user,
                appId: 'second-app',
                inputTokens: 60,
                outputTokens: 0,
                timestampMs: at + MINUTE,
              }),
            ],
            { nowMs: at + MINUTE },
          );
          await new Promise((r) => setTimeout(r, 100));
          await gate.query('COMMIT');
          const [r1, r2] = await Promise.all([first, second]);
          fired += r1.alerts.length + r2.alerts.length;
        }
      } finally {
        await gate.query('ROLLBACK').catch(() => {});
        await gate.end();
      }
      // Each round's 120 tokens cross 100 once: one alert per round, from whichever came second.
      expect(fired).toBe(rounds);
      const alerts = await a.listAlerts({ projectId: 'p1', limit: 100 });
      expect(alerts.length).toBe(rounds);
    }, 60_000);
  });
});
