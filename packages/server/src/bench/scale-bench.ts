/**
 * `npm run bench:scale`: the scale-out path on this machine, with the real services.
 *   1. PostgreSQL-only limit: PostgresStore.applyBatch, 1000 events per transaction, 2 connections.
 *   2. End to end: HTTP (tokenwatch serve --queue nats://…) → JetStream → 1 and then 2
 *      `tokenwatch worker` processes → PostgreSQL: events/s from the first request until the
 *      queue is drained, CPU per event of every stage (collector, broker, each worker, the
 *      database backends serving them), their lock waits (sampled) and JetStream's
 *      redeliveries; then the same with an alert flood (3 per-user rules that every one of the
 *      10,000 users crosses), with ratios to the runs without rules; and 1 and 2 workers
 *      draining a backlog (the worker stage with full transactions, whatever the ingest rate).
 *   3. Latency: p50/p99 from the 202 to the event being visible in a usage query, at a steady
 *      rate below saturation.
 * Everything (load generator included) shares the machine's cores, as in perf-limits.md.
 */
import { execFileSync } from 'node:child_process';
import type { PricedEvent } from '@tokenwatch/core';
import pg from 'pg';
import { PostgresStore } from '../adapters/store/postgres/postgres-store.js';
import { httpRequest } from '../testing/http-client.js';
import {
  createScaleOutEnv,
  LoadGenerator,
  startWorkerProcess,
} from '../testing/scale-out-harness.js';
import { startServerProcess } from '../testing/server-process.js';
import { dropSchema, TEST_PG_URL, uniqueSchema } from '../testing/services.js';
import { uuidv7 } from '../util/uuidv7.js';
import { drain, type E2eResult, endToEnd } from './scale-phases.js';
import { BackendCpu, cpuSecondsOf, loadAverage } from './scale-probes.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PG_EVENTS = Number(process.env.BENCH_PG_EVENTS ?? 200_000);

/**
 * CPU PostgreSQL spent for tokenwatch since `before`: the backends whose application_name is
 * tokenwatch (the PostgreSQL-only phase runs in this process, nothing else of ours is running).
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
    const pg0 = BackendCpu.snapshot();
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
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;

function report(r: E2eResult, limit: number): void {
  const c = r.cpuUs;
  console.log(
    `${r.label}: ${fmt(r.endToEndRate)} ev/s (${((100 * r.endToEndRate) / limit).toFixed(0)} % of the PG limit)${r.ingestRate ? `; ingest ${fmt(r.ingestRate)} ev/s` : ''}; ${fmt(r.events)} events; ${fmt(r.redeliveries)} redeliveries${r.alerts ? `; ${fmt(r.alerts)} alerts` : ''}\n` +
      `  CPU µs/event: collector ${c.collector.toFixed(1)}, broker ${c.broker.toFixed(1)}, workers ${c.workers.toFixed(1)} (${c.perWorker.map((w) => w.toFixed(1)).join(' + ')}), database ${c.database.toFixed(1)}, load generator ${c.loadgen.toFixed(1)}\n` +
      `  events per transaction: ${r.eventsPerTx.map((n) => n.toFixed(0)).join(' + ')}; ${r.locks}; load ${loadAverage()}`,
  );
}

async function main(): Promise<void> {
  let nats = '';
  try {
    nats = execFileSync('nats-server', ['--version']).toString().trim();
  } catch {
    nats = 'nats-server (version unknown)';
  }
  console.log(
    `scale-out bench: node ${process.version}, ${nats}, ${new Date().toISOString()}, load ${loadAverage()}`,
  );
  const limit = await pgOnlyLimit();
  console.log(
    `PostgreSQL-only batched upsert (1000/tx, 2 connections): ${fmt(limit.rate)} ev/s, ${limit.cpuPerEventUs.toFixed(1)} µs CPU/event (client + backend)`,
  );
  const runs = new Map<string, E2eResult>();
  const phases: Array<[string, () => Promise<E2eResult>]> = [
    ['1', () => endToEnd(1, false)],
    ['2', () => endToEnd(2, false)],
    ['d1', () => drain(1)],
    ['d2', () => drain(2)],
    ['1f', () => endToEnd(1, true)],
    ['2f', () => endToEnd(2, true)],
  ];
  for (const [key, run] of phases) {
    const r = await run();
    runs.set(key, r);
    report(r, limit.rate);
  }
  const get = (k: string) => runs.get(k) as E2eResult;
  const [one, two, d1, d2, oneF, twoF] = ['1', '2', 'd1', 'd2', '1f', '2f'].map(get) as [
    E2eResult,
    E2eResult,
    E2eResult,
    E2eResult,
    E2eResult,
    E2eResult,
  ];
  const cpuRatios = (a: E2eResult, b: E2eResult) =>
    `worker CPU/event ${ratio(a.cpuUs.workers, b.cpuUs.workers)}, database CPU/event ${ratio(a.cpuUs.database, b.cpuUs.database)}`;
  console.log(
    `ratios, 2 workers ÷ 1 worker: end to end: throughput ${ratio(two.endToEndRate, one.endToEndRate)}, ${cpuRatios(two, one)}, load generator CPU/event ${ratio(two.cpuUs.loadgen, one.cpuUs.loadgen)} (the control: same work per event)`,
  );
  console.log(
    `ratios, 2 workers ÷ 1 worker: draining: throughput ${ratio(d2.endToEndRate, d1.endToEndRate)}, ${cpuRatios(d2, d1)}`,
  );
  console.log(
    `ratios, alert flood ÷ no rules: 1 worker ${ratio(oneF.endToEndRate, one.endToEndRate)}, 2 workers ${ratio(twoF.endToEndRate, two.endToEndRate)}; flood, 2 workers ÷ 1: ${cpuRatios(twoF, oneF)}`,
  );
  if (process.env.BENCH_SKIP_LATENCY !== '1') {
    const rate = Math.round(Math.min(one.endToEndRate, two.endToEndRate) * 0.3);
    const lat = await latency(rate);
    console.log(
      `202 → visible in GET /v1/usage at ~${fmt(rate)} ev/s (1 worker): p50 ${lat.p50.toFixed(0)} ms, p99 ${lat.p99.toFixed(0)} ms (${lat.n} probes)`,
    );
  }
  console.log(`load at end ${loadAverage()}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
