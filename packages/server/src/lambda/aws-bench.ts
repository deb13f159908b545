/**
 * `npm run bench:aws`: events/s through the Lambda SQS handler into dynalite per invocation
 * batch size, and the DynamoDB capacity units per event (from the ConsumedCapacity of every
 * request; GSI writes counted from the items written), compared in the same run with the
 * seed's way (per event: read the item, write it, query the hour).
 * dynalite is a local LevelDB implementation: its speed says nothing about DynamoDB's latency;
 * the unit counts are what DynamoDB bills.
 */
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
        // dynalite reports table units only: an hour item (in GSI1) or a delivery (in GSI2)
        // written also costs one index write unit (the index entries are < 1 KB).
        const pk = JSON.stringify(
          (args.input.Key as Record<string, unknown> | undefined) ?? args.input.Item ?? '',
        );
        if (pk.includes('"H#') || pk.includes('"DLV#')) units.indexWrite += 1;
      }
      return result;
    },
    { step: 'initialize', name: 'tokenwatchBenchMeter' },
  );
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

async function main(): Promise<void> {
  const local = await startDynalite();
  const total = Number(process.env.BENCH_AWS_EVENTS ?? 1_000);
  const nowMs = Date.UTC(2026, 2, 10, 10, 59, 0);
  const startMs = Date.UTC(2026, 2, 10, 10, 0, 0);
  const rows: string[] = [];
  for (const batch of [10, 100, 500]) {
    const config = loadLambdaConfig({
      TOKENWATCH_TABLE: `bench-${batch}`,
      TOKENWATCH_DYNAMODB_ENDPOINT: local.endpoint,
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
    const units: Units = { read: 0, write: 0, indexWrite: 0, requests: 0 };
    meter((rt.store as unknown as { io: { raw: never } }).io.raw, units);
    const handle = createSqsHandler(rt);
    const seq = { n: 0 };
    const started = performance.now();
    // One SQS record per 10 events (the SDK's batches), `batch` events per invocation.
    for (let done = 0; done < total; done += batch) {
      const records: SqsRecord[] = [];
      const size = Math.min(batch, total - done);
      for (let k = 0; k < size; k += 10)
        records.push({
          messageId: `m${done + k}`,
          body: JSON.stringify({ events: wireEvents(Math.min(10, size - k), startMs, seq) }),
        });
      await handle({ Records: records });
    }
    const seconds = (performance.now() - started) / 1000;
    rows.push(
      `| tokenwatch, ${batch} events per invocation | ${(total / seconds).toFixed(0)} | ${((units.write + units.indexWrite) / total).toFixed(2)} | ${(units.read / total).toFixed(2)} | ${(units.requests / total).toFixed(2)} |`,
    );
    await rt.close();
  }
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
    const units: Units = { read: 0, write: 0, indexWrite: 0, requests: 0 };
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
    rows.push(
      `| the seed's way (get, update, query per event; double counts on redelivery) | ${(total / seconds).toFixed(0)} | ${(units.write / total).toFixed(2)} | ${(units.read / total).toFixed(2)} | ${(units.requests / total).toFixed(2)} |`,
    );
    await store.close();
  }
  await local.close();
  console.log(
    `${total} events per row, into dynalite on loopback, ${new Date().toISOString().slice(0, 10)}\n`,
  );
  console.log(
    '| path | events/s (dynalite) | write units / event | read units / event | requests / event |',
  );
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(r);
}

await main();
