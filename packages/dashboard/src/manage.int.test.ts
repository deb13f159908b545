import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createKey,
  killStartedServers,
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from '../../server/src/testing/server-process.js';
import { makeEvent, TokenwatchApi } from '../../server/src/testing/tokenwatch-api.js';
import {
  HAVE_CHROMIUM,
  launchChromium,
  REQUIRED,
  settle,
  warnIfSkipped,
} from './testing/browser.js';

/**
 * Rule management and alert acknowledgement in Chromium against a real `tokenwatch serve`: an
 * admin key creates a rule in the form, sees it listed, edits its level, disables and deletes it
 * — each step checked against the rules API —, a bad value shows the server's own message; a read
 * key sees no edit controls, and the API refuses it anyway.
 */

warnIfSkipped('dashboard management tests');

interface ApiError {
  error: { message: string; details?: { field: string; reason: string }[] };
}

describe.skipIf(!HAVE_CHROMIUM && !REQUIRED)('managing rules from the dashboard', () => {
  let server: ServerProcess;
  let browser: Browser;
  let api: TokenwatchApi;
  let admin: string;
  let page: Page;

  const call = async (method: string, path: string, key: string, body?: unknown) =>
    api.request(path, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const rules = async () =>
    (
      JSON.parse((await call('GET', '/v1/rules', admin)).text) as {
        rules: Record<string, unknown>[];
      }
    ).rules;
  const ruleNamed = async (name: string) => (await rules()).find((r) => r.name === name);
  const row = (name: string) => `[data-panel="rules-admin"] tr[data-rule-name="${name}"]`;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServerProcess(), launchChromium()]);
    api = new TokenwatchApi(server.url);
    admin = server.adminKey as string;
    const seeded = makeEvent({
      userId: 'someone',
      appId: 'chat',
      modelId: 'amazon.nova-lite-v1:0',
      provider: 'bedrock',
      inputTokens: 10,
      outputTokens: 1,
      timestamp: new Date().toISOString(),
    });
    expect((await api.postEvents(server.ingestKey as string, seeded)).status).toBe(202);
    page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  });

  afterAll(async () => {
    await browser?.close();
    if (server) {
      await server.kill('SIGTERM');
      removeDataDir(server.dataDir);
    }
    await killStartedServers();
  });

  it('admin: create a rule in the form, see it listed, edit its level, disable, delete', async () => {
    await page.goto(`${server.url}/alerts#key=${admin}`);
    await page.waitForSelector('[data-panel="rules-admin"]:not([data-status="loading"])');
    await page.click('[data-action="new-rule"]');
    const form = page.locator('form[data-form="rule"]');
    await form.locator('[name="name"]').fill('Team day budget');
    await form.locator('[name="scope-user"]').check();
    await form.locator('[name="scope-app"]').check();
    await form.locator('[name="filter-app"]').fill('chat, support-bot');
    await form.locator('[name="metric"]').selectOption('costUsd');
    await form.locator('[name="unit"]').selectOption('day');
    await form.locator('[name="time-zone"]').fill('Europe/Berlin');
    await form.locator('[name="budget"]').fill('25');
    await form.locator('[name="levels"]').fill('50%, 100%');
    await form.locator('[name="enforce"]').check();
    await form.locator('button[type="submit"]').click();
    await page.waitForSelector(row('Team day budget'));
    expect(await page.isVisible('form[data-form="rule"]')).toBe(false);

    const created = await ruleNamed('Team day budget');
    expect(created).toMatchObject({
      scope: ['user', 'app'],
      filters: { app: ['chat', 'support-bot'] },
      metric: 'costUsd',
      window: { type: 'calendar', unit: 'day', timeZone: 'Europe/Berlin' },
      budget: 25,
      levels: [{ percent: 50 }, { percent: 100 }],
      channels: [{ type: 'log' }],
      enforce: true,
      enabled: true,
    });
    expect(await page.getAttribute(row('Team day budget'), 'data-rule-id')).toBe(created?.id);

    // Edit: the form comes back filled in; change a level.
    await page.click(`${row('Team day budget')} [data-action="edit-rule"]`);
    expect(await form.locator('[name="levels"]').inputValue()).toBe('50%, 100%');
    expect(await form.locator('[name="time-zone"]').inputValue()).toBe('Europe/Berlin');
    await form.locator('[name="levels"]').fill('50%, 80%, 100%');
    await form.locator('button[type="submit"]').click();
    await page.waitForFunction(
      (sel) =>
        document.querySelector(`${sel} [data-cell="levels"]`)?.textContent === '50%, 80%, 100%',
      row('Team day budget'),
    );
    const edited = await ruleNamed('Team day budget');
    expect(edited?.levels).toEqual([{ percent: 50 }, { percent: 80 }, { percent: 100 }]);
    expect(edited?.id).toBe(created?.id);
    expect(edited?.window).toEqual(created?.window);

    // Disable, then enable again.
    await page.click(`${row('Team day budget')} [data-action="toggle-rule"]`);
    await page.waitForSelector(`${row('Team day budget')}[data-enabled="false"]`);
    expect((await ruleNamed('Team day budget'))?.enabled).toBe(false);
    await page.click(`${row('Team day budget')} [data-action="toggle-rule"]`);
    await page.waitForSelector(`${row('Team day budget')}[data-enabled="true"]`);
    expect((await ruleNamed('Team day budget'))?.enabled).toBe(true);

    // Delete takes a second click to confirm.
    await page.click(`${row('Team day budget')} [data-action="delete-rule"]`);
    expect(await ruleNamed('Team day budget')).toBeDefined();
    await page.click(`${row('Team day budget')} [data-action="confirm-delete"]`);
    await page.waitForSelector(row('Team day budget'), { state: 'detached' });
    expect(await ruleNamed('Team day budget')).toBeUndefined();
  });

  it("admin: a bad value shows the server's own validation message", async () => {
    await page.click('[data-action="new-rule"]');
    const form = page.locator('form[data-form="rule"]');
    await form.locator('[name="name"]').fill('Bad zone');
    await form.locator('[name="time-zone"]').fill('Mars/Olympus_Mons');
    await form.locator('[name="levels"]').fill('1000');
    const [request] = await Promise.all([
      page.waitForRequest((r) => r.url().endsWith('/v1/rules') && r.method() === 'POST'),
      form.locator('button[type="submit"]').click(),
    ]);
    await page.waitForSelector('form[data-form="rule"] .form-error:not([hidden])');
    // The same body straight to the API: the form shows exactly its message and details.
    const direct = await call('POST', '/v1/rules', admin, request.postDataJSON());
    expect(direct.status).toBe(400);
    const { error } = JSON.parse(direct.text) as ApiError;
    expect(error.details?.some((d) => d.field.startsWith('window.timeZone'))).toBe(true);
    expect(await form.locator('.form-error').textContent()).toBe(
      [error.message, ...(error.details ?? []).map((d) => `${d.field}: ${d.reason}`)].join(' '),
    );
    expect(await ruleNamed('Bad zone')).toBeUndefined();
    await form.locator('button', { hasText: 'Cancel' }).click();
  });

  it('admin: acknowledge an alert', async () => {
    const made = await call('POST', '/v1/rules', admin, {
      name: 'Ack me',
      scope: ['user'],
      filters: { user: ['ack-user'] },
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
      levels: [{ value: 5 }],
      channels: [{ type: 'log' }],
    });
    expect(made.status, made.text).toBe(201);
    const event = makeEvent({
      userId: 'ack-user',
      appId: 'chat',
      modelId: 'amazon.nova-lite-v1:0',
      provider: 'bedrock',
      inputTokens: 50,
      outputTokens: 0,
      timestamp: new Date().toISOString(),
    });
    expect((await api.postEvents(server.ingestKey as string, event)).status).toBe(202);
    const item = page.locator('[data-panel="alerts"] .alert-item', { hasText: 'Ack me' });
    await item.waitFor({ timeout: 10_000 });
    await settle(page);
    const alertId = await item.getAttribute('data-alert-id');
    await item.locator('[data-action="ack"]').click();
    await item.locator('[data-state="acknowledged"]').waitFor();
    const acked = JSON.parse((await call('GET', '/v1/alerts?acknowledged=true', admin)).text) as {
      alerts: { id: string }[];
    };
    expect(acked.alerts.map((a) => a.id)).toContain(alertId);
  });

  it('read key: no edit controls; the API refuses it anyway', async () => {
    const read = await createKey(server.dataDir, { role: 'read' });
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const p = await context.newPage();
    await p.goto(`${server.url}/alerts#key=${read.key}`);
    await p.waitForSelector('[data-panel="alerts"][data-status="ready"]');
    await settle(p);
    expect(await p.textContent('.role')).toBe('read key');
    expect(await p.locator('.alert-item').count()).toBeGreaterThan(0);
    for (const sel of [
      '[data-panel="rules-admin"]',
      '[data-action="new-rule"]',
      '[data-action="edit-rule"]',
      '[data-action="toggle-rule"]',
      '[data-action="delete-rule"]',
      '[data-action="ack"]',
      'form[data-form="rule"]',
    ]) {
      expect(await p.locator(sel).count(), sel).toBe(0);
    }
    const refused = await call('POST', '/v1/rules', read.key, {
      name: 'sneaky',
      scope: [],
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
      levels: [{ value: 1 }],
      channels: [{ type: 'log' }],
    });
    expect(refused.status).toBe(403);
    const alerts = JSON.parse((await call('GET', '/v1/alerts', read.key)).text) as {
      alerts: { id: string }[];
    };
    const ack = await call('POST', `/v1/alerts/${alerts.alerts[0]?.id}/ack`, read.key);
    expect(ack.status).toBe(403);
    expect(await ruleNamed('sneaky')).toBeUndefined();
    await context.close();
  });
});
