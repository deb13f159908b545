import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A PostgreSQL instance of the test's own (initdb in a temp dir, a free loopback port), for
 * tests that stop and restart the server: the machine's shared cluster is never touched. Run as
 * the `postgres` user when the tests run as root (PostgreSQL refuses root). Stopped by the PID
 * in its postmaster.pid.
 */
export interface PrivatePostgres {
  url: string;
  port: number;
  start(): void;
  /** Fast shutdown (SIGINT to the postmaster, by PID); resolves when it is gone. */
  stop(): Promise<void>;
  destroy(): Promise<void>;
}

export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql');
  const dir = mkdtempSync(join(tmpdir(), 'tw-pg-'));
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]) => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
    execFileSync(file, argv, { stdio: 'pipe', timeout: 60_000 });
  };
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  run(join(bin, 'initdb'), [
    '-D',
    data,
    '-A',
    'trust',
    '-U',
    'postgres',
    '-E',
    'UTF8',
    '--no-sync',
  ]);
  const port = await freePort();
  let pid: number | undefined;
  const instance: PrivatePostgres = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start() {
      run(join(bin, 'pg_ctl'), [
        'start',
        '-D',
        data,
        '-w',
        '-t',
        '30',
        '-l',
        join(dir, 'postgres.log'),
        '-o',
        `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=50`,
      ]);
      pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    },
    async stop() {
      if (pid === undefined) return;
      const p = pid;
      pid = undefined;
      try {
        process.kill(p, 'SIGINT');
      } catch {
        return;
      }
      const deadline = Date.now() + 30_000;
      while (pidAlive(p) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    },
    async destroy() {
      await instance.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  instance.start();
  return instance;
}
