import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkLedger,
  consumerRedeliveries,
  createScaleOutEnv,
  killStartedWorkers,
  LoadGenerator,
  startWorkerProcess,
  waitDrained,
  workerMetric,
} from '../../../testing/scale-out-harness.js';
import { killStartedServers, startServerProcess } from '../../../testing/server-process.js';
import { natsReachable, postgresReachable } from '../../../testing/services.js';
import { whenServices } from '../../../testing/when-services.js';

/**
 * A worker whose transaction takes several ack waits (here: a table lock held by the test, as
 * an alert flood or a loaded database would) neither loses nor repeats work: it holds a bounded
 * number of messages and keeps telling JetStream it is working on all of them, so nothing is
 * redelivered, and every acknowledged event is counted once.
 */
const pgUp = await postgresReachable();
const natsUp = await natsReachable();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

whenServices({ PostgreSQL: pgUp, NATS: natsUp }, () => {
  describe('scale-out: a transaction slower than the ack wait', () => {
    afterAll(async () => {
      await killStartedWorkers();
      await killStartedServers();
    });

    it('is not redelivered (0 redeliveries, 0 duplicates) and counts exactly', async () => {
      const env = await createScaleOutEnv('slowtx', { queue: { ackWaitMs: 1_000 } });
      const db = new pg.Client({ connectionString: env.pgUrl });
      try {
        const serve = await startServerProcess({ dataDir: env.dataDir });
        const worker = await startWorkerProcess(env);
        const gen = new LoadGenerator(serve.url, serve.ingestKey as string, {
          eventsPerRequest: 20,
          concurrency: 2,
          pauseMs: 5,
          users: 50,
        });
        gen.start();
        await sleep(800);
        // Every batch writes rollup_hour: the worker's transaction waits on this lock for
        // 3.5 s (3.5 ack waits) while more messages arrive.
        await db.connect();
        await db.query('BEGIN');
        await db.query(`LOCK TABLE "${env.schema}".rollup_hour IN EXCLUSIVE MODE`);
        await sleep(3_500);
        await db.query('COMMIT');
        await sleep(1_000);
        await gen.stop();
        await waitDrained(env);

        const check = await checkLedger(env, gen);
        expect(check.missingAcked, 'acknowledged events missing').toEqual([]);
        expect(check.invented, 'counted events nobody sent').toEqual([]);
        expect(check.rollupRequests).toBe(check.storedIds);
        expect(check.rollupTokens).toBe(check.expectedTokens);
        expect(gen.acked.size).toBeGreaterThan(0);
        expect(await consumerRedeliveries(env), 'JetStream redeliveries').toBe(0);
        expect(await workerMetric(worker, 'tokenwatch_events_duplicate_total')).toBe(0);
        await worker.kill('SIGTERM');
        await serve.kill('SIGTERM');
      } finally {
        await db.end().catch(() => {});
        await killStartedWorkers();
        await env.cleanup();
      }
    }, 120_000);
  });
});
