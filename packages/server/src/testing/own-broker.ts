import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tcpReachable } from './services.js';

/** Where the nats-server binary is, when installed. */
export function natsServerBinary(): string | undefined {
  return ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'].find((p) =>
    existsSync(p),
  );
}

/** A loopback port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const waitUntil = async (what: string, ok: () => Promise<boolean>, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

/**
 * A NATS JetStream server of this test's own, on a free port with its own store directory, that
 * the test may kill and start again (same port, same directory: the stream survives). Never the
 * machine's shared broker.
 */
export class OwnNatsServer {
  readonly dir = mkdtempSync(join(tmpdir(), 'tw-own-nats-'));
  port = 0;
  private child: ChildProcess | undefined;

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    const binary = natsServerBinary();
    if (!binary) throw new Error('nats-server is not installed');
    if (this.port === 0) this.port = await freePort();
    const child = spawn(
      binary,
      ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.dir],
      { stdio: 'ignore' },
    );
    this.child = child;
    await waitUntil('nats-server listening', () => tcpReachable('127.0.0.1', this.port, 200));
    return this;
  }

  /** SIGKILLs this server (by its PID) and waits for it to be gone. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  }

  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A TCP proxy to a service (PostgreSQL) that the test can take down and bring back: `stop()`
 * closes the listener and cuts every connection, as an unreachable database looks to a client.
 */
export class TcpProxy {
  port = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /**
   * Listens (on the same port as before, once started) and pipes to the target; with
   * `blackhole`, accepts connections and never answers, as a database that hangs looks.
   */
  async start(options: { blackhole?: boolean } = {}): Promise<this> {
    const server = createServer((client) => {
      if (options.blackhole) {
        this.sockets.add(client);
        client.on('close', () => this.sockets.delete(client));
        client.on('error', () => client.destroy());
        client.resume(); // read and drop
        return;
      }
      const upstream = connect(this.targetPort, this.targetHost);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as { port: number }).port;
    this.server = server;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}
