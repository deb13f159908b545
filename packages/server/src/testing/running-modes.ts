import type { KeyRole } from '@tokenwatch/core';
import { startDynalite } from '../adapters/store/dynamodb/testing/dynalite.js';
import { openStore } from '../adapters/store/open-store.js';
import { createProjectKey } from '../bootstrap.js';
import { configFromFlags } from '../cli/cli-context.js';
import { startApiApp } from '../lambda/http-handler.js';
import { createLambdaRuntime, loadLambdaConfig } from '../lambda/lambda-runtime.js';
import { createSqsHandler, type SqsEvent } from '../lambda/sqs-handler.js';
import { createLogger } from '../logging/logger.js';
import {
  createScaleOutEnv,
  startWorkerProcess,
  type WorkerProcess,
  waitDrained,
} from './scale-out-harness.js';
import { removeDataDir, startServerProcess } from './server-process.js';

/**
 * A whole tokenwatch system running in one of its modes, reached over real HTTP, for end-to-end
 * tests and benchmarks:
 *
 * - `embedded`: `tokenwatch serve` (SQLite) as its own process;
 * - `scale-out`: `tokenwatch serve --queue` and two `tokenwatch worker` processes on PostgreSQL
 *   and NATS JetStream (the services on loopback);
 * - `aws`: the Lambda handlers on dynalite, in this process: two instances of the API function
 *   (function URL app; each has its own /v1/check cache, as two Lambda instances would) and the
 *   SQS function of the `default` project.
 */
export type ModeName = 'embedded' | 'scale-out' | 'aws';

export interface RunningMode {
  mode: ModeName;
  /** Where events are posted. */
  url: string;
  /** Where /v1/check is asked: another API instance in AWS mode, the same server otherwise. */
  checkUrl: string;
  /** Creates a key of a new (or existing) project straight in the store, as the CLI does. */
  createKey(projectId: string, role: KeyRole): Promise<string>;
  /** Resolves when the queue (scale-out) holds nothing unprocessed; at once in other modes. */
  drained(): Promise<void>;
  /** AWS only: the SQS function of the `default` project. */
  sqs?: (event: SqsEvent) => Promise<unknown>;
  close(): Promise<void>;
}

const quietIo = { env: { TOKENWATCH_LOG_LEVEL: 'warn' }, stdout: () => {}, stderr: () => {} };

/** Creates keys through the store the data dir's config names (what `tokenwatch keys create` does). */
async function keysOfDataDir(dataDir: string) {
  const config = configFromFlags({ 'data-dir': dataDir }, quietIo);
  const store = await openStore(config, { thread: 'main' });
  await store.migrate();
  return {
    create: async (projectId: string, role: KeyRole) =>
      (await createProjectKey(store, { projectId, role, nowMs: Date.now() })).key,
    close: () => store.close(),
  };
}

export async function startEmbedded(): Promise<RunningMode> {
  const server = await startServerProcess();
  const keys = await keysOfDataDir(server.dataDir);
  return {
    mode: 'embedded',
    url: server.url,
    checkUrl: server.url,
    createKey: keys.create,
    drained: async () => {},
    async close() {
      await keys.close();
      await server.kill('SIGTERM');
      removeDataDir(server.dataDir);
    },
  };
}

export async function startScaleOut(label: string, workers = 2): Promise<RunningMode> {
  const env = await createScaleOutEnv(label);
  const server = await startServerProcess({ dataDir: env.dataDir });
  const started: WorkerProcess[] = [];
  for (let i = 0; i < workers; i++) started.push(await startWorkerProcess(env));
  const keys = await keysOfDataDir(env.dataDir);
  return {
    mode: 'scale-out',
    url: server.url,
    checkUrl: server.url,
    createKey: keys.create,
    drained: () => waitDrained(env),
    async close() {
      await keys.close();
      for (const w of started) await w.kill('SIGTERM');
      await server.kill('SIGTERM');
      await env.cleanup();
    },
  };
}

export async function startAws(label: string): Promise<RunningMode> {
  const local = await startDynalite();
  const config = loadLambdaConfig({
    TOKENWATCH_TABLE: `${label}-${process.pid}`,
    TOKENWATCH_DYNAMODB_ENDPOINT: local.endpoint,
    TOKENWATCH_SNS_ENDPOINT: 'http://127.0.0.1:9',
  });
  const rt = await createLambdaRuntime(config, { logger: createLogger('silent') });
  await rt.store.migrate();
  const ingestApp = await startApiApp(rt);
  const checkApp = await startApiApp(rt);
  return {
    mode: 'aws',
    url: ingestApp.url,
    checkUrl: checkApp.url,
    createKey: async (projectId, role) =>
      (await createProjectKey(rt.store, { projectId, role, nowMs: Date.now() })).key,
    drained: async () => {},
    sqs: createSqsHandler(rt),
    async close() {
      await ingestApp.close();
      await checkApp.close();
      await rt.close();
      await local.close();
    },
  };
}

export function startMode(mode: ModeName, label: string): Promise<RunningMode> {
  if (mode === 'embedded') return startEmbedded();
  if (mode === 'scale-out') return startScaleOut(label);
  return startAws(label);
}
