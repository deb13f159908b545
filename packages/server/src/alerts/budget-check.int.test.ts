import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AlertServer,
  errorFields,
  eventually,
  startAlertServer,
  usageEvent,
} from '../testing/alerts-harness.js';
import { createKey, killStartedServers, removeDataDir } from '../testing/server-process.js';

/**
 * Issue 3, item 6 and "What must hold": `POST /v1/check` against a real `tokenwatch serve`.
 * An enforcing budget allows, then denies once the budget is used (or would be passed by the
 * estimate), while another user is still allowed; the remaining budget is reported; ingest keys
 * may call it, read keys may not. A rule created mid-window starts from the window's totals.
 */

interface CheckedRule {
  ruleId: string;
  name: string;
  metric: string;
  scope: Record<string, string>;
  limit: number;
  used: number;
  remaining: number;
  windowEnd: string;
  exceeded: boolean;
}
interface CheckJson {
  allowed: boolean;
  degraded?: string;
  rules: CheckedRule[];
}

let srv: AlertServer;

beforeAll(async () => {
  srv = await startAlertServer({ label: 'check' });
});

afterAll(async () => {
  await srv?.server.kill('SIGTERM');
  await killStartedServers();
  if (srv) removeDataDir(srv.dataDir);
});

async function check(body: Record<string, unknown>, key?: string): Promise<CheckJson> {
  const res = await srv.client.check(body, key);
  expect(res.status, res.text).toBe(200);
  return res.json<CheckJson>();
}

const who = (userId: string, extra: Record<string, unknown> = {}) => ({
  userId,
  appId: 'chat',
  modelId: 'gpt-4o-mini',
  provider: 'openai',
  ...extra,
});

/** Polls until the check reports `used` for the rule (the processor updates it after commit). */
async function checkWhenUsed(
  ruleId: string,
  body: Record<string, unknown>,
  used: number,
): Promise<CheckJson> {
  return eventually(
    async () => {
      const c = await check(body);
      return c.rules.find((r) => r.ruleId === ruleId)?.used === used ? c : undefined;
    },
    { timeoutMs: 10_000, what: `check reports used = ${used}` },
  );
}

describe('POST /v1/check with an enforcing token budget', () => {
  let ruleId: string;

  it('allows with the whole budget remaining before any usage', async () => {
    const rule = await srv.client.createRule({
      name: 'daily hard budget',
      scope: ['user'],
      filters: { app: ['chat'] },
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
      budget: 10_000,
      levels: [{ percent: 80 }, { percent: 100 }],
      channels: [{ type: 'log' }],
      enforce: true,
    });
    ruleId = rule.id;
    const c = await check(who('alice'));
    expect(c.allowed).toBe(true);
    expect(c.degraded).toBeUndefined();
    expect(c.rules).toHaveLength(1);
    expect(c.rules[0]).toMatchObject({
      ruleId,
      metric: 'totalTokens',
      scope: { user: 'alice' },
      limit: 10_000,
      used: 0,
      remaining: 10_000,
      exceeded: false,
    });
    // The window end is the next UTC midnight.
    const end = Date.parse(c.rules[0]?.windowEnd ?? '');
    expect(end % 86_400_000).toBe(0);
    expect(end).toBeGreaterThan(Date.now());
    expect(end - Date.now()).toBeLessThanOrEqual(86_400_000);
  });

  it('reports the remaining budget and weighs the estimate', async () => {
    await srv.client.ingest([
      usageEvent({ userId: 'alice', inputTokens: 5_000, outputTokens: 1_000 }),
    ]);
    const c = await checkWhenUsed(ruleId, who('alice'), 6_000);
    expect(c.allowed).toBe(true);
    expect(c.rules[0]).toMatchObject({ used: 6_000, remaining: 4_000, exceeded: false });
    expect((await check(who('alice', { estimatedTokens: 4_000 }))).allowed).toBe(true);
    const over = await check(who('alice', { estimatedTokens: 4_001 }));
    expect(over.allowed).toBe(false);
    expect(over.rules[0]).toMatchObject({ remaining: 4_000, exceeded: true });
  });

  it('denies once the budget is used, and still allows another user', async () => {
    await srv.client.ingest([usageEvent({ userId: 'alice', inputTokens: 4_000 })]);
    const c = await checkWhenUsed(ruleId, who('alice'), 10_000);
    expect(c.allowed).toBe(false);
    expect(c.rules[0]).toMatchObject({ used: 10_000, remaining: 0, exceeded: true });
    const bob = await check(who('bob', { estimatedTokens: 9_000 }));
    expect(bob.allowed).toBe(true);
    expect(bob.rules[0]).toMatchObject({ scope: { user: 'bob' }, used: 0, remaining: 10_000 });
    // Outside the rule's filter (another app): no enforcing rule applies.
    const otherApp = await check(who('alice', { appId: 'batch' }));
    expect(otherApp).toMatchObject({ allowed: true, rules: [] });
    // The alerts of the ladder fired as usual.
    const alerts = await srv.client.alerts({ ruleId });
    expect(alerts.map((a) => a.level.percent).sort()).toEqual([100, 80]);
  });

  it('a non-enforcing rule never denies', async () => {
    await srv.client.createRule({
      name: 'soft',
      scope: ['user'],
      filters: { user: ['soft-user'] },
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
      levels: [{ value: 10 }],
      channels: [{ type: 'log' }],
    });
    await srv.client.ingest([usageEvent({ userId: 'soft-user', inputTokens: 1_000 })]);
    const c = await check(who('soft-user'));
    expect(c.allowed).toBe(true);
    expect(c.rules.map((r) => r.name)).toEqual(['daily hard budget']);
  });

  it('a cost budget weighs estimatedCostUsd', async () => {
    const rule = await srv.client.createRule({
      name: 'cost budget',
      scope: ['user'],
      filters: { user: ['spender'] },
      metric: 'costUsd',
      window: { type: 'calendar', unit: 'month', timeZone: 'UTC' },
      budget: 1,
      levels: [{ percent: 100 }],
      channels: [],
      enforce: true,
    });
    // gpt-4o-mini: 1M input + 1M output = $0.75.
    await srv.client.ingest([
      usageEvent({ userId: 'spender', inputTokens: 1_000_000, outputTokens: 1_000_000 }),
    ]);
    const c = await eventually(
      async () => {
        const r = (await check(who('spender', { appId: 'tools' }))).rules.find(
          (x) => x.ruleId === rule.id,
        );
        return r?.used === 0.75 ? r : undefined;
      },
      { timeoutMs: 10_000, what: 'cost used 0.75' },
    );
    expect(c).toMatchObject({ limit: 1, used: 0.75, remaining: 0.25, exceeded: false });
    expect((await check(who('spender', { appId: 'tools', estimatedCostUsd: 0.25 }))).allowed).toBe(
      true,
    );
    expect((await check(who('spender', { appId: 'tools', estimatedCostUsd: 0.26 }))).allowed).toBe(
      false,
    );
  });

  it('a rule created mid-window starts from the totals of the window so far', async () => {
    await srv.client.ingest([
      usageEvent({ userId: 'carol', appId: 'late-app', inputTokens: 7_000 }),
    ]);
    const rule = await srv.client.createRule({
      name: 'late budget',
      scope: ['user'],
      filters: { app: ['late-app'] },
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
      levels: [{ value: 5_000 }, { value: 8_000 }],
      channels: [],
      enforce: true,
    });
    const c = await checkWhenUsed(rule.id, who('carol', { appId: 'late-app' }), 7_000);
    expect(c.rules.find((r) => r.ruleId === rule.id)).toMatchObject({
      limit: 8_000,
      remaining: 1_000,
    });
    // The level its window had already reached fires as the rule is created (not late: the
    // window is the current one); the next one when it is crossed.
    expect(
      (await srv.client.alerts({ ruleId: rule.id })).map((a) => [
        a.level.threshold,
        a.late,
        a.value,
      ]),
    ).toEqual([[5_000, false, 7_000]]);
    await srv.client.ingest([
      usageEvent({ userId: 'carol', appId: 'late-app', inputTokens: 1_000 }),
    ]);
    const alerts = await srv.client.alerts({ ruleId: rule.id });
    expect(alerts.map((a) => a.level.threshold).sort()).toEqual([5_000, 8_000]);
    const status = (await srv.client.send('GET', `/v1/rules/${rule.id}/status`)).json().status;
    expect(status.scopes[0]).toMatchObject({
      scope: { user: 'carol' },
      value: 8_000,
      nextLevel: null,
    });
  });

  it('ingest and admin keys may call it; read keys get 403; an app-bound key only for its app', async () => {
    const read = await createKey(srv.dataDir, { role: 'read' });
    const bound = await createKey(srv.dataDir, { role: 'ingest', app: 'chat' });
    expect((await srv.client.check(who('alice'), srv.client.ingestKey)).status).toBe(200);
    expect((await srv.client.check(who('alice'), srv.client.adminKey)).status).toBe(200);
    const byRead = await srv.client.check(who('alice'), read.key);
    expect(byRead.status).toBe(403);
    expect(byRead.json().error.code).toBe('forbidden');
    expect((await srv.client.send('POST', '/v1/check', who('alice'), null)).status).toBe(401);
    expect((await srv.client.check(who('alice'), bound.key)).status).toBe(200);
    expect((await srv.client.check(who('alice', { appId: 'batch' }), bound.key)).status).toBe(403);
    // As for events, an app-bound key may leave appId out: the key's app is meant.
    const { appId: _appId, ...noApp } = who('alice');
    expect((await srv.client.check(noApp, bound.key)).status).toBe(200);
    expect(errorFields(await srv.client.check(noApp, srv.client.ingestKey))).toContain('appId');
  });

  it("accepts tags checked like an event's (the SDK sends the call's tags)", async () => {
    expect((await srv.client.check(who('alice', { tags: { team: 'search' } }))).status).toBe(200);
    const bad = await srv.client.check(who('alice', { tags: { 'bad key': 'x' } }));
    expect(bad.status).toBe(400);
    expect(errorFields(bad).some((f) => f.startsWith('tags'))).toBe(true);
  });

  it('invalid check requests are 400s naming the field', async () => {
    const missing = await srv.client.check({ appId: 'chat', modelId: 'gpt-4o-mini' });
    expect(missing.status).toBe(400);
    expect(errorFields(missing)).toContain('userId');
    const negative = await srv.client.check(who('alice', { estimatedTokens: -1 }));
    expect(negative.status).toBe(400);
    expect(errorFields(negative)).toContain('estimatedTokens');
    const unknown = await srv.client.check(who('alice', { tokens: 5 }));
    expect(unknown.status).toBe(400);
    expect(errorFields(unknown)).toContain('tokens');
  });

  it('after a restart the budget state is loaded from the store: still denied', async () => {
    await srv.server.kill('SIGTERM');
    srv = await startAlertServer({
      dataDir: srv.dataDir,
      keys: { adminKey: srv.client.adminKey, ingestKey: srv.client.ingestKey },
    });
    const c = await check(who('alice'));
    expect(c.allowed).toBe(false);
    expect(c.rules.find((r) => r.ruleId === ruleId)).toMatchObject({ used: 10_000, remaining: 0 });
    expect((await check(who('bob'))).allowed).toBe(true);
  });
});
