/**
 * `npm run bench:ingest` — end-to-end ingest throughput and latency of `tokenwatch serve`
 * over real HTTP, against two references measured in the same run on the same file system:
 *  (a) the raw limit: insert-only of the same events into a table with no index, in large
 *      transactions;
 *  (b) the seed's way: per event, read the hour's aggregate item, write it back increased,
 *      then query the hour's total for the threshold check.
 *
 * The half-rate phase starts once the server is quiet again (its fold caught up with the maximum
 * rate's backlog), so it measures that rate in steady state.
 *
 * Environment: BENCH_EVENTS (default 600000), BENCH_CONCURRENCY (default 32),
 * BENCH_SECONDS for the half-rate phase (default 10), BENCH_SEED_EVENTS (default 30000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createTrafficGenerator, type WireEvent } from '../demo/traffic.js';
import { uuidv7 } from '../util/uuidv7.js';
import {
  fmt,
  openLoopRequests,
  ownCpuMs,
  percentile,
  post,
  startServerProcess,
} from './bench-support.js';

const TOTAL = Number(process.env.BENCH_EVENTS ?? 600_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const HALF_RATE_SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const SEED_EVENTS = Number(process.env.BENCH_SEED_EVENTS ?? 30_000);
const PER_REQUEST = 100;

function makeEvents(count: number, seed: number): WireEvent[] {
  // Events near "now", in arrival order, with SDK-style time-ordered UUIDv7 ids.
  const start = Date.now() - 60_000;
  const next = createTrafficGenerator({ users: 10_000, seed, nowMs: start, spreadMs: 0 });
  const events: WireEvent[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const e = next();
    e.timestamp = start + Math.floor((i / count) * 60_000);
    e.id = uuidv7(e.timestamp);
    events[i] = e;
  }
  return events;
}

function toBodies(events: WireEvent[]): Buffer[] {
  const bodies: Buffer[] = [];
  for (let i = 0; i < events.length; i += PER_REQUEST) {
    bodies.push(Buffer.from(JSON.stringify({ events: events.slice(i, i + PER_REQUEST) })));
  }
  return bodies;
}

async function maxThroughput(url: string, key: string, bodies: Buffer[]) {
  let next = 0;
  const latencies: number[] = [];
  let rejected = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < bodies.length) {
      const body = bodies[next++] as Buffer;
      for (;;) {
        const r = await post(url, key, body);
        if (r.status === 202) {
          latencies.push(r.ms);
          break;
        }
        if (r.status !== 503 && r.status !== 429)
          throw new Error(`unexpected ${r.status}: ${r.text}`);
        rejected++;
        await new Promise((res) => setTimeout(res, 20));
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { eventsPerSecond: (bodies.length * PER_REQUEST) / seconds, seconds, latencies, rejected };
}

/** Open-loop load at a fixed request rate: latency is measured from the scheduled send time. */
async function fixedRate(
  url: string,
  key: string,
  bodies: Buffer[],
  eventsPerSecond: number,
  seconds: number,
) {
  const requestsPerSecond = eventsPerSecond / PER_REQUEST;
  const total = Math.min(bodies.length, Math.floor(requestsPerSecond * seconds));
  const latencies: number[] = [];
  const started = performance.now();
  const requests = openLoopRequests();
  for (let i = 0; i < total; i++) {
    const due = started + (i / requestsPerSecond) * 1000;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    requests.add(
      post(url, key, bodies[i] as Buffer).then((r) => {
        if (r.status !== 202) throw new Error(`unexpected ${r.status}: ${r.text}`);
        latencies.push(performance.now() - due);
      }),
    );
  }
  await requests.settled();
  latencies.sort((a, b) => a - b);
  return { achieved: (total * PER_REQUEST) / ((performance.now() - started) / 1000), latencies };
}

function openReferenceDb(dir: string, name: string) {
  const db = new Database(join(dir, name));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  return db;
}

/** Reference (a): the raw limit — insert-only into an index-less table, 10k events per transaction. */
function rawInsertLimit(dir: string, events: WireEvent[]): number {
  const db = openReferenceDb(dir, 'raw.db');
  db.exec(
    'CREATE TABLE raw_events (id TEXT, ts INTEGER, user_id TEXT, app_id TEXT, model_id TEXT, input INTEGER, output INTEGER, cache_read INTEGER, cache_write INTEGER)',
  );
  const insert = db.prepare('INSERT INTO raw_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
  const batch = db.transaction((slice: WireEvent[]) => {
    for (const e of slice) {
      insert.run(
        e.id,
        e.timestamp,
        e.userId,
        e.appId,
        e.modelId,
        e.inputTokens,
        e.outputTokens,
        e.cacheReadTokens,
        e.cacheWriteTokens,
      );
    }
  });
  const started = performance.now();
  for (let i = 0; i < events.length; i += 10_000) batch(events.slice(i, i + 10_000));
  const rate = events.length / ((performance.now() - started) / 1000);
  db.close();
  return rate;
}

/**
 * Reference (b): the seed's way, on the same SQLite file system and durability (synchronous
 * FULL): per event, read the (userId#modelId, hour) item, write it back increased, then read
 * the hour's total to check the threshold. Each step is its own write, as with DynamoDB.
 */
function seedWay(dir: string, events: WireEvent[]): number {
  const db = openReferenceDb(dir, 'seed.db');
  db.exec(
    'CREATE TABLE hourly (pk TEXT NOT NULL, sk TEXT NOT NULL, input INTEGER NOT NULL, output INTEGER NOT NULL, total INTEGER NOT NULL, updated TEXT NOT NULL, PRIMARY KEY (pk, sk))',
  );
  const get = db.prepare('SELECT input, output, total FROM hourly WHERE pk = ? AND sk = ?');
  const put = db.prepare(
    'INSERT INTO hourly (pk, sk, input, output, total, updated) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (pk, sk) DO UPDATE SET input = excluded.input, output = excluded.output, total = excluded.total, updated = excluded.updated',
  );
  const started = performance.now();
  for (const e of events) {
    const pk = `${e.userId}#${e.modelId}`;
    const sk = new Date(e.timestamp).toISOString().slice(0, 13).replace('T', '-');
    const item = get.get(pk, sk) as { input: number; output: number; total: number } | undefined;
    const input = (item?.input ?? 0) + e.inputTokens;
    const output = (item?.output ?? 0) + e.outputTokens;
    put.run(pk, sk, input, output, input + output, new Date().toISOString());
    const check = get.get(pk, sk) as { total: number };
    if (check.total > 10_000) {
      // the seed would publish to SNS here, on every event past the threshold
    }
  }
  const rate = events.length / ((performance.now() - started) / 1000);
  db.close();
  return rate;
}

/**
 * Waits until the server used under 3 % of a core over a second (its fold caught up), at most
 * 120 s; returns the seconds waited.
 */
async function untilQuiet(server: { cpuMs(): number }): Promise<number> {
  const started = performance.now();
  let before = server.cpuMs();
  while (performance.now() - started < 120_000) {
    await new Promise((r) => setTimeout(r, 1_000));
    const now = server.cpuMs();
    if (now - before < 30) break;
    before = now;
  }
  return (performance.now() - started) / 1000;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-bench-'));
  try {
    process.stdout.write(
      `generating ${fmt(TOTAL)} events (10k users long tail, 5 apps, 20 models, UUIDv7 ids)...\n`,
    );
    const events = makeEvents(TOTAL, 1);
    const bodies = toBodies(events);
    const halfRateEvents = makeEvents(Math.max(PER_REQUEST, TOTAL), 2);
    const halfRateBodies = toBodies(halfRateEvents);

    const server = await startServerProcess(join(dir, 'server'));
    // Warm up (JIT, page cache) with a small slice that is not counted.
    await maxThroughput(server.url, server.ingestKey, toBodies(makeEvents(20_000, 3)));
    const serverCpu0 = server.cpuMs();
    const clientCpu0 = ownCpuMs();
    const max = await maxThroughput(server.url, server.ingestKey, bodies);
    const clientCpu = ownCpuMs() - clientCpu0;
    const serverCpuAt202 = server.cpuMs() - serverCpu0;
    // The fold (rollups, rule counters) runs after the 202s and falls behind at the maximum
    // rate: wait until the server is quiet, so the per-event cost includes all the work the
    // events cause, and the half-rate phase measures half the rate, not the catching up.
    const drainSeconds = await untilQuiet(server);
    const serverCpu = server.cpuMs() - serverCpu0;
    const half = await fixedRate(
      server.url,
      server.ingestKey,
      halfRateBodies,
      max.eventsPerSecond / 2,
      HALF_RATE_SECONDS,
    );
    const rss = server.peakRssMiB();
    await server.stop();

    const raw = rawInsertLimit(dir, events);
    const seed = seedWay(dir, events.slice(0, SEED_EVENTS));

    const lines = [
      '',
      `tokenwatch serve, end to end over HTTP (${CONCURRENCY} connections, ${PER_REQUEST} events/request, SQLite synchronous=FULL: durable before 202)`,
      `  max throughput:        ${fmt(max.eventsPerSecond)} events/s (${fmt(TOTAL)} events in ${fmt(max.seconds, 1)} s; ${max.rejected} requests told to retry)`,
      `  time to 202 at max:    p50 ${fmt(percentile(max.latencies, 50), 1)} ms, p99 ${fmt(percentile(max.latencies, 99), 1)} ms`,
      `  at half the max rate:  ${fmt(half.achieved)} events/s offered; time to 202 p50 ${fmt(percentile(half.latencies, 50), 1)} ms, p99 ${fmt(percentile(half.latencies, 99), 1)} ms`,
      `  peak RSS of server:    ${fmt(rss, 0)} MiB`,
      `  fold after the max phase: the server was quiet ${fmt(drainSeconds, 1)} s after the last 202`,
      `  CPU per event at max:  server ${fmt((serverCpuAt202 * 1000) / TOTAL, 1)} µs until the last 202, ${fmt((serverCpu * 1000) / TOTAL, 1)} µs with the fold that follows; load generator ${fmt((clientCpu * 1000) / TOTAL, 1)} µs (${fmt((100 * clientCpu) / (clientCpu + serverCpuAt202), 0)} % of the pair's CPU)`,
      `references on the same file system, same events:`,
      `  (a) raw insert, no index, 10k/tx:             ${fmt(raw)} events/s  (tokenwatch = ${fmt(max.eventsPerSecond / raw, 2)} × of it)`,
      `  (b) seed's way, read-modify-write per event:  ${fmt(seed)} events/s  (tokenwatch = ${fmt(max.eventsPerSecond / seed, 1)} ×)`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
