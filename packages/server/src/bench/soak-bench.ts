/**
 * `npm run bench:soak [-- --minutes 10 --rate 3000]` — a bounded soak of `tokenwatch serve` on the
 * default path (SQLite, worker thread, fresh data dir): steady open-loop ingest at `--rate`
 * events/s for `--minutes`, with rules that keep firing alerts delivered to a local webhook.
 * Every `--sample-seconds` (default 10) it records the server's resident memory, the WAL's size,
 * its open file descriptors and the HTTP thread's event-loop delay (from /metrics), and at the
 * end reports the RSS slope (least squares, after the first minute or fifth of the run), the largest WAL and the
 * ranges of the others. Nothing grows with the run in this process: it keeps counts, not events.
 */
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createTrafficGenerator } from '../demo/traffic.js';
import { uuidv7 } from '../util/uuidv7.js';
import { fmt, post, startServerProcess } from './bench-support.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '3000' },
    'sample-seconds': { type: 'string', default: '10' },
  },
});
const MINUTES = Number(values.minutes);
const RATE = Number(values.rate);
const SAMPLE_SECONDS = Number(values['sample-seconds']);
for (const [name, v] of [
  ['--minutes', MINUTES],
  ['--rate', RATE],
  ['--sample-seconds', SAMPLE_SECONDS],
] as const) {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
}
const PER_REQUEST = 100;
/** Requests in flight at most; past it the bench counts the request as not sent (overload). */
const MAX_IN_FLIGHT = 64;

interface Sample {
  atS: number;
  rssMiB: number;
  walMiB: number;
  /** The largest WAL size seen since the previous sample (stat every WAL_POLL_MS). */
  walPeakMiB: number;
  fds: number;
  loopP99Ms: number;
  loopMaxMs: number;
  accepted: number;
  alerts: number;
}

function procStatus(pid: number, field: string): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
}

const WAL_POLL_MS = 20;

function fileMiB(path: string): number {
  try {
    return statSync(path).size / 1024 / 1024;
  } catch {
    return 0;
  }
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : Number.NaN;
}

/** Least-squares slope of y over x. */
function slope(points: readonly [number, number][]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return num / den;
}

async function admin(url: string, key: string, path: string, body: unknown) {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
}

/** A webhook receiver that only counts (the bench's memory stays flat). */
async function countingReceiver(): Promise<{ url: string; hits: () => number; close(): void }> {
  let hits = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hits++;
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/soak`, hits: () => hits, close: () => server.close() };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-bench-soak-'));
  const receiver = await countingReceiver();
  const loadBefore = loadavg();
  try {
    const dataDir = join(dir, 'server');
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    writeFileSync(
      join(dataDir, 'tokenwatch.json'),
      JSON.stringify({ alerts: { allowPrivateNetworks: true } }),
    );
    const server = await startServerProcess(dataDir);
    const { url, ingestKey, adminKey } = server;
    const walPath = join(dataDir, 'tokenwatch.db-wal');
    try {
      // Rules at several scopes and levels: per-user hourly ones keep crossing as users come
      // and go, the per-app and per-model ones cross a few times an hour.
      const rules = [
        { scope: ['user', 'model'], levels: [{ value: 100_000 }, { value: 400_000 }] },
        { scope: ['user'], levels: [{ value: 200_000 }, { value: 1_000_000 }] },
        { scope: ['app'], levels: [{ value: 10_000_000 }, { value: 100_000_000 }] },
        { scope: ['model'], levels: [{ value: 5_000_000 }, { value: 50_000_000 }] },
      ];
      for (const [i, r] of rules.entries()) {
        await admin(url, adminKey, '/v1/rules', {
          name: `soak-${i}`,
          scope: r.scope,
          metric: 'totalTokens',
          window: { type: 'calendar', unit: 'hour', timeZone: 'UTC' },
          levels: r.levels,
          channels: [{ type: 'webhook', url: receiver.url }],
        });
      }

      const next = createTrafficGenerator({
        users: 10_000,
        seed: 7,
        nowMs: Date.now(),
        spreadMs: 0,
      });
      const body = (): Buffer => {
        const now = Date.now();
        const events = Array.from({ length: PER_REQUEST }, () => {
          const e = next();
          e.timestamp = now;
          e.id = uuidv7(now);
          return e;
        });
        return Buffer.from(JSON.stringify({ events }));
      };

      const samples: Sample[] = [];
      let accepted = 0;
      let refused = 0;
      let skipped = 0;
      let inFlight = 0;
      const started = performance.now();
      const endAt = started + MINUTES * 60_000;
      const intervalMs = (1000 * PER_REQUEST) / RATE;

      // The WAL's peaks last only until the writer's checkpoint truncates it (tens to hundreds
      // of ms after the commit that made them): a 10 s sample misses them, a fast stat does not.
      let walPeakMiB = 0;
      const walPoll = setInterval(() => {
        walPeakMiB = Math.max(walPeakMiB, fileMiB(walPath));
      }, WAL_POLL_MS);
      const sample = async () => {
        const metrics = await (
          await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${adminKey}` } })
        ).text();
        const s: Sample = {
          atS: (performance.now() - started) / 1000,
          rssMiB: procStatus(server.pid, 'VmRSS') / 1024,
          walMiB: fileMiB(walPath),
          walPeakMiB: Math.max(walPeakMiB, fileMiB(walPath)),
          fds: readdirSync(`/proc/${server.pid}/fd`).length,
          loopP99Ms: metric(metrics, 'tokenwatch_event_loop_delay_p99_seconds') * 1000,
          loopMaxMs: metric(metrics, 'tokenwatch_event_loop_delay_max_seconds') * 1000,
          accepted,
          alerts: metric(metrics, 'tokenwatch_alerts_fired_total'),
        };
        walPeakMiB = 0;
        samples.push(s);
        process.stdout.write(
          `${fmt(s.atS).padStart(5)} s  rss ${fmt(s.rssMiB, 1).padStart(6)} MiB  wal ${fmt(s.walMiB, 1).padStart(5)} MiB (peak ${fmt(s.walPeakMiB, 1).padStart(5)})  fds ${String(s.fds).padStart(3)}  loop p99 ${fmt(s.loopP99Ms, 1).padStart(5)} ms max ${fmt(s.loopMaxMs, 1).padStart(6)} ms  events ${fmt(s.accepted)}  alerts ${fmt(s.alerts)}\n`,
        );
      };

      process.stdout.write(
        `soak: ${MINUTES} min at ${fmt(RATE)} events/s (${PER_REQUEST} per request), ${rules.length} rules, sampling every ${SAMPLE_SECONDS} s\n`,
      );
      let nextSampleAt = started + SAMPLE_SECONDS * 1000;
      // Open loop: request k is due at started + k·interval whatever the answers.
      for (let k = 0; ; k++) {
        const due = started + k * intervalMs;
        if (due >= endAt) break;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (performance.now() >= nextSampleAt) {
          nextSampleAt += SAMPLE_SECONDS * 1000;
          void sample();
        }
        if (inFlight >= MAX_IN_FLIGHT) {
          skipped++;
          continue;
        }
        inFlight++;
        void post(url, ingestKey, body())
          .then((r) => {
            if (r.status === 202) accepted += PER_REQUEST;
            else refused++;
          })
          .catch(() => {
            refused++;
          })
          .finally(() => {
            inFlight--;
          });
      }
      while (inFlight > 0) await new Promise((r) => setTimeout(r, 10));
      await sample();
      clearInterval(walPoll);
      const seconds = (performance.now() - started) / 1000;

      const warmUpS = Math.min(60, seconds / 5);
      const steady = samples.filter((s) => s.atS >= warmUpS);
      const rssSlope = slope(steady.map((s) => [s.atS / 3600, s.rssMiB])); // MiB per hour
      const range = (f: (s: Sample) => number) => {
        const v = samples.map(f).filter((x) => Number.isFinite(x));
        return [Math.min(...v), Math.max(...v)] as const;
      };
      const [rssMin, rssMax] = range((s) => s.rssMiB);
      const [, walMax] = range((s) => s.walMiB);
      const [, walPeak] = range((s) => s.walPeakMiB);
      const [fdMin, fdMax] = range((s) => s.fds);
      const [, loopP99Max] = range((s) => s.loopP99Ms);
      const [, loopMax] = range((s) => s.loopMaxMs);
      const loadAfter = loadavg();
      const last = samples[samples.length - 1] as Sample;
      // Every alert has fired by the last 202 (a batch's alerts fire with its commit); their
      // webhooks may still be on their way: wait for them, up to 10 s, before counting.
      const webhookWaitStarted = performance.now();
      while (receiver.hits() < last.alerts && performance.now() - webhookWaitStarted < 10_000)
        await new Promise((r) => setTimeout(r, 50));
      const webhookWaitMs = performance.now() - webhookWaitStarted;
      process.stdout.write(
        [
          '',
          `ran ${fmt(seconds)} s: ${fmt(accepted)} events accepted (${fmt(accepted / seconds)} events/s of ${fmt(RATE)} offered), ${refused} requests refused, ${skipped} not sent (over ${MAX_IN_FLIGHT} in flight)`,
          `alerts fired ${fmt(last.alerts)}, webhooks received ${fmt(receiver.hits())} (${fmt(webhookWaitMs)} ms after the traffic ended)`,
          `RSS ${fmt(rssMin, 1)}–${fmt(rssMax, 1)} MiB; slope after the first ${fmt(warmUpS)} s ${fmt(rssSlope, 1)} MiB/hour (${steady.length} samples)`,
          `WAL max ${fmt(walMax, 1)} MiB at the samples, peak ${fmt(walPeak, 1)} MiB (stat every ${WAL_POLL_MS} ms; store.maxWalMiB 64); database ${fmt(fileMiB(join(dataDir, 'tokenwatch.db')), 1)} MiB`,
          `open fds ${fdMin}–${fdMax}`,
          `event-loop delay (10 s windows): p99 up to ${fmt(loopP99Max, 1)} ms, max up to ${fmt(loopMax, 1)} ms`,
          `load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`,
          '',
        ].join('\n'),
      );
    } finally {
      await server.stop();
    }
  } finally {
    receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
