import { connect, type NatsConnection } from '@nats-io/transport-node';
import { EventOutcome, type NewAlert, type PricedEvent } from '@tokenwatch/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../logging/logger.js';
import { natsReachable, TEST_NATS_URL, uniqueSchema } from '../testing/services.js';
import { whenServices } from '../testing/when-services.js';
import { LiveFeed, type LiveMessage } from './live-feed.js';
import { liveSubject, publishLiveNotices, relayLiveNotices } from './nats-live-relay.js';

/**
 * The worker → serve live relay on the real NATS server: what one connection publishes after a
 * commit reaches the LiveFeed of another, per project, and nothing else does.
 */
const natsUp = await natsReachable();

function event(projectId: string, userId: string, tokens: number): PricedEvent {
  return {
    projectId,
    id: `${projectId}-${userId}-${tokens}-${Math.random()}`,
    timestampMs: Date.now(),
    userId,
    appId: 'chat',
    modelId: 'gpt-4o-mini',
    provider: 'openai',
    inputTokens: tokens,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    latencyMs: undefined,
    status: 'ok',
    tags: undefined,
    costNanoUsd: tokens * 150,
    priced: true,
    fingerprint: 'f',
  };
}

function collect(feed: LiveFeed, projectId: string): LiveMessage[] {
  const got: LiveMessage[] = [];
  feed.subscribe(projectId, (m) => got.push(m));
  return got;
}

async function until(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

whenServices(
  { NATS: natsUp },
  () => {
    describe('NATS live relay', () => {
      const logger = createLogger('error');
      let worker: NatsConnection;
      let serve: NatsConnection;
      beforeAll(async () => {
        worker = await connect({ servers: TEST_NATS_URL });
        serve = await connect({ servers: TEST_NATS_URL });
      });
      afterAll(async () => {
        await worker?.close();
        await serve?.close();
      });

      it('relays usage of accepted events and alerts, to their own project only', async () => {
        const stream = uniqueSchema('live').toUpperCase();
        const feed = new LiveFeed();
        const sub = relayLiveNotices(serve, stream, feed, logger);
        await serve.flush();
        const proj = collect(feed, 'proj.with dots*');
        const other = collect(feed, 'other');
        const events = [
          event('proj.with dots*', 'alice', 100),
          event('proj.with dots*', 'bob', 30),
          event('proj.with dots*', 'dup', 999),
          event('other', 'carol', 7),
        ];
        const alert = {
          projectId: 'other',
          message: { alertId: 'a1', projectId: 'other', value: 7 },
        } as unknown as NewAlert;
        publishLiveNotices(
          worker,
          stream,
          {
            outcomes: [
              EventOutcome.Accepted,
              EventOutcome.Accepted,
              EventOutcome.Duplicate,
              EventOutcome.Accepted,
            ],
            alerts: [alert],
          },
          events,
          1234,
          logger,
        );
        await worker.flush();
        await until(() => proj.length === 1 && other.length === 2);
        expect(proj).toEqual([
          {
            type: 'usage',
            atMs: 1234,
            events: 2,
            totalTokens: 130,
            costNanoUsd: String(130 * 150),
            users: ['alice', 'bob'],
            apps: ['chat'],
            models: ['gpt-4o-mini'],
          },
        ]);
        expect(other).toEqual([
          expect.objectContaining({ type: 'usage', events: 1, users: ['carol'] }),
          { type: 'alert', atMs: 1234, alert: { alertId: 'a1', projectId: 'other', value: 7 } },
        ]);

        // Another deployment (stream) on the same NATS is not heard.
        publishLiveNotices(
          worker,
          `${stream}X`,
          { outcomes: [EventOutcome.Accepted], alerts: [] },
          [event('other', 'mallory', 1)],
          1,
          logger,
        );
        // A notice whose subject is not its project's, and junk, are skipped.
        worker.publish(
          liveSubject(stream, 'other'),
          JSON.stringify({ projectId: 'proj.with dots*', message: { type: 'usage', atMs: 1 } }),
        );
        worker.publish(liveSubject(stream, 'other'), 'not json');
        // A marker proves the relay processed everything published before it.
        publishLiveNotices(
          worker,
          stream,
          { outcomes: [EventOutcome.Accepted], alerts: [] },
          [event('other', 'marker', 1)],
          2,
          logger,
        );
        await worker.flush();
        await until(() => other.length === 3);
        expect(other[2]).toMatchObject({ type: 'usage', users: ['marker'] });
        expect(proj).toHaveLength(1);
        sub.unsubscribe();
      });

      it('never throws on a closed connection (a lost hint, never a lost commit)', async () => {
        const closed = await connect({ servers: TEST_NATS_URL });
        await closed.close();
        expect(() =>
          publishLiveNotices(
            closed,
            'S',
            { outcomes: [EventOutcome.Accepted], alerts: [] },
            [event('p', 'u', 1)],
            1,
            logger,
          ),
        ).not.toThrow();
      });
    });
  },
  'live relay',
);
