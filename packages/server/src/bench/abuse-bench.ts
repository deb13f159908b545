/**
 * `npm run bench:abuse`: issue 11 item 2's attack against a spawned `tokenwatch serve` with its
 * default `http.*` limits, all at once:
 *   - 10,000 idle connections (connect, send nothing),
 *   - 200 connections that each pipeline 2,000 `GET /metrics` and never read,
 *   - 500 slowloris connections dripping one header line a second (reconnecting when cut),
 * while a prober opens a fresh connection for `GET /healthz` every 50 ms. Prints the server's
 * RSS growth over its idle baseline (sampled every 100 ms), the /healthz latency percentiles and
 * failures, what the server closed (its own metrics), and the load average. Bounded: ~1 minute.
 *
 * Env: ABUSE_IDLE (10000), ABUSE_PIPELINERS (200), ABUSE_PIPELINED (2000), ABUSE_SLOWLORIS (500),
 * ABUSE_HOLD_MS (30000). The idle count is lowered, and says so, when `ulimit -n` cannot hold it.
 */
import { readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmt, percentile, startServerProcess } from './bench-support.js';

const IDLE = Number(process.env.ABUSE_IDLE ?? 10_000);
const PIPELINERS = Number(process.env.ABUSE_PIPELINERS ?? 200);
const PIPELINED = Number(process.env.ABUSE_PIPELINED ?? 2_000);
const SLOWLORIS = Number(process.env.ABUSE_SLOWLORIS ?? 500);
const HOLD_MS = Number(process.env.ABUSE_HOLD_MS ?? 30_000);
const PROBE_EVERY_MS = 50;
const PROBE_TIMEOUT_MS = 5_000;

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** The soft limit on open files of this process (the server inherits the same). */
function openFileLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  return Number(line?.split(/\s+/)[3] ?? 1024);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function openSocket(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, host, () => {
      s.off('error', reject);
      s.on('error', () => {});
      resolve(s);
    });
    s.once('error', reject);
  });
}

function probe(url: string): Promise<number> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = request(`${url}/healthz`, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? performance.now() - started : -1));
    });
    req.setTimeout(PROBE_TIMEOUT_MS, () => req.destroy());
    req.on('error', () => resolve(-1));
    req.end();
  });
}

async function main(): Promise<void> {
  const limit = openFileLimit();
  // Each side holds every connection: keep 1,000 descriptors for everything else.
  const idleCount = Math.max(0, Math.min(IDLE, limit - PIPELINERS - SLOWLORIS - 1_000));
  const load0 = loadavg();
  const dataDir = join(tmpdir(), `tw-abuse-${process.pid}`);
  const server = await startServerProcess(dataDir);
  const { hostname: host, port: portText } = new URL(server.url);
  const port = Number(portText);
  const sockets: Socket[] = [];
  let stopping = false;
  try {
    // Warm up, then take the baseline the growth is measured from.
    for (let i = 0; i < 20; i++) await probe(server.url);
    await sleep(1_000);
    const baseline = rssMiB(server.pid);
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssMiB(server.pid));
    }, 100);

    /** Probe answers (ms; -1 failed) by phase: opening the connections, then holding them. */
    const phases = { ramp: [] as number[], hold: [] as number[] };
    let phase: keyof typeof phases = 'ramp';
    const prober = (async () => {
      while (!stopping) {
        const current = phase;
        phases[current].push(await probe(server.url));
        await sleep(PROBE_EVERY_MS);
      }
    })();

    const t0 = performance.now();
    let idleOpen = 0;
    let idleRefused = 0;
    for (let i = 0; i < idleCount; i += 250) {
      const batch = await Promise.allSettled(
        Array.from({ length: Math.min(250, idleCount - i) }, () => openSocket(host, port)),
      );
      for (const r of batch) {
        if (r.status === 'fulfilled') {
          idleOpen++;
          sockets.push(r.value);
        } else idleRefused++;
      }
    }
    const idleSeconds = (performance.now() - t0) / 1000;

    const pipelined = 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(PIPELINED);
    let pipelinersClosed = 0;
    for (let i = 0; i < PIPELINERS; i++) {
      const s = await openSocket(host, port).catch(() => undefined);
      if (!s) continue;
      sockets.push(s);
      s.pause(); // never reads
      s.once('close', () => pipelinersClosed++);
      s.write(pipelined);
    }

    let slowCut = 0;
    const slowloris = async () => {
      while (!stopping) {
        const s = await openSocket(host, port).catch(() => undefined);
        if (!s) {
          await sleep(1_000);
          continue;
        }
        sockets.push(s);
        s.resume(); // reads, so the server's close is seen
        s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
        let n = 0;
        const drip = setInterval(() => s.write(`x-slow-${n++}: 1\r\n`), 1_000);
        await new Promise<void>((resolve) => s.once('close', () => resolve()));
        clearInterval(drip);
        if (!stopping) slowCut++;
      }
    };
    const slow = Array.from({ length: SLOWLORIS }, slowloris);

    // The pipelined requests are parsed and refused within moments of being sent.
    await sleep(2_000);
    phase = 'hold';
    await sleep(HOLD_MS);
    const metrics = await new Promise<string>((resolve) => {
      const req = request(`${server.url}/metrics`, { agent: false }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => {
          text += c.toString();
        });
        res.on('end', () => resolve(text));
      });
      req.on('error', () => resolve(''));
      req.end();
    });
    stopping = true;
    clearInterval(sampler);
    const load1 = loadavg();
    for (const s of sockets) s.destroy();
    await prober;
    await Promise.race([Promise.all(slow), sleep(3_000)]);

    const summary = (probes: number[]) => {
      const ok = probes.filter((ms) => ms >= 0).sort((a, b) => a - b);
      return `${ok.length} answered, ${probes.length - ok.length} failed; p50 ${fmt(percentile(ok, 50), 1)} ms, p99 ${fmt(percentile(ok, 99), 1)} ms, max ${fmt(ok.at(-1) ?? 0, 1)} ms`;
    };
    const closed = metrics
      .split('\n')
      .filter((l) => l.startsWith('tokenwatch_http_connections_closed_total{'))
      .map((l) => l.replace('tokenwatch_http_connections_closed_total', ''))
      .join(', ');
    const received = /^tokenwatch_http_requests_received_total (\d+)/m.exec(metrics)?.[1];
    console.log(
      [
        `bench:abuse — ${fmt(idleOpen)} idle connections (${fmt(idleRefused)} refused${
          idleCount < IDLE ? `; lowered from ${fmt(IDLE)}: ulimit -n is ${limit}` : ''
        }, opened in ${idleSeconds.toFixed(1)} s), ${PIPELINERS} connections × ${fmt(PIPELINED)} pipelined GET /metrics never read, ${SLOWLORIS} slowloris connections; held ${HOLD_MS / 1000} s`,
        `  server RSS: baseline ${fmt(baseline, 0)} MiB, peak ${fmt(peak, 0)} MiB → growth ${fmt(peak - baseline, 0)} MiB (limit 256 MiB)`,
        `  /healthz, a fresh connection every ${PROBE_EVERY_MS} ms (limit p99 250 ms):`,
        `    whole run: ${summary([...phases.ramp, ...phases.hold])}`,
        `    while the attack connects and sends (${((performance.now() - t0) / 1000 - HOLD_MS / 1000).toFixed(1)} s): ${summary(phases.ramp)}`,
        `    while it holds ${fmt(idleOpen + PIPELINERS + SLOWLORIS)} connections (${HOLD_MS / 1000} s): ${summary(phases.hold)}`,
        `  pipelining connections closed by the server: ${pipelinersClosed}/${PIPELINERS}; slowloris connections cut: ${slowCut}; requests the server parsed: ${received ?? '?'} (of ${fmt(PIPELINERS * PIPELINED)} pipelined)`,
        `  server-side closes: ${closed || 'none'}`,
        `  load average before ${load0.map((l) => l.toFixed(2)).join(' ')}, at the end ${load1.map((l) => l.toFixed(2)).join(' ')}`,
      ].join('\n'),
    );
  } finally {
    stopping = true;
    for (const s of sockets) s.destroy();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main()
  .then(() => process.exit(0))
  .catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
