import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTRACT_T0, makePricedEvent, makeRule } from '@tokenwatch/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStore } from './sqlite-store.js';

const LEASE_MS = 60_000;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function storeWithRule(leaseNewDeliveriesMs?: number): Promise<SqliteStore> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-leased-'));
  dirs.push(dir);
  const store = new SqliteStore({
    path: join(dir, 'tokenwatch.db'),
    ...(leaseNewDeliveriesMs !== undefined ? { leaseNewDeliveriesMs } : {}),
  });
  await store.migrate();
  await store.createProject({ id: 'p1', name: 'p1', createdAtMs: CONTRACT_T0 });
  await store.createRule(
    makeRule({
      scope: ['user'],
      levels: [{ value: 100 }],
      channels: [{ type: 'webhook', url: 'https://example.com/a' }, { type: 'log' }],
    }),
    CONTRACT_T0,
  );
  return store;
}

const crossing = (userId: string) =>
  makePricedEvent({ userId, inputTokens: 500, outputTokens: 0, timestampMs: CONTRACT_T0 + 60_000 });

describe('SQLite deliveries leased to the process that applied the batch', () => {
  it('creates a batch’s deliveries leased and returns them, as a claim would have', async () => {
    const store = await storeWithRule(LEASE_MS);
    try {
      const nowMs = CONTRACT_T0 + 61_000;
      const result = await store.applyBatch([crossing('a'), crossing('b')], { nowMs });
      expect(result.alerts).toHaveLength(2);
      const leased = result.leasedDeliveries ?? [];
      expect(leased).toHaveLength(4); // 2 alerts × 2 channels
      const stored = await store.listDeliveries('p1', {}, 10);
      for (const d of leased) {
        expect(d).toMatchObject({
          status: 'sending',
          attempts: 1,
          nextAttemptMs: nowMs + LEASE_MS,
        });
        const row = stored.find((s) => s.id === d.id);
        // The record handed over is the stored row, message and channel included.
        expect(row).toEqual({ ...d, message: row?.message });
        expect(row?.message).toEqual(d.message);
      }
      // Nobody else can lease them while the lease runs; once it ends, a claim resumes them.
      expect(await store.claimDeliveries(nowMs + LEASE_MS - 1, 10, LEASE_MS)).toEqual([]);
      const resumed = await store.claimDeliveries(nowMs + LEASE_MS, 10, LEASE_MS);
      expect(resumed.map((d) => d.id).sort()).toEqual(leased.map((d) => d.id).sort());
      expect(resumed.every((d) => d.attempts === 2)).toBe(true);
      // A redelivered batch fires nothing and hands over nothing.
      const again = await store.applyBatch([crossing('a')], { nowMs: nowMs + 1 });
      expect(again.leasedDeliveries).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it('leaves them in the outbox for a claim when not asked to (another process on the file)', async () => {
    const store = await storeWithRule();
    try {
      const nowMs = CONTRACT_T0 + 61_000;
      const result = await store.applyBatch([crossing('a')], { nowMs });
      expect(result.alerts).toHaveLength(1);
      expect(result.leasedDeliveries).toBeUndefined();
      const claimed = await store.claimDeliveries(nowMs, 10, LEASE_MS);
      expect(claimed).toHaveLength(2);
      expect(claimed.every((d) => d.attempts === 1)).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('does not lease the deliveries of alerts fired outside a batch (nothing would send them)', async () => {
    const store = await storeWithRule(LEASE_MS);
    try {
      const nowMs = CONTRACT_T0 + 61_000;
      const result = await store.applyBatch([crossing('a')], { nowMs });
      const [alert] = result.alerts;
      if (!alert) throw new Error('expected an alert');
      // An alert of the window before, fired outside a batch (as a rule save's back-fill does).
      const earlier = {
        ...alert,
        alertId: `${alert.alertId}-b`,
        windowStartMs: alert.windowStartMs - 3_600_000,
        windowEndMs: alert.windowStartMs,
      };
      const fired = await store.fireAlerts([earlier], nowMs);
      expect(fired).toHaveLength(1);
      const claimed = await store.claimDeliveries(nowMs, 10, LEASE_MS);
      expect(claimed.map((d) => d.alertId)).toEqual([`${alert.alertId}-b`, `${alert.alertId}-b`]);
    } finally {
      await store.close();
    }
  });
});
