import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AlertJson,
  type AlertServer,
  eventually,
  type RuleJson,
  recentInCurrentHour,
  startAlertServer,
  usageEvent,
} from '../testing/alerts-harness.js';
import { killStartedServers, removeDataDir } from '../testing/server-process.js';
import type { WireEvent } from '../testing/tokenwatch-api.js';
import {
  startWebhookReceiver,
  type WebhookHit,
  type WebhookReceiver,
} from '../testing/webhook-receiver.js';

/**
 * Issue 3, "What must hold": exactly one alert (and one delivery per channel) per rule × scope
 * key × window × level when 50 concurrent requests cross the levels together, and when the same
 * events are sent again (the SDK's redelivery after a lost 202). Two real webhook receivers (two
 * channels); each dedupes by `webhook-id` and verifies the signature with an independent
 * implementation of Standard Webhooks (the `standardwebhooks` package).
 */

const SECRET_A = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
const USERS = ['eo-u0', 'eo-u1'];
const MODELS: Array<[string, string]> = [
  ['gpt-4o-mini', 'openai'],
  ['anthropic.claude-3-haiku-20240307-v1:0', 'bedrock'],
];
const REQUESTS = 50;
const TOKENS_PER_EVENT = 200; // 50 × 200 = 10,000 per scope key: past every level of a 5,000 budget
const LEVELS = 3;

let srv: AlertServer;
let a: WebhookReceiver;
let b: WebhookReceiver;
let rule: RuleJson;
let bodies: Array<{ events: WireEvent[] }>;

beforeAll(async () => {
  a = await startWebhookReceiver();
  b = await startWebhookReceiver();
  srv = await startAlertServer({
    label: 'exactly-once',
    config: { alerts: { allowPrivateNetworks: true } },
  });
  rule = await srv.client.createRule({
    name: 'seed per user x model',
    scope: ['user', 'model'],
    metric: 'totalTokens',
    window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
    budget: 5_000,
    levels: [{ percent: 50 }, { percent: 80 }, { percent: 100 }],
    channels: [
      { type: 'webhook', url: a.url('/a'), secret: SECRET_A },
      { type: 'webhook', url: b.url('/b') },
    ],
  });
  // Every request carries one event per scope key, all in one window.
  const t0 = recentInCurrentHour(30_000);
  bodies = Array.from({ length: REQUESTS }, () => ({
    events: USERS.flatMap((userId) =>
      MODELS.map(([modelId, provider]) =>
        usageEvent({ userId, modelId, provider, timestampMs: t0, inputTokens: TOKENS_PER_EVENT }),
      ),
    ),
  }));
});

afterAll(async () => {
  await srv?.server.kill('SIGTERM');
  await killStartedServers();
  await a?.close();
  await b?.close();
  if (srv) removeDataDir(srv.dataDir);
});

function secretOf(channelIndex: number): string {
  const secret = rule.channels[channelIndex]?.secret;
  if (!secret) throw new Error(`channel ${channelIndex} has no secret`);
  return secret;
}

function verify(hit: WebhookHit, secret: string): void {
  const wh = new Webhook(secret);
  expect(() =>
    wh.verify(hit.body, {
      'webhook-id': hit.id,
      'webhook-timestamp': hit.timestamp ?? '',
      'webhook-signature': hit.signature ?? '',
    }),
  ).not.toThrow();
}

async function sendAll(list: Array<{ events: WireEvent[] }>) {
  const answers = await Promise.all(
    list.map((body) => srv.client.api.postEvents(srv.client.ingestKey, body)),
  );
  for (const r of answers) expect(r.status, r.text).toBe(202);
  return answers.map((r) => r.json<{ accepted: number; duplicates: number; conflicts: number }>());
}

const alertKey = (x: AlertJson) =>
  `${x.ruleId}|${JSON.stringify(x.scope)}|${x.window.start}|${x.level.index}`;

/** Waits until every delivery is delivered and both receivers have every one, then a quiet period. */
async function settled(expectedAlerts: number): Promise<void> {
  await eventually(
    async () => {
      const ds = await srv.client.deliveries();
      return ds.length === 2 * expectedAlerts && ds.every((d) => d.status === 'delivered');
    },
    { timeoutMs: 30_000, what: `${2 * expectedAlerts} deliveries delivered` },
  );
  await a.waitFor(() => a.accepted.size >= expectedAlerts, 15_000, 'receiver A');
  await b.waitFor(() => b.accepted.size >= expectedAlerts, 15_000, 'receiver B');
  // A quiet period longer than the dispatcher's poll: a second send would show up here.
  await new Promise((r) => setTimeout(r, 2_500));
}

describe('50 concurrent requests cross the levels together', () => {
  it('raise exactly one alert per scope key × level, and one delivery per channel', async () => {
    const counts = await sendAll(bodies);
    expect(counts.reduce((s, c) => s + c.accepted, 0)).toBe(
      REQUESTS * USERS.length * MODELS.length,
    );

    const scopes = USERS.length * MODELS.length;
    const alerts = await srv.client.alerts({ ruleId: rule.id });
    expect(alerts).toHaveLength(scopes * LEVELS);
    expect(new Set(alerts.map(alertKey)).size).toBe(scopes * LEVELS);
    expect(new Set(alerts.map((x) => x.id)).size).toBe(scopes * LEVELS);
    for (const x of alerts) expect(x.value).toBeGreaterThanOrEqual(x.level.threshold);

    await settled(scopes * LEVELS);
    const alertIds = new Set(alerts.map((x) => x.id));
    for (const [receiver, channelIndex] of [
      [a, 0],
      [b, 1],
    ] as const) {
      // Exactly channels × alerts distinct ids, each naming one of the alerts, each arrived once.
      expect(receiver.accepted.size).toBe(scopes * LEVELS);
      expect(receiver.repeats).toEqual([]);
      expect(receiver.hits).toHaveLength(scopes * LEVELS);
      const perAlert = new Map<string, number>();
      for (const hit of receiver.accepted.values()) {
        expect(alertIds.has(hit.json?.alertId as string)).toBe(true);
        expect(hit.json?.deliveryId).toBe(hit.id);
        perAlert.set(
          hit.json?.alertId as string,
          (perAlert.get(hit.json?.alertId as string) ?? 0) + 1,
        );
        verify(hit, secretOf(channelIndex));
      }
      expect(perAlert.size).toBe(scopes * LEVELS);
      expect([...perAlert.values()].every((n) => n === 1)).toBe(true);
    }
    expect(secretOf(0)).toBe(SECRET_A);
    const ids = new Set([...a.accepted.keys(), ...b.accepted.keys()]);
    expect(ids.size).toBe(2 * scopes * LEVELS);
    const deliveries = await srv.client.deliveries();
    expect(new Set(deliveries.map((d) => d.id))).toEqual(ids);
    // Counted once: the usage API agrees with the events sent.
    const byUser = await srv.client.api.totalsByUser(srv.client.adminKey);
    for (const user of USERS) {
      expect(byUser.get(user)?.totalTokens).toBe(REQUESTS * MODELS.length * TOKENS_PER_EVENT);
    }
  });

  it('the same 50 requests sent again (redelivery) add no alert and no delivery', async () => {
    const before = await srv.client.alerts({ ruleId: rule.id });
    const hitsA = a.hits.length;
    const hitsB = b.hits.length;
    const counts = await sendAll(bodies);
    expect(counts.reduce((s, c) => s + c.accepted, 0)).toBe(0);
    expect(counts.reduce((s, c) => s + c.duplicates, 0)).toBe(
      REQUESTS * USERS.length * MODELS.length,
    );
    // The same events again, batched differently (one big request, then single events).
    const all = bodies.flatMap((x) => x.events);
    await sendAll([{ events: all.slice(0, 100) }]);
    await sendAll(all.slice(100, 120).map((e) => ({ events: [e] })));

    await new Promise((r) => setTimeout(r, 2_500));
    const after = await srv.client.alerts({ ruleId: rule.id });
    expect(after.map((x) => x.id).sort()).toEqual(before.map((x) => x.id).sort());
    expect(a.hits.length).toBe(hitsA);
    expect(b.hits.length).toBe(hitsB);
    expect((await srv.client.deliveries()).length).toBe(2 * before.length);
  });

  it('50 concurrent copies of one crossing request count once and alert once per level', async () => {
    const before = (await srv.client.alerts({ ruleId: rule.id })).length;
    const body = {
      events: [usageEvent({ userId: 'eo-solo', inputTokens: 6_000 })],
    };
    const counts = await sendAll(Array.from({ length: REQUESTS }, () => body));
    expect(counts.reduce((s, c) => s + c.accepted, 0)).toBe(1);
    expect(counts.reduce((s, c) => s + c.duplicates, 0)).toBe(REQUESTS - 1);
    const solo = (await srv.client.alerts({ ruleId: rule.id })).filter(
      (x) => x.scope.user === 'eo-solo',
    );
    expect(solo.map((x) => x.level.percent).sort((p, q) => (p ?? 0) - (q ?? 0))).toEqual([
      50, 80, 100,
    ]);
    await settled(before + 3);
    expect(a.accepted.size).toBe(before + 3);
    expect(b.accepted.size).toBe(before + 3);
    expect(a.repeats).toEqual([]);
    expect(b.repeats).toEqual([]);
  });
});
