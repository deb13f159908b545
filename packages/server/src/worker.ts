import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jetstream } from '@nats-io/jetstream';
import { type Store, TokenwatchError } from '@tokenwatch/core';
import { connectNats, ensureJetStream } from './adapters/queue/nats/jetstream-setup.js';
import { JetStreamWorker } from './adapters/queue/nats/jetstream-worker.js';
import { NatsHealth } from './adapters/queue/nats/nats-health.js';
import {
  LoneWorkerLeases,
  PartitionBalancer,
  type PartitionLeases,
} from './adapters/queue/nats/partition-balancer.js';
import { partitionConsumer } from './adapters/queue/nats/partitions.js';
import { openStore } from './adapters/store/open-store.js';
import { PgPartitionLeases } from './adapters/store/postgres/partition-leases.js';
import { createDispatcher } from './alerts/alerting.js';
import { startReconcileJob } from './bedrock/reconcile-job.js';
import type { Config } from './config/config-schema.js';
import { checkWithin } from './health/deadline.js';
import { applyHttpLimits, httpServerOptions } from './http/connection-limits.js';
import { listen } from './http/listen.js';
import { publishLiveNotices } from './live/nats-live-relay.js';
import { createLogger, type Logger } from './logging/logger.js';
import { Metrics } from './metrics/metrics.js';

export interface RunningWorker {
  store: Store;
  metrics: Metrics;
  consumer: JetStreamWorker;
  balancer: PartitionBalancer;
  /** http://host:port of /metrics and /healthz, when a port was given. */
  url: string | undefined;
  /** Graceful: finishes the transaction in flight, hands buffered messages back, closes. */
  close(): Promise<void>;
}

export interface StartWorkerOptions {
  logger?: Logger;
  now?: () => number;
  /** Serve /metrics and /healthz on this port (0: any free port); none when undefined. */
  metricsPort?: number | undefined;
}

/**
 * The composition root of `tokenwatch worker`: stateless, run N of them. Takes a share of the
 * stream's partitions (leases in PostgreSQL, see PartitionBalancer), consumes their durable
 * consumers, applies batches with the rules in the store's transaction, and sends the alert
 * outbox (leases keep two workers from sending the same delivery).
 */
export async function startWorker(
  config: Config,
  options: StartWorkerOptions = {},
): Promise<RunningWorker> {
  const logger = options.logger ?? createLogger(config.log.level, { role: 'worker' });
  const now = options.now ?? Date.now;
  const queue = config.queue;
  if (queue.driver !== 'nats') {
    throw new TokenwatchError(
      'invalid_config',
      'tokenwatch worker needs a queue: --queue nats://host:4222 (or queue.driver "nats" in the config)',
    );
  }
  if (config.store.driver === 'sqlite') {
    logger.warn(
      'worker on a SQLite store: only one worker process may run (scale-out wants PostgreSQL)',
    );
  }
  const store = await openStore(config, { thread: 'main' });
  const closers: Array<() => Promise<void>> = [() => store.close()];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch(() => {});
  };
  try {
    await store.migrate();
    const nc = await connectNats(queue, 'tokenwatch-worker');
    closers.push(() => nc.drain());
    const nats = new NatsHealth(nc, logger, now);
    await ensureJetStream(nc, queue, logger, { consumer: true });

    const metrics = new Metrics();

    const dispatcher = createDispatcher({ config, store, logger, metrics, now });
    dispatcher.start();
    closers.push(() => dispatcher.stop());
    // Bedrock reconciliation, when configured (enable it in one process: runs are idempotent).
    const reconcileJob = startReconcileJob(config, store, logger, now, () => dispatcher.wake());
    if (reconcileJob) closers.push(() => reconcileJob.stop());

    const consumer = new JetStreamWorker(
      jetstream(nc),
      store,
      {
        stream: queue.stream,
        fetchMaxMessages: queue.fetchMaxMessages,
        ackWaitMs: queue.ackWaitMs,
        poisonAfterAttempts: queue.poisonAfterAttempts,
      },
      metrics,
      logger,
      now,
      (result, nowMs, events) => {
        // Live notices for every serve instance's /v1/live (hints: lost ones cost nothing).
        publishLiveNotices(nc, queue.stream, result, events, nowMs, logger);
        if (result.alerts.length === 0) return;
        metrics.alertsFired.inc({}, result.alerts.length);
        dispatcher.wake();
        for (const alert of result.alerts)
          logger.info('alert fired', { alertId: alert.alertId, ruleId: alert.ruleId });
      },
    );
    consumer.start();
    const leases: PartitionLeases =
      config.store.driver === 'postgres'
        ? new PgPartitionLeases(config.store.url, `${config.store.schema}:${queue.stream}`)
        : new LoneWorkerLeases();
    // Closed in reverse: stop rebalancing, finish and hand back what it holds, then the leases.
    closers.push(() => leases.close());
    closers.push(() => consumer.stop());
    // Partition 0 also drains the bare subject (batches of collectors older than partitioning).
    const balancer = new PartitionBalancer(
      leases,
      queue.partitions,
      (p) =>
        p === 0
          ? [queue.consumer, partitionConsumer(queue.consumer, 0)]
          : [partitionConsumer(queue.consumer, p)],
      consumer,
      logger,
    );
    await balancer.start();
    closers.push(() => balancer.stop());

    // /healthz: this worker applies batches only while its NATS connection, its consumer and
    // the store all work. Each remote check is bounded, so the answer never hangs.
    const workerHealth = async () => {
      const [natsProblem, storeProblem] = await Promise.all([
        nats.check(),
        checkWithin('store', () => store.getProject('__healthz__')),
      ]);
      const problems = [natsProblem, ...consumer.problems, balancer.problem, storeProblem].filter(
        (p): p is string => p !== undefined,
      );
      return problems.length === 0
        ? { status: 200, body: { status: 'ok' } }
        : { status: 503, body: { status: 'unhealthy', problems } };
    };

    let url: string | undefined;
    if (options.metricsPort !== undefined) {
      const server: Server = createServer(httpServerOptions(config.http));
      applyHttpLimits(server, config.http, metrics, (req, res) => {
        if (req.url === '/metrics') {
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
          res.end(metrics.render());
        } else if (req.url === '/healthz') {
          void workerHealth().then(({ status, body }) => {
            res.writeHead(status, { 'content-type': 'application/json' });
            res.end(JSON.stringify(body));
          });
        } else {
          res.writeHead(404).end();
        }
      });
      await listen(server, config.server.host, options.metricsPort);
      closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
      url = `http://${config.server.host}:${(server.address() as AddressInfo).port}`;
    }
    logger.info('tokenwatch worker consuming', {
      stream: queue.stream,
      consumer: queue.consumer,
      partitions: balancer.ownedPartitions,
      store: config.store.driver,
    });
    let closing: Promise<void> | undefined;
    return {
      store,
      metrics,
      consumer,
      balancer,
      url,
      close: () => {
        closing ??= closeAll().then(() => logger.info('tokenwatch worker stopped'));
        return closing;
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
