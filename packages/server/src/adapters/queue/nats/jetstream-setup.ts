import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  type JetStreamManager,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { TokenwatchError } from '@tokenwatch/core';
import type { NatsQueueConfig } from '../../../config/config-schema.js';
import type { Logger } from '../../../logging/logger.js';
import { partitionConsumer, partitionSubject } from './partitions.js';

const MS_TO_NS = 1_000_000;

/**
 * Connects to NATS and never gives up reconnecting: a collector or worker rides out a broker
 * restart (publishes fail with 503 meanwhile; consumers resume).
 */
export async function connectNats(
  config: Pick<NatsQueueConfig, 'url'>,
  name: string,
): Promise<NatsConnection> {
  try {
    return await connect({
      servers: config.url.split(',').map((s) => s.trim()),
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      timeout: 5_000,
    });
  } catch (err) {
    throw new TokenwatchError(
      'unavailable',
      `cannot connect to NATS at ${config.url}: ${String(err)}`,
      {
        cause: err,
        retryAfterSeconds: 2,
      },
    );
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.status === 404;
}

/**
 * The stream: a work queue on file storage. A batch is removed once a worker acked it (after its
 * transaction committed). `duplicate_window` makes a republished batch (same Nats-Msg-Id) a
 * no-op. Storage and retention cannot change on an existing stream: a mismatch is a start-up
 * error; the limits are updated in place.
 */
export function streamConfig(q: NatsQueueConfig): Partial<StreamConfig> & { name: string } {
  return {
    name: q.stream,
    // The partitions, and the bare subject that versions before partitioning published to.
    subjects: streamSubjects(q),
    storage: StorageType.File,
    retention: RetentionPolicy.Workqueue,
    num_replicas: q.replicas,
    duplicate_window: q.duplicateWindowMs * MS_TO_NS,
    max_age: Math.round(q.maxAgeHours * 3_600_000 * MS_TO_NS),
    // Full: refuse new batches (ingest answers 503) rather than drop stored ones.
    discard: DiscardPolicy.New,
  };
}

function streamSubjects(q: NatsQueueConfig): string[] {
  return [q.subject, `${q.subject}.*`];
}

/**
 * The workers' durable pull consumers: one per partition, plus the bare subject's (named
 * `queue.consumer`), which drains what a collector older than partitioning published.
 */
export function workerConsumers(q: NatsQueueConfig): Array<{ name: string; subject: string }> {
  const out = [{ name: q.consumer, subject: q.subject }];
  for (let p = 0; p < q.partitions; p++)
    out.push({ name: partitionConsumer(q.consumer, p), subject: partitionSubject(q.subject, p) });
  return out;
}

/**
 * Un-acked messages JetStream lets one consumer have out: a backstop. The worker itself holds at
 * most 2 × fetchMaxMessages across all its partitions (see JetStreamWorker), so that nothing it
 * holds waits past the ack wait behind a slow transaction.
 */
export function maxAckPending(q: NatsQueueConfig): number {
  return Math.max(16, q.fetchMaxMessages * 2);
}

/** Creates or checks the stream and the workers' durable pull consumers. */
export async function ensureJetStream(
  nc: NatsConnection,
  q: NatsQueueConfig,
  logger: Logger,
  options: { consumer: boolean },
): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(nc);
  const wanted = streamConfig(q);
  try {
    let info: Awaited<ReturnType<JetStreamManager['streams']['info']>> | undefined;
    try {
      info = await jsm.streams.info(q.stream);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (!info) {
      await jsm.streams.add(wanted);
      logger.info('created JetStream stream', { stream: q.stream, subject: q.subject });
    } else {
      const have = info.config;
      if (have.storage !== StorageType.File || have.retention !== RetentionPolicy.Workqueue) {
        throw new TokenwatchError(
          'invalid_config',
          `JetStream stream "${q.stream}" exists with storage=${have.storage} retention=${have.retention}; tokenwatch needs file storage and work-queue retention (delete it or choose another queue.stream)`,
        );
      }
      const drift =
        have.num_replicas !== wanted.num_replicas ||
        have.duplicate_window !== wanted.duplicate_window ||
        have.max_age !== wanted.max_age ||
        streamSubjects(q).some((subject) => !(have.subjects ?? []).includes(subject));
      if (drift) {
        await jsm.streams.update(q.stream, {
          subjects: [...new Set([...(have.subjects ?? []), ...streamSubjects(q)])],
          num_replicas: q.replicas,
          duplicate_window: wanted.duplicate_window as number,
          max_age: wanted.max_age as number,
        });
        logger.info('updated JetStream stream settings', { stream: q.stream });
      }
    }
    if (options.consumer) {
      for (const c of workerConsumers(q)) await ensureConsumer(jsm, q, c.name, c.subject, logger);
    }
  } catch (err) {
    if (err instanceof TokenwatchError) throw err;
    throw new TokenwatchError('unavailable', `JetStream set-up failed: ${String(err)}`, {
      cause: err,
      retryAfterSeconds: 2,
    });
  }
  return jsm;
}

async function ensureConsumer(
  jsm: JetStreamManager,
  q: NatsQueueConfig,
  name: string,
  subject: string,
  logger: Logger,
): Promise<void> {
  const consumer = {
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: subject,
    ack_wait: q.ackWaitMs * MS_TO_NS,
    max_deliver: q.maxDeliver,
    max_ack_pending: maxAckPending(q),
  };
  let existing: Awaited<ReturnType<JetStreamManager['consumers']['info']>> | undefined;
  try {
    existing = await jsm.consumers.info(q.stream, name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  if (!existing) {
    try {
      await jsm.consumers.add(q.stream, consumer);
      logger.info('created JetStream consumer', { stream: q.stream, consumer: name });
    } catch (err) {
      // Another worker starting at the same moment created it: fine if it is ours.
      existing = await jsm.consumers.info(q.stream, name).catch(() => {
        throw err;
      });
    }
  }
  if (
    existing &&
    (existing.config.ack_wait !== consumer.ack_wait ||
      (existing.config.max_deliver ?? -1) !== consumer.max_deliver ||
      existing.config.max_ack_pending !== consumer.max_ack_pending)
  ) {
    await jsm.consumers.update(q.stream, name, {
      ack_wait: consumer.ack_wait,
      max_deliver: consumer.max_deliver,
      max_ack_pending: consumer.max_ack_pending,
    });
    logger.info('updated JetStream consumer settings', { consumer: name });
  }
}
