import { afterAll, describe, expect, it } from 'vitest';
import { httpRequest } from '../testing/http-client.js';
import { natsServerBinary, OwnNatsServer, TcpProxy } from '../testing/own-broker.js';
import {
  createScaleOutEnv,
  killStartedWorkers,
  startWorkerProcess,
} from '../testing/scale-out-harness.js';
import { killStartedServers, startServerProcess } from '../testing/server-process.js';
import { postgresReachable, TEST_PG_URL } from '../testing/services.js';
import { whenServices } from '../testing/when-services.js';

/**
 * Health in scale-out tells the truth: `serve`'s /readyz fails (503, with the reason, without
 * hanging) while the broker or the database is unreachable and recovers when they are back;
 * ingest refuses at once with 503 + Retry-After while the broker is known to be down; the
 * worker's /healthz reflects its NATS connection, its consumer and the database. The broker is
 * a nats-server of this test's own and the database is reached through a proxy it can cut.
 */
const pgUp = await postgresReachable();
const pgTarget = new URL(TEST_PG_URL);

interface Health {
  status: number;
  problems: string[];
}

async function health(url: string): Promise<Health> {
  // A check that hangs fails the test through this timeout (the endpoint must answer).
  const res = await httpRequest(url, { timeoutMs: 8_000 });
  const body = res.json<{ problems?: string[] }>();
  return { status: res.status, problems: body.problems ?? [] };
}

/** Polls until `accept` holds, returning the last answer; fails with it otherwise. */
async function eventually(
  url: string,
  accept: (h: Health) => boolean,
  timeoutMs = 45_000,
): Promise<Health> {
  const deadline = Date.now() + timeoutMs;
  let last = await health(url);
  while (!accept(last)) {
    if (Date.now() > deadline) {
      throw new Error(`${url} never reached the expected state; last: ${JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
    last = await health(url);
  }
  return last;
}

let seq = 0;
function ingest(url: string, key: string) {
  seq++;
  return httpRequest(`${url}/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      events: [
        {
          id: `health-${process.pid}-${seq}`,
          timestamp: Date.now(),
          userId: 'u',
          appId: 'a',
          modelId: 'm',
          provider: 'openai',
          inputTokens: 1,
          outputTokens: 1,
        },
      ],
    }),
    timeoutMs: 15_000,
  });
}

whenServices(
  { PostgreSQL: pgUp, 'nats-server binary': natsServerBinary() !== undefined },
  () => {
    describe('scale-out health: broker and database outages', () => {
      const nats = new OwnNatsServer();
      const proxy = new TcpProxy(pgTarget.hostname, Number(pgTarget.port || 5432));
      afterAll(async () => {
        await killStartedWorkers();
        await killStartedServers();
        await nats.destroy();
        await proxy.stop();
      });

      it('/readyz and the worker /healthz fail with the reason while NATS or PostgreSQL is down, and recover', async () => {
        await nats.start();
        await proxy.start();
        const pgUrl = new URL(TEST_PG_URL);
        pgUrl.host = `127.0.0.1:${proxy.port}`;
        const env = await createScaleOutEnv('health', {
          pgUrl: pgUrl.toString(),
          queue: { url: nats.url, publishTimeoutMs: 5_000 },
        });
        try {
          const serve = await startServerProcess({ dataDir: env.dataDir });
          const worker = await startWorkerProcess(env);
          const key = serve.ingestKey as string;
          const readyz = `${serve.url}/readyz`;
          const healthz = `${worker.metricsUrl}/healthz`;
          expect(await health(readyz)).toEqual({ status: 200, problems: [] });
          expect(await health(healthz)).toEqual({ status: 200, problems: [] });
          expect((await ingest(serve.url, key)).status).toBe(202);

          // The broker goes away.
          await nats.kill();
          const notReady = await eventually(readyz, (h) => h.status === 503);
          expect(notReady.problems.join('\n')).toMatch(/NATS/);
          const refused = await ingest(serve.url, key);
          expect(refused.status).toBe(503);
          expect(refused.headers['retry-after']).toBeDefined();
          // Refused from what readiness knows, not after waiting out the publish timeout.
          expect(refused.text).toContain('unreachable');
          const workerDown = await eventually(healthz, (h) => h.status === 503);
          expect(workerDown.problems.join('\n')).toMatch(/NATS/);

          // It comes back (same port, same store directory).
          await nats.start();
          await eventually(readyz, (h) => h.status === 200);
          expect((await ingest(serve.url, key)).status).toBe(202);
          await eventually(healthz, (h) => h.status === 200);

          // The database goes away.
          await proxy.stop();
          const noStore = await eventually(readyz, (h) => h.status === 503);
          expect(noStore.problems.join('\n')).toMatch(/store/);
          const workerNoStore = await eventually(healthz, (h) => h.status === 503);
          expect(workerNoStore.problems.join('\n')).toMatch(/store/);

          // The database hangs (accepts, never answers): the checks answer by their deadline.
          await proxy.start({ blackhole: true });
          const hung = await eventually(readyz, (h) =>
            h.problems.some((p) => p.includes('store did not answer within')),
          );
          expect(hung.status).toBe(503);
          await proxy.stop();

          await proxy.start();
          await eventually(readyz, (h) => h.status === 200);
          await eventually(healthz, (h) => h.status === 200);

          await worker.kill('SIGTERM');
          await serve.kill('SIGTERM');
        } finally {
          await killStartedWorkers();
          await killStartedServers();
          await env.cleanup();
        }
      }, 240_000);
    });
  },
  'scale-out health',
);
