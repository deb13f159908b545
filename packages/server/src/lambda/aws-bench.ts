/**
 * `npm run bench:aws`: events/s through the Lambda SQS handler into dynalite per invocation
 * size, and the DynamoDB capacity units per event (from the ConsumedCapacity of every request;
 * GSI writes counted from the items written), compared in the same run with the seed's way (per
 * event: read the item, write it, query the hour). The last tokenwatch row is one full batch of
 * the CDK stack's event source mapping (deploy/aws/lib/ingest-batching.mjs), with a breakdown
 * of its write units by item kind.
 * dynalite is a local LevelDB implementation: its speed says nothing about DynamoDB's latency;
 * the unit counts are what DynamoDB bills. BENCH_AWS_EVENTS (default 1,000) sets the events of
 * the other rows, BENCH_AWS_STACK_EVENTS those of the stack's row (default: one full batch).
 */
import { loadavg as osLoadavg } from 'node:os';
import { GetItemCommand, QueryCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDbStore } from '../adapters/store/dynamodb/dynamodb-store.js';
import { startDynalite } from '../adapters/store/dynamodb/testing/dynalite.js';
import { createLogger } from '../logging/logger.js';
import { createLambdaRuntime, loadLambdaConfig } from './lambda-runtime.js';
import { createSqsHandler, type SqsRecord } from './sqs-handler.js';

interface Units {
  read: number;
  write: number;
  indexWrite: number;
  requests: number;
  /** Write units by item kind (the partition key's prefix), GSI writes under `<kind>+gsi`. */
  byKind: Map<string, number>;
}

const KIND_NAMES: Record<string, string> = {
  'E#': 'dedupe claims (E#)',
  'M#': 'minute rollups (M#)',
  'H#': 'hour rollups (H#)',
  'H#+gsi': 'hour rollups in gsi1',
  'D#': 'day rollups (D#)',
  'C#': 'rule counters (C#)',
  'B#': 'batch records: intent and done (B#)',
  'rule lock': 'rule lock leases (R#…/LOCK)',
};

function kindOf(input: Record<string, unknown>): string {
  const key = (input.Key ?? input.Item) as Record<string, unknown> | undefined;
  const raw = key?.pk;
  const pk = typeof raw === 'string' ? raw : ((raw as { S?: string } | undefined)?.S ?? '');
  if (pk.startsWith('R#')) return 'rule lock';
  return pk.slice(0, pk.indexOf('#') + 1) || pk || 'other';
}

function meter(client: { middlewareStack: { add: (...a: never[]) => void } }, units: Units): void {
  const add = client.middlewareStack.add as unknown as (
    mw: (
      next: (args: {
        input: Record<string, unknown>;
      }) => Promise<{ output: Record<string, unknown> }>,
      context: { commandName?: string },
    ) => (args: { input: Record<string, unknown> }) => Promise<{ output: Record<string, unknown> }>,
    opts: { step: string; name: string },
  ) => void;
  add(
    (next, context) => async (args) => {
      args.input.ReturnConsumedCapacity = 'TOTAL';
      const result = await next(args);
      units.requests++;
      const cc = result.output.ConsumedCapacity as
        | { CapacityUnits?: number }
        | Array<{ CapacityUnits?: number }>
        | undefined;
      const total = Array.isArray(cc)
        ? cc.reduce((s, c) => s + (c.CapacityUnits ?? 0), 0)
        : (cc?.CapacityUnits ?? 0);
      const isRead = /^(Get|Query|Scan|BatchGet)/.test(context.commandName ?? '');
      if (isRead) units.read += total;
      else {
        units.write += total;
        const kind = kindOf(args.input);
        units.byKind.set(kind, (units.byKind.get(kind) ?? 0) + total);
        // dynalite reports table units only: an hour item (in GSI1) or a delivery (in GSI2)
        // written also costs one index write unit (the index entries are < 1 KB).
        const pk = JSON.stringify(
          (args.input.Key as Record<string, unknown> | undefined) ?? args.input.Item ?? '',
        );
        if (pk.includes('"H#') || pk.includes('"DLV#')) {
          units.indexWrite += 1;
          units.byKind.set(`${kind}+gsi`, (units.byKind.get(`${kind}+gsi`) ?? 0) + 1);
        }
      }
      return result;
    },
    { step: 'initialize', name: 'tokenwatchBenchMeter' },
  );
  // The store's client keeps each command's resolved middleware (cacheMiddleware, see
  // DynamoIo): forget it, so commands the store sent before this meter was added count too.
  delete (client as { handlers?: unknown }).handlers;
}

const USERS = 200;
const MODELS = [
  'anthropic.claude-3-5-haiku-20241022-v1:0',
  'anthropic.claude-sonnet-4-5-20250929-v1:0',
  'amazon.nova-lite-v1:0',
];

function wireEvents(n: number, startMs: number, seq: { n: number }) {
  return Array.from({ length: n }, () => {
    const i = seq.n++;
    return {
      id: `bench-${i}`,
      timestamp: new Date(startMs + (i % 3_000) * 1_000).toISOString(),
      userId: `user-${(i * 7919) % USERS}`,
      appId: i % 3 === 0 ? 'search' : 'support-bot',
      modelId: MODELS[i % MODELS.length] as string,
      provider: 'bedrock',
      inputTokens: 500 + (i % 1000),
      outputTokens: 100 + (i % 300),
    };
  });
}

/** The ingest function's batching in the CDK stack (deploy/aws/lib/ingest-batching.mjs). */
async function stackBatching(): Promise<{ batchSize: number; windowSeconds: number }> {
  const url = new URL('../../../../deploy/aws/lib/ingest-batching.mjs', import.meta.url);
  const m = (await import(url.href)) as {
    INGEST_BATCH_SIZE: number;
    INGEST_BATCHING_WINDOW_SECONDS: number;
  };
  return { batchSize: m.INGEST_BATCH_SIZE, windowSeconds: m.INGEST_BATCHING_WINDOW_SECONDS };
}

/** Events per SQS message in the bench (the SDK packs more into a message when it can). */
const EVENTS_PER_MESSAGE = 10;

interface Measured {
  label: string;
  events: number;
  seconds: number;
  units: Units;
}

function perEvent(m: Measured): number {
  return (m.units.write + m.units.indexWrite) / m.events;
}

async function runTokenwatch(
  endpoint: string,
  perInvocation: number,
  total: number,
  label: string,
): Promise<Measured> {
  const nowMs = Date.UTC(2026, 2, 10, 10, 59, 0);
  const startMs = Date.UTC(2026, 2, 10, 10, 0, 0);
  const config = loadLambdaConfig({
    TOKENWATCH_TABLE: `bench-${perInvocation}`,
    TOKENWATCH_DYNAMODB_ENDPOINT: endpoint,
    TOKENWATCH_SNS_ENDPOINT: 'http://127.0.0.1:9',
  });
  const rt = await createLambdaRuntime(config, {
    now: () => nowMs,
    logger: createLogger((process.env.BENCH_LOG ?? 'silent') as 'silent'),
  });
  await rt.store.migrate();
  await rt.store.createProject({ id: 'default', name: 'default', createdAtMs: startMs });
  // The seed's rule, logged (no network in the bench).
  await rt.store.createRule(
    {
      id: 'seed',
      projectId: 'default',
      name: 'seed',
      scope: ['user', 'model'],
      filters: {},
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'hour', timeZone: 'UTC' },
      budget: undefined,
      levels: [{ value: 10_000 }],
      forecast: false,
      channels: [{ type: 'log' }],
      enforce: false,
      enabled: true,
      createdAtMs: startMs,
      updatedAtMs: startMs,
    },
    startMs,
  );
  const units: Units = { read: 0, write: 0, indexWrite: 0, requests: 0, byKind: new Map() };
  meter((rt.store as unknown as { io: { raw: never } }).io.raw, units);
  const handle = createSqsHandler(rt);
  const seq = { n: 0 };
  const started = performance.now();
  // One SQS record per EVENTS_PER_MESSAGE events, `perInvocation` events per invocation.
  for (let done = 0; done < total; done += perInvocation) {
    const records: SqsRecord[] = [];
    const size = Math.min(perInvocation, total - done);
    for (let k = 0; k < size; k += EVENTS_PER_MESSAGE)
      records.push({
        messageId: `m${done + k}`,
        body: JSON.stringify({
          events: wireEvents(Math.min(EVENTS_PER_MESSAGE, size - k), startMs, seq),
        }),
      });
    const result = await handle({ Records: records });
    if (result.batchItemFailures.length > 0)
      throw new Error(`${result.batchItemFailures.length} messages failed`);
  }
  const seconds = (performance.now() - started) / 1000;
  await rt.close();
  return { label, events: total, seconds, units };
}

function row(m: Measured): string {
  return `| ${m.label} | ${(m.events / m.seconds).toFixed(0)} | ${perEvent(m).toFixed(2)} | ${(m.units.read / m.events).toFixed(2)} | ${(m.units.requests / m.events).toFixed(2)} |`;
}

function loadavg(): string {
  return osLoadavg()
    .map((l) => l.toFixed(2))
    .join(', ');
}

async function main(): Promise<void> {
  const loadBefore = loadavg();
  const local = await startDynalite();
  const total = Number(process.env.BENCH_AWS_EVENTS ?? 1_000);
  const stack = await stackBatching();
  const stackEvents = stack.batchSize * EVENTS_PER_MESSAGE;
  const nowMs = Date.UTC(2026, 2, 10, 10, 59, 0);
  const startMs = Date.UTC(2026, 2, 10, 10, 0, 0);
  const measured: Measured[] = [];
  for (const perInvocation of [10, 100, 1_000])
    measured.push(
      await runTokenwatch(
        local.endpoint,
        perInvocation,
        total,
        `tokenwatch, ${perInvocation} events per invocation`,
      ),
    );
  // The stack's full batch: one invocation of `batchSize` messages.
  const atStack = await runTokenwatch(
    local.endpoint,
    stackEvents,
    Number(process.env.BENCH_AWS_STACK_EVENTS ?? stackEvents),
    `tokenwatch, the stack's full batch (${stack.batchSize} messages × ${EVENTS_PER_MESSAGE} = ${stackEvents} events per invocation)`,
  );
  measured.push(atStack);
  const rows = measured.map(row);
  let seedUnits = 0;
  {
    // The seed's Lambda, per event: get the hour item, write the sum back, query the hour.
    const store = new DynamoDbStore({
      tableName: 'bench-seed',
      endpoint: local.endpoint,
      region: local.region,
      credentials: local.credentials,
    });
    await store.migrate();
    const io = (
      store as unknown as { io: { raw: import('@aws-sdk/client-dynamodb').DynamoDBClient } }
    ).io;
    const units: Units = { read: 0, write: 0, indexWrite: 0, requests: 0, byKind: new Map() };
    meter(io.raw as never, units);
    const seq = { n: 0 };
    const events = wireEvents(total, startMs, seq);
    const started = performance.now();
    for (const e of events) {
      const pk = { S: `${e.userId}#${e.modelId}` };
      const sk = { S: new Date(e.timestamp).toISOString().slice(0, 13).replace('T', '-') };
      await io.raw.send(new GetItemCommand({ TableName: 'bench-seed', Key: { pk, sk } }));
      await io.raw.send(
        new UpdateItemCommand({
          TableName: 'bench-seed',
          Key: { pk, sk },
          UpdateExpression:
            'ADD input_tokens :i, output_tokens :o, total_tokens :t SET last_updated = :u',
          ExpressionAttributeValues: {
            ':i': { N: String(e.inputTokens) },
            ':o': { N: String(e.outputTokens) },
            ':t': { N: String(e.inputTokens + e.outputTokens) },
            ':u': { S: new Date(nowMs).toISOString() },
          },
        }),
      );
      await io.raw.send(
        new QueryCommand({
          TableName: 'bench-seed',
          KeyConditionExpression: 'pk = :pk AND sk = :sk',
          ExpressionAttributeValues: { ':pk': pk, ':sk': sk },
        }),
      );
    }
    const seconds = (performance.now() - started) / 1000;
    seedUnits = units.write / total;
    rows.push(
      `| the seed's way (get, update, query per event; double counts on redelivery) | ${(total / seconds).toFixed(0)} | ${(units.write / total).toFixed(2)} | ${(units.read / total).toFixed(2)} | ${(units.requests / total).toFixed(2)} |`,
    );
    await store.close();
  }
  await local.close();
  console.log(
    `${total} events per row (the stack's row: ${atStack.events}), into dynalite on loopback, finished ${new Date().toISOString().slice(0, 16)}Z; ` +
      `load average (1, 5, 15 min) ${loadBefore} before, ${loadavg()} after\n`,
  );
  console.log(
    '| path | events/s (dynalite) | write units / event | read units / event | requests / event |',
  );
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(r);
  const ours = perEvent(atStack);
  console.log(
    `\nwrite units per event at the stack's batch settings (batch size ${stack.batchSize}, window ${stack.windowSeconds} s, ${EVENTS_PER_MESSAGE} events per message): ` +
      `tokenwatch ${ours.toFixed(2)}, the seed ${seedUnits.toFixed(2)}: ${(ours / seedUnits).toFixed(2)}× the seed's`,
  );
  console.log("\nwhere they go, at the stack's batch settings (write units per event):\n");
  console.log('| item | write units / event |');
  console.log('|---|---:|');
  for (const [kind, value] of [...atStack.units.byKind].sort((a, b) => b[1] - a[1]))
    console.log(`| ${KIND_NAMES[kind] ?? kind} | ${(value / atStack.events).toFixed(3)} |`);
}

await main();
