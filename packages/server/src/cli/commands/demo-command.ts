import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TokenwatchError } from '@tokenwatch/core';
import { openStore } from '../../adapters/store/open-store.js';
import { createProjectKey, DEFAULT_PROJECT_ID } from '../../bootstrap.js';
import { postBatch } from '../../demo/send-events.js';
import { createTrafficGenerator } from '../../demo/traffic.js';
import { type CliIo, COMMON_OPTIONS, configFromFlags } from '../cli-context.js';

export const DEMO_HELP = `tokenwatch demo [--url URL --key INGEST_KEY | --data-dir D] [--events N] [--hours H] [--users U] [--concurrency C] [--seed S]

Sends realistic synthetic usage through the real HTTP API: 5 apps, a long tail of users,
20 Bedrock models (one deliberately unpriced), a daily rhythm over the last H hours.
With --data-dir it finds the running server (server.json) and creates an ingest key itself.`;

export async function demoCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...COMMON_OPTIONS,
      url: { type: 'string' },
      key: { type: 'string' },
      events: { type: 'string', default: '20000' },
      hours: { type: 'string', default: '48' },
      users: { type: 'string', default: '2000' },
      concurrency: { type: 'string', default: '4' },
      batch: { type: 'string', default: '100' },
      seed: { type: 'string', default: '42' },
    },
  });
  if (values.help) {
    io.stdout(`${DEMO_HELP}\n`);
    return 0;
  }
  const int = (name: string, v: string | undefined, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max) {
      throw new TokenwatchError(
        'invalid_argument',
        `--${name} must be an integer from 1 to ${max}`,
      );
    }
    return n;
  };
  const total = int('events', values.events, 10_000_000);
  const hours = int('hours', values.hours, 34 * 24);
  const users = int('users', values.users, 1_000_000);
  const concurrency = int('concurrency', values.concurrency, 64);
  const batchSize = int('batch', values.batch, 1000);
  const seed = int('seed', values.seed, 2 ** 31);

  let url = values.url;
  let key = values.key;
  if (!url || !key) {
    const config = configFromFlags(values, io);
    const serverFile = join(config.dataDir, 'server.json');
    if (!url) {
      if (!existsSync(serverFile)) {
        throw new TokenwatchError(
          'invalid_argument',
          `no running server found (${serverFile} is missing); start \`tokenwatch serve\` or pass --url`,
        );
      }
      url = (JSON.parse(readFileSync(serverFile, 'utf8')) as { url: string }).url;
    }
    if (!key) {
      const store = await openStore(config, { thread: 'main' });
      try {
        await store.migrate();
        key = (
          await createProjectKey(store, {
            projectId: DEFAULT_PROJECT_ID,
            role: 'ingest',
            name: 'demo',
            nowMs: Date.now(),
          })
        ).key;
      } finally {
        await store.close();
      }
    }
  }
  const next = createTrafficGenerator({
    users,
    seed,
    nowMs: Date.now(),
    spreadMs: hours * 3_600_000,
    tags: true,
  });
  let sent = 0;
  let accepted = 0;
  let duplicates = 0;
  let retries = 0;
  const started = performance.now();
  const worker = async () => {
    while (sent < total) {
      const n = Math.min(batchSize, total - sent);
      sent += n;
      const events = Array.from({ length: n }, next);
      const result = await postBatch(url as string, key as string, JSON.stringify({ events }));
      accepted += result.accepted;
      duplicates += result.duplicates;
      retries += result.retries;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  io.stdout(
    `demo: sent ${total} events to ${url} in ${seconds.toFixed(1)} s (${Math.round(total / seconds)} events/s): ${accepted} accepted, ${duplicates} duplicates, ${retries} retried requests\n` +
      `see them: npx tokenwatch usage${values['data-dir'] ? ` --data-dir ${values['data-dir']}` : ''} --period ${hours}h\n`,
  );
  return 0;
}
