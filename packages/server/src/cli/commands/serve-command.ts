import { parseArgs } from 'node:util';
import type { startServer } from '../../main.js';
import { type CliIo, COMMON_OPTIONS, configFromFlags } from '../cli-context.js';
import { listenForStop } from '../stop-signal.js';

export const SERVE_HELP = `tokenwatch serve [--port P] [--host H] [--data-dir D] [--config FILE] [--store postgres://…] [--queue nats://…]

Runs ingest, the query API and the metrics endpoint on the embedded SQLite store
(or, scale-out, on PostgreSQL, publishing accepted events to NATS JetStream for
\`tokenwatch worker\` to apply; see docs/deploy.md).
On the first start it creates the default project and prints an admin key and an
ingest key once, with a ready curl line.`;

export async function serveCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...COMMON_OPTIONS,
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      store: { type: 'string' },
      queue: { type: 'string' },
    },
  });
  if (values.help) {
    io.stdout(`${SERVE_HELP}\n`);
    return 0;
  }
  const config = configFromFlags(values, io);
  const stop = listenForStop();
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    // Imported here, not at the top: the other commands need none of the server's modules.
    const { startServer } = await import('../../main.js');
    server = await startServer(config);
  } catch (err) {
    stop.dispose();
    throw err;
  }
  const lines = [
    ``,
    `tokenwatch is running at ${server.url}`,
    config.store.driver === 'sqlite'
      ? `  data: ${config.dataDir} (SQLite)`
      : `  store: PostgreSQL; queue: ${config.queue.driver === 'nats' ? 'NATS JetStream (run tokenwatch worker)' : 'embedded'}`,
  ];
  if (!server.firstStart)
    lines.push(`  dashboard: ${server.url}/ (sign in with an admin or read key)`);
  if (server.firstStart) {
    const { adminKey, ingestKey } = server.firstStart;
    lines.push(
      ``,
      `First start: created the "default" project. These keys are shown ONCE; store them now.`,
      `  admin key  (read usage, manage keys): ${adminKey}`,
      `  ingest key (send events):            ${ingestKey}`,
      ``,
      `Open the dashboard (this link signs in as admin; keep it private):`,
      `  ${server.url}/#key=${adminKey}`,
      ``,
      `Send an event:`,
      `  curl -sS -X POST ${server.url}/v1/events -H 'Authorization: Bearer ${ingestKey}' -H 'Content-Type: application/json' \\`,
      `    -d '{"id":"evt-1","timestamp":'$(date +%s000)',"userId":"alice","appId":"chat","modelId":"us.anthropic.claude-sonnet-4-5-20250929-v1:0","provider":"bedrock","inputTokens":1200,"outputTokens":350}'`,
      `Read usage:`,
      `  curl -sS '${server.url}/v1/usage?groupBy=user,model' -H 'Authorization: Bearer ${adminKey}'`,
      `Generate demo traffic:`,
      `  npx tokenwatch demo --data-dir ${config.dataDir}`,
    );
  }
  lines.push('', 'Press Ctrl+C to stop (accepted events are flushed first).', '');
  io.stdout(lines.join('\n'));

  const signal = await stop.received;
  io.stderr(`\n${signal}: stopping, flushing accepted events...\n`);
  await server.close().catch(() => {});
  return 0;
}
