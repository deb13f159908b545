import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Helpers for integration tests that run `tokenwatch serve` as its own process, exactly as a user
 * would (`node packages/server/dist/cli.js serve --port 0 --data-dir D`), and talk to it over
 * real HTTP. Nothing here mocks the server. Tests need the build (`npm test` builds first).
 */

/** `packages/server/dist/cli.js`, from the sources and from the build alike. */
export const CLI_PATH = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerProcess {
  /** Base URL from `<dataDir>/server.json`, e.g. `http://127.0.0.1:41234`. */
  url: string;
  pid: number;
  dataDir: string;
  /** Printed on the first start of a data dir only. */
  adminKey: string | undefined;
  /** Printed on the first start of a data dir only. */
  ingestKey: string | undefined;
  /** Everything the process wrote so far. */
  output(): { stdout: string; stderr: string };
  /** Resolves when the process has exited. */
  exited: Promise<ExitInfo>;
  /** Sends `signal` to this process (by its PID) and resolves when it has exited. */
  kill(signal?: NodeJS.Signals): Promise<ExitInfo>;
}

export interface StartServerOptions {
  /** Data dir; a fresh temporary one when omitted. Reuse one to restart on the same store. */
  dataDir?: string;
  /** Extra environment, e.g. `TOKENWATCH_FLUSH_MAX_WAIT_MS`. */
  env?: Record<string, string>;
  /** Port to listen on; default 0 (any free port). Reuse one to restart at the same URL. */
  port?: number;
  /** How long to wait for the server to listen; default 30 s. */
  startTimeoutMs?: number;
}

const started = new Map<number, ChildProcess>();

/** A fresh temporary directory for one server's data. */
export function makeDataDir(label = 'server'): string {
  return mkdtempSync(join(tmpdir(), `tw-int-${label}-`));
}

export function removeDataDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

function lastWord(line: string | undefined): string | undefined {
  if (!line) return undefined;
  const words = line.trim().split(/\s+/);
  return words[words.length - 1];
}

/**
 * Spawns `tokenwatch serve --port 0 --data-dir D` and waits until it listens: its stdout says so
 * and `D/server.json` (written after `listen`) names this very process, so a stale file left by
 * a killed predecessor is never mistaken for the new server.
 */
export async function startServerProcess(options: StartServerOptions = {}): Promise<ServerProcess> {
  if (!existsSync(CLI_PATH)) {
    throw new Error(`${CLI_PATH} is missing: build first (npm run build)`);
  }
  const dataDir = options.dataDir ?? makeDataDir();
  const child = spawn(
    process.execPath,
    [CLI_PATH, 'serve', '--port', String(options.port ?? 0), '--data-dir', dataDir],
    {
      env: { ...process.env, TOKENWATCH_LOG_LEVEL: 'warn', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not spawn tokenwatch serve');
  started.set(pid, child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString('utf8');
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString('utf8');
  });
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      started.delete(pid);
      resolve({ code, signal });
    });
  });
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });

  const serverFile = join(dataDir, 'server.json');
  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  let url: string | undefined;
  for (;;) {
    if (hasExited) {
      throw new Error(`tokenwatch serve exited before listening:\n${stdout}\n${stderr}`);
    }
    if (stdout.includes('Press Ctrl+C to stop') && existsSync(serverFile)) {
      try {
        const info = JSON.parse(readFileSync(serverFile, 'utf8')) as { url: string; pid: number };
        if (info.pid === pid) {
          url = info.url;
          break;
        }
      } catch {
        // written concurrently; read again
      }
    }
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      throw new Error(`tokenwatch serve did not start in time:\n${stdout}\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }

  const lines = stdout.split('\n');
  const adminKey = lastWord(lines.find((l) => l.includes('admin key')));
  const ingestKey = lastWord(lines.find((l) => l.includes('ingest key')));

  return {
    url,
    pid,
    dataDir,
    adminKey,
    ingestKey,
    output: () => ({ stdout, stderr }),
    exited,
    kill: (signal: NodeJS.Signals = 'SIGTERM') => {
      if (!hasExited) {
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

/**
 * SIGKILLs, by PID, every server this test process started that is still running. For
 * `afterAll` hooks as a safety net; tests stop their servers themselves.
 */
export async function killStartedServers(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const [pid, child] of started) {
    waits.push(new Promise((resolve) => child.once('exit', resolve)));
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      started.delete(pid);
    }
  }
  await Promise.race([Promise.all(waits), new Promise((r) => setTimeout(r, 5_000))]);
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI (`node dist/cli.js ...args`) to completion. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI_PATH, ...args],
      { env: { ...process.env, TOKENWATCH_LOG_LEVEL: 'warn', ...env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export interface CreatedKey {
  key: string;
  /** The key's id (for `DELETE /v1/keys/:id`), from the `key id:` line. */
  id: string;
}

/**
 * `tokenwatch keys create --role R [--app A] [--project P] --data-dir D`: the key is the last
 * line of stdout. Works while the server runs on the same data dir.
 */
export async function createKey(
  dataDir: string,
  options: { role: 'admin' | 'ingest' | 'read'; app?: string; project?: string },
): Promise<CreatedKey> {
  const args = ['keys', 'create', '--role', options.role, '--data-dir', dataDir];
  if (options.app !== undefined) args.push('--app', options.app);
  if (options.project !== undefined) args.push('--project', options.project);
  const result = await runCli(args);
  if (result.code !== 0) {
    throw new Error(`keys create failed (${result.code}):\n${result.stdout}\n${result.stderr}`);
  }
  const lines = result.stdout.split('\n').filter((l) => l.trim().length > 0);
  const key = (lines[lines.length - 1] ?? '').trim();
  const id = lastWord(lines.find((l) => l.startsWith('key id:'))) ?? '';
  if (!key.startsWith('twk_') || id === '') {
    throw new Error(`unexpected keys create output:\n${result.stdout}`);
  }
  return { key, id };
}
