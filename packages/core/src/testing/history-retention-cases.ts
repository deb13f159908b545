import { expect, it } from 'vitest';
import type { PricedEvent } from '../event/usage-event.js';
import type { Store } from '../ports/project-store.js';
import type { Rule } from '../rules/rule.js';
import { makePricedEvent } from './store-contract.js';

const MINUTE = 60_000;
const DAY = 86_400_000;

/**
 * The history retention of `prune` (issue 11 item 8), run by the rule contract for every store:
 * finished deliveries, alerts none of whose deliveries is left, and conflicts older than the
 * retention go; a pending delivery keeps its alert; recent history stays.
 */
export function historyRetentionCases(
  store: () => Store,
  withRule: (rule: Rule, nowMs: number) => Promise<unknown>,
  makeRule: () => Rule,
  t0: number,
): void {
  const tokens = (total: number, atMs: number): PricedEvent =>
    makePricedEvent({ inputTokens: total, outputTokens: 0, timestampMs: atMs });
  const prune = (s: Store) =>
    s.prune({
      nowMs: t0 + 100 * DAY,
      minuteRetentionMs: 7 * DAY,
      dedupeRetentionMs: 36 * DAY,
      historyRetentionMs: 90 * DAY, // cutoff: t0 + 10 days
    });

  it('prunes finished deliveries, alerts with no delivery left and conflicts older than the history retention', async () => {
    const s = store();
    await withRule(makeRule(), t0);

    // An old alert (its window ended at t0 + 1 h): one delivery delivered, one waiting to retry.
    const old = await s.applyBatch([tokens(20_000, t0 + 10 * MINUTE)], { nowMs: t0 + 20 * MINUTE });
    expect(old.alerts).toHaveLength(1);
    const [log, hook] = await s.claimDeliveries(t0 + 21 * MINUTE, 10, 30_000);
    if (!log || !hook) throw new Error('expected two deliveries');
    await s.completeDelivery(log.id, { status: 'delivered' }, t0 + 22 * MINUTE);
    await s.completeDelivery(
      hook.id,
      { status: 'retry', nextAttemptMs: t0 + 2 * DAY, error: 'HTTP 503' },
      t0 + 22 * MINUTE,
    );
    // An old and a recent conflict.
    const first = makePricedEvent({ timestampMs: t0 + 10 * MINUTE });
    await s.applyBatch([first], { nowMs: t0 + 20 * MINUTE });
    await s.applyBatch([{ ...first, fingerprint: 'other-1' }], { nowMs: t0 + 20 * MINUTE });
    const later = makePricedEvent({ timestampMs: t0 + 30 * DAY });
    await s.applyBatch([later], { nowMs: t0 + 30 * DAY });
    await s.applyBatch([{ ...later, fingerprint: 'other-2' }], { nowMs: t0 + 30 * DAY });
    // A recent alert (its deliveries pending).
    const recent = await s.applyBatch([tokens(20_000, t0 + 30 * DAY + MINUTE)], {
      nowMs: t0 + 30 * DAY + 2 * MINUTE,
    });
    expect(recent.alerts).toHaveLength(1);

    expect(await prune(s)).toMatchObject({
      deliveriesDeleted: 1,
      alertsDeleted: 0, // its webhook delivery is still pending
      conflictsDeleted: 1,
    });
    expect((await s.listDeliveries('p1', {}, 10)).map((d) => d.id).sort()).not.toContain(log.id);
    expect(await s.listDeliveries('p1', {}, 10)).toHaveLength(3);
    expect(await s.listAlerts({ projectId: 'p1', limit: 10 })).toHaveLength(2);
    expect((await s.listConflicts('p1', 10)).map((c) => c.eventId)).toEqual([later.id]);

    // The webhook gives up (dead): now the old alert has nothing left and goes too.
    expect((await s.claimDeliveries(t0 + 2 * DAY, 10, 30_000)).map((d) => d.id)).toEqual([hook.id]);
    await s.completeDelivery(hook.id, { status: 'dead', error: 'gave up' }, t0 + 2 * DAY);
    expect(await prune(s)).toMatchObject({
      deliveriesDeleted: 1,
      alertsDeleted: 1,
      conflictsDeleted: 0,
    });
    expect((await s.listAlerts({ projectId: 'p1', limit: 10 })).map((a) => a.alertId)).toEqual([
      recent.alerts[0]?.alertId,
    ]);
    expect(await s.listDeliveries('p1', {}, 10)).toHaveLength(2);
    expect(await prune(s)).toMatchObject({
      deliveriesDeleted: 0,
      alertsDeleted: 0,
      conflictsDeleted: 0,
    });
  });
}
