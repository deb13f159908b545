import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../cli.js', import.meta.url));

export interface ServerProcess {
  url: string;
  pid: number;
  ingestKey: string;
  adminKey: string;
  stop(): Promise<void>;
  /** Peak resident set size of the server process so far, in MiB (VmHWM). */
  peakRssMiB(): number;
  /** CPU time the server process has used so far (all its threads, user + system), in ms. */
  cpuMs(): number;
}

/** Starts `tokenwatch serve` as its own process, as a user would, and waits until it listens. */
export async function startServerProcess(
  dataDir: string,
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  // BENCH_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the server.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(
    process.execPath,
    [...nodeArgs, CLI, 'serve', '--port', '0', '--data-dir', dataDir],
    {
      env: { ...process.env, TOKENWATCH_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const serverFile = join(dataDir, 'server.json');
  const deadline = Date.now() + 30_000;
  while (!(existsSync(serverFile) && /ingest key/.test(out))) {
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error(`server did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const { url } = JSON.parse(readFileSync(serverFile, 'utf8')) as { url: string };
  const keyOf = (label: string) =>
    (new RegExp(`${label} key.*?(twk_\\S+)`).exec(out)?.[1] as string) ?? '';
  const pid = child.pid as number;
  return {
    url,
    pid,
    ingestKey: keyOf('ingest'),
    adminKey: keyOf('admin'),
    peakRssMiB: () => {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
    },
    cpuMs: () => processCpuMs(pid),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** CPU time of a process, all threads, user + system, from /proc/<pid>/stat, in ms. */
export function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at state, field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
}

/** CPU time of this process so far (user + system), in ms. */
export function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

/** Where a bench POSTs: `POST /v1/events` with JSON unless told otherwise. */
export interface PostTarget {
  path: string;
  contentType: string;
}
const EVENTS_TARGET: PostTarget = { path: '/v1/events', contentType: 'application/json' };

/**
 * The requests an open-loop phase sends without awaiting each: `add` keeps one, and `settled`
 * waits for all of them and then throws the first failure. Left unhandled while the phase's loop
 * waits, a failed request killed the bench and left its server running.
 */
export function openLoopRequests() {
  const inflight: Promise<void>[] = [];
  let failure: unknown;
  return {
    add(request: Promise<void>): void {
      inflight.push(
        request.catch((err: unknown) => {
          failure ??= err;
        }),
      );
    },
    async settled(): Promise<void> {
      await Promise.all(inflight);
      if (failure !== undefined) throw failure;
    },
  };
}

/** One POST with a pre-serialised body; resolves with the status and the time to response. */
export function post(
  url: string,
  key: string,
  body: Buffer,
  target: PostTarget = EVENTS_TARGET,
): Promise<{ status: number; ms: number; text: string }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}${target.path}`,
      {
        method: 'POST',
        agent,
        headers: {
          authorization: `Bearer ${key}`,
          'content-type': target.contentType,
          'content-length': body.length,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            ms: performance.now() - started,
            text: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The 1, 5 and 15 minute load averages, as benches print them next to their figures. */
export function loadAverage(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}
