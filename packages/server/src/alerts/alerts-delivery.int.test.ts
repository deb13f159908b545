import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AlertServer,
  type DeliveryJson,
  eventually,
  startAlertServer,
  usageEvent,
} from '../testing/alerts-harness.js';
import { killStartedServers, removeDataDir } from '../testing/server-process.js';
import { startWebhookReceiver, type WebhookReceiver } from '../testing/webhook-receiver.js';

/**
 * Issue 3, "What must hold": a webhook receiver that is down for a while (connection refused,
 * then 503) and then back gets every alert, each delivery id once after its own dedupe, and
 * GET /v1/deliveries shows the retries; a receiver that hangs does not delay another receiver's
 * alerts, nor ingestion. Only ordering and completion are asserted, never tight timings.
 */

const SEND_TIMEOUT_MS = 1_500;

let srv: AlertServer;
const receivers: WebhookReceiver[] = [];

beforeAll(async () => {
  srv = await startAlertServer({
    label: 'delivery',
    config: { alerts: { allowPrivateNetworks: true, sendTimeoutMs: SEND_TIMEOUT_MS } },
  });
});

afterAll(async () => {
  await srv?.server.kill('SIGTERM');
  await killStartedServers();
  for (const r of receivers) await r.close();
  if (srv) removeDataDir(srv.dataDir);
});

async function receiver(): Promise<WebhookReceiver> {
  const r = await startWebhookReceiver();
  receivers.push(r);
  return r;
}

async function deliveriesOf(alertIds: Set<string>): Promise<DeliveryJson[]> {
  return (await srv.client.deliveries()).filter((d) => alertIds.has(d.alertId));
}

describe('a receiver down for a while, then back', () => {
  it('gets every alert (refused, then 503, then up): each id at least once, exactly once after dedupe', async () => {
    const flaky = await receiver();
    const healthy = await receiver();
    const rule = await srv.client.createRule({
      name: 'down then back',
      scope: ['user'],
      filters: { user: ['down-1', 'down-2'] },
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
      levels: [{ value: 500 }, { value: 1_000 }, { value: 1_500 }],
      channels: [
        { type: 'webhook', url: flaky.url('/flaky') },
        { type: 'webhook', url: healthy.url('/healthy') },
      ],
    });
    await flaky.down(); // connection refused from now on
    await srv.client.ingest([
      usageEvent({ userId: 'down-1', inputTokens: 2_000 }),
      usageEvent({ userId: 'down-2', inputTokens: 2_000 }),
    ]);
    const alerts = await srv.client.alerts({ ruleId: rule.id });
    expect(alerts).toHaveLength(6);
    const alertIds = new Set(alerts.map((a) => a.id));

    // The healthy channel is not held up by the dead one.
    await healthy.waitFor(
      () => healthy.accepted.size === 6,
      15_000,
      'all six on the healthy receiver',
    );
    const flakyDeliveries = async () =>
      (await deliveriesOf(alertIds)).filter((d) => d.id.endsWith('_0'));
    // While down: retried (attempts >= 2), with the connection error recorded, not delivered.
    await eventually(
      async () => {
        const ds = await flakyDeliveries();
        return ds.length === 6 && ds.every((d) => d.attempts >= 2 && d.lastError !== null);
      },
      { timeoutMs: 20_000, what: 'two refused attempts per delivery' },
    );
    for (const d of await flakyDeliveries()) expect(d.status).not.toBe('delivered');

    // Back, but failing with 503 for a while.
    flaky.setMode({ kind: 'fail', status: 503 });
    await flaky.up();
    await flaky.waitFor(
      () => new Set(flaky.hits.map((h) => h.id)).size === 6,
      30_000,
      'a 503 for every delivery',
    );
    expect(flaky.accepted.size).toBe(0);

    // Healthy again: every delivery arrives.
    flaky.setMode({ kind: 'ok' });
    await flaky.waitFor(() => flaky.accepted.size === 6, 45_000, 'every delivery accepted');
    await eventually(async () => (await flakyDeliveries()).every((d) => d.status === 'delivered'), {
      timeoutMs: 10_000,
      what: 'deliveries marked delivered',
    });
    const ds = await flakyDeliveries();
    expect(new Set(flaky.accepted.keys())).toEqual(new Set(ds.map((d) => d.id)));
    for (const d of ds) {
      expect(d.attempts, d.id).toBeGreaterThanOrEqual(3); // refused, 503, delivered
      expect(d.deliveredAt).not.toBeNull();
      // Each id reached the receiver at least once (the 503s) before the accepted one.
      expect(flaky.hits.filter((h) => h.id === d.id).length).toBeGreaterThanOrEqual(2);
      expect(flaky.accepted.get(d.id)?.json?.alertId).toBe(d.alertId);
    }
    // Same body on every retry (the delivery id is stable).
    for (const id of flaky.accepted.keys()) {
      const bodies = new Set(flaky.hits.filter((h) => h.id === id).map((h) => h.body));
      expect(bodies.size).toBe(1);
    }
    // The healthy channel got each alert once, on the first attempt.
    expect(healthy.repeats).toEqual([]);
    for (const d of (await deliveriesOf(alertIds)).filter((x) => x.id.endsWith('_1'))) {
      expect(d.status).toBe('delivered');
      expect(d.attempts).toBe(1);
    }
  }, 85_000);
});

describe('a receiver that hangs', () => {
  it("does not delay another receiver's alerts, nor ingestion; it gets them once it answers", async () => {
    const hanging = await receiver();
    const fast = await receiver();
    hanging.setMode({ kind: 'hang' });
    const rule = await srv.client.createRule({
      name: 'hang',
      scope: ['user'],
      filters: { user: ['hang-1', 'hang-2', 'hang-3'] },
      metric: 'requests',
      window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
      levels: [{ value: 1 }],
      channels: [
        { type: 'webhook', url: hanging.url('/hang') },
        { type: 'webhook', url: fast.url('/fast') },
      ],
    });
    await srv.client.ingest([usageEvent({ userId: 'hang-1' })]);
    await hanging.waitFor(() => hanging.hangingCount() >= 1, 15_000, 'the first request held');
    // While the hanging receiver holds its request: more alerts, and they reach the fast one.
    await srv.client.ingest([usageEvent({ userId: 'hang-2' }), usageEvent({ userId: 'hang-3' })]);
    await fast.waitFor(() => fast.accepted.size === 3, 15_000, 'all three on the fast receiver');
    const fastDone = Math.max(...[...fast.accepted.values()].map((h) => h.receivedAtPerf));
    const firstHeld = hanging.hits[0];
    expect(firstHeld).toBeDefined();
    // Ordering, not timing: the first held request was still open when the fast receiver had all.
    expect(firstHeld?.closedAtPerf === undefined || (firstHeld.closedAtPerf ?? 0) > fastDone).toBe(
      true,
    );
    // Ingestion answers while a request hangs.
    const during = await srv.client.api.postEvents(srv.client.ingestKey, {
      events: [usageEvent({ userId: 'someone-else' })],
    });
    expect(during.status).toBe(202);

    // The hanging attempts time out (alerts.sendTimeoutMs) and are retried; once it answers,
    // every alert arrives, once each after dedupe.
    await hanging.waitFor(
      () => hanging.hits.some((h) => h.closedAtPerf !== undefined),
      15_000,
      'a held request abandoned by the sender',
    );
    hanging.setMode({ kind: 'ok' });
    await hanging.waitFor(() => hanging.accepted.size === 3, 45_000, 'all three after recovery');
    const alerts = await srv.client.alerts({ ruleId: rule.id });
    expect(alerts).toHaveLength(3);
    const alertIds = new Set(alerts.map((a) => a.id));
    await eventually(
      async () => (await deliveriesOf(alertIds)).every((d) => d.status === 'delivered'),
      { timeoutMs: 10_000, what: 'all delivered' },
    );
    const timedOut = (await deliveriesOf(alertIds)).filter((d) => d.id.endsWith('_0'));
    expect(timedOut.some((d) => d.attempts > 1)).toBe(true);
    expect(new Set(hanging.accepted.keys())).toEqual(new Set(timedOut.map((d) => d.id)));
    expect(fast.repeats).toEqual([]);
  }, 85_000);
});

describe('redirects and permanent failures', () => {
  it('a 302 is not followed: the target never sees the alert; the delivery is dead-lettered, visibly', async () => {
    const target = await receiver();
    const redirecting = await receiver();
    redirecting.setMode({ kind: 'redirect', location: target.url('/internal') });
    const gone = await receiver();
    gone.setMode({ kind: 'fail', status: 410 });
    const rule = await srv.client.createRule({
      name: 'redirected',
      scope: ['user'],
      filters: { user: ['redir'] },
      metric: 'requests',
      window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
      levels: [{ value: 1 }],
      channels: [
        { type: 'webhook', url: redirecting.url('/r') },
        { type: 'webhook', url: gone.url('/gone') },
      ],
    });
    await srv.client.ingest([usageEvent({ userId: 'redir' })]);
    const [alert] = await srv.client.alerts({ ruleId: rule.id });
    expect(alert).toBeDefined();
    const ds = await eventually(
      async () => {
        const list = await srv.client.deliveries({ alertId: alert?.id ?? '' });
        return list.length === 2 && list.every((d) => d.status === 'dead') ? list : undefined;
      },
      { timeoutMs: 15_000, what: 'both deliveries dead-lettered' },
    );
    const byChannel = new Map(ds.map((d) => [d.id.endsWith('_0') ? 'redirect' : 'gone', d]));
    expect(byChannel.get('redirect')?.lastError).toMatch(/redirect/i);
    expect(byChannel.get('gone')?.lastError).toMatch(/410/);
    expect(target.hits).toEqual([]);
    expect(redirecting.hits.length).toBe(1);
    const dead = await srv.client.deliveries({ status: 'dead' });
    expect(dead.map((d) => d.id).sort()).toEqual(
      expect.arrayContaining(ds.map((d) => d.id).sort()),
    );
  });
});

describe('Slack incoming webhook', () => {
  it('gets a readable message with the user, model, value and level', async () => {
    const slack = await receiver();
    slack.setMode({ kind: 'ok', status: 200 });
    const rule = await srv.client.createRule({
      name: 'slack seed',
      scope: ['user', 'model'],
      filters: { user: ['slack-user'] },
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'hour', timeZone: 'UTC' },
      levels: [{ value: 10_000 }],
      channels: [{ type: 'slack', url: slack.url('/services/T000/B000/XXXX') }],
    });
    await srv.client.ingest([
      usageEvent({
        userId: 'slack-user',
        modelId: 'gpt-4o-mini',
        inputTokens: 12_000,
        outputTokens: 345,
      }),
    ]);
    await slack.waitFor(() => slack.hits.length === 1, 15_000, 'the Slack message');
    const hit = slack.hits[0];
    expect(hit?.path).toBe('/services/T000/B000/XXXX');
    const body = hit?.json as { text: string; blocks: unknown[] };
    expect(Array.isArray(body.blocks)).toBe(true);
    const all = `${body.text}\n${JSON.stringify(body.blocks)}`;
    for (const needle of ['slack-user', 'gpt-4o-mini', '12,345', '10,000']) {
      expect(all, `Slack message has ${needle}`).toContain(needle);
    }
    const [alert] = await srv.client.alerts({ ruleId: rule.id });
    await eventually(
      async () =>
        (await srv.client.deliveries({ alertId: alert?.id ?? '' }))[0]?.status === 'delivered',
      { timeoutMs: 10_000, what: 'the Slack delivery delivered' },
    );
  });
});
