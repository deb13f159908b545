/**
 * What bench:scale measures besides rates, on a machine other people share: CPU of given
 * processes and of the PostgreSQL backends serving them (found by their client ports, not by
 * application_name, which every tokenwatch on the machine uses), and row/advisory lock waits of
 * those backends, sampled.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import pg from 'pg';

const TICKS = 100; // clock ticks per second (getconf CLK_TCK on Linux)

export function cpuSecondsOf(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return 0;
  }
}

export function pidsByName(name: string): number[] {
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

export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

/** Local TCP ports of the sockets a process has open (its PostgreSQL connections among them). */
function localPortsOf(pid: number): Set<number> {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m?.[1]) inodes.add(m[1]);
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    return new Set();
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && inodes.has(cols[9] as string))
        ports.add(Number.parseInt((cols[1] as string).split(':')[1] as string, 16));
    }
  }
  return ports;
}

/** PostgreSQL backend pids serving the given client processes (by their sockets' ports). */
export async function backendsOf(admin: pg.Client, clientPids: number[]): Promise<number[]> {
  const ports = new Set<number>();
  for (const pid of clientPids) for (const p of localPortsOf(pid)) ports.add(p);
  const r = await admin.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[])',
    [[...ports]],
  );
  return r.rows.map((x) => x.pid);
}

/**
 * CPU of the backends serving `clientPids`, sampled while they run (pools open and close
 * connections: each backend seen counts from its first sighting, or from `begin` when it was
 * there already, to its last).
 */
export class BackendCpu {
  private readonly first = new Map<number, number>();
  private readonly last = new Map<number, number>();

  constructor(private readonly begin: Map<number, number>) {}

  static snapshot(): Map<number, number> {
    return new Map(pidsByName('postgres').map((p) => [p, cpuSecondsOf(p)]));
  }

  async sample(admin: pg.Client, clientPids: number[]): Promise<void> {
    this.observe(await backendsOf(admin, clientPids));
  }

  /** Reads the CPU of backends already found (cheap: no socket scan). */
  observe(backends: readonly number[]): void {
    for (const pid of backends) {
      const now = cpuSecondsOf(pid);
      if (!this.first.has(pid)) this.first.set(pid, this.begin.get(pid) ?? 0);
      if (now > 0) this.last.set(pid, now);
    }
  }

  get seconds(): number {
    let s = 0;
    for (const [pid, last] of this.last) s += last - (this.first.get(pid) ?? 0);
    return s;
  }
}

/** Lock waits of the backends serving the measured processes, sampled every `everyMs`. */
export class LockWaitSampler {
  samples = 0;
  /** Samples in which at least one backend waited for a lock. */
  samplesWithWait = 0;
  waitingBackendSamples = 0;
  readonly byType = new Map<string, number>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private busy = false;

  constructor(
    private readonly admin: pg.Client,
    private readonly clientPids: () => number[],
    private readonly cpu: BackendCpu,
    private readonly everyMs = 200,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.busy = true;
      void this.sample().finally(() => {
        this.busy = false;
      });
    }, this.everyMs);
  }

  private backends: number[] = [];
  private backendsAtMs = 0;

  private async sample(): Promise<void> {
    try {
      // The socket scan that finds the backends runs every 2 s, not every sample: the sampler
      // shares the load generator's process and should take as little from it as it can.
      if (Date.now() - this.backendsAtMs > 2_000) {
        this.backends = await backendsOf(this.admin, this.clientPids());
        this.backendsAtMs = Date.now();
      }
      const backends = this.backends;
      this.cpu.observe(backends);
      const r = await this.admin.query<{ pid: number; locktype: string }>(
        'SELECT pid, locktype FROM pg_locks WHERE NOT granted AND pid = ANY($1::int[])',
        [backends],
      );
      this.samples++;
      if (r.rows.length > 0) this.samplesWithWait++;
      this.waitingBackendSamples += new Set(r.rows.map((x) => x.pid)).size;
      for (const row of r.rows)
        this.byType.set(row.locktype, (this.byType.get(row.locktype) ?? 0) + 1);
    } catch {
      // a process ended between listing and reading: skip this sample
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    while (this.busy) await new Promise((r) => setTimeout(r, 10));
  }

  summary(): string {
    const share = this.samples ? (100 * this.samplesWithWait) / this.samples : 0;
    const mean = this.samples ? this.waitingBackendSamples / this.samples : 0;
    const types = [...this.byType].map(([t, n]) => `${t} ${n}`).join(', ') || 'none';
    return `lock waits: ${share.toFixed(1)} % of ${this.samples} samples, mean ${mean.toFixed(2)} waiting backends (by lock type: ${types})`;
  }
}

export async function adminClient(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, application_name: 'tokenwatch-bench' });
  await c.connect();
  return c;
}
