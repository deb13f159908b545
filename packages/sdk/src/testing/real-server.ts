import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built `tokenwatch` CLI of this repo, or undefined when packages/server has not been built. */
export const SERVER_CLI = fileURLToPath(new URL('../../../server/dist/cli.js', import.meta.url));
export const serverBuilt = existsSync(SERVER_CLI);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A real `tokenwatch serve` on loopback with a fresh SQLite data dir, and its keys. */
export class RealServer {
  url = '';
  ingestKey = '';
  readKey = '';
  adminKey = '';
  dataDir = '';
  private child: ChildProcess | undefined;
  private log = '';

  private cli(args: string[]): string {
    const out = execFileSync(process.execPath, [SERVER_CLI, ...args, '--data-dir', this.dataDir], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return out.trim().split('\n').pop()?.trim() ?? '';
  }

  async start(extraArgs: string[] = []): Promise<this> {
    this.dataDir = mkdtempSync(join(tmpdir(), 'tokenwatch-sdk-'));
    this.ingestKey = this.cli(['keys', 'create', '--role', 'ingest']);
    this.readKey = this.cli(['keys', 'create', '--role', 'read']);
    this.adminKey = this.cli(['keys', 'create', '--role', 'admin']);
    const port = await freePort();
    this.url = `http://127.0.0.1:${port}`;
    this.child = spawn(
      process.execPath,
      [SERVER_CLI, 'serve', '--port', String(port), '--data-dir', this.dataDir, ...extraArgs],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child.stdout?.on('data', (d: Buffer) => {
      this.log += d.toString();
    });
    this.child.stderr?.on('data', (d: Buffer) => {
      this.log += d.toString();
    });
    const until = Date.now() + 20_000;
    for (;;) {
      try {
        const r = await fetch(`${this.url}/readyz`);
        if (r.ok) break;
      } catch {
        // not up yet
      }
      if (this.child.exitCode !== null || Date.now() > until) {
        throw new Error(`tokenwatch serve did not start:\n${this.log}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return this;
  }

  /** `GET /v1/usage` with the read key. */
  async usage(params: Record<string, string>): Promise<Record<string, unknown>[]> {
    const qs = new URLSearchParams(params).toString();
    const r = await fetch(`${this.url}/v1/usage?${qs}`, {
      headers: { authorization: `Bearer ${this.readKey}` },
    });
    if (!r.ok) throw new Error(`usage ${r.status}: ${await r.text()}`);
    return ((await r.json()) as { rows: Record<string, unknown>[] }).rows;
  }

  /** `POST /v1/rules` with the admin key; the rule's id. */
  async createRule(rule: Record<string, unknown>): Promise<string> {
    const r = await fetch(`${this.url}/v1/rules`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(rule),
    });
    if (r.status !== 201) throw new Error(`create rule ${r.status}: ${await r.text()}`);
    return ((await r.json()) as { rule: { id: string } }).rule.id;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}
