import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PricedEvent } from '../event/usage-event.js';
import type { Store } from '../ports/project-store.js';
import { type CompiledRule, compileRule, counterKeyOf, FORECAST_LEVEL } from '../rules/evaluate.js';
import type { Rule } from '../rules/rule.js';
import { uncapturedAlerts } from '../rules/uncaptured-alerts.js';
import { historyRetentionCases } from './history-retention-cases.js';
import { makePricedEvent, type StoreUnderTest } from './store-contract.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;
/** 2026-03-10T10:00:00Z, the start of an hour window. */
const T0 = Date.UTC(2026, 2, 10, 10, 0, 0);

let ruleSeq = 0;
export function makeRule(overrides: Partial<Rule> = {}): Rule {
  ruleSeq++;
  return {
    id: `rule-${ruleSeq}`,
    projectId: 'p1',
    name: `rule ${ruleSeq}`,
    scope: ['user', 'model'],
    filters: {},
    metric: 'totalTokens',
    window: { type: 'calendar', unit: 'hour', timeZone: 'UTC' },
    budget: undefined,
    levels: [{ value: 10_000 }],
    forecast: false,
    channels: [{ type: 'log' }, { type: 'webhook', url: 'http://127.0.0.1:9/hook' }],
    enforce: false,
    enabled: true,
    createdAtMs: T0,
    updatedAtMs: T0,
    ...overrides,
  };
}

function tokens(total: number, overrides: Partial<PricedEvent> = {}): PricedEvent {
  return makePricedEvent({
    inputTokens: total,
    outputTokens: 0,
    timestampMs: T0 + 10 * MINUTE,
    ...overrides,
  });
}

/**
 * The rule contract: counters, exactly-once alerts and the outbox, for every store adapter.
 */
export function runRuleContract(name: string, open: () => Promise<StoreUnderTest>): void {
  describe(`Rule contract: ${name}`, () => {
    let sut: StoreUnderTest;
    let store: Store;

    beforeEach(async () => {
      sut = await open();
      store = sut.store;
      await store.migrate();
      for (const id of ['p1', 'p2']) await store.createProject({ id, name: id, createdAtMs: T0 });
    });
    afterEach(async () => {
      await sut.cleanup();
    });

    async function withRule(rule: Rule, nowMs = T0 + 5 * MINUTE): Promise<CompiledRule> {
      await store.createRule(rule, nowMs);
      return compileRule(rule);
    }

    historyRetentionCases(() => store, withRule, makeRule, T0);

    it("fires the seed's rule once per user × model × hour, and re-arms in the next hour", async () => {
      const rule = await withRule(makeRule());
      const now = { nowMs: T0 + 20 * MINUTE };
      expect((await store.applyBatch([tokens(6_000)], now)).alerts).toEqual([]);
      const crossing = await store.applyBatch([tokens(3_000), tokens(2_000)], now);
      expect(crossing.alerts).toHaveLength(1);
      expect(crossing.alerts[0]).toMatchObject({
        ruleId: rule.rule.id,
        scopeKey: JSON.stringify(['alice', 'anthropic.claude-3-haiku-20240307-v1:0']),
        windowStartMs: T0,
        windowEndMs: T0 + HOUR,
        levelIndex: 0,
        value: 11_000,
        late: false,
      });
      expect(crossing.alerts[0]?.message).toMatchObject({
        scope: { user: 'alice', model: 'anthropic.claude-3-haiku-20240307-v1:0' },
        value: 11_000,
        level: { index: 0, threshold: 10_000, value: 10_000 },
      });
      // Past the threshold: no second alert in the same window (the seed would send one per event).
      expect((await store.applyBatch([tokens(5_000), tokens(5_000)], now)).alerts).toEqual([]);
      // Another user has a counter of their own.
      expect(
        (await store.applyBatch([tokens(10_000, { userId: 'bob' })], now)).alerts,
      ).toHaveLength(1);
      // The next hour is a new window: it fires again.
      const nextHour = { nowMs: T0 + HOUR + 20 * MINUTE };
      const again = await store.applyBatch(
        [tokens(10_001, { timestampMs: T0 + HOUR + 5 * MINUTE })],
        nextHour,
      );
      expect(again.alerts.map((a) => a.windowStartMs)).toEqual([T0 + HOUR]);
      const alerts = await store.listAlerts({ projectId: 'p1', limit: 100 });
      expect(alerts).toHaveLength(3);
      const deliveries = await store.listDeliveries('p1', {}, 100);
      expect(deliveries).toHaveLength(6); // one per channel per alert
      expect(new Set(deliveries.map((d) => d.id)).size).toBe(6);
    });

    it('never fires twice for redelivered events', async () => {
      const rule = await withRule(makeRule());
      const now = { nowMs: T0 + 20 * MINUTE };
      const batch = [tokens(4_000), tokens(4_000), tokens(4_000)];
      expect((await store.applyBatch(batch, now)).alerts).toHaveLength(1);
      const again = await store.applyBatch(batch, now);
      expect(again).toMatchObject({ accepted: 0, duplicates: 3, alerts: [] });
      expect(await store.readCounters(rule.counterKey, T0, T0 + HOUR)).toEqual([
        {
          ruleId: rule.counterKey,
          scopeKey: JSON.stringify(['alice', 'anthropic.claude-3-haiku-20240307-v1:0']),
          bucketStartMs: T0,
          value: 12_000,
        },
      ]);
    });

    it('fires a 50/80/100 % ladder in order, once each', async () => {
      await withRule(
        makeRule({
          scope: ['user'],
          metric: 'costUsd',
          budget: 200,
          levels: [{ percent: 50 }, { percent: 80 }, { percent: 100 }],
          window: { type: 'calendar', unit: 'month', timeZone: 'UTC' },
        }),
      );
      const now = { nowMs: T0 + 20 * MINUTE };
      const usd = (dollars: number) => tokens(1, { costNanoUsd: dollars * 1e9 });
      expect((await store.applyBatch([usd(99)], now)).alerts).toEqual([]);
      expect((await store.applyBatch([usd(1)], now)).alerts.map((a) => a.levelIndex)).toEqual([0]);
      expect((await store.applyBatch([usd(70)], now)).alerts.map((a) => a.levelIndex)).toEqual([1]);
      expect((await store.applyBatch([usd(29)], now)).alerts).toEqual([]);
      const top = await store.applyBatch([usd(1), usd(500)], now);
      expect(
        top.alerts.map((a) => [a.levelIndex, a.message.value, a.message.level.percent]),
      ).toEqual([[2, 700, 100]]);
      expect(top.alerts[0]?.windowStartMs).toBe(Date.UTC(2026, 2, 1));
    });

    it('fires every level a single batch jumps over', async () => {
      await withRule(makeRule({ levels: [{ value: 100 }, { value: 200 }, { value: 300 }] }));
      const result = await store.applyBatch([tokens(1_000)], {
        nowMs: T0 + 20 * MINUTE,
      });
      expect(result.alerts.map((a) => a.levelIndex).sort()).toEqual([0, 1, 2]);
    });

    it('starts a rule created mid-window from the window totals', async () => {
      await store.applyBatch([tokens(9_000)], { nowMs: T0 + 11 * MINUTE });
      await withRule(makeRule(), T0 + 12 * MINUTE);
      const now = { nowMs: T0 + 20 * MINUTE };
      expect((await store.applyBatch([tokens(500)], now)).alerts).toEqual([]);
      expect((await store.applyBatch([tokens(600)], now)).alerts.map((a) => a.value)).toEqual([
        10_100,
      ]);
    });

    it('raises a late alert when a late event crosses a past window', async () => {
      await withRule(makeRule(), T0 + 5 * MINUTE);
      const now = { nowMs: T0 + 3 * HOUR };
      const result = await store.applyBatch([tokens(12_000)], now); // event in [T0, T0+1h), two hours ago
      expect(result.alerts).toHaveLength(1);
      expect(result.alerts[0]).toMatchObject({ windowStartMs: T0, late: true });
      expect(result.alerts[0]?.message.late).toBe(true);
    });

    it('never fires for a window that ended before the rule started counting', async () => {
      await withRule(makeRule(), T0 + 3 * HOUR);
      const result = await store.applyBatch([tokens(12_000)], { nowMs: T0 + 3 * HOUR });
      expect(result.alerts).toEqual([]);
    });

    it('fires at once the levels a new rule finds already reached in its window', async () => {
      await store.applyBatch([tokens(12_000), tokens(500, { userId: 'bob' })], {
        nowMs: T0 + 11 * MINUTE,
      });
      const change = await store.createRule(
        makeRule({ levels: [{ value: 5_000 }, { value: 10_000 }, { value: 20_000 }] }),
        T0 + 12 * MINUTE,
      );
      expect(change.rule.countingSinceMs).toBe(T0 + 12 * MINUTE);
      expect(change.alerts.map((a) => [a.scopeKey, a.levelIndex, a.value, a.late]).sort()).toEqual([
        [JSON.stringify(['alice', 'anthropic.claude-3-haiku-20240307-v1:0']), 0, 12_000, false],
        [JSON.stringify(['alice', 'anthropic.claude-3-haiku-20240307-v1:0']), 1, 12_000, false],
      ]);
      expect(await store.listDeliveries('p1', {}, 10)).toHaveLength(4);
      // The next event crosses nothing new.
      expect((await store.applyBatch([tokens(1)], { nowMs: T0 + 13 * MINUTE })).alerts).toEqual([]);
    });

    it('applies filters and keeps projects apart', async () => {
      const rule = await withRule(
        makeRule({ scope: ['app'], filters: { app: ['chat'] }, levels: [{ value: 100 }] }),
      );
      const now = { nowMs: T0 + 20 * MINUTE };
      expect((await store.applyBatch([tokens(500, { appId: 'search' })], now)).alerts).toEqual([]);
      expect((await store.applyBatch([tokens(500, { projectId: 'p2' })], now)).alerts).toEqual([]);
      expect((await store.applyBatch([tokens(500)], now)).alerts.map((a) => a.scopeKey)).toEqual([
        JSON.stringify(['chat']),
      ]);
      expect(await store.listAlerts({ projectId: 'p2', limit: 10 })).toEqual([]);
      expect(await store.listRules('p2')).toEqual([]);
      expect(await store.getRule('p2', rule.rule.id)).toBeUndefined();
    });

    it('rolling windows fire once per period of N minutes while the value is over the level', async () => {
      await withRule(
        makeRule({
          scope: [],
          window: { type: 'rolling', minutes: 10 },
          levels: [{ value: 1_000 }],
        }),
      );
      const at = (minute: number) => ({ nowMs: T0 + minute * MINUTE + 1 });
      const ev = (minute: number, n: number) => tokens(n, { timestampMs: T0 + minute * MINUTE });
      const fired = async (minute: number, n: number) =>
        (await store.applyBatch([ev(minute, n)], at(minute))).alerts.map((a) => [
          (a.windowStartMs - T0) / MINUTE,
          a.value,
          a.message.window.start,
        ]);
      expect(await fired(0, 600)).toEqual([]);
      // Minute 5 holds 1,200 tokens in its last 10 minutes: the period [0, 10) fires.
      expect(await fired(5, 600)).toEqual([[0, 1_200, new Date(T0 - 4 * MINUTE).toISOString()]]);
      // Still over in the same period: nothing new.
      expect(await fired(8, 600)).toEqual([]);
      // Still over in the next period: it fires again.
      expect(await fired(12, 100)).toEqual([[10, 1_300, new Date(T0 + 3 * MINUTE).toISOString()]]);
      expect(await fired(22, 500)).toEqual([]);
      expect(await fired(30, 600)).toEqual([[30, 1_100, new Date(T0 + 21 * MINUTE).toISOString()]]);
    });

    it('rolling windows fire for events that arrive out of time order', async () => {
      await withRule(
        makeRule({
          scope: ['user'],
          window: { type: 'rolling', minutes: 60 },
          levels: [{ value: 100 }],
        }),
      );
      const now = T0 + 30 * MINUTE;
      expect(
        (await store.applyBatch([tokens(60, { timestampMs: now })], { nowMs: now })).alerts,
      ).toEqual([]);
      const late = await store.applyBatch([tokens(60, { timestampMs: now - 3 * MINUTE })], {
        nowMs: now + 1_000,
      });
      expect(late.alerts.map((a) => [a.value, a.windowStartMs])).toEqual([[120, T0]]);
    });

    it('fires a forecast level once when the projection reaches the budget', async () => {
      await withRule(
        makeRule({
          scope: [],
          budget: 100_000,
          levels: [{ percent: 100 }],
          forecast: true,
          window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
        }),
      );
      const dayStart = Date.UTC(2026, 2, 10);
      // 10:10 into the day with 50k tokens projects to ~118k by midnight.
      const result = await store.applyBatch([tokens(50_000)], {
        nowMs: T0 + 10 * MINUTE,
      });
      expect(result.alerts.map((a) => [a.levelIndex, a.forecast, a.windowStartMs])).toEqual([
        [FORECAST_LEVEL, true, dayStart],
      ]);
      expect((await store.applyBatch([tokens(1_000)], { nowMs: T0 + 11 * MINUTE })).alerts).toEqual(
        [],
      );
    });

    it('reports counters of enforcing rules', async () => {
      const rule = await withRule(makeRule({ enforce: true }));
      const result = await store.applyBatch([tokens(700), tokens(300)], {
        nowMs: T0 + 20 * MINUTE,
      });
      expect(result.enforcedCounters).toEqual([
        {
          ruleId: rule.counterKey,
          scopeKey: JSON.stringify(['alice', 'anthropic.claude-3-haiku-20240307-v1:0']),
          bucketStartMs: T0,
          value: 1_000,
        },
      ]);
    });

    it('updates, re-seeds on a changed measure, and deletes rules', async () => {
      const rule = makeRule();
      await store.createRule(rule, T0);
      await expect(store.createRule(rule, T0)).rejects.toMatchObject({ code: 'conflict' });
      await expect(store.createRule(makeRule({ projectId: 'nope' }), T0)).rejects.toMatchObject({
        code: 'not_found',
      });
      await store.applyBatch([tokens(400)], {
        nowMs: T0 + 20 * MINUTE,
      });
      expect(
        await store.updateRule({ ...rule, name: 'renamed', updatedAtMs: T0 + 1 }, T0 + 21 * MINUTE),
      ).toMatchObject({ rule: { name: 'renamed', countingSinceMs: T0 }, alerts: [] });
      expect((await store.getRule('p1', rule.id))?.name).toBe('renamed');
      expect(
        (await store.readCounters(counterKeyOf(rule), T0, T0 + HOUR)).map((c) => c.value),
      ).toEqual([400]);
      expect(
        await store.updateRule({ ...rule, metric: 'requests' }, T0 + 22 * MINUTE),
      ).toMatchObject({ rule: { countingSinceMs: T0 + 22 * MINUTE } });
      // A new measure has counters of its own, seeded from the rollups.
      expect(
        (
          await store.readCounters(counterKeyOf({ ...rule, metric: 'requests' }), T0, T0 + HOUR)
        ).map((c) => c.value),
      ).toEqual([1]);
      expect(await store.updateRule({ ...rule, projectId: 'p2' }, T0)).toBeUndefined();
      expect(await store.deleteRule('p2', rule.id)).toBe(false);
      expect(await store.deleteRule('p1', rule.id)).toBe(true);
      expect(await store.listRules()).toEqual([]);
    });

    it('shares counters between rules that measure the same thing; each fires its own levels', async () => {
      const a = await withRule(makeRule({ levels: [{ value: 100 }] }));
      const b = await withRule(makeRule({ levels: [{ value: 200 }], channels: [{ type: 'log' }] }));
      expect(a.counterKey).toBe(b.counterKey);
      const other = await withRule(makeRule({ metric: 'requests', levels: [{ value: 2 }] }));
      expect(other.counterKey).not.toBe(a.counterKey);
      const now = { nowMs: T0 + 20 * MINUTE };
      const result = await store.applyBatch([tokens(150), tokens(100)], now);
      expect(result.alerts.map((x) => [x.ruleId, x.levelIndex]).sort()).toEqual(
        [
          [a.rule.id, 0],
          [b.rule.id, 0],
          [other.rule.id, 0],
        ].sort(),
      );
      expect((await store.readCounters(a.counterKey, T0, T0 + HOUR)).map((c) => c.value)).toEqual([
        250,
      ]);
      expect(
        (await store.readCounters(other.counterKey, T0, T0 + HOUR)).map((c) => c.value),
      ).toEqual([2]);
      // Deleting one rule keeps the counters the other still reads.
      expect(await store.deleteRule('p1', a.rule.id)).toBe(true);
      expect((await store.readCounters(b.counterKey, T0, T0 + HOUR)).map((c) => c.value)).toEqual([
        250,
      ]);
    });

    it('re-seeds a re-enabled rule from the window totals (usage while it was off counts)', async () => {
      const rule = makeRule({ levels: [{ value: 1_000 }] });
      await store.createRule(rule, T0);
      const on = { nowMs: T0 + 20 * MINUTE };
      await store.applyBatch([tokens(300)], on);
      await store.updateRule({ ...rule, enabled: false }, T0 + 21 * MINUTE);
      await store.applyBatch([tokens(600)], { nowMs: T0 + 22 * MINUTE }); // not evaluated: the rule is off
      await store.updateRule({ ...rule, enabled: true }, T0 + 23 * MINUTE);
      expect(
        (await store.readCounters(counterKeyOf(rule), T0, T0 + HOUR)).map((c) => c.value),
      ).toEqual([900]);
      const result = await store.applyBatch([tokens(200)], {
        nowMs: T0 + 24 * MINUTE,
      });
      expect(result.alerts.map((x) => x.value)).toEqual([1_100]);
    });

    it('leases deliveries once, retries them later, dead-letters and completes them', async () => {
      await withRule(makeRule());
      await store.applyBatch([tokens(20_000)], { nowMs: T0 + 20 * MINUTE });
      const now = T0 + 21 * MINUTE;
      const leased = await store.claimDeliveries(now, 10, 30_000);
      expect(leased.map((d) => [d.channelIndex, d.status, d.attempts])).toEqual([
        [0, 'sending', 1],
        [1, 'sending', 1],
      ]);
      expect(leased[1]?.channel).toEqual({ type: 'webhook', url: 'http://127.0.0.1:9/hook' });
      expect(leased[0]?.message.scope).toEqual({
        user: 'alice',
        model: 'anthropic.claude-3-haiku-20240307-v1:0',
      });
      // Leased: nobody else gets them until the lease ends (a crashed dispatcher's lease expires).
      expect(await store.claimDeliveries(now + 1_000, 10, 30_000)).toEqual([]);
      const [log, hook] = leased as [(typeof leased)[0], (typeof leased)[0]];
      await store.completeDelivery(log.id, { status: 'delivered' }, now + 2_000);
      await store.completeDelivery(
        hook.id,
        { status: 'retry', nextAttemptMs: now + 60_000, error: 'HTTP 503' },
        now + 2_000,
      );
      expect(await store.claimDeliveries(now + 59_000, 10, 30_000)).toEqual([]);
      const retried = await store.claimDeliveries(now + 60_000, 10, 30_000);
      expect(retried.map((d) => [d.id, d.attempts])).toEqual([[hook.id, 2]]);
      await store.completeDelivery(hook.id, { status: 'dead', error: 'gave up' }, now + 61_000);
      const all = await store.listDeliveries('p1', {}, 10);
      expect(Object.fromEntries(all.map((d) => [d.id, [d.status, d.lastError ?? null]]))).toEqual({
        [log.id]: ['delivered', null],
        [hook.id]: ['dead', 'gave up'],
      });
      expect(await store.listDeliveries('p1', { status: 'dead' }, 10)).toHaveLength(1);
      expect(await store.listDeliveries('p2', {}, 10)).toEqual([]);
    });

    it('resumes a delivery whose lease expired (a dispatcher crashed mid-send)', async () => {
      await withRule(makeRule({ channels: [{ type: 'log' }] }));
      await store.applyBatch([tokens(20_000)], { nowMs: T0 + 20 * MINUTE });
      const first = await store.claimDeliveries(T0 + 21 * MINUTE, 10, 30_000);
      expect(first).toHaveLength(1);
      const again = await store.claimDeliveries(T0 + 21 * MINUTE + 30_000, 10, 30_000);
      expect(again.map((d) => [d.id, d.attempts])).toEqual([[first[0]?.id, 2]]);
    });

    it('records alerts raised outside a batch once, with their deliveries', async () => {
      const rule = await withRule(
        makeRule({
          scope: ['model'],
          metric: 'uncapturedTokens',
          window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
          levels: [{ value: 100 }],
        }),
      );
      const alerts = uncapturedAlerts(
        rule,
        [{ modelId: 'm1', hourStartMs: T0, difference: 150, settled: true }],
        T0 + 2 * HOUR,
      );
      expect(alerts).toHaveLength(1);
      expect((await store.fireAlerts(alerts, T0 + 2 * HOUR)).map((a) => a.alertId)).toEqual([
        alerts[0]?.alertId,
      ]);
      expect(await store.fireAlerts(alerts, T0 + 3 * HOUR)).toEqual([]);
      expect((await store.listAlerts({ projectId: 'p1', limit: 10 })).map((a) => a.value)).toEqual([
        150,
      ]);
      expect(await store.listDeliveries('p1', {}, 10)).toHaveLength(2);
    });

    it('lists and acknowledges alerts', async () => {
      await withRule(makeRule({ levels: [{ value: 10 }, { value: 20 }] }));
      await store.applyBatch([tokens(15)], { nowMs: T0 + 20 * MINUTE });
      await store.applyBatch([tokens(15)], { nowMs: T0 + 30 * MINUTE });
      const alerts = await store.listAlerts({ projectId: 'p1', limit: 10 });
      expect(alerts.map((a) => a.levelIndex)).toEqual([1, 0]); // newest first
      const [newest] = alerts as [(typeof alerts)[0]];
      expect(await store.acknowledgeAlert('p2', newest.alertId, T0)).toBe(false);
      expect(await store.acknowledgeAlert('p1', newest.alertId, T0 + HOUR)).toBe(true);
      expect(
        (await store.listAlerts({ projectId: 'p1', acknowledged: true, limit: 10 })).map(
          (a) => a.alertId,
        ),
      ).toEqual([newest.alertId]);
      expect(
        await store.listAlerts({ projectId: 'p1', acknowledged: false, limit: 10 }),
      ).toHaveLength(1);
      expect(
        await store.listAlerts({ projectId: 'p1', sinceMs: T0 + 25 * MINUTE, limit: 10 }),
      ).toHaveLength(1);
      expect(await store.listAlerts({ projectId: 'p1', ruleId: 'other', limit: 10 })).toEqual([]);
    });
  });
}
