import { parseArgs } from 'node:util';
import { TokenwatchError } from '@tokenwatch/core';
import type { startWorker } from '../../worker.js';
import { type CliIo, COMMON_OPTIONS, configFromFlags } from '../cli-context.js';
import { listenForStop } from '../stop-signal.js';

export const WORKER_HELP = `tokenwatch worker --store postgres://… --queue nats://… [--metrics-port P] [--config FILE]

Scale-out processor (run any number): consumes the JetStream stream that
\`tokenwatch serve --queue nats://…\` publishes to, applies each batch with the rules in one
PostgreSQL transaction (acked after commit, so a crash never loses or double-counts a batch)
and sends alert notifications from the outbox. See docs/deploy.md.`;

export async function workerCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...COMMON_OPTIONS,
      store: { type: 'string' },
      queue: { type: 'string' },
      'metrics-port': { type: 'string' },
    },
  });
  if (values.help) {
    io.stdout(`${WORKER_HELP}\n`);
    return 0;
  }
  const config = configFromFlags(values, io);
  const port = values['metrics-port'];
  if (port !== undefined && !/^\d+$/.test(port)) {
    throw new TokenwatchError('invalid_argument', `--metrics-port must be a number, got "${port}"`);
  }
  const stop = listenForStop();
  let worker: Awaited<ReturnType<typeof startWorker>>;
  try {
    // Imported here, not at the top: NATS and PostgreSQL's clients only load in a worker.
    const { startWorker } = await import('../../worker.js');
    worker = await startWorker(config, {
      metricsPort: port === undefined ? undefined : Number(port),
    });
  } catch (err) {
    stop.dispose();
    throw err;
  }
  io.stdout(
    `tokenwatch worker running (store: ${config.store.driver}, queue: ${config.queue.driver})${
      worker.url ? `; metrics at ${worker.url}/metrics` : ''
    }\n`,
  );
  const signal = await stop.received;
  io.stderr(`\n${signal}: stopping, finishing the batch in flight...\n`);
  await worker.close().catch(() => {});
  return 0;
}
