import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AlertJson,
  type AlertServer,
  backdateRule,
  errorFields,
  iso,
  latestDstChange,
  localDayWindow,
  localHourWindow,
  localTime,
  MINUTE_MS,
  recentInCurrentHour,
  startAlertServer,
  usageEvent,
} from '../testing/alerts-harness.js';
import { killStartedServers, removeDataDir } from '../testing/server-process.js';
import { shiftedClockEnv } from '../testing/shifted-clock.js';
import { startWebhookReceiver, type WebhookReceiver } from '../testing/webhook-receiver.js';

/**
 * Issue 3, "What must hold": ladders 50/80/100 % fire in order, once each, through the HTTP
 * API; a new window re-arms; late events that cross a past window's level raise that alert,
 * marked late; calendar windows in a non-UTC zone start and end at the right instants across a
 * DST change. The DST change is the most recent one in real tz data; as no zone changes its
 * offset between early November and early February, that test runs its own server with the clock
 * moved to ten days after the change (a test preload, see shifted-clock-preload.ts), and reaches
 * the change with late events. Every expected window is computed independently by scanning Intl
 * output.
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** Zones to look for a recent DST change in; southern-hemisphere ones change in other months. */
const DST_ZONES = [
  'America/New_York',
  'Europe/Berlin',
  'Pacific/Auckland',
  'Australia/Sydney',
  'Australia/Lord_Howe',
  'America/Santiago',
];

let srv: AlertServer;
let hook: WebhookReceiver;

beforeAll(async () => {
  hook = await startWebhookReceiver();
  srv = await startAlertServer({
    label: 'windows',
    config: { alerts: { allowPrivateNetworks: true } },
  });
});

afterAll(async () => {
  await srv?.server.kill('SIGTERM');
  await killStartedServers();
  await hook?.close();
  if (srv) removeDataDir(srv.dataDir);
});

const webhook = () => ({ type: 'webhook', url: hook.url('/windows') });

async function alertsOf(ruleId: string, server: AlertServer = srv): Promise<AlertJson[]> {
  const alerts = await server.client.alerts({ ruleId });
  return alerts.sort((a, b) => Date.parse(a.firedAt) - Date.parse(b.firedAt));
}

/** The webhook bodies received for a rule, by alert id (after the receiver's dedupe). */
function hooksOf(ruleId: string): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const hit of hook.accepted.values()) {
    const rule = hit.json?.rule as { id?: string } | undefined;
    if (rule?.id === ruleId)
      out.set(hit.json?.alertId as string, hit.json as Record<string, unknown>);
  }
  return out;
}

describe('ladders through the HTTP API', () => {
  it('50/80/100 % of a token budget fire in order, once each, as the value climbs', async () => {
    const rule = await srv.client.createRule({
      name: 'ladder tokens',
      scope: ['user', 'model'],
      filters: { user: ['ladder-a'] },
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
      budget: 10_000,
      levels: [{ percent: 50 }, { percent: 80 }, { percent: 100 }],
      channels: [webhook()],
    });
    const t0 = recentInCurrentHour(30_000);
    const at = (inputTokens: number) =>
      usageEvent({ userId: 'ladder-a', timestampMs: t0, inputTokens });

    // Below the first level: nothing.
    await srv.client.ingest([at(4_000)]);
    expect(await alertsOf(rule.id)).toEqual([]);
    const status0 = await srv.client.send('GET', `/v1/rules/${rule.id}/status`);
    expect(status0.status).toBe(200);
    const s0 = status0.json().status;
    expect(s0.scopes).toHaveLength(1);
    expect(s0.scopes[0]).toMatchObject({
      scope: { user: 'ladder-a', model: 'gpt-4o-mini' },
      value: 4_000,
      percentOfBudget: 40,
      nextLevel: { index: 0, threshold: 5_000, percent: 50 },
    });

    const steps: Array<{ tokens: number; fires: number | undefined; total: number }> = [
      { tokens: 1_500, fires: 50, total: 5_500 },
      { tokens: 1_000, fires: undefined, total: 6_500 },
      { tokens: 1_700, fires: 80, total: 8_200 },
      { tokens: 1_800, fires: 100, total: 10_000 }, // exactly at the level: before < level <= after
      { tokens: 5_000, fires: undefined, total: 15_000 },
    ];
    const fired: number[] = [];
    for (const step of steps) {
      await srv.client.ingest([at(step.tokens)]);
      // The alert row commits with the batch, before the 202.
      const alerts = await alertsOf(rule.id);
      if (step.fires !== undefined) fired.push(step.fires);
      expect(alerts.map((a) => a.level.percent)).toEqual(fired);
      const last = alerts[alerts.length - 1];
      if (step.fires !== undefined) {
        expect(last?.value).toBe(step.total);
        expect(last?.level.threshold).toBe((10_000 * step.fires) / 100);
        // The webhook for this level arrives before the next step is sent.
        await hook.waitFor(
          () => hooksOf(rule.id).has(last?.id ?? ''),
          15_000,
          `level ${step.fires}`,
        );
      }
    }
    const alerts = await alertsOf(rule.id);
    expect(alerts.map((a) => a.level.index)).toEqual([0, 1, 2]);
    expect(new Set(alerts.map((a) => a.window.start)).size).toBe(1);
    // Webhooks arrived in the same order, once each after dedupe.
    const received = [...hook.accepted.values()]
      .filter((h) => (h.json?.rule as { id?: string } | undefined)?.id === rule.id)
      .map((h) => (h.json?.level as { percent?: number } | undefined)?.percent);
    expect(received).toEqual([50, 80, 100]);

    const status = (await srv.client.send('GET', `/v1/rules/${rule.id}/status`)).json().status;
    expect(status.scopes[0]).toMatchObject({
      value: 15_000,
      percentOfBudget: 150,
      nextLevel: null,
    });
  });

  it('a cost ladder (50/80/100 % of $1.50 a month, Europe/Berlin) fires at the exact USD levels', async () => {
    const rule = await srv.client.createRule({
      name: 'ladder cost',
      scope: ['user'],
      filters: { user: ['ladder-cost'] },
      metric: 'costUsd',
      window: { type: 'calendar', unit: 'month', timeZone: 'Europe/Berlin' },
      budget: 1.5,
      levels: [{ percent: 50 }, { percent: 80 }, { percent: 100 }],
      channels: [webhook()],
    });
    const t0 = recentInCurrentHour(30_000);
    // gpt-4o-mini: $0.15 / M input, $0.60 / M output.
    const spend = (inputTokens: number, outputTokens: number) =>
      usageEvent({ userId: 'ladder-cost', timestampMs: t0, inputTokens, outputTokens });
    await srv.client.ingest([spend(1_000_000, 1_000_000)]); // $0.75 = 50 % exactly
    expect((await alertsOf(rule.id)).map((a) => a.level.percent)).toEqual([50]);
    await srv.client.ingest([spend(1_000_000, 0)]); // $0.90
    expect((await alertsOf(rule.id)).map((a) => a.level.percent)).toEqual([50]);
    await srv.client.ingest([spend(0, 500_000)]); // $1.20 = 80 % exactly
    expect((await alertsOf(rule.id)).map((a) => a.level.percent)).toEqual([50, 80]);
    await srv.client.ingest([spend(0, 500_000)]); // $1.50 = 100 % exactly
    const alerts = await alertsOf(rule.id);
    expect(alerts.map((a) => a.level.percent)).toEqual([50, 80, 100]);
    expect(alerts.map((a) => a.level.threshold)).toEqual([0.75, 1.2, 1.5]);
    expect(alerts.map((a) => a.value)).toEqual([0.75, 1.2, 1.5]);
    // The month window in Berlin: from local midnight of the 1st to the next 1st.
    const month = localTime(t0, 'Europe/Berlin').date.slice(0, 7);
    const start = Date.parse(alerts[0]?.window.start ?? '');
    const end = Date.parse(alerts[0]?.window.end ?? '');
    expect(localTime(start, 'Europe/Berlin')).toMatchObject({
      date: `${month}-01`,
      hour: 0,
      minute: 0,
    });
    expect(localTime(start - 1, 'Europe/Berlin').date.slice(0, 7)).not.toBe(month);
    expect(localTime(end, 'Europe/Berlin')).toMatchObject({ hour: 0, minute: 0 });
    expect(localTime(end, 'Europe/Berlin').date.endsWith('-01')).toBe(true);
    expect(localTime(end - 1, 'Europe/Berlin').date.slice(0, 7)).toBe(month);
    expect(alerts[0]?.window.timeZone).toBe('Europe/Berlin');
  });

  it('one batch crossing three levels raises three alerts, one webhook each', async () => {
    const rule = await srv.client.createRule({
      name: 'ladder jump',
      scope: ['user'],
      filters: { user: ['ladder-jump'] },
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
      budget: 1_000,
      levels: [{ percent: 100 }, { percent: 50 }, { percent: 80 }],
      channels: [webhook()],
    });
    await srv.client.ingest([usageEvent({ userId: 'ladder-jump', inputTokens: 5_000 })]);
    const alerts = await alertsOf(rule.id);
    expect(alerts.map((a) => a.level.percent).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual([
      50, 80, 100,
    ]);
    // level.index is the level's position as written.
    expect(Object.fromEntries(alerts.map((a) => [a.level.percent, a.level.index]))).toEqual({
      100: 0,
      50: 1,
      80: 2,
    });
    await hook.waitFor(() => hooksOf(rule.id).size === 3, 15_000, 'three webhooks');
    await srv.client.ingest([usageEvent({ userId: 'ladder-jump', inputTokens: 5_000 })]);
    expect(await alertsOf(rule.id)).toHaveLength(3);
  });
});

describe('rollover and late events', () => {
  it('a new hour window re-arms; crossings in past windows are raised, marked late', async () => {
    const rule = await srv.client.createRule({
      name: 'hourly',
      scope: ['user'],
      filters: { user: ['roll'] },
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'hour', timeZone: 'UTC' },
      levels: [{ value: 1_000 }],
      channels: [webhook()],
    });
    const now = Date.now();
    const hourStart = (ms: number) => Math.floor(ms / HOUR_MS) * HOUR_MS;
    // A rule watches the windows from the one it started counting in: as if it had existed for
    // six hours (see backdateRule).
    backdateRule(srv.dataDir, rule.id, hourStart(now) - 6 * HOUR_MS);
    const inHour = (hoursAgo: number) => hourStart(now) - hoursAgo * HOUR_MS + 10 * MINUTE_MS;
    const ev = (ms: number, tokens: number) =>
      usageEvent({ userId: 'roll', timestampMs: Math.min(ms, now - 1_000), inputTokens: tokens });

    // Five hours ago: 600 tokens, then (a late event) 600 more, crossing 1,000 in that past window.
    await srv.client.ingest([ev(inHour(5), 600)]);
    expect(await alertsOf(rule.id)).toEqual([]);
    await srv.client.ingest([ev(inHour(5) + MINUTE_MS, 600)]);
    // Three windows in a row, each crossing on its own: each one fires once.
    await srv.client.ingest([ev(inHour(3), 1_500)]);
    await srv.client.ingest([ev(inHour(2), 1_500)]);
    await srv.client.ingest([ev(now - 1_000, 1_500)]);
    // More in windows that already fired: nothing new.
    await srv.client.ingest([ev(inHour(3) + MINUTE_MS, 5_000), ev(now - 500, 5_000)]);

    const alerts = await alertsOf(rule.id);
    const byStart = new Map(alerts.map((a) => [a.window.start, a]));
    expect(alerts).toHaveLength(4);
    expect(byStart.size).toBe(4);
    for (const hoursAgo of [5, 3, 2]) {
      const start = hourStart(now) - hoursAgo * HOUR_MS;
      const a = byStart.get(iso(start));
      expect(a, `alert of the window ${hoursAgo} h ago`).toBeDefined();
      expect(a?.window.end).toBe(iso(start + HOUR_MS));
      expect(a?.late).toBe(true);
    }
    expect(byStart.get(iso(hourStart(now - 5 * HOUR_MS)))?.value).toBe(1_200);
    const current = byStart.get(iso(hourStart(now - 1_000)));
    expect(current).toBeDefined();
    // Not late unless the hour ended between the event and its flush.
    expect(current?.late).toBe(
      Date.parse(current?.window.end ?? '') <= Date.parse(current?.firedAt ?? ''),
    );
    // Each window's alert reached the receiver once, with the same window and late mark.
    await hook.waitFor(() => hooksOf(rule.id).size === 4, 15_000, 'four webhooks');
    for (const a of alerts) {
      const body = hooksOf(rule.id).get(a.id);
      expect(body?.window).toEqual(a.window);
      expect(body?.late).toBe(a.late);
    }
  });
});

describe('calendar windows across a DST change', () => {
  // The most recent change in the zones (they change every few months), and a server whose clock
  // reads ten days after it: the whole local day of the change is inside the 35 days events may
  // be late, whatever today's date.
  const realNow = Date.now();
  const change = latestDstChange(DST_ZONES, realNow - 366 * DAY_MS, realNow);
  const now = (change?.atMs ?? realNow) + 10 * DAY_MS;
  let dst: AlertServer | undefined;

  beforeAll(async () => {
    dst = await startAlertServer({
      label: 'windows-dst',
      config: { alerts: { allowPrivateNetworks: true } },
      env: shiftedClockEnv(now - Date.now()),
    });
  });

  afterAll(async () => {
    await dst?.server.kill('SIGTERM');
    if (dst) removeDataDir(dst.dataDir);
  });

  it('the day (and hour) windows of the most recent DST change start and end at the right instants', async () => {
    expect(change, `no DST change in ${DST_ZONES.join(', ')} within a year`).toBeDefined();
    if (!change || !dst) return;
    const { timeZone, atMs } = change;
    const before = atMs - 30 * MINUTE_MS;
    const after = atMs + 30 * MINUTE_MS;
    const day = localDayWindow(atMs, timeZone);
    expect(day.startMs).toBeGreaterThan(now - 35 * DAY_MS);
    // A DST day is not 24 hours long.
    expect(day.endMs - day.startMs).toBe(
      DAY_MS - (change.offsetAfterMin - change.offsetBeforeMin) * MINUTE_MS,
    );
    const sameDay = localTime(before, timeZone).date === localTime(after, timeZone).date;

    const dayRule = await dst.client.createRule({
      name: `dst day ${timeZone}`,
      scope: ['user'],
      filters: { user: ['dst'] },
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'day', timeZone },
      levels: [{ value: 1_000 }],
      channels: [webhook()],
    });
    const hourRule = await dst.client.createRule({
      name: `dst hour ${timeZone}`,
      scope: ['user'],
      filters: { user: ['dst'] },
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'hour', timeZone },
      levels: [{ value: 1_000 }],
      channels: [webhook()],
    });
    // Rules that have watched since before that DST day (see backdateRule).
    for (const r of [dayRule, hourRule]) backdateRule(dst.dataDir, r.id, day.startMs - DAY_MS);
    // One event 30 min before the change, one 30 min after; each crosses its hour's level, and
    // the day's level once (when they fall on one local day).
    await dst.client.ingest([
      usageEvent({ userId: 'dst', timestampMs: before, inputTokens: 1_500 }),
      usageEvent({ userId: 'dst', timestampMs: after, inputTokens: 1_500 }),
    ]);

    const dayAlerts = await alertsOf(dayRule.id, dst);
    const expectedDays = sameDay
      ? [localDayWindow(atMs, timeZone)]
      : [localDayWindow(before, timeZone), localDayWindow(after, timeZone)];
    expect(
      dayAlerts.map((a) => [a.window.start, a.window.end]).sort(),
      `day windows in ${timeZone} around ${iso(atMs)}`,
    ).toEqual(expectedDays.map((w) => [iso(w.startMs), iso(w.endMs)]).sort());
    for (const a of dayAlerts) {
      expect(a.window.timeZone).toBe(timeZone);
      expect(a.late).toBe(true);
      // Fired by the server's clock, ten days after the change: the shift took effect.
      expect(Math.abs(Date.parse(a.firedAt) - now)).toBeLessThan(5 * MINUTE_MS);
    }
    // The webhook body carries the same instants.
    await hook.waitFor(
      () => hooksOf(dayRule.id).size === dayAlerts.length,
      15_000,
      'the DST day webhooks',
    );
    for (const a of dayAlerts) {
      expect(hooksOf(dayRule.id).get(a.id)?.window).toEqual({
        start: a.window.start,
        end: a.window.end,
        timeZone,
      });
    }

    // Hour windows: each event in its own local hour (a repeated hour is two windows). Only
    // checked for whole-hour changes at a local :00, where "the hour" is unambiguous.
    const wholeHour =
      Math.abs(change.offsetAfterMin - change.offsetBeforeMin) === 60 &&
      localTime(atMs, timeZone).minute === 0;
    const hourAlerts = await alertsOf(hourRule.id, dst);
    expect(hourAlerts).toHaveLength(2);
    if (wholeHour) {
      const expected = [localHourWindow(before, timeZone), localHourWindow(after, timeZone)];
      expect(hourAlerts.map((a) => [a.window.start, a.window.end]).sort()).toEqual(
        expected.map((w) => [iso(w.startMs), iso(w.endMs)]).sort(),
      );
      // The change is a boundary: one window ends and the next starts at that very instant.
      expect(expected[0]?.endMs).toBe(atMs);
      expect(expected[1]?.startMs).toBe(atMs);
    }
  });
});

describe('forecasts', () => {
  it('a forecast fires once when the projection to the window end first reaches 100 %', async () => {
    // A day window in a zone where the local day is 10–60 % gone, so a value well under the
    // budget already projects past it at the current rate.
    const now = Date.now();
    const zones = ['UTC', 'Asia/Tokyo', 'America/Los_Angeles', 'Asia/Kolkata', 'Europe/Berlin'];
    const pick = zones
      .map((timeZone) => {
        const day = localDayWindow(now, timeZone);
        return { timeZone, day, fraction: (now - day.startMs) / (day.endMs - day.startMs) };
      })
      .find((z) => z.fraction > 0.1 && z.fraction < 0.6);
    expect(pick, 'a zone whose day is 10-60 % gone').toBeDefined();
    if (!pick) return;
    const budget = 1_000_000;
    const rule = await srv.client.createRule({
      name: `forecast ${pick.timeZone}`,
      scope: ['user'],
      filters: { user: ['forecaster'] },
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'day', timeZone: pick.timeZone },
      budget,
      levels: [{ percent: 100 }],
      forecast: true,
      channels: [webhook()],
    });
    // value / fraction = 1.5 × budget at the end of the day: on track to exceed it.
    const value = Math.ceil(budget * pick.fraction * 1.5);
    expect(value).toBeLessThan(budget);
    await srv.client.ingest([
      usageEvent({ userId: 'forecaster', timestampMs: now - 1_000, inputTokens: value }),
    ]);
    let alerts = await alertsOf(rule.id);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ forecast: true, late: false });
    expect(alerts[0]?.value).toBe(value);
    expect(alerts[0]?.window.start).toBe(iso(pick.day.startMs));
    const status = (await srv.client.send('GET', `/v1/rules/${rule.id}/status`)).json().status;
    expect(status.scopes[0].projectedValue).toBeGreaterThan(budget);
    expect(Date.parse(status.scopes[0].projectedCrossingAt)).toBeLessThan(pick.day.endMs);
    expect(Date.parse(status.scopes[0].projectedCrossingAt)).toBeGreaterThanOrEqual(now - 60_000);
    expect(status.window).toMatchObject({ start: iso(pick.day.startMs), end: iso(pick.day.endMs) });
    // More usage, still projecting past the budget: no second forecast.
    await srv.client.ingest([usageEvent({ userId: 'forecaster', inputTokens: 10 })]);
    expect(await alertsOf(rule.id)).toHaveLength(1);
    // Reaching the budget fires the level itself, once.
    await srv.client.ingest([usageEvent({ userId: 'forecaster', inputTokens: budget })]);
    alerts = await alertsOf(rule.id);
    expect(alerts.map((a) => a.forecast)).toEqual([true, false]);
    expect(alerts[1]?.level.percent).toBe(100);
    await hook.waitFor(() => hooksOf(rule.id).size === 2, 15_000, 'forecast and level webhooks');
    expect([...hooksOf(rule.id).values()].map((b) => b.forecast).sort()).toEqual([false, true]);
  });
});

describe('acknowledging', () => {
  it('POST /v1/alerts/:id/ack marks an alert; the acknowledged filter sees it', async () => {
    const rule = await srv.client.createRule({
      name: 'ack me',
      scope: ['user'],
      filters: { user: ['acker'] },
      metric: 'requests',
      window: { type: 'rolling', minutes: 60 },
      levels: [{ value: 2 }],
      channels: [webhook()],
    });
    await srv.client.ingest([usageEvent({ userId: 'acker' }), usageEvent({ userId: 'acker' })]);
    const [alert] = await alertsOf(rule.id);
    expect(alert).toBeDefined();
    expect(alert?.acknowledgedAt).toBeNull();
    const ack = await srv.client.send('POST', `/v1/alerts/${alert?.id}/ack`);
    expect(ack.status).toBe(200);
    const acked = await srv.client.alerts({ ruleId: rule.id, acknowledged: 'true' });
    expect(acked.map((a) => a.id)).toEqual([alert?.id]);
    expect(acked[0]?.acknowledgedAt).not.toBeNull();
    expect(await srv.client.alerts({ ruleId: rule.id, acknowledged: 'false' })).toEqual([]);
    expect((await srv.client.send('POST', '/v1/alerts/alr_nope/ack')).status).toBe(404);
    // Filters: since (RFC 3339 or epoch ms), and bad parameters are 400s naming them.
    expect(await srv.client.alerts({ ruleId: rule.id, since: iso(Date.now() + 60_000) })).toEqual(
      [],
    );
    expect(
      (await srv.client.alerts({ ruleId: rule.id, since: String(Date.now() - 60_000) })).map(
        (a) => a.id,
      ),
    ).toEqual([alert?.id]);
    for (const [param, value] of [
      ['limit', '0'],
      ['acknowledged', 'maybe'],
      ['since', 'yesterday-ish'],
      ['colour', 'red'],
    ] as const) {
      const bad = await srv.client.send('GET', `/v1/alerts?${param}=${value}`);
      expect(bad.status, `${param}=${value}`).toBe(400);
      expect(errorFields(bad)).toContain(param);
    }
    expect((await srv.client.send('GET', '/v1/deliveries?status=lost')).status).toBe(400);
    // Ingest keys may not read alerts.
    const ingestList = await srv.client.send('GET', '/v1/alerts', undefined, srv.client.ingestKey);
    expect(ingestList.status).toBe(403);
  });
});
