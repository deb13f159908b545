import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LoopbackReceiver } from './testing/loopback-receiver.js';

const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));

function runNode(code: string): Promise<{ stdout: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      ['--input-type=module', '-e', code],
      { timeout: 20_000 },
      (err, stdout) => (err ? reject(err) : resolve({ stdout, ms: Date.now() - t0 })),
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
    const { stdout, ms } = await runNode(`
      import { createTokenwatch } from ${JSON.stringify(DIST)};
      const tw = createTokenwatch({ endpoint: 'http://127.0.0.1:9', apiKey: 'k', exitTimeoutMs: 300 });
      tw.record({ userId: 'u', modelId: 'm' });
      process.on('exit', () => console.log(JSON.stringify(tw.stats())));
    `);
    const stats = JSON.parse(stdout.trim());
    expect(stats).toMatchObject({ sent: 0, pending: 0 });
    expect(stats.droppedByReason.shutdown).toBe(1);
    expect(ms).toBeLessThan(5000);
  });
});
