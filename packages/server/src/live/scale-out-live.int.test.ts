import { afterAll, describe, expect, it } from 'vitest';
import { httpRequest } from '../testing/http-client.js';
import {
  createScaleOutEnv,
  killStartedWorkers,
  startWorkerProcess,
} from '../testing/scale-out-harness.js';
import { createKey, killStartedServers, startServerProcess } from '../testing/server-process.js';
import { natsReachable, postgresReachable } from '../testing/services.js';
import { openStream, type Stream } from '../testing/sse-stream.js';
import { makeEvent, TokenwatchApi, type UsageRowJson } from '../testing/tokenwatch-api.js';
import { whenServices } from '../testing/when-services.js';

/**
 * `GET /v1/live` in scale-out mode, on the real services and processes: two `tokenwatch serve
 * --queue nats://…` instances and a `tokenwatch worker` on PostgreSQL. Usage committed by the
 * worker reaches the streams of both instances (whichever took the request), an alert too, and
 * a project hears only its own notices.
 */
const pgUp = await postgresReachable();
const natsUp = await natsReachable();

/** Notices may take a worker's transaction plus a NATS hop on a loaded machine: a few seconds. */
const NOTICE_TIMEOUT_MS = 10_000;

const parse = (data: string) => JSON.parse(data) as Record<string, unknown>;

whenServices({ PostgreSQL: pgUp, NATS: natsUp }, () => {
  describe('live notices in scale-out mode', () => {
    afterAll(async () => {
      await killStartedWorkers();
      await killStartedServers();
    });

    it('serve relays what workers commit: usage and alerts, to the project they belong to', async () => {
      const env = await createScaleOutEnv('live');
      const streams: Stream[] = [];
      try {
        const serveA = await startServerProcess({ dataDir: env.dataDir });
        const adminKey = serveA.adminKey as string;
        const ingestKey = serveA.ingestKey as string;
        // A second instance on the same store and queue (keys are shared through PostgreSQL).
        const serveB = await startServerProcess({ dataDir: env.dataDir });
        const otherRead = await createKey(env.dataDir, { role: 'read', project: 'other' });
        const otherIngest = await createKey(env.dataDir, { role: 'ingest', project: 'other' });
        const rule = await httpRequest(`${serveA.url}/v1/rules`, {
          method: 'POST',
          headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            name: 'live per user',
            scope: ['user'],
            metric: 'inputTokens',
            window: { type: 'calendar', unit: 'hour', timeZone: 'UTC' },
            levels: [{ value: 1_000 }],
            channels: [{ type: 'log' }],
          }),
        });
        expect(rule.status, rule.text).toBe(201);
        await startWorkerProcess(env);

        const key = encodeURIComponent(adminKey);
        const onA = await openStream(`${serveA.url}/v1/live?key=${key}`);
        const onB = await openStream(`${serveB.url}/v1/live?key=${key}`);
        const otherOnA = await openStream(
          `${serveA.url}/v1/live?key=${encodeURIComponent(otherRead.key)}`,
        );
        streams.push(onA, onB, otherOnA);
        for (const s of streams) {
          expect(s.status).toBe(200);
          await s.next('ready');
        }

        // Posted to A, committed by the worker, announced on both instances.
        const apiA = new TokenwatchApi(serveA.url);
        const first = makeEvent({ userId: 'live-user', appId: 'live-app', inputTokens: 700 });
        const usageA = onA.next('usage', NOTICE_TIMEOUT_MS);
        const usageB = onB.next('usage', NOTICE_TIMEOUT_MS);
        expect((await apiA.postEvents(ingestKey, first)).status).toBe(202);
        for (const notice of [await usageA, await usageB]) {
          expect(parse(notice.data)).toMatchObject({
            type: 'usage',
            events: 1,
            totalTokens: 720,
            users: ['live-user'],
            apps: ['live-app'],
            models: ['gpt-4o-mini'],
          });
        }

        // Posted to B: crosses the rule's 1,000 input tokens; the alert is announced on A too.
        const apiB = new TokenwatchApi(serveB.url);
        const alertOnA = onA.next('alert', NOTICE_TIMEOUT_MS);
        const secondUsage = onA.next('usage', NOTICE_TIMEOUT_MS);
        const second = makeEvent({ userId: 'live-user', appId: 'live-app', inputTokens: 500 });
        expect((await apiB.postEvents(ingestKey, second)).status).toBe(202);
        expect(parse((await secondUsage).data)).toMatchObject({ events: 1, totalTokens: 520 });
        const alert = parse((await alertOnA).data);
        expect(alert).toMatchObject({
          type: 'alert',
          alert: {
            projectId: 'default',
            rule: { name: 'live per user' },
            scope: { user: 'live-user' },
            level: { index: 0, threshold: 1_000 },
            value: 1_200,
          },
        });

        // B heard the worker's alert too. A rule saved on A that the usage already crosses fires
        // at once, in serve A: announced through NATS on B as well.
        expect(parse((await onB.next('alert', NOTICE_TIMEOUT_MS)).data)).toMatchObject({
          alert: { rule: { name: 'live per user' } },
        });
        const savedAlertOnB = onB.next('alert', NOTICE_TIMEOUT_MS);
        const late = await httpRequest(`${serveA.url}/v1/rules`, {
          method: 'POST',
          headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            name: 'already crossed',
            scope: ['user'],
            metric: 'inputTokens',
            window: { type: 'calendar', unit: 'hour', timeZone: 'UTC' },
            levels: [{ value: 1_100 }],
            channels: [{ type: 'log' }],
          }),
        });
        expect(late.status, late.text).toBe(201);
        expect(parse((await savedAlertOnB).data)).toMatchObject({
          alert: { rule: { name: 'already crossed' }, scope: { user: 'live-user' }, value: 1_200 },
        });

        // The other project hears its own usage and nothing of the default project's.
        const otherUsage = otherOnA.next('usage', NOTICE_TIMEOUT_MS);
        const otherEvent = makeEvent({ userId: 'other-user', inputTokens: 3 });
        expect((await apiB.postEvents(otherIngest.key, otherEvent)).status).toBe(202);
        expect(parse((await otherUsage).data)).toMatchObject({ users: ['other-user'] });
        const heardByOther = otherOnA.events.filter((e) => e.event !== 'ready');
        expect(heardByOther.map((e) => parse(e.data).users)).toEqual([['other-user']]);
        // …and the default project's streams never carry the other project's users.
        await new Promise((r) => setTimeout(r, 500));
        for (const s of [onA, onB]) {
          const users = s.events.filter((e) => e.event === 'usage').map((e) => parse(e.data).users);
          expect(users.flat()).not.toContain('other-user');
          // Each alert once per stream: serve A announces its own alert through NATS only.
          const alerts = s.events.filter((e) => e.event === 'alert');
          expect(
            alerts.map((e) => (parse(e.data).alert as { rule: { name: string } }).rule.name),
          ).toEqual(['live per user', 'already crossed']);
        }

        // The notices are hints over what was counted: the usage they announced is there.
        const usage = await apiB.usage(adminKey, { groupBy: 'user' });
        expect(usage.status, usage.text).toBe(200);
        const rows = (usage.json() as { rows: UsageRowJson[] }).rows;
        expect(rows.map((r) => [r.user, r.inputTokens, r.requests])).toEqual([
          ['live-user', 1_200, 2],
        ]);
      } finally {
        for (const s of streams) s.close();
        await killStartedWorkers();
        await killStartedServers();
        await env.cleanup();
      }
    });
  });
});
