/**
 * `npm run bench:scale`: the scale-out path on this machine, with the real services.
 *   1. PostgreSQL-only limit: PostgresStore.applyBatch, 1000 events per transaction, 2 connections.
 *   2. End to end: HTTP (tokenwatch serve --queue nats://…) → JetStream → 1 and then 2
 *      `tokenwatch worker` processes → PostgreSQL: events/s from the first request until the
 *      queue is drained, and CPU per event of every stage (collector, broker, worker, database).
 *   3. Latency: p50/p99 from the 202 to the event being visible in a usage query, at a steady
 *      rate below saturation.
 * Everything (load generator included) shares the machine's cores, as in perf-limits.md.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { type PricedEvent, TokenwatchError } from '@tokenwatch/core';
import pg from 'pg';
import { PostgresStore } from '../adapters/store/postgres/postgres-store.js';
import { httpRequest } from '../testing/http-client.js';
import {
  consumerBacklog,
  createScaleOutEnv,
  LoadGenerator,
  type ScaleOutEnv,
  startWorkerProcess,
  type WorkerProcess,
} from '../testing/scale-out-harness.js';
import { startServerProcess } from '../testing/server-process.js';
import { dropSchema, TEST_PG_URL, uniqueSchema } from '../testing/services.js';
import { uuidv7 } from '../util/uuidv7.js';

const TICKS = 100; // clock ticks per second (getconf CLK_TCK on Linux)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PG_EVENTS = Number(process.env.BENCH_PG_EVENTS ?? 200_000);
const E2E_SECONDS = Number(process.env.BENCH_E2E_SECONDS ?? 15);

function cpuSecondsOf(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return 0;
  }
}

function pidsByName(name: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === name) out.push(Number(entry));
    } catch {
      // gone
    }
  }
  return out;
}

/** CPU seconds of a set of processes (PostgreSQL: every backend; re-listed each time). */
function cpuOf(pids: number[] | (() => number[])): number {
  const list = typeof pids === 'function' ? pids() : pids;
  return list.reduce((s, p) => s + cpuSecondsOf(p), 0);
}

/** CPU seconds of every PostgreSQL process now (pid → seconds). */
function pgCpuSnapshot(): Map<number, number> {
  return new Map(pidsByName('postgres').map((p) => [p, cpuSecondsOf(p)]));
}

/**
 * CPU PostgreSQL spent for tokenwatch since `before`: the backends whose application_name is
 * tokenwatch (other sessions on a shared cluster are not ours). Pools keep their connections
 * for the whole run, so the backends are still there to be read.
 */
async function tokenwatchBackendCpu(url: string, before: Map<number, number>): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name = 'tokenwatch'",
    );
    return r.rows.reduce((s, { pid }) => s + cpuSecondsOf(pid) - (before.get(pid) ?? 0), 0);
  } finally {
    await c.end();
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

function event(i: number, now: number): PricedEvent {
  return {
    projectId: 'bench',
    id: uuidv7(now),
    timestampMs: now - (i % 60_000),
    userId: `u${(i * 7919) % 10_000}`,
    appId: `app${i % 5}`,
    modelId: `model${i % 20}`,
    provider: 'openai',
    inputTokens: 100 + (i % 900),
    outputTokens: 50,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    latencyMs: 300,
    status: 'ok',
    tags: undefined,
    costNanoUsd: 1_000 + i,
    priced: true,
    fingerprint: `f${i}`,
  };
}

async function pgOnlyLimit(): Promise<{ rate: number; cpuPerEventUs: number }> {
  const schema = uniqueSchema('bench_pg');
  const store = new PostgresStore({ url: TEST_PG_URL, schema, poolSize: 2 });
  try {
    await store.migrate();
    await store.createProject({ id: 'bench', name: 'bench', createdAtMs: Date.now() });
    const batches: PricedEvent[][] = [];
    const now = Date.now();
    for (let b = 0; b < PG_EVENTS / 1000; b++)
      batches.push(Array.from({ length: 1000 }, (_, k) => event(b * 1000 + k, now)));
    await store.applyBatch(batches.pop() as PricedEvent[], { nowMs: Date.now() }); // warm-up
    const cpu0 = process.cpuUsage();
    const pg0 = pgCpuSnapshot();
    const t0 = performance.now();
    let next = 0;
    const lane = async () => {
      while (next < batches.length) {
        const batch = batches[next++] as PricedEvent[];
        await store.applyBatch(batch, { nowMs: Date.now() });
      }
    };
    await Promise.all([lane(), lane()]);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const clientCpu = (cpu.user + cpu.system) / 1e6;
    const events = batches.length * 1000;
    return {
      rate: events / seconds,
      cpuPerEventUs: ((clientCpu + (await tokenwatchBackendCpu(TEST_PG_URL, pg0))) / events) * 1e6,
    };
  } finally {
    await store.close();
    await dropSchema(schema);
  }
}

async function countStored(env: ScaleOutEnv): Promise<number> {
  const c = new pg.Client({ connectionString: env.pgUrl });
  await c.connect();
  try {
    const r = await c.query<{ n: string }>(`SELECT COUNT(*) AS n FROM "${env.schema}".event_ids`);
    return Number(r.rows[0]?.n ?? 0);
  } finally {
    await c.end();
  }
}

interface E2eResult {
  workers: number;
  ingestRate: number;
  endToEndRate: number;
  events: number;
  cpuUs: { collector: number; broker: number; workers: number; database: number; loadgen: number };
}

async function endToEnd(workerCount: number): Promise<E2eResult> {
  const env = await createScaleOutEnv(`bench${workerCount}`, { queue: { fetchMaxMessages: 64 } });
  const serve = await startServerProcess({ dataDir: env.dataDir });
  const workers: WorkerProcess[] = [];
  try {
    for (let i = 0; i < workerCount; i++) workers.push(await startWorkerProcess(env));
    const nats = pidsByName('nats-server');
    const procs = {
      collector: () => cpuSecondsOf(serve.pid),
      broker: () => cpuOf(nats),
      workers: () => cpuOf(workers.map((w) => w.pid)),
    };
    const before = Object.fromEntries(Object.entries(procs).map(([k, f]) => [k, f()]));
    const pgBefore = pgCpuSnapshot();
    const lg0 = process.cpuUsage();
    const gen = new LoadGenerator(serve.url, serve.ingestKey as string, {
      eventsPerRequest: 100,
      concurrency: 6,
      users: 10_000,
    });
    const t0 = performance.now();
    gen.start();
    await sleep(E2E_SECONDS * 1000);
    await gen.stop();
    const ingestSeconds = (performance.now() - t0) / 1000;
    const lg = process.cpuUsage(lg0);
    while ((await consumerBacklog(env)) > 0) await sleep(100);
    const seconds = (performance.now() - t0) / 1000;
    const dbCpu = await tokenwatchBackendCpu(env.pgUrl, pgBefore);
    const stored = await countStored(env);
    const events = gen.acked.size;
    if (stored < events)
      throw new TokenwatchError('internal', `lost events: ${stored} < ${events}`);
    const us = (k: keyof typeof procs) => ((procs[k]() - (before[k] as number)) / events) * 1e6;
    return {
      workers: workerCount,
      ingestRate: events / ingestSeconds,
      endToEndRate: events / seconds,
      events,
      cpuUs: {
        collector: us('collector'),
        broker: us('broker'),
        workers: us('workers'),
        database: (dbCpu / events) * 1e6,
        loadgen: ((lg.user + lg.system) / 1e6 / events) * 1e6,
      },
    };
  } finally {
    for (const w of workers) await w.kill('SIGTERM');
    await serve.kill('SIGTERM');
    await env.cleanup();
  }
}

/** 202 → visible in a usage query, at a steady rate under the saturation point. */
async function latency(ratePerSecond: number): Promise<{ p50: number; p99: number; n: number }> {
  const env = await createScaleOutEnv('benchlat');
  const serve = await startServerProcess({ dataDir: env.dataDir });
  const worker = await startWorkerProcess(env);
  const gen = new LoadGenerator(serve.url, serve.ingestKey as string, {
    eventsPerRequest: 100,
    concurrency: 1,
    pauseMs: Math.max(0, Math.round(100_000 / ratePerSecond) - 2),
  });
  const samples: number[] = [];
  try {
    gen.start();
    await sleep(1_000);
    for (let i = 0; i < 150; i++) {
      const user = `probe-${i}`;
      const now = Date.now();
      const res = await httpRequest(`${serve.url}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${serve.ingestKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          id: uuidv7(now),
          timestamp: now,
          userId: user,
          appId: 'probe',
          modelId: 'gpt-4o-mini',
          provider: 'openai',
          inputTokens: 1,
          outputTokens: 1,
        }),
      });
      if (res.status !== 202) throw new Error(`probe got ${res.status}`);
      const acked = performance.now();
      const from = new Date(now - 3_600_000).toISOString();
      for (;;) {
        const q = await httpRequest(`${serve.url}/v1/usage?from=${from}&user=${user}`, {
          headers: { authorization: `Bearer ${serve.adminKey}` },
        });
        if ((q.json<{ rows: unknown[] }>().rows ?? []).length > 0) break;
        if (performance.now() - acked > 30_000) throw new Error('probe never became visible');
      }
      samples.push(performance.now() - acked);
      await sleep(30);
    }
  } finally {
    await gen.stop();
    await worker.kill('SIGTERM');
    await serve.kill('SIGTERM');
    await env.cleanup();
  }
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), n: samples.length };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  let nats = '';
  try {
    nats = execFileSync('nats-server', ['--version']).toString().trim();
  } catch {
    nats = 'nats-server (version unknown)';
  }
  console.log(`scale-out bench: node ${process.version}, ${nats}, load ${load()}`);
  const limit = await pgOnlyLimit();
  console.log(
    `PostgreSQL-only batched upsert (1000/tx, 2 connections): ${fmt(limit.rate)} ev/s, ${limit.cpuPerEventUs.toFixed(1)} µs CPU/event (client + backend)`,
  );
  const results: E2eResult[] = [];
  for (const n of [1, 2]) {
    const r = await endToEnd(n);
    results.push(r);
    console.log(
      `end to end, ${n} worker(s): ${fmt(r.endToEndRate)} ev/s (${((100 * r.endToEndRate) / limit.rate).toFixed(0)} % of the PG limit); ingest ${fmt(r.ingestRate)} ev/s; ${fmt(r.events)} events; CPU µs/event: collector ${r.cpuUs.collector.toFixed(1)}, broker ${r.cpuUs.broker.toFixed(1)}, workers ${r.cpuUs.workers.toFixed(1)}, database ${r.cpuUs.database.toFixed(1)}, load generator ${r.cpuUs.loadgen.toFixed(1)}`,
    );
  }
  const rate = Math.round(Math.min(...results.map((r) => r.endToEndRate)) * 0.3);
  const lat = await latency(rate);
  console.log(
    `202 → visible in GET /v1/usage at ~${fmt(rate)} ev/s (1 worker): p50 ${lat.p50.toFixed(0)} ms, p99 ${lat.p99.toFixed(0)} ms (${lat.n} probes)`,
  );
  console.log(`load at end ${load()}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
