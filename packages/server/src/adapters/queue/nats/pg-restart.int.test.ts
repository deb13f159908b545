import { afterAll, describe, expect, it } from 'vitest';
import {
  type PrivatePostgres,
  postgresBinDir,
  startPrivatePostgres,
} from '../../../testing/private-postgres.js';
import {
  checkLedger,
  createScaleOutEnv,
  killStartedWorkers,
  LoadGenerator,
  startWorkerProcess,
  waitDrained,
  workerMetric,
} from '../../../testing/scale-out-harness.js';
import { killStartedServers, startServerProcess } from '../../../testing/server-process.js';
import { natsReachable } from '../../../testing/services.js';
import { whenServices } from '../../../testing/when-services.js';

/**
 * PostgreSQL restarted under load, on a PRIVATE instance (never the machine's shared cluster):
 * ingest keeps answering 202 (JetStream buffers) or 503 with Retry-After, workers nak and retry,
 * and after the restart every acknowledged event is counted exactly once.
 */
const natsUp = await natsReachable();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

whenServices(
  { NATS: natsUp, 'PostgreSQL server binaries': postgresBinDir() !== undefined },
  () => {
    describe('scale-out: PostgreSQL restart during load', () => {
      let pgPrivate: PrivatePostgres | undefined;
      afterAll(async () => {
        await killStartedWorkers();
        await killStartedServers();
        await pgPrivate?.destroy();
      });

      it('buffers in JetStream or answers 503 + Retry-After, and loses nothing acknowledged', async () => {
        pgPrivate = await startPrivatePostgres();
        const env = await createScaleOutEnv('pgrestart', { pgUrl: pgPrivate.url });
        try {
          const serve = await startServerProcess({ dataDir: env.dataDir });
          const worker = await startWorkerProcess(env);
          const gen = new LoadGenerator(serve.url, serve.ingestKey as string, {
            eventsPerRequest: 20,
            concurrency: 2,
            pauseMs: 10,
          });
          gen.start();
          await sleep(1_500);
          await pgPrivate.stop();
          const ackedAtStop = gen.acked.size;
          await sleep(3_000);
          const ackedDuringOutage = gen.acked.size - ackedAtStop;
          pgPrivate.start();
          await sleep(2_000);
          await gen.stop();
          await waitDrained(env, 90_000);

          expect(gen.badAnswers, 'every refusal is a 503/429 with Retry-After').toEqual([]);
          expect(ackedDuringOutage, 'ingest kept accepting into JetStream').toBeGreaterThan(0);
          expect(
            await workerMetric(worker, 'tokenwatch_flush_failures_total'),
            'the worker saw the outage',
          ).toBeGreaterThan(0);
          const check = await checkLedger(env, gen);
          expect(check.missingAcked).toEqual([]);
          expect(check.invented).toEqual([]);
          expect(check.rollupRequests).toBe(check.storedIds);
          expect(check.rollupTokens).toBe(check.expectedTokens);
          await worker.kill('SIGTERM');
          await serve.kill('SIGTERM');
        } finally {
          await killStartedWorkers();
          await killStartedServers();
          await env.cleanup();
        }
      }, 150_000);
    });
  },
  'PostgreSQL restart',
);
