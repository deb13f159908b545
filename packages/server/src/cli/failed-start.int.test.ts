import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../testing/own-broker.js';
import { createScaleOutEnv, type ScaleOutEnv } from '../testing/scale-out-harness.js';
import {
  CLI_PATH,
  killStartedServers,
  makeDataDir,
  removeDataDir,
  startServerProcess,
} from '../testing/server-process.js';
import { natsReachable, postgresReachable, TEST_PG_URL } from '../testing/services.js';
import { whenServices } from '../testing/when-services.js';

/**
 * A start that cannot succeed (port taken, database or broker unreachable, bad config) ends the
 * process with a non-zero status and one clear error line, in every mode: embedded `serve`,
 * `serve --queue nats://…` on PostgreSQL, and `worker`. Before, a scale-out `serve` on a taken
 * port printed EADDRINUSE and ran on forever, logging pool errors.
 */
const pgUp = await postgresReachable();
const natsUp = await natsReachable();

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs the real CLI; a process still running after `limitMs` is killed (and the test fails). */
function runCli(args: string[], limitMs = 30_000): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], {
      env: { ...process.env, TOKENWATCH_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.once('exit', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stderr });
    });
  });
}

/** Exited by itself with a failure status and exactly one error line, no stack trace. */
function expectOneClearFailure(out: Outcome, mentions: RegExp): void {
  expect(out.signal, `still running, killed; stderr:\n${out.stderr}`).toBeNull();
  expect(out.code).not.toBe(0);
  const errors = out.stderr.split('\n').filter((l) => l.startsWith('error:'));
  expect(errors, out.stderr).toHaveLength(1);
  expect(errors[0]).toMatch(mentions);
  expect(out.stderr).not.toMatch(/^\s+at /m);
}

describe('a failed start exits non-zero with one clear message', () => {
  let taken: Server;
  let takenPort = 0;
  let deadPgUrl = '';
  beforeAll(async () => {
    taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    takenPort = (taken.address() as { port: number }).port;
    const dead = new URL(TEST_PG_URL);
    dead.host = `127.0.0.1:${await freePort()}`; // nobody listens there
    deadPgUrl = dead.toString();
  });
  afterAll(async () => {
    await new Promise<void>((r) => taken.close(() => r()));
  });

  it('embedded serve on a port in use; the next start still prints the first-start keys', async () => {
    const dir = makeDataDir('failed-start');
    try {
      const out = await runCli(['serve', '--data-dir', dir, '--port', String(takenPort)]);
      expectOneClearFailure(
        out,
        new RegExp(`cannot listen on 127\\.0\\.0\\.1:${takenPort}: .*in use`),
      );
      // The failed start created no keys nobody saw: the first start that listens shows them.
      const serve = await startServerProcess({ dataDir: dir });
      expect(serve.adminKey).toMatch(/^twk_/);
      expect(serve.ingestKey).toMatch(/^twk_/);
      await serve.kill('SIGTERM');
    } finally {
      await killStartedServers();
      removeDataDir(dir);
    }
  });

  it('a bad --store URL is one error naming store.url (exit 2), for worker and serve', async () => {
    for (const command of ['worker', 'serve']) {
      const dir = makeDataDir('failed-start');
      try {
        const out = await runCli([command, '--data-dir', dir, '--store', 'mysql://x']);
        expect(out.code).toBe(2);
        const lines = out.stderr.split('\n').filter((l) => l.trim() !== '');
        expect(lines).toEqual([
          'error: Invalid configuration:',
          expect.stringMatching(
            /^ {2}- store\.url: unsupported scheme "mysql:\/\/"; expected postgres:\/\//,
          ),
        ]);
      } finally {
        removeDataDir(dir);
      }
    }
  });

  it('worker without a queue says so', async () => {
    const dir = makeDataDir('failed-start');
    try {
      const out = await runCli(['worker', '--data-dir', dir]);
      expectOneClearFailure(out, /needs a queue/);
      expect(out.code).toBe(2);
    } finally {
      removeDataDir(dir);
    }
  });

  whenServices({ PostgreSQL: pgUp, NATS: natsUp }, () => {
    describe('scale-out', () => {
      let env: ScaleOutEnv;
      beforeAll(async () => {
        env = await createScaleOutEnv('failstart');
      });
      afterAll(async () => {
        await env.cleanup();
      });

      it('serve --queue on a port in use', async () => {
        const out = await runCli(['serve', '--data-dir', env.dataDir, '--port', String(takenPort)]);
        expectOneClearFailure(out, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${takenPort}`));
      });

      it('serve with PostgreSQL unreachable', async () => {
        const out = await runCli([
          'serve',
          '--data-dir',
          env.dataDir,
          '--port',
          '0',
          '--store',
          deadPgUrl,
        ]);
        expectOneClearFailure(out, /PostgreSQL.*ECONNREFUSED/);
      });

      it('serve with NATS unreachable', async () => {
        const queue = `nats://127.0.0.1:${await freePort()}`;
        const out = await runCli([
          'serve',
          '--data-dir',
          env.dataDir,
          '--port',
          '0',
          '--queue',
          queue,
        ]);
        expectOneClearFailure(out, /cannot connect to NATS/);
      });

      it('worker with PostgreSQL unreachable', async () => {
        const out = await runCli(['worker', '--data-dir', env.dataDir, '--store', deadPgUrl]);
        expectOneClearFailure(out, /PostgreSQL.*ECONNREFUSED/);
      });

      it('worker with NATS unreachable', async () => {
        const queue = `nats://127.0.0.1:${await freePort()}`;
        const out = await runCli(['worker', '--data-dir', env.dataDir, '--queue', queue]);
        expectOneClearFailure(out, /cannot connect to NATS/);
      });

      it('worker whose --metrics-port is in use', async () => {
        const out = await runCli([
          'worker',
          '--data-dir',
          env.dataDir,
          '--metrics-port',
          String(takenPort),
        ]);
        expectOneClearFailure(out, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${takenPort}`));
      });
    });
  });
});
