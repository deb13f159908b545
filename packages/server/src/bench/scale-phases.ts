/**
 * The measured phases of bench:scale: end to end (HTTP → JetStream → workers → PostgreSQL, with
 * or without an alert flood) and the workers draining a backlog (the worker stage at full
 * transactions), each with CPU per event of every process, sampled lock waits and JetStream's
 * redeliveries.
 */
import { TokenwatchError } from '@tokenwatch/core';
import pg from 'pg';
import { httpRequest } from '../testing/http-client.js';
import {
  consumerBacklog,
  consumerRedeliveries,
  createScaleOutEnv,
  LoadGenerator,
  type ScaleOutEnv,
  startWorkerProcess,
  type WorkerProcess,
  workerMetric,
} from '../testing/scale-out-harness.js';
import { type ServerProcess, startServerProcess } from '../testing/server-process.js';
import {
  adminClient,
  BackendCpu,
  cpuSecondsOf,
  LockWaitSampler,
  pidsByName,
} from './scale-probes.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const E2E_SECONDS = Number(process.env.BENCH_E2E_SECONDS ?? 15);

function cpuOf(pids: number[]): number {
  return pids.reduce((s, p) => s + cpuSecondsOf(p), 0);
}

export interface E2eResult {
  label: string;
  workers: number;
  ingestRate: number;
  endToEndRate: number;
  events: number;
  redeliveries: number;
  alerts: number;
  locks: string;
  lockWaitShare: number;
  /** Mean events per transaction of each worker (its tokenwatch_flush_events histogram). */
  eventsPerTx: number[];
  cpuUs: {
    collector: number;
    broker: number;
    perWorker: number[];
    workers: number;
    database: number;
    loadgen: number;
  };
}

/** The alert flood: three per-user rules that each of the 10,000 users crosses within seconds. */
const FLOOD_RULES = [
  {
    name: 'flood: tokens per user per hour',
    metric: 'inputTokens',
    window: { type: 'calendar', unit: 'hour', timeZone: 'UTC' },
    levels: [{ value: 1_000 }],
  },
  {
    name: 'flood: requests per user per day',
    metric: 'requests',
    window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
    levels: [{ value: 3 }],
  },
  {
    name: 'flood: tokens per user, rolling hour',
    metric: 'inputTokens',
    window: { type: 'rolling', minutes: 60 },
    levels: [{ value: 2_000 }],
  },
];

async function createFloodRules(serve: ServerProcess): Promise<void> {
  for (const rule of FLOOD_RULES) {
    const res = await httpRequest(`${serve.url}/v1/rules`, {
      method: 'POST',
      headers: { authorization: `Bearer ${serve.adminKey}`, 'content-type': 'application/json' },
      // No channel: the crossings are evaluated and recorded (GET /v1/alerts), and the outbox
      // is not part of what is measured (BENCH_FLOOD_CHANNEL=log adds a log channel).
      body: JSON.stringify({
        ...rule,
        scope: ['user'],
        channels: process.env.BENCH_FLOOD_CHANNEL === 'log' ? [{ type: 'log' }] : [],
      }),
    });
    if (res.status !== 201) throw new Error(`creating a flood rule: ${res.status} ${res.text}`);
  }
}

async function eventsPerTransaction(workers: WorkerProcess[]): Promise<number[]> {
  return Promise.all(
    workers.map(async (w) => {
      const sum = await workerMetric(w, 'tokenwatch_flush_events_sum');
      const count = await workerMetric(w, 'tokenwatch_flush_events_count');
      return count > 0 ? sum / count : 0;
    }),
  );
}

async function countRows(env: ScaleOutEnv, table: string): Promise<number> {
  const c = new pg.Client({ connectionString: env.pgUrl });
  await c.connect();
  try {
    const r = await c.query<{ n: string }>(`SELECT COUNT(*) AS n FROM "${env.schema}".${table}`);
    return Number(r.rows[0]?.n ?? 0);
  } finally {
    await c.end();
  }
}

export async function endToEnd(workerCount: number, flood: boolean): Promise<E2eResult> {
  const label = `end to end, ${workerCount} worker(s)${flood ? ', alert flood' : ''}`;
  const env = await createScaleOutEnv(`bench${workerCount}${flood ? 'f' : ''}`, {
    queue: { fetchMaxMessages: 64 },
  });
  const serve = await startServerProcess({ dataDir: env.dataDir });
  const workers: WorkerProcess[] = [];
  const admin = await adminClient(env.pgUrl);
  try {
    if (flood) await createFloodRules(serve);
    for (let i = 0; i < workerCount; i++) workers.push(await startWorkerProcess(env));
    const nats = pidsByName('nats-server');
    const workerPids = workers.map((w) => w.pid);
    const clients = [serve.pid, ...workerPids];
    const collector0 = cpuSecondsOf(serve.pid);
    const broker0 = cpuOf(nats);
    const workers0 = workerPids.map(cpuSecondsOf);
    const backendCpu = new BackendCpu(BackendCpu.snapshot());
    await backendCpu.sample(admin, clients);
    const locks = new LockWaitSampler(admin, () => clients, backendCpu);
    const lg0 = process.cpuUsage();
    const gen = new LoadGenerator(serve.url, serve.ingestKey as string, {
      eventsPerRequest: 100,
      concurrency: 6,
      users: 10_000,
    });
    const t0 = performance.now();
    locks.start();
    gen.start();
    await sleep(E2E_SECONDS * 1000);
    await gen.stop();
    const ingestSeconds = (performance.now() - t0) / 1000;
    const lg = process.cpuUsage(lg0);
    while ((await consumerBacklog(env)) > 0) await sleep(100);
    const seconds = (performance.now() - t0) / 1000;
    await locks.stop();
    await backendCpu.sample(admin, clients);
    const perWorkerCpu = workerPids.map((p, i) => cpuSecondsOf(p) - (workers0[i] as number));
    const collectorCpu = cpuSecondsOf(serve.pid) - collector0;
    const brokerCpu = cpuOf(nats) - broker0;
    const stored = await countRows(env, 'event_ids');
    const events = gen.acked.size;
    if (stored < events)
      throw new TokenwatchError('internal', `lost events: ${stored} < ${events}`);
    const perEvent = (cpuSeconds: number) => (cpuSeconds / events) * 1e6;
    return {
      label,
      workers: workerCount,
      ingestRate: events / ingestSeconds,
      endToEndRate: events / seconds,
      events,
      redeliveries: await consumerRedeliveries(env),
      alerts: flood ? await countRows(env, 'alerts') : 0,
      locks: locks.summary(),
      lockWaitShare: locks.samples ? locks.samplesWithWait / locks.samples : 0,
      eventsPerTx: await eventsPerTransaction(workers),
      cpuUs: {
        collector: perEvent(collectorCpu),
        broker: perEvent(brokerCpu),
        perWorker: perWorkerCpu.map(perEvent),
        workers: perEvent(perWorkerCpu.reduce((a, b) => a + b, 0)),
        database: perEvent(backendCpu.seconds),
        loadgen: perEvent((lg.user + lg.system) / 1e6),
      },
    };
  } finally {
    await admin.end().catch(() => {});
    for (const w of workers) await w.kill('SIGTERM');
    await serve.kill('SIGTERM');
    await env.cleanup();
  }
}

/**
 * The worker stage at full transactions: 15 s of ingest with no worker running, then the
 * workers drain the backlog. Rate and CPU per event count from when every worker is up.
 */
export async function drain(workerCount: number): Promise<E2eResult> {
  const env = await createScaleOutEnv(`benchdrain${workerCount}`, {
    queue: { fetchMaxMessages: 64 },
  });
  const serve = await startServerProcess({ dataDir: env.dataDir });
  const workers: WorkerProcess[] = [];
  const admin = await adminClient(env.pgUrl);
  try {
    const gen = new LoadGenerator(serve.url, serve.ingestKey as string, {
      eventsPerRequest: 100,
      concurrency: 6,
      users: 10_000,
    });
    gen.start();
    await sleep(E2E_SECONDS * 1000);
    await gen.stop();
    // Started together, so that they share the backlog from the start.
    workers.push(
      ...(await Promise.all(Array.from({ length: workerCount }, () => startWorkerProcess(env)))),
    );
    const workerPids = workers.map((w) => w.pid);
    const workers0 = workerPids.map(cpuSecondsOf);
    const backendCpu = new BackendCpu(BackendCpu.snapshot());
    await backendCpu.sample(admin, workerPids);
    const stored0 = await countRows(env, 'event_ids');
    const locks = new LockWaitSampler(admin, () => workerPids, backendCpu);
    const t0 = performance.now();
    locks.start();
    while ((await consumerBacklog(env)) > 0) await sleep(100);
    const seconds = (performance.now() - t0) / 1000;
    await locks.stop();
    await backendCpu.sample(admin, workerPids);
    const perWorkerCpu = workerPids.map((p, i) => cpuSecondsOf(p) - (workers0[i] as number));
    const stored = await countRows(env, 'event_ids');
    if (stored < gen.acked.size)
      throw new TokenwatchError('internal', `lost events: ${stored} < ${gen.acked.size}`);
    const events = stored - stored0;
    const perEvent = (cpuSeconds: number) => (cpuSeconds / events) * 1e6;
    return {
      label: `draining, ${workerCount} worker(s), a backlog of ${gen.acked.size.toLocaleString('en-US')} events`,
      workers: workerCount,
      ingestRate: 0,
      endToEndRate: events / seconds,
      events,
      redeliveries: await consumerRedeliveries(env),
      alerts: 0,
      locks: locks.summary(),
      lockWaitShare: locks.samples ? locks.samplesWithWait / locks.samples : 0,
      eventsPerTx: await eventsPerTransaction(workers),
      cpuUs: {
        collector: 0,
        broker: 0,
        perWorker: perWorkerCpu.map(perEvent),
        workers: perEvent(perWorkerCpu.reduce((a, b) => a + b, 0)),
        database: perEvent(backendCpu.seconds),
        loadgen: 0,
      },
    };
  } finally {
    await admin.end().catch(() => {});
    for (const w of workers) await w.kill('SIGTERM');
    await serve.kill('SIGTERM');
    await env.cleanup();
  }
}
