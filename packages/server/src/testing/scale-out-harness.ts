import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { uuidv7 } from '../util/uuidv7.js';
import { httpRequest } from './http-client.js';
import { CLI_PATH, type ExitInfo, makeDataDir, removeDataDir } from './server-process.js';
import { dropSchema, TEST_NATS_URL, TEST_PG_URL, uniqueSchema } from './services.js';

/**
 * Scale-out test rig: a data dir whose tokenwatch.json points `serve` and `worker` at a fresh
 * PostgreSQL schema and a fresh JetStream stream/consumer (unique names, deleted afterwards).
 * Processes are the real CLI, started and killed by PID.
 */
export interface ScaleOutEnv {
  dataDir: string;
  pgUrl: string;
  schema: string;
  stream: string;
  subject: string;
  consumer: string;
  cleanup(): Promise<void>;
}

export async function createScaleOutEnv(
  label: string,
  options: {
    pgUrl?: string;
    queue?: Record<string, unknown>;
    store?: Record<string, unknown>;
  } = {},
): Promise<ScaleOutEnv> {
  const dataDir = makeDataDir(`so-${label}`);
  const schema = uniqueSchema(label);
  const stream = schema.toUpperCase();
  const subject = `tw.test.${schema}`;
  const consumer = `${schema}-workers`;
  const pgUrl = options.pgUrl ?? TEST_PG_URL;
  writeFileSync(
    join(dataDir, 'tokenwatch.json'),
    JSON.stringify({
      store: { driver: 'postgres', url: pgUrl, schema, poolSize: 3, ...options.store },
      queue: {
        driver: 'nats',
        url: TEST_NATS_URL,
        stream,
        subject,
        consumer,
        ...options.queue,
      },
      auth: { keyCacheSeconds: 60 },
      log: { level: 'warn' },
    }),
  );
  return {
    dataDir,
    pgUrl,
    schema,
    stream,
    subject,
    consumer,
    async cleanup() {
      await deleteStream(stream).catch(() => {});
      await dropSchema(schema, pgUrl).catch(() => {});
      removeDataDir(dataDir);
    },
  };
}

export async function deleteStream(stream: string): Promise<void> {
  const nc = await connect({ servers: TEST_NATS_URL });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(stream);
  } finally {
    await nc.close();
  }
}

/**
 * Messages not yet acked by a worker (pending delivery or awaiting ack), over every partition's
 * consumer: the work-queue stream deletes a message once it is acked (or terminated).
 */
export async function consumerBacklog(env: ScaleOutEnv): Promise<number> {
  const nc = await connect({ servers: TEST_NATS_URL });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(env.stream);
    return info.state.messages;
  } finally {
    await nc.close();
  }
}

/** Redeliveries so far, summed over the workers' consumers (JetStream's num_redelivered). */
export async function consumerRedeliveries(env: ScaleOutEnv): Promise<number> {
  const nc = await connect({ servers: TEST_NATS_URL });
  try {
    const jsm = await jetstreamManager(nc);
    let total = 0;
    for await (const c of jsm.consumers.list(env.stream)) total += c.num_redelivered;
    return total;
  } finally {
    await nc.close();
  }
}

export async function waitDrained(env: ScaleOutEnv, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const backlog = await consumerBacklog(env);
    if (backlog === 0) return;
    if (Date.now() > deadline) throw new Error(`queue not drained: ${backlog} messages left`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface WorkerProcess {
  pid: number;
  metricsUrl: string;
  exited: Promise<ExitInfo>;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<ExitInfo>;
}

const workers = new Map<number, ChildProcess>();

/** `tokenwatch worker --data-dir D --metrics-port 0`, resolved once it consumes. */
export async function startWorkerProcess(env: ScaleOutEnv): Promise<WorkerProcess> {
  const child = spawn(
    process.execPath,
    [CLI_PATH, 'worker', '--data-dir', env.dataDir, '--metrics-port', '0'],
    { env: { ...process.env, TOKENWATCH_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not spawn tokenwatch worker');
  workers.set(pid, child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString('utf8');
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString('utf8');
  });
  const exited = new Promise<ExitInfo>((resolve) =>
    child.once('exit', (code, signal) => {
      workers.delete(pid);
      resolve({ code, signal });
    }),
  );
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + 30_000;
  let metricsUrl: string | undefined;
  while (!metricsUrl) {
    if (gone) throw new Error(`worker exited before consuming:\n${out}`);
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      throw new Error(`worker did not start:\n${out}`);
    }
    metricsUrl = /metrics at (http:\/\/\S+)\/metrics/.exec(out)?.[1];
    if (!metricsUrl) await new Promise((r) => setTimeout(r, 20));
  }
  return {
    pid,
    metricsUrl,
    exited,
    output: () => out,
    kill: (signal: NodeJS.Signals = 'SIGTERM') => {
      if (!gone) {
        try {
          process.kill(pid, signal);
        } catch {
          // already gone
        }
      }
      return exited;
    },
  };
}

/** SIGKILLs, by PID, every worker this test process started that still runs. */
export async function killStartedWorkers(): Promise<void> {
  for (const [pid] of workers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      workers.delete(pid);
    }
  }
  const deadline = Date.now() + 5_000;
  while (workers.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/** A counter of a worker's /metrics (0 when absent). */
export async function workerMetric(w: WorkerProcess, name: string): Promise<number> {
  const res = await httpRequest(`${w.metricsUrl}/metrics`);
  const line = res.text
    .split('\n')
    .find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').pop()) : 0;
}

/**
 * The load generator with its ledger (reliability.md § 5): each event has a unique id and a
 * token count; every response is recorded. `acked` ids got a 202 and must be counted exactly
 * once; `unknown` ids (503, timeout, reset) may be counted 0 or 1 times; nothing else may be.
 */
export class LoadGenerator {
  readonly acked = new Map<string, number>();
  readonly unknown = new Map<string, number>();
  readonly statuses = new Map<number | string, number>();
  /** Non-202 answers that lacked Retry-After or were not 503/429: must stay empty. */
  readonly badAnswers: string[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 16 });
  sentRequests = 0;

  constructor(
    private readonly url: string,
    private readonly ingestKey: string,
    private readonly options: {
      eventsPerRequest: number;
      concurrency: number;
      users?: number;
      /** Pause between two requests of one loop. */
      pauseMs?: number;
      /** Stop after this many requests in total. */
      maxRequests?: number;
      tokens?: (i: number) => number;
    },
  ) {}

  start(): void {
    this.running = true;
    for (let c = 0; c < this.options.concurrency; c++) this.loops.push(this.loop());
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.agent.destroy();
  }

  /** Resolves when `maxRequests` have been answered. */
  async done(): Promise<void> {
    await Promise.all(this.loops);
    this.agent.destroy();
  }

  private count(key: number | string): void {
    this.statuses.set(key, (this.statuses.get(key) ?? 0) + 1);
  }

  private async loop(): Promise<void> {
    let seq = 0;
    while (this.running) {
      if (this.options.maxRequests !== undefined && this.sentRequests >= this.options.maxRequests)
        return;
      this.sentRequests++;
      const now = Date.now();
      const events = [];
      for (let i = 0; i < this.options.eventsPerRequest; i++) {
        seq++;
        const tokens = this.options.tokens ? this.options.tokens(seq) : 1 + ((seq * 7919) % 997);
        events.push({
          id: uuidv7(now),
          timestamp: now,
          userId: `u${seq % (this.options.users ?? 10)}`,
          appId: 'chat',
          modelId: 'gpt-4o-mini',
          provider: 'openai',
          inputTokens: tokens,
          outputTokens: 0,
        });
      }
      try {
        const res = await httpRequest(`${this.url}/v1/events`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${this.ingestKey}`,
            'content-type': 'application/json',
          },
          body: JSON.stringify({ events }),
          agent: this.agent,
          timeoutMs: 15_000,
        });
        this.count(res.status);
        const target = res.status === 202 ? this.acked : this.unknown;
        for (const e of events) target.set(e.id, e.inputTokens);
        if (res.status !== 202) {
          const retryAfter = res.headers['retry-after'];
          if (!((res.status === 503 || res.status === 429) && retryAfter))
            this.badAnswers.push(
              `${res.status} retry-after=${String(retryAfter)} ${res.text.slice(0, 200)}`,
            );
        }
      } catch {
        this.count('error');
        for (const e of events) this.unknown.set(e.id, e.inputTokens);
      }
      if (this.options.pauseMs) await new Promise((r) => setTimeout(r, this.options.pauseMs));
    }
  }
}

export interface LedgerCheck {
  storedIds: number;
  rollupRequests: number;
  rollupTokens: number;
  expectedTokens: number;
  missingAcked: string[];
  invented: string[];
}

/**
 * The oracle: compares the database with the ledger. Exactly once means: every acked id is
 * stored, every stored id was sent, and the rollups hold exactly the stored events (requests =
 * stored ids, tokens = the ledger's tokens of the stored ids).
 */
export async function checkLedger(env: ScaleOutEnv, gen: LoadGenerator): Promise<LedgerCheck> {
  const client = new pg.Client({ connectionString: env.pgUrl });
  await client.connect();
  try {
    await client.query(`SET search_path = "${env.schema}"`);
    const ids = await client.query<{ id: string }>('SELECT id FROM event_ids');
    const sums = await client.query<{ r: string | null; t: string | null }>(
      'SELECT SUM(requests) AS r, SUM(input_tokens) AS t FROM rollup_hour',
    );
    const stored = new Set(ids.rows.map((r) => r.id));
    let expectedTokens = 0;
    const invented: string[] = [];
    for (const id of stored) {
      const t = gen.acked.get(id) ?? gen.unknown.get(id);
      if (t === undefined) invented.push(id);
      else expectedTokens += t;
    }
    const missingAcked = [...gen.acked.keys()].filter((id) => !stored.has(id));
    return {
      storedIds: stored.size,
      rollupRequests: Number(sums.rows[0]?.r ?? 0),
      rollupTokens: Number(sums.rows[0]?.t ?? 0),
      expectedTokens,
      missingAcked: missingAcked.slice(0, 10),
      invented: invented.slice(0, 10),
    };
  } finally {
    await client.end();
  }
}

export { removeDataDir };
