import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LoopbackReceiver } from './testing/loopback-receiver.js';

const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));

/**
 * These tests tell "gives up at its deadline" (well under a second) from "waits for the request,
 * the backoff or the socket" by making the latter take two minutes in each child, and putting the
 * bound far between the two. A tight bound measured the machine instead: on a loaded CI machine
 * one child stalled 7.45 s inside a 0.4 s shutdown. client.test.ts checks the same deadline
 * in-process (flush resolves false at its timeout, shutdown drops what is left).
 */
const SLOW_MS = 120_000;
const BOUND_MS = 15_000;

function runNode(code: string): Promise<{ stdout: string }> {
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      ['--input-type=module', '-e', code],
      { timeout: 45_000 },
      (err, stdout) => (err ? reject(err) : resolve({ stdout })),
    ),
  );
}

describe.skipIf(!existsSync(DIST))('flush at process exit (built SDK in a child process)', () => {
  let rx: LoopbackReceiver;
  beforeEach(async () => {
    rx = await new LoopbackReceiver().start();
  });
  afterEach(() => rx.stop());

  it('a script that records and simply ends still delivers its events', async () => {
    await runNode(`
      import { createTokenwatch } from ${JSON.stringify(DIST)};
      const tw = createTokenwatch({ endpoint: ${JSON.stringify(rx.url)}, apiKey: 'k', flushIntervalMs: 60000 });
      for (let i = 0; i < 7; i++) tw.record({ userId: 'u', modelId: 'm', inputTokens: i });
    `);
    expect(rx.accepted.size).toBe(7);
  });

  it('with the collector dead, the exit drain gives up at its deadline', async () => {
    const { stdout } = await runNode(`
      import { createTokenwatch } from ${JSON.stringify(DIST)};
      const tw = createTokenwatch({ endpoint: 'http://127.0.0.1:9', apiKey: 'k', exitTimeoutMs: 300, initialBackoffMs: ${SLOW_MS} });
      tw.record({ userId: 'u', modelId: 'm' });
      const end = Date.now();
      process.on('exit', () => console.log(JSON.stringify({ held: Date.now() - end, stats: tw.stats() })));
    `);
    const { held, stats } = JSON.parse(stdout.trim());
    expect(stats).toMatchObject({ sent: 0, pending: 0 });
    expect(stats.droppedByReason.shutdown).toBe(1);
    expect(held).toBeLessThan(BOUND_MS);
  });

  describe('a collector that accepts connections and never answers', () => {
    let hang: Server;
    let url = '';
    const sockets = new Set<Socket>();
    beforeEach(async () => {
      hang = createServer((sock) => {
        sockets.add(sock);
        sock.on('data', () => undefined); // read the request, never answer
      });
      await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(hang.address() as { port: number }).port}`;
    });
    afterEach(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => hang.close(() => r()));
    });

    // The time from the script's last line to the process's exit is measured inside the child,
    // so the child's start-up on a loaded machine does not count. Before the fix this was the
    // request timeout plus the exit timeout.
    it('a script that ends with a request in flight exits within exitTimeoutMs', async () => {
      const { stdout } = await runNode(`
        import { createTokenwatch } from ${JSON.stringify(DIST)};
        const tw = createTokenwatch({ endpoint: ${JSON.stringify(url)}, apiKey: 'k', flushIntervalMs: 1, exitTimeoutMs: 300, requestTimeoutMs: ${SLOW_MS} });
        tw.record({ userId: 'u', modelId: 'm' });
        await new Promise((r) => setTimeout(r, 200)); // the batch is in flight, unanswered
        const end = Date.now();
        process.on('exit', () => console.log(JSON.stringify({ held: Date.now() - end, stats: tw.stats() })));
      `);
      const { held, stats } = JSON.parse(stdout.trim());
      expect(stats).toMatchObject({ sent: 0, pending: 0 });
      expect(stats.droppedByReason.shutdown).toBe(1);
      expect(held).toBeLessThan(BOUND_MS);
    });

    it('shutdown() resolves within exitTimeoutMs by default, and nothing of it holds the process after', async () => {
      const { stdout } = await runNode(`
        import { createTokenwatch } from ${JSON.stringify(DIST)};
        const tw = createTokenwatch({ endpoint: ${JSON.stringify(url)}, apiKey: 'k', flushIntervalMs: 1, exitTimeoutMs: 300, requestTimeoutMs: ${SLOW_MS} });
        tw.record({ userId: 'u', modelId: 'm' });
        await new Promise((r) => setTimeout(r, 200));
        const t0 = Date.now();
        await tw.shutdown();
        const end = Date.now();
        process.on('exit', () => console.log(JSON.stringify({ shutdown: end - t0, held: Date.now() - end })));
      `);
      const { shutdown, held } = JSON.parse(stdout.trim());
      expect(shutdown).toBeLessThan(BOUND_MS);
      expect(held).toBeLessThan(BOUND_MS);
    });

    // A custom fetch (here Node's global one, whose request in flight keeps the process alive)
    // cannot stop a request from holding a finished process, but shutdown() aborts it at its
    // deadline: after it resolves nothing of the SDK holds the process.
    it('with the global fetch, shutdown() aborts the request at its deadline and holds nothing after', async () => {
      const { stdout } = await runNode(`
        import { createTokenwatch } from ${JSON.stringify(DIST)};
        const tw = createTokenwatch({ endpoint: ${JSON.stringify(url)}, apiKey: 'k', flushIntervalMs: 1, exitTimeoutMs: 300, requestTimeoutMs: ${SLOW_MS}, fetch: globalThis.fetch });
        tw.record({ userId: 'u', modelId: 'm' });
        await new Promise((r) => setTimeout(r, 200));
        const t0 = Date.now();
        await tw.shutdown();
        const end = Date.now();
        process.on('exit', () => console.log(JSON.stringify({ shutdown: end - t0, held: Date.now() - end, stats: tw.stats() })));
      `);
      const { shutdown, held, stats } = JSON.parse(stdout.trim());
      expect(stats).toMatchObject({ sent: 0, pending: 0 });
      expect(stats.droppedByReason.shutdown).toBe(1);
      expect(shutdown).toBeLessThan(BOUND_MS);
      expect(held).toBeLessThan(BOUND_MS);
    });

    it('a transport that ignores the abort signal does not hold shutdown() either', async () => {
      const { stdout } = await runNode(`
        import { createTokenwatch } from ${JSON.stringify(DIST)};
        const never = { send: () => new Promise(() => setTimeout(() => undefined, ${SLOW_MS})) };
        const tw = createTokenwatch({ transport: never, flushIntervalMs: 1, exitTimeoutMs: 300 });
        tw.record({ userId: 'u', modelId: 'm' });
        await new Promise((r) => setTimeout(r, 100));
        const t0 = Date.now();
        await tw.shutdown();
        console.log(JSON.stringify({ shutdown: Date.now() - t0 }));
        process.exit(0); // the transport's own timer is the app's business
      `);
      expect(JSON.parse(stdout.trim()).shutdown).toBeLessThan(BOUND_MS);
    });
  });
});
