import { randomBytes } from 'node:crypto';
import { Socket } from 'node:net';
import pg from 'pg';

/**
 * The real services integration tests use: PostgreSQL and NATS JetStream on loopback (see
 * DEVELOPERS.md). A test that needs one skips with a clear message when it is unreachable, and
 * FAILS instead when TOKENWATCH_REQUIRE_SERVICES=1 (CI), so CI can never go green by skipping.
 */
export const TEST_PG_URL =
  process.env.TOKENWATCH_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const TEST_NATS_URL = process.env.TOKENWATCH_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
export const SERVICES_REQUIRED = process.env.TOKENWATCH_REQUIRE_SERVICES === '1';

function hostPort(url: string, defaultPort: number): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname || '127.0.0.1', port: Number(u.port || defaultPort) };
}

export function tcpReachable(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host, () => done(true));
  });
}

export async function postgresReachable(url = TEST_PG_URL): Promise<boolean> {
  const { host, port } = hostPort(url, 5432);
  if (!(await tcpReachable(host, port))) return false;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

export async function natsReachable(url = TEST_NATS_URL): Promise<boolean> {
  const { host, port } = hostPort(url, 4222);
  return tcpReachable(host, port);
}

/** A fresh schema name per test: tests share the database, never each other's tables. */
export function uniqueSchema(label = 't'): string {
  return `tw_${label}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

export async function dropSchema(schema: string, url = TEST_PG_URL): Promise<void> {
  if (!/^[a-z0-9_]+$/.test(schema)) throw new Error(`bad schema ${schema}`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}
