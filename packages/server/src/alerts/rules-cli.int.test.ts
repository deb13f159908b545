import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AlertServer,
  eventually,
  startAlertServer,
  usageEvent,
} from '../testing/alerts-harness.js';
import { killStartedServers, removeDataDir, runCli } from '../testing/server-process.js';
import { startWebhookReceiver, type WebhookReceiver } from '../testing/webhook-receiver.js';

/**
 * Issue 3, item 1: `tokenwatch rules create|list|disable|enable|status|delete --data-dir D`
 * against the data dir a running `tokenwatch serve` uses. The server picks a change up within
 * ~5 s: the test polls (a fresh user per probe, whose one event crosses the level; the alert row
 * commits with the batch, so it is visible as soon as the 202 is), it never sleeps a fixed time.
 */

let srv: AlertServer;
let hook: WebhookReceiver;
let probeSeq = 0;

beforeAll(async () => {
  hook = await startWebhookReceiver();
  srv = await startAlertServer({
    label: 'rules-cli',
    config: { alerts: { allowPrivateNetworks: true } },
  });
});

afterAll(async () => {
  await srv?.server.kill('SIGTERM');
  await killStartedServers();
  await hook?.close();
  if (srv) removeDataDir(srv.dataDir);
});

const cli = (...args: string[]) => runCli(['rules', ...args, '--data-dir', srv.dataDir]);

/** Sends one crossing event for a fresh user; true when the rule raised an alert for it. */
async function probe(ruleId: string): Promise<boolean> {
  const userId = `cli-probe-${++probeSeq}`;
  await srv.client.ingest([
    usageEvent({ userId, inputTokens: 1_500, timestampMs: Date.now() - 1_000 }),
  ]);
  const alerts = await srv.client.alerts({ ruleId });
  return alerts.some((a) => a.scope.user === userId);
}

async function untilActive(ruleId: string, active: boolean): Promise<void> {
  await eventually(async () => (await probe(ruleId)) === active, {
    timeoutMs: 20_000,
    intervalMs: 250,
    what: `the server sees rule ${ruleId} as ${active ? 'enabled' : 'disabled'}`,
  });
}

describe('tokenwatch rules against a running server', () => {
  let ruleId: string;

  it('rules create --json: the running server starts evaluating it within seconds', async () => {
    const rule = {
      name: 'from the cli',
      scope: ['user', 'model'],
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'hour', timeZone: 'UTC' },
      levels: [{ value: 1_000 }],
      channels: [{ type: 'webhook', url: hook.url('/cli') }],
    };
    const created = await cli('create', '--json', JSON.stringify(rule));
    expect(created.code, created.stderr).toBe(0);
    const printed = JSON.parse(created.stdout) as { id: string; enabled: boolean };
    expect(printed.enabled).toBe(true);
    ruleId = printed.id;
    // The API (same store) shows it at once.
    expect((await srv.client.rules()).map((r) => r.id)).toContain(ruleId);

    await untilActive(ruleId, true);
    // ...and its alerts are delivered.
    await hook.waitFor(
      () =>
        [...hook.accepted.values()].some(
          (h) => (h.json?.rule as { id?: string } | undefined)?.id === ruleId,
        ),
      15_000,
      'a webhook of the CLI-created rule',
    );
  });

  it('rules list shows it, enabled', async () => {
    const list = await cli('list');
    expect(list.code, list.stderr).toBe(0);
    const line = list.stdout.split('\n').find((l) => l.includes(ruleId));
    expect(line).toBeDefined();
    expect(line).toMatch(/\bon\b/);
    expect(line).toContain('from the cli');
  });

  it('rules list --format json (as the help documents) prints the rules as JSON', async () => {
    const list = await cli('list', '--format', 'json');
    expect(list.code, list.stderr).toBe(0);
    const rules = JSON.parse(list.stdout) as Array<{ id: string }>;
    expect(rules.map((r) => r.id)).toContain(ruleId);
  });

  it('rules disable: the running server stops alerting within seconds; enable brings it back', async () => {
    const disabled = await cli('disable', ruleId);
    expect(disabled.code, disabled.stderr).toBe(0);
    expect(JSON.parse(disabled.stdout).enabled).toBe(false);
    const list = await cli('list');
    expect(list.stdout.split('\n').find((l) => l.includes(ruleId))).toMatch(/\boff\b/);

    await untilActive(ruleId, false);
    // Stays off: more fresh users, no alert.
    for (let i = 0; i < 3; i++) expect(await probe(ruleId)).toBe(false);
    const status = await srv.client.send('GET', `/v1/rules/${ruleId}/status`);
    expect(status.json().enabled).toBe(false);

    const enabled = await cli('enable', ruleId);
    expect(enabled.code, enabled.stderr).toBe(0);
    await untilActive(ruleId, true);
  });

  it('rules status prints the current window per scope key', async () => {
    const status = await cli('status', ruleId);
    expect(status.code, status.stderr).toBe(0);
    const s = JSON.parse(status.stdout) as {
      ruleId: string;
      window: { start: string; end: string };
      scopes: Array<{ scope: Record<string, string>; value: number }>;
    };
    expect(s.ruleId).toBe(ruleId);
    expect(Date.parse(s.window.end) - Date.parse(s.window.start)).toBe(3_600_000);
    expect(s.scopes.length).toBeGreaterThan(0);
    expect(s.scopes.every((x) => x.value >= 1_500)).toBe(true);
  });

  it('rules create with an invalid rule exits non-zero naming the field; SSRF is checked too', async () => {
    const bad = await cli(
      'create',
      '--json',
      JSON.stringify({
        name: 'bad',
        scope: ['user'],
        metric: 'totalTokens',
        window: { type: 'calendar', unit: 'day', timeZone: 'Moon/Tranquility' },
        levels: [{ value: 10 }],
      }),
    );
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('window.timeZone');
    const ssrf = await cli(
      'create',
      '--json',
      JSON.stringify({
        name: 'metadata',
        scope: ['user'],
        metric: 'totalTokens',
        window: { type: 'calendar', unit: 'day' },
        levels: [{ value: 10 }],
        channels: [{ type: 'webhook', url: 'http://169.254.169.254/latest' }],
      }),
    );
    expect(ssrf.code).not.toBe(0);
    expect(ssrf.stderr).toContain('channels[0].url');
    const notJson = await cli('create', '--json', '{"name":');
    expect(notJson.code).not.toBe(0);
    expect((await srv.client.rules()).map((r) => r.name)).not.toContain('bad');
  });

  it('rules delete removes it from the store the server reads', async () => {
    const deleted = await cli('delete', ruleId);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect((await srv.client.send('GET', `/v1/rules/${ruleId}`)).status).toBe(404);
    await untilActive(ruleId, false);
    expect((await cli('disable', ruleId)).code).not.toBe(0);
  });
});
