import type { NatsQueueConfig } from '../../../config/config-schema.js';
import type { Logger } from '../../../logging/logger.js';
import { connectNats, ensureJetStream } from './jetstream-setup.js';
import { JetStreamSink } from './jetstream-sink.js';

/** `serve --queue nats://…`: connects, creates or checks the stream, returns the publishing sink. */
export async function openJetStreamSink(
  queue: NatsQueueConfig,
  maxInFlightEvents: number,
  logger: Logger,
): Promise<JetStreamSink> {
  const nc = await connectNats(queue, 'tokenwatch-serve');
  try {
    await ensureJetStream(nc, queue, logger, { consumer: false });
  } catch (err) {
    await nc.close().catch(() => {});
    throw err;
  }
  return new JetStreamSink(
    nc,
    {
      subject: queue.subject,
      partitions: queue.partitions,
      publishTimeoutMs: queue.publishTimeoutMs,
      maxInFlightEvents,
    },
    logger,
    true,
  );
}
