/**
 * `npm run bench:otlp` — throughput of `POST /v1/traces` (OTLP/HTTP protobuf, 100 GenAI spans per
 * request, as the OpenTelemetry SDK's exporter sends them) against `POST /v1/events` (JSON, 100
 * events per request) carrying THE SAME calls, measured in the same run, each on a fresh
 * `tokenwatch serve` (SQLite, defaults) over real HTTP. Target: OTLP ≥ 0.8× events.
 *
 * Both phases end by checking that the server stored exactly the calls sent (requests and every
 * token class), so the two figures count the same work.
 *
 * Environment: BENCH_CALLS (default 200000), BENCH_CONCURRENCY (default 32),
 * BENCH_ROUNDS (default 5: events, OTLP, events, OTLP…). The figure is the MEDIAN round of each:
 * the two phases share the SQLite writer thread, whose CPU per call swings by ±15 % between
 * rounds of the same phase on an idle 2-core machine (19–29 µs measured), so the best round of
 * two was one lucky round against another and the ratio swung 0.75–0.98× between runs of one
 * build. The best rounds are printed too.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTrafficGenerator, type WireEvent } from '../demo/traffic.js';
import { loadOtlpProtoTypes } from '../otlp/otlp-protobuf.js';
import { uuidv7 } from '../util/uuidv7.js';
import {
  fmt,
  loadAverage,
  type PostTarget,
  percentile,
  post,
  startServerProcess,
} from './bench-support.js';

const CALLS = Number(process.env.BENCH_CALLS ?? 200_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const PER_REQUEST = 100;

function makeCalls(count: number): WireEvent[] {
  const start = Date.now() - 120_000;
  const next = createTrafficGenerator({ users: 10_000, seed: 14, nowMs: start, spreadMs: 0 });
  const calls: WireEvent[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const e = next();
    e.timestamp = start + Math.floor((i / count) * 60_000);
    e.id = uuidv7(e.timestamp);
    calls[i] = e;
  }
  return calls;
}

function eventBodies(calls: WireEvent[]): Buffer[] {
  const bodies: Buffer[] = [];
  for (let i = 0; i < calls.length; i += PER_REQUEST) {
    bodies.push(Buffer.from(JSON.stringify({ events: calls.slice(i, i + PER_REQUEST) })));
  }
  return bodies;
}

const str = (key: string, value: string) => ({ key, value: { stringValue: value } });
const int = (key: string, value: number) => ({ key, value: { intValue: value } });

/** The same calls as OTLP: one CLIENT span per call with current GenAI semconv attributes. */
function otlpBodies(calls: WireEvent[]): Buffer[] {
  const types = loadOtlpProtoTypes();
  const bodies: Buffer[] = [];
  for (let i = 0; i < calls.length; i += PER_REQUEST) {
    const byApp = new Map<string, unknown[]>();
    for (const e of calls.slice(i, i + PER_REQUEST)) {
      const endNs = BigInt(e.timestamp as number) * 1_000_000n;
      const span = {
        traceId: randomBytes(16),
        spanId: randomBytes(8),
        name: `chat ${e.modelId}`,
        kind: 3,
        startTimeUnixNano: String(endNs - BigInt(Math.round((e.latencyMs ?? 0) * 1e6))),
        endTimeUnixNano: String(endNs),
        attributes: [
          str('gen_ai.operation.name', 'chat'),
          str('gen_ai.provider.name', e.provider ?? 'openai'),
          str('gen_ai.request.model', e.modelId),
          // Semconv input INCLUDES the cache; tokenwatch splits it back.
          int('gen_ai.usage.input_tokens', e.inputTokens + e.cacheReadTokens + e.cacheWriteTokens),
          int('gen_ai.usage.cache_read.input_tokens', e.cacheReadTokens),
          int('gen_ai.usage.cache_creation.input_tokens', e.cacheWriteTokens),
          int('gen_ai.usage.output_tokens', e.outputTokens),
          str('user.id', e.userId),
        ],
        status: { code: e.status === 'error' ? 2 : 1 },
      };
      const spans = byApp.get(e.appId as string) ?? [];
      spans.push(span);
      byApp.set(e.appId as string, spans);
    }
    const request = {
      resourceSpans: [...byApp].map(([app, spans]) => ({
        resource: { attributes: [str('service.name', app)] },
        scopeSpans: [{ scope: { name: 'bench' }, spans }],
      })),
    };
    bodies.push(Buffer.from(types.request.encode(types.request.fromObject(request)).finish()));
  }
  return bodies;
}

/** CPU ms of each thread of a process (user + system, /proc/<pid>/task/<tid>/stat), by tid. */
function threadCpuMs(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), ((Number(fields[11]) + Number(fields[12])) * 1000) / 100);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

/**
 * Server CPU per call while the phase posted, in µs: the HTTP (main) thread, the busiest other
 * thread (the SQLite writer), and all threads. On a shared machine throughput swings with the
 * load; CPU per call is what bounds throughput on 2 cores and swings much less.
 */
function cpuPerCall(pid: number, before: Map<number, number>, calls: number): string {
  const after = threadCpuMs(pid);
  let main = 0;
  let busiest = 0;
  let total = 0;
  for (const [tid, ms] of after) {
    const used = ms - (before.get(tid) ?? 0);
    total += used;
    if (tid === pid) main = used;
    else busiest = Math.max(busiest, used);
  }
  const us = (ms: number) => ((ms * 1000) / calls).toFixed(1);
  return `server CPU/call: HTTP ${us(main)} µs, writer ${us(busiest)} µs, all ${us(total)} µs`;
}

interface Phase {
  label: string;
  bodies: Buffer[];
  target: PostTarget;
  okStatus: number;
}

async function run(phase: Phase, calls: WireEvent[]): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-bench-otlp-'));
  const server = await startServerProcess(join(dir, 'server'));
  try {
    let next = 0;
    let retried = 0;
    const cpuBefore = threadCpuMs(server.pid);
    const started = performance.now();
    const worker = async () => {
      while (next < phase.bodies.length) {
        const body = phase.bodies[next++] as Buffer;
        for (;;) {
          const r = await post(server.url, server.ingestKey, body, phase.target);
          if (r.status === phase.okStatus) break;
          if (r.status !== 503 && r.status !== 429)
            throw new Error(`${phase.label}: unexpected ${r.status}: ${r.text}`);
          retried++;
          await new Promise((res) => setTimeout(res, 20));
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const rate = calls.length / ((performance.now() - started) / 1000);
    const cpu = cpuPerCall(server.pid, cpuBefore, calls.length);
    await verify(server.url, server.adminKey, calls, phase.label);
    console.log(
      `  ${phase.label.padEnd(34)} ${fmt(rate).padStart(9)} calls/s${retried ? ` (${retried} retried 503s)` : ''}; ${cpu}`,
    );
    return rate;
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Both phases must have stored exactly the calls sent. */
async function verify(url: string, adminKey: string, calls: WireEvent[], label: string) {
  const now = Date.now();
  const from = new Date(now - 86_400_000).toISOString();
  const to = new Date(now + 86_400_000).toISOString();
  const res = await fetch(`${url}/v1/usage?from=${from}&to=${to}`, {
    headers: { authorization: `Bearer ${adminKey}` },
  });
  const row = ((await res.json()) as { rows: Array<Record<string, number>> }).rows[0] ?? {};
  const sum = (f: (e: WireEvent) => number) => calls.reduce((s, e) => s + f(e), 0);
  const expected = {
    requests: calls.length,
    inputTokens: sum((e) => e.inputTokens),
    cacheReadTokens: sum((e) => e.cacheReadTokens),
    cacheWriteTokens: sum((e) => e.cacheWriteTokens),
    outputTokens: sum((e) => e.outputTokens),
  };
  for (const [k, v] of Object.entries(expected)) {
    if (row[k] !== v) throw new Error(`${label}: stored ${k} ${row[k]}, sent ${v}`);
  }
}

async function main() {
  const calls = makeCalls(CALLS);
  const events: Phase = {
    label: 'POST /v1/events (JSON, 100/request)',
    bodies: eventBodies(calls),
    target: { path: '/v1/events', contentType: 'application/json' },
    okStatus: 202,
  };
  const otlp: Phase = {
    label: 'POST /v1/traces (protobuf, 100 spans)',
    bodies: otlpBodies(calls),
    target: { path: '/v1/traces', contentType: 'application/x-protobuf' },
    okStatus: 200,
  };
  const kib = (bodies: Buffer[]) => bodies.reduce((s, b) => s + b.length, 0) / bodies.length / 1024;
  console.log(
    `bench:otlp — ${fmt(CALLS)} calls, ${PER_REQUEST} per request, concurrency ${CONCURRENCY}, ${ROUNDS} rounds; load average ${loadAverage()}`,
  );
  console.log(
    `  request size: events ${fmt(kib(events.bodies), 1)} KiB JSON, OTLP ${fmt(kib(otlp.bodies), 1)} KiB protobuf`,
  );
  const eventRates: number[] = [];
  const otlpRates: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    console.log(`round ${round}`);
    eventRates.push(await run(events, calls));
    otlpRates.push(await run(otlp, calls));
  }
  const median = (rates: number[]) =>
    percentile(
      [...rates].sort((a, b) => a - b),
      50,
    );
  const [medianEvents, medianOtlp] = [median(eventRates), median(otlpRates)];
  const [bestEvents, bestOtlp] = [Math.max(...eventRates), Math.max(...otlpRates)];
  console.log(
    `median of ${ROUNDS} rounds: events ${fmt(medianEvents)} calls/s, OTLP ${fmt(medianOtlp)} spans/s → OTLP/events = ${(medianOtlp / medianEvents).toFixed(2)}× (target ≥ 0.80×)`,
  );
  console.log(
    `best rounds: events ${fmt(bestEvents)} calls/s, OTLP ${fmt(bestOtlp)} spans/s → ${(bestOtlp / bestEvents).toFixed(2)}×; load average ${loadAverage()}`,
  );
}

await main();
