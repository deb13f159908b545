import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { type ApplyResult, EventOutcome, type PricedEvent } from '@tokenwatch/core';
import { connectNats } from '../adapters/queue/nats/jetstream-setup.js';
import type { NatsQueueConfig } from '../config/config-schema.js';
import type { Logger } from '../logging/logger.js';
import type { LiveFeed, LiveMessage } from './live-feed.js';
import { summariseUsage } from './publish-usage.js';

/**
 * Live notices in scale-out mode. Workers commit usage, serve instances hold the `/v1/live`
 * streams: after each commit a worker publishes the same `usage` and `alert` messages that
 * LiveFeed carries in embedded mode on core NATS (not JetStream), and every serve instance
 * subscribes and hands them to its own LiveFeed.
 *
 * Fire-and-forget on purpose: a notice is a hint (the dashboard refetches what it shows), so a
 * notice lost while NATS reconnects costs a refresh at most, and publishing can never fail,
 * delay or undo a commit.
 *
 * Subject: `tokenwatch.live.<stream>.<project>` — the stream name is unique on a NATS account,
 * so two deployments sharing a NATS server do not hear each other; the project id is encoded
 * as base64url because a subject token may not hold `.`, `*`, `>` or spaces. Never inside the
 * events stream's subjects, so JetStream does not store them.
 */
export const LIVE_SUBJECT_ROOT = 'tokenwatch.live';

export function liveSubject(stream: string, projectId: string): string {
  return `${LIVE_SUBJECT_ROOT}.${stream}.${Buffer.from(projectId, 'utf8').toString('base64url')}`;
}

/** What travels on the subject: the project (for routing) and the LiveFeed message. */
interface LiveNotice {
  projectId: string;
  message: LiveMessage;
}

const encoder = new TextEncoder();

/** The notices of one committed batch: a `usage` per project with accepted events, an `alert` per new alert. */
export function liveNoticesOf(
  result: Pick<ApplyResult, 'outcomes' | 'alerts'>,
  events: readonly PricedEvent[],
  nowMs: number,
): LiveNotice[] {
  const accepted = events.filter((_, i) => result.outcomes[i] === EventOutcome.Accepted);
  const notices: LiveNotice[] = [];
  for (const [projectId, message] of summariseUsage(accepted, nowMs)) {
    notices.push({ projectId, message });
  }
  for (const alert of result.alerts) {
    notices.push({
      projectId: alert.projectId,
      message: { type: 'alert', atMs: nowMs, alert: { ...alert.message } },
    });
  }
  return notices;
}

/**
 * Worker side: publishes the notices of a committed batch. Never throws (a closed or
 * reconnecting connection loses the hint, never the commit).
 */
export function publishLiveNotices(
  nc: Pick<NatsConnection, 'publish'>,
  stream: string,
  result: Pick<ApplyResult, 'outcomes' | 'alerts'>,
  events: readonly PricedEvent[],
  nowMs: number,
  logger: Logger,
): void {
  try {
    for (const notice of liveNoticesOf(result, events, nowMs)) {
      nc.publish(liveSubject(stream, notice.projectId), encoder.encode(JSON.stringify(notice)));
    }
  } catch (err) {
    logger.debug('live notice not published', { error: err as Error });
  }
}

function parseNotice(text: string): LiveNotice | undefined {
  const value = JSON.parse(text) as Partial<LiveNotice> | null;
  if (!value || typeof value.projectId !== 'string') return undefined;
  const message = value.message as Partial<LiveMessage> | undefined;
  if (!message || typeof message.atMs !== 'number') return undefined;
  if (message.type !== 'usage' && message.type !== 'alert') return undefined;
  return value as LiveNotice;
}

/**
 * Serve side: relays every project's notices of this deployment to `feed`. A malformed notice
 * is logged and skipped. Returns the subscription (unsubscribe to stop).
 */
export function relayLiveNotices(
  nc: Pick<NatsConnection, 'subscribe'>,
  stream: string,
  feed: LiveFeed,
  logger: Logger,
): Subscription {
  const prefix = `${LIVE_SUBJECT_ROOT}.${stream}.`;
  return nc.subscribe(`${prefix}*`, {
    callback: (err, msg) => {
      if (err) return;
      let notice: LiveNotice | undefined;
      try {
        notice = parseNotice(msg.string());
      } catch {
        notice = undefined;
      }
      // The subject must name the project the notice is for: a notice cannot reach another project.
      if (!notice || msg.subject !== liveSubject(stream, notice.projectId)) {
        logger.warn('malformed live notice skipped', { subject: msg.subject });
        return;
      }
      feed.publish(notice.projectId, notice.message);
    },
  });
}

export interface NatsLiveRelay {
  /**
   * Publishes a notice that serve itself originates (an alert fired by a rule save or a
   * reconciliation) to every serve instance, this one included, through NATS.
   */
  publish(projectId: string, message: LiveMessage): void;
  stop(): Promise<void>;
}

/**
 * `tokenwatch serve --queue nats://…`: a connection of its own that relays the workers' live
 * notices to this instance's LiveFeed.
 */
export async function startNatsLiveRelay(
  queue: Pick<NatsQueueConfig, 'url' | 'stream'>,
  feed: LiveFeed,
  logger: Logger,
): Promise<NatsLiveRelay> {
  const nc = await connectNats(queue, 'tokenwatch-live');
  relayLiveNotices(nc, queue.stream, feed, logger);
  return {
    publish(projectId, message) {
      try {
        const notice: LiveNotice = { projectId, message };
        nc.publish(liveSubject(queue.stream, projectId), encoder.encode(JSON.stringify(notice)));
      } catch (err) {
        logger.debug('live notice not published', { error: err as Error });
      }
    },
    stop: () => nc.drain(),
  };
}
