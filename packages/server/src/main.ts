import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Store } from '@tokenwatch/core';
import { openReconciliationStore } from './adapters/reconciliation/open-reconciliation-store.js';
import { openStore } from './adapters/store/open-store.js';
import { isWalMonitor, type WalMonitor } from './adapters/store/sqlite/wal-monitor.js';
import { createAlerting, dispatcherOptions } from './alerts/alerting.js';
import { dispatcherLeaseMs } from './alerts/dispatcher.js';
import { KeyAuthenticator } from './auth/api-keys.js';
import { startReconcileJob } from './bedrock/reconcile-job.js';
import { ensureDefaultProject, type FirstStartKeys } from './bootstrap.js';
import type { Config } from './config/config-schema.js';
import type { ConfigRule } from './config/load-config.js';
import { createHttpHandler } from './http/app.js';
import { applyHttpLimits, httpServerOptions } from './http/connection-limits.js';
import { listen } from './http/listen.js';
import { sendJson } from './http/respond.js';
import type { EventSink } from './ingest/event-sink.js';
import { GroupCommitter } from './ingest/group-commit.js';
import { IngestService } from './ingest/ingest-service.js';
import { ProjectCatalogs } from './ingest/project-catalogs.js';
import { LiveFeed } from './live/live-feed.js';
import { publishUsage } from './live/publish-usage.js';
import { createLogger, type Logger } from './logging/logger.js';
import { watchEventLoopDelay } from './metrics/event-loop-delay.js';
import { Metrics } from './metrics/metrics.js';
import { makePrivateDir } from './util/private-files.js';

export interface RunningServer {
  /** Base URL the server listens on, e.g. http://127.0.0.1:8787. */
  url: string;
  port: number;
  store: Store;
  metrics: Metrics;
  /** Set on the first start only: the keys to print once. */
  firstStart: FirstStartKeys | undefined;
  /** Graceful: stops accepting, answers every accepted request, flushes, closes the store. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  now?: () => number;
}

const DAY_MS = 86_400_000;
const PRUNE_EVERY_MS = 3_600_000;

/** The composition root of `tokenwatch serve`: config in, running server out. */
export async function startServer(
  config: Config & { configRules?: readonly ConfigRule[] },
  options: StartOptions = {},
): Promise<RunningServer> {
  const logger = options.logger ?? createLogger(config.log.level);
  const now = options.now ?? Date.now;
  const dataDir = makePrivateDir(config.dataDir);
  if (dataDir.othersCanEnter) {
    logger.warn('the data dir is open to other users; its files are 0600, but consider chmod 700', {
      dataDir: config.dataDir,
    });
  }

  // Embedded, this process applies the batches and sends their alerts: its dispatcher takes
  // their deliveries leased from the batch itself instead of claiming them behind the writer.
  const store = await openStore(
    config,
    config.queue.driver === 'nats'
      ? {}
      : { leaseNewDeliveriesMs: dispatcherLeaseMs(dispatcherOptions(config)) },
  );
  try {
    return await startOnStore(config, store, logger, now);
  } catch (err) {
    // A failed start (bad config rule, port in use) must not leave the writer thread running.
    await store.close().catch(() => {});
    throw err;
  }
}

async function startOnStore(
  config: Config & { configRules?: readonly ConfigRule[] },
  store: Store,
  logger: Logger,
  now: () => number,
): Promise<RunningServer> {
  await store.migrate();
  // The port is taken before anything is created: a start that cannot listen must not create
  // the first-start keys (they are printed once, by the start that succeeds). Until the handler
  // is ready, requests are answered 503 + Retry-After.
  let handle: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) =>
    sendJson(
      res,
      503,
      { error: { code: 'unavailable', message: 'The server is starting; retry shortly.' } },
      { 'retry-after': '1' },
    );
  const metrics = new Metrics();
  const server: Server = createServer(httpServerOptions(config.http));
  applyHttpLimits(server, config.http, metrics, (req, res) => handle(req, res));
  await listen(server, config.server.host, config.server.port);
  // What is started is stopped again, in reverse, if a later step fails: a failed start must
  // leave no timer or connection behind (they kept the process alive, logging pool errors).
  const undo: Array<() => Promise<unknown>> = [
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  ];
  try {
    const firstStart = await ensureDefaultProject(store, now());
    const serving = (h: typeof handle) => {
      handle = h;
    };
    return await startServing(
      config,
      store,
      logger,
      now,
      firstStart,
      server,
      metrics,
      serving,
      undo,
    );
  } catch (err) {
    for (const step of undo.reverse()) await step().catch(() => {});
    throw err;
  }
}

async function startServing(
  config: Config & { configRules?: readonly ConfigRule[] },
  store: Store,
  logger: Logger,
  now: () => number,
  firstStart: FirstStartKeys | undefined,
  server: Server,
  metrics: Metrics,
  serve: (handler: (req: IncomingMessage, res: ServerResponse) => void) => void,
  undo: Array<() => Promise<unknown>>,
): Promise<RunningServer> {
  const auth = new KeyAuthenticator(store, config.auth.keyCacheSeconds * 1000, now);
  const catalogs = new ProjectCatalogs(store, 30_000, now);
  const live = new LiveFeed();
  // Scale-out: workers commit, so their live notices come over NATS to this instance's feed;
  // alerts this instance fires (rule saves) go the same way, to every instance.
  const liveRelay =
    config.queue.driver === 'nats'
      ? await (await import('./live/nats-live-relay.js')).startNatsLiveRelay(
          config.queue,
          live,
          logger,
        )
      : undefined;
  if (liveRelay) undo.push(() => liveRelay.stop());
  const alerting = await createAlerting({
    config,
    configRules: config.configRules ?? [],
    store,
    logger,
    metrics,
    live: liveRelay ?? live,
    now,
  });
  undo.push(() => alerting.stop());
  // Scale-out (`--queue nats://…`): requests are published to JetStream; workers commit them.
  const committer: EventSink =
    config.queue.driver === 'nats'
      ? await (await import('./adapters/queue/nats/open-jetstream-sink.js')).openJetStreamSink(
          config.queue,
          config.ingest.maxQueuedEvents,
          logger,
        )
      : new GroupCommitter(
          store,
          config.ingest,
          metrics,
          logger,
          now,
          (accepted, nowMs, result) => {
            publishUsage(live, accepted, nowMs);
            alerting.onCommitted(result, nowMs);
          },
        );
  undo.push(() => committer.close());
  metrics.addGauge(
    'tokenwatch_live_subscribers',
    'Open server-sent-event streams.',
    () => live.subscriberCount,
  );
  metrics.addGauge(
    'tokenwatch_ingest_backlog_events',
    'Events waiting for a flush.',
    () => committer.backlog,
  );
  if (isWalMonitor(store)) watchWal(store, metrics, logger);
  const stopLoopDelay = watchEventLoopDelay(metrics);
  const ingest = new IngestService(committer, catalogs, now);
  const reconciliation = await openReconciliationStore(config);
  undo.push(() => reconciliation.close());
  const reconcileJob = startReconcileJob(config, store, logger, now, (alerts) =>
    alerting.onAlerts(alerts, now()),
  );
  if (reconcileJob) undo.push(() => reconcileJob.stop());
  let shuttingDown = false;

  const handler = createHttpHandler({
    config,
    store,
    auth,
    ingest,
    sink: committer,
    catalogs,
    metrics,
    logger,
    now,
    live,
    alerting: { rules: alerting.rules, registry: alerting.registry, enforcer: alerting.enforcer },
    reconciliation,
    isShuttingDown: () => shuttingDown,
  });
  serve(handler);
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url =
    config.server.publicUrl ??
    `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`;
  const serverFile = join(config.dataDir, 'server.json');
  writeFileSync(
    serverFile,
    `${JSON.stringify({ url, pid: process.pid, startedAt: new Date(now()).toISOString() })}\n`,
    { mode: 0o600 },
  );
  chmodSync(serverFile, 0o600); // A crash may have left one with an older version's mode.

  const prune = async () => {
    try {
      const result = await store.prune({
        nowMs: now(),
        minuteRetentionMs: config.retention.minuteDays * DAY_MS,
        dedupeRetentionMs: config.retention.dedupeDays * DAY_MS,
        historyRetentionMs: config.retention.historyDays * DAY_MS,
      });
      logger.debug('pruned', { ...result });
    } catch (err) {
      logger.warn('prune failed; will retry', { error: err as Error });
    }
  };
  void prune();
  const pruneTimer = setInterval(prune, PRUNE_EVERY_MS);
  pruneTimer.unref();

  logger.info('tokenwatch listening', { url, store: config.store.driver, dataDir: config.dataDir });

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      shuttingDown = true;
      clearInterval(pruneTimer);
      stopLoopDelay();
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // Every request already handed to the committer is answered (202 or 503) before we go.
      await committer.close();
      await alerting.stop();
      await liveRelay?.stop().catch(() => {});
      await reconcileJob?.stop();
      await reconciliation.close();
      const forceAfter = setTimeout(() => server.closeAllConnections(), 5_000);
      await serverClosed;
      clearTimeout(forceAfter);
      await store.close();
      rmSync(serverFile, { force: true });
      logger.info('tokenwatch stopped');
    })();
    return closing;
  };

  return { url, port: address.port, store, metrics, firstStart, close };
}

/**
 * SQLite: the WAL's size, failed checkpoints and the folds in /metrics; failures logged (at most
 * every 10 s).
 */
function watchWal(store: WalMonitor, metrics: Metrics, logger: Logger): void {
  metrics.addGauge(
    'tokenwatch_sqlite_wal_bytes',
    'Size of the SQLite write-ahead log file (kept under store.maxWalMiB).',
    () => store.walStatus().walBytes,
  );
  metrics.addObservedCounter(
    'tokenwatch_sqlite_checkpoint_failures_total',
    'SQLite WAL checkpoints that failed or could not finish (the WAL grows meanwhile).',
    () => store.walStatus().checkpointFailures,
  );
  // A fold transaction holds the SQLite writer: requests that arrive meanwhile wait (the tail of
  // the 202). A fold runs in chunks (store.foldChunkEvents), each one transaction counted here.
  metrics.addObservedCounter(
    'tokenwatch_sqlite_folds_total',
    'Fold transactions of the SQLite event log into the rollups and rule counters (a fold runs in chunks).',
    () => store.walStatus().folds.count,
  );
  metrics.addObservedCounter(
    'tokenwatch_sqlite_fold_seconds_total',
    'Time the SQLite writer spent in folds (writes wait meanwhile).',
    () => store.walStatus().folds.secondsTotal,
  );
  metrics.addGauge(
    'tokenwatch_sqlite_fold_last_seconds',
    'How long the last fold transaction held the SQLite writer.',
    () => store.walStatus().folds.lastSeconds,
  );
  metrics.addGauge(
    'tokenwatch_sqlite_fold_last_events',
    'Events the last fold transaction added to the rollups and rule counters.',
    () => store.walStatus().folds.lastEvents,
  );
  let lastLoggedMs = 0;
  let unlogged = 0;
  store.onCheckpointFailure = (message, code) => {
    unlogged++;
    const nowMs = Date.now();
    if (nowMs - lastLoggedMs < 10_000) return;
    logger.warn('SQLite WAL checkpoint failed; will retry', {
      reason: message,
      sqliteCode: code,
      failuresSinceLastLog: unlogged,
      walBytes: store.walStatus().walBytes,
    });
    lastLoggedMs = nowMs;
    unlogged = 0;
  };
}
