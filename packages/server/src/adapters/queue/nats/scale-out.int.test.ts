import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { httpRequest } from '../../../testing/http-client.js';
import {
  checkLedger,
  consumerBacklog,
  createScaleOutEnv,
  killStartedWorkers,
  LoadGenerator,
  type ScaleOutEnv,
  startWorkerProcess,
  waitDrained,
  workerMetric,
} from '../../../testing/scale-out-harness.js';
import { killStartedServers, startServerProcess } from '../../../testing/server-process.js';
import { natsReachable, postgresReachable } from '../../../testing/services.js';
import { whenServices } from '../../../testing/when-services.js';

/**
 * Scale-out end to end, on the real services: `tokenwatch serve --queue nats://…` publishes to
 * JetStream, `tokenwatch worker` processes apply to PostgreSQL. Every test checks the ledger
 * oracle: each acknowledged (202) event counted exactly once, nothing counted that was not sent.
 */
const pgUp = await postgresReachable();
const natsUp = await natsReachable();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function expectExactLedger(env: ScaleOutEnv, gen: LoadGenerator): Promise<void> {
  const check = await checkLedger(env, gen);
  expect(check.missingAcked, 'acknowledged events missing').toEqual([]);
  expect(check.invented, 'counted events nobody sent').toEqual([]);
  expect(check.rollupRequests, 'requests in the rollups = stored ids').toBe(check.storedIds);
  expect(check.rollupTokens, 'tokens in the rollups = ledger tokens of stored ids').toBe(
    check.expectedTokens,
  );
  expect(check.storedIds).toBeGreaterThanOrEqual(gen.acked.size);
}

whenServices(
  { PostgreSQL: pgUp, NATS: natsUp },
  () => {
    describe('scale-out: serve → JetStream → workers → PostgreSQL', () => {
      afterAll(async () => {
        await killStartedWorkers();
        await killStartedServers();
      });

      it('two workers produce exactly the totals sent and one alert per rule × scope × window × level', async () => {
        const env = await createScaleOutEnv('two');
        try {
          const serve = await startServerProcess({ dataDir: env.dataDir });
          const levels = [20_000, 50_000, 100_000];
          const created = await httpRequest(`${serve.url}/v1/rules`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${serve.adminKey}`,
              'content-type': 'application/json',
            },
            body: JSON.stringify({
              name: 'per user hourly',
              scope: ['user'],
              metric: 'inputTokens',
              window: { type: 'calendar', unit: 'hour', timeZone: 'UTC' },
              levels: levels.map((value) => ({ value })),
              channels: [{ type: 'log' }],
            }),
          });
          expect(created.status, created.text).toBe(201);
          const workers = [await startWorkerProcess(env), await startWorkerProcess(env)];
          const gen = new LoadGenerator(serve.url, serve.ingestKey as string, {
            eventsPerRequest: 50,
            concurrency: 4,
            users: 12,
            maxRequests: 240,
          });
          gen.start();
          await gen.done();
          expect(gen.statuses.get(202)).toBe(240);
          await waitDrained(env);
          await expectExactLedger(env, gen);

          const applied = await Promise.all(
            workers.map((w) => workerMetric(w, 'tokenwatch_queue_applied_messages_total')),
          );
          expect(
            applied.every((n) => n > 0),
            `both workers applied: ${applied}`,
          ).toBe(true);

          const db = new pg.Client({ connectionString: env.pgUrl });
          await db.connect();
          try {
            await db.query(`SET search_path = "${env.schema}"`);
            // Per (user, hour): the rule counter equals the rollup, and one alert per level crossed.
            const totals = await db.query<{ user_id: string; bucket_ms: string; t: string }>(
              `SELECT s.user_id, r.bucket_ms, SUM(r.input_tokens) AS t FROM rollup_hour r
             JOIN series s ON s.series_id = r.series_id GROUP BY 1, 2`,
            );
            const counters = await db.query<{
              scope_key: string;
              bucket_start_ms: string;
              value: string;
            }>('SELECT scope_key, bucket_start_ms, value FROM rule_counters');
            const counterOf = new Map(
              counters.rows.map((c) => [`${c.scope_key}|${c.bucket_start_ms}`, Number(c.value)]),
            );
            let expectedAlerts = 0;
            for (const row of totals.rows) {
              const total = Number(row.t);
              expect(counterOf.get(`${JSON.stringify([row.user_id])}|${row.bucket_ms}`)).toBe(
                total,
              );
              expectedAlerts += levels.filter((l) => l <= total).length;
            }
            expect(expectedAlerts).toBeGreaterThan(0);
            const alerts = await db.query<{ n: string; distinct_keys: string }>(
              `SELECT COUNT(*) AS n, COUNT(DISTINCT (rule_id, scope_key, window_start_ms, level_index)) AS distinct_keys FROM alerts`,
            );
            expect(Number(alerts.rows[0]?.n)).toBe(expectedAlerts);
            expect(Number(alerts.rows[0]?.distinct_keys)).toBe(expectedAlerts);
            // The outbox: every delivery sent once, by one of the two dispatchers.
            const deadline = Date.now() + 20_000;
            for (;;) {
              const d = await db.query<{ status: string; attempts: number; n: string }>(
                'SELECT status, attempts, COUNT(*) AS n FROM deliveries GROUP BY 1, 2',
              );
              const delivered = d.rows.find((r) => r.status === 'delivered' && r.attempts === 1);
              if (d.rows.length === 1 && Number(delivered?.n) === expectedAlerts) break;
              if (Date.now() > deadline) throw new Error(`deliveries: ${JSON.stringify(d.rows)}`);
              await sleep(200);
            }
          } finally {
            await db.end();
          }
          for (const w of workers) await w.kill('SIGTERM');
          await serve.kill('SIGTERM');
        } finally {
          await killStartedWorkers();
          await env.cleanup();
        }
      });

      it('redelivery (a worker paused past a 1 s ack wait) never double counts', async () => {
        const env = await createScaleOutEnv('redeliver', { queue: { ackWaitMs: 1_000 } });
        try {
          const serve = await startServerProcess({ dataDir: env.dataDir });
          const a = await startWorkerProcess(env);
          const b = await startWorkerProcess(env);
          const gen = new LoadGenerator(serve.url, serve.ingestKey as string, {
            eventsPerRequest: 20,
            concurrency: 2,
            pauseMs: 5,
          });
          gen.start();
          await sleep(800);
          // A stops mid-flight holding messages (buffered or inside its transaction): JetStream
          // redelivers them after the ack wait (to A's next pull: A's partition leases live on
          // in its PostgreSQL session), and A, resumed, applies both copies.
          process.kill(a.pid, 'SIGSTOP');
          await sleep(3_000);
          process.kill(a.pid, 'SIGCONT');
          await sleep(1_500);
          await gen.stop();
          await waitDrained(env);
          await expectExactLedger(env, gen);
          const duplicates =
            (await workerMetric(a, 'tokenwatch_events_duplicate_total')) +
            (await workerMetric(b, 'tokenwatch_events_duplicate_total'));
          expect(
            duplicates,
            'redelivered batches were applied again (and found duplicate)',
          ).toBeGreaterThan(0);
          await a.kill('SIGTERM');
          await b.kill('SIGTERM');
          await serve.kill('SIGTERM');
        } finally {
          await killStartedWorkers();
          await env.cleanup();
        }
      });

      it('a worker SIGKILLed mid-batch 20 times under load: every acknowledged event counted exactly once', async () => {
        const env = await createScaleOutEnv('kill', { queue: { ackWaitMs: 2_000 } });
        try {
          const serve = await startServerProcess({ dataDir: env.dataDir });
          // Steady load (not saturating: the 2-core machine also starts a worker per cycle).
          const gen = new LoadGenerator(serve.url, serve.ingestKey as string, {
            eventsPerRequest: 50,
            concurrency: 1,
            pauseMs: 20,
          });
          gen.start();
          let killedWhileBusy = 0;
          for (let i = 0; i < 20; i++) {
            const w = await startWorkerProcess(env);
            await sleep(150 + Math.floor(Math.random() * 450));
            // Under load the worker always holds un-acked messages: a kill lands between fetch,
            // transaction and ack.
            if ((await consumerBacklog(env)) > 0) killedWhileBusy++;
            const info = await w.kill('SIGKILL');
            expect(info.signal).toBe('SIGKILL');
          }
          await gen.stop();
          const last = await startWorkerProcess(env);
          await waitDrained(env, 90_000);
          await expectExactLedger(env, gen);
          expect(killedWhileBusy).toBeGreaterThanOrEqual(15);
          expect(gen.acked.size).toBeGreaterThan(0);
          await last.kill('SIGTERM');
          await serve.kill('SIGTERM');
        } finally {
          await killStartedWorkers();
          await env.cleanup();
        }
      }, 180_000);
    });
  },
  'scale-out (PostgreSQL + NATS)',
);
