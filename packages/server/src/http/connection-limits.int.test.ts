import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { httpRequest } from '../testing/http-client.js';
import {
  killStartedServers,
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from '../testing/server-process.js';
import { metricValue } from '../testing/tokenwatch-api.js';

/**
 * Issue 11 item 2: one client must not be able to make the server hold unbounded memory or
 * starve others. Pipelining without reading, too many connections, slow headers and idle
 * connections each meet a limit of `http.*`, and `/healthz` keeps answering meanwhile.
 */

const dataDirs: string[] = [];
const sockets: Socket[] = [];

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await killStartedServers();
  for (const dir of dataDirs) removeDataDir(dir);
});

async function start(env: Record<string, string>): Promise<ServerProcess> {
  const server = await startServerProcess({ env: { TOKENWATCH_LOG_LEVEL: 'error', ...env } });
  dataDirs.push(server.dataDir);
  return server;
}

function address(server: ServerProcess): { host: string; port: number } {
  const url = new URL(server.url);
  return { host: url.hostname, port: Number(url.port) };
}

/** A raw TCP connection to the server, open. */
function open(server: ServerProcess): Promise<Socket> {
  const { host, port } = address(server);
  return new Promise((resolve, reject) => {
    const socket = connect(port, host, () => resolve(socket));
    sockets.push(socket);
    socket.once('error', reject);
  });
}

/** Resolves with what the server sent once it has closed the connection. */
function closedByServer(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let received = '';
    socket.on('data', (c: Buffer) => {
      received += c.toString('latin1');
    });
    socket.on('error', () => {});
    socket.once('close', () => resolve(received));
  });
}

async function metrics(server: ServerProcess): Promise<string> {
  const res = await httpRequest(`${server.url}/metrics`);
  expect(res.status).toBe(200);
  return res.text;
}

async function healthz(server: ServerProcess): Promise<number> {
  return (await httpRequest(`${server.url}/healthz`, { timeoutMs: 10_000 })).status;
}

const RECEIVED = 'tokenwatch_http_requests_received_total';
const closedFor = (reason: string) =>
  `tokenwatch_http_connections_closed_total{reason="${reason}"}`;

async function until(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('pipelining', () => {
  it('a connection that pipelines 2,000 requests and never reads is closed after the cap; the rest do no work', async () => {
    const server = await start({ TOKENWATCH_HTTP_MAX_PIPELINED_REQUESTS: '8' });
    const before = metricValue(await metrics(server), RECEIVED);
    const socket = await open(server);
    socket.pause(); // never reads
    socket.on('error', () => {});
    socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(2_000));
    await until(
      async () => metricValue(await metrics(server), closedFor('pipelining')) >= 1,
      'the pipelining connection to be closed',
    );
    const text = await metrics(server);
    // Parsed by the server: the attack's requests plus this test's own /metrics calls. Without
    // the cap all 2,000 are handled; without parsing in slices ~1,800 are parsed from the first
    // 64 KiB read alone.
    const attack = metricValue(text, RECEIVED) - before;
    expect(attack).toBeLessThan(100);
    expect(metricValue(text, closedFor('pipelining'))).toBe(1);
    expect(await healthz(server)).toBe(200);
    await server.kill('SIGTERM');
  });

  it('a client that pipelines within the cap gets every answer, in order', async () => {
    const server = await start({ TOKENWATCH_HTTP_MAX_PIPELINED_REQUESTS: '8' });
    const socket = await open(server);
    const done = closedByServer(socket);
    // Seven /metrics answers outgrow the socket's buffer: the server pauses parsing mid-chunk
    // and resumes once they are read.
    socket.write(
      `${'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(7)}GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    const received = await done;
    expect(received.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(8);
    expect(received.match(/# TYPE tokenwatch_http_requests_total counter/g)).toHaveLength(7);
    expect(received.trimEnd().endsWith('{"status":"ready"}')).toBe(true);
    expect(metricValue(await metrics(server), closedFor('pipelining'))).toBe(0);
    await server.kill('SIGTERM');
  });
  it('a slow reader within the cap: parsing pauses mid-chunk and resumes; every answer arrives', async () => {
    const server = await start({ TOKENWATCH_HTTP_MAX_PIPELINED_REQUESTS: '16' });
    const socket = await open(server);
    socket.pause();
    // 12 requests of ~600 bytes: several parse slices; their answers (~8 KB each) exceed the
    // socket's buffer long before the last request is parsed, so the server pauses the socket.
    const one = `GET /metrics HTTP/1.1\r\nHost: x\r\nx-pad: ${'p'.repeat(550)}\r\n\r\n`;
    socket.write(`${one.repeat(11)}GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    await new Promise((r) => setTimeout(r, 1_000));
    const done = closedByServer(socket);
    socket.resume();
    const received = await done;
    expect(received.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(12);
    expect(received.trimEnd().endsWith('{"status":"ready"}')).toBe(true);
    await server.kill('SIGTERM');
  });
});

describe('connection cap', () => {
  it('a connection beyond http.maxConnections is refused; freeing one lets clients in again', async () => {
    const server = await start({ TOKENWATCH_HTTP_MAX_CONNECTIONS: '16' });
    const idle: Socket[] = [];
    for (let i = 0; i < 16; i++) idle.push(await open(server));
    const extra = await open(server);
    const answer = closedByServer(extra);
    extra.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await answer).toBe(''); // closed without an answer
    idle[0]?.destroy();
    await until(async () => (await healthz(server).catch(() => 0)) === 200, '/healthz');
    expect(metricValue(await metrics(server), closedFor('max_connections'))).toBeGreaterThanOrEqual(
      1,
    );
    await server.kill('SIGTERM');
  });
});

describe('timeouts', () => {
  it('slowloris: headers that never end are cut after http.headersTimeoutMs; /healthz answers meanwhile', async () => {
    const server = await start({ TOKENWATCH_HTTP_HEADERS_TIMEOUT_MS: '500' });
    const socket = await open(server);
    const closed = closedByServer(socket);
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    let sent = 0;
    const drip = setInterval(() => {
      if (!socket.destroyed) socket.write(`x-drip-${sent++}: 1\r\n`);
    }, 100);
    try {
      expect(await healthz(server)).toBe(200);
      const received = await Promise.race([
        closed,
        new Promise<string>((_, reject) =>
          setTimeout(() => reject(new Error('slow headers were never cut')), 15_000),
        ),
      ]);
      // Node answers 408 when it cuts a request whose headers did not arrive in time.
      expect(received).toMatch(/^HTTP\/1\.1 408/);
    } finally {
      clearInterval(drip);
    }
    expect(await healthz(server)).toBe(200);
    await server.kill('SIGTERM');
  });

  it('a connection that never sends a request is closed after http.idleTimeoutMs', async () => {
    const server = await start({ TOKENWATCH_HTTP_IDLE_TIMEOUT_MS: '300' });
    const socket = await open(server);
    expect(
      await Promise.race([
        closedByServer(socket),
        new Promise<string>((_, reject) =>
          setTimeout(() => reject(new Error('the idle connection was never closed')), 15_000),
        ),
      ]),
    ).toBe('');
    expect(metricValue(await metrics(server), closedFor('idle'))).toBeGreaterThanOrEqual(1);
    await server.kill('SIGTERM');
  });
});
