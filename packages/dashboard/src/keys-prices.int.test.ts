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
 * API keys and price overrides in Chromium against a real `tokenwatch serve` (admin keys): a key
 * created in the page is shown once and works, revoking it makes the server refuse it; a price
 * override saved in the page is the API's, removing it removes it; bad values show the server's
 * own message. A read key gets neither the navigation entry nor the forms.
 */

warnIfSkipped('dashboard keys and prices tests');

interface ErrorBody {
  error: { message: string; details?: { field: string; reason: string }[] };
}
const errorText = (text: string) => {
  const { error } = JSON.parse(text) as ErrorBody;
  return [error.message, ...(error.details ?? []).map((d) => `${d.field}: ${d.reason}`)].join(' ');
};

describe.skipIf(!HAVE_CHROMIUM && !REQUIRED)('keys and prices from the dashboard', () => {
  let server: ServerProcess;
  let browser: Browser;
  let api: TokenwatchApi;
  let admin: string;
  let page: Page;

  const call = (method: string, path: string, key: string, body?: unknown) =>
    api.request(path, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServerProcess(), launchChromium()]);
    api = new TokenwatchApi(server.url);
    admin = server.adminKey as string;
    const e = makeEvent({
      userId: 'u',
      appId: 'chat',
      modelId: 'amazon.nova-lite-v1:0',
      provider: 'bedrock',
      inputTokens: 10,
      outputTokens: 1,
      timestamp: new Date().toISOString(),
    });
    expect((await api.postEvents(server.ingestKey as string, e)).status).toBe(202);
    page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
    await page.goto(`${server.url}/#key=${admin}`);
    await page.click('nav >> text=Keys & prices');
    await page.waitForURL(/\/settings$/);
    await page.waitForSelector('[data-panel="keys-admin"][data-status="ready"]');
  });

  afterAll(async () => {
    await browser?.close();
    if (server) {
      await server.kill('SIGTERM');
      removeDataDir(server.dataDir);
    }
    await killStartedServers();
  });

  it('creates a key shown once, which works until revoked in the page', async () => {
    const form = page.locator('form[data-form="key"]');
    // Own key: no revoke button on its row.
    const who = JSON.parse((await call('GET', '/v1/whoami', admin)).text) as { keyId: string };
    expect(
      await page.locator(`tr[data-key-id="${who.keyId}"] [data-action="revoke-key"]`).count(),
    ).toBe(0);

    // A bad combination: the server's message.
    await form.locator('[name="key-role"]').selectOption('read');
    await form.locator('[name="key-app"]').fill('chat');
    await form.locator('button[type="submit"]').click();
    await form.locator('.form-error:not([hidden])').waitFor();
    const direct = await call('POST', '/v1/keys', admin, { role: 'read', appId: 'chat' });
    expect(direct.status).toBe(400);
    expect(await form.locator('.form-error').textContent()).toBe(errorText(direct.text));

    await form.locator('[name="key-app"]').fill('');
    await form.locator('[name="key-name"]').fill('wall screen');
    await form.locator('button[type="submit"]').click();
    const shown = (await page.locator('[data-secret="key"]').textContent()) ?? '';
    expect(shown).toMatch(/^twk_/);
    const whoNew = await call('GET', '/v1/whoami', shown);
    expect(whoNew.status).toBe(200);
    const keyId = (JSON.parse(whoNew.text) as { keyId: string; role: string }).keyId;
    expect(JSON.parse(whoNew.text)).toMatchObject({ role: 'read' });
    const listed = JSON.parse((await call('GET', '/v1/keys', admin)).text) as {
      keys: { id: string; name: string | null; role: string }[];
    };
    expect(listed.keys.find((k) => k.id === keyId)).toMatchObject({
      name: 'wall screen',
      role: 'read',
    });

    const row = page.locator(`tr[data-key-id="${keyId}"]`);
    await row.locator('[data-action="revoke-key"]').click();
    expect((await call('GET', '/v1/whoami', shown)).status).toBe(200);
    await row.locator('[data-action="confirm-revoke-key"]').click();
    await page.waitForSelector(`tr[data-key-id="${keyId}"][data-revoked="true"]`);
    expect((await call('GET', '/v1/whoami', shown)).status).toBe(401);
  });

  it('saves and removes a price override; a bad price shows the server message', async () => {
    const form = page.locator('form[data-form="price"]');
    await form.locator('[name="price-model"]').fill('my-private-model');
    await form.locator('[name="price-from"]').fill('2026-01-01');
    await form.locator('[name="price-input"]').fill('1.50');
    await form.locator('[name="price-output"]').fill('abc');
    await form.locator('button[type="submit"]').click();
    await form.locator('.form-error:not([hidden])').waitFor();
    const bad = await call('PUT', '/v1/prices', admin, {
      provider: 'bedrock',
      modelId: 'my-private-model',
      effectiveFrom: '2026-01-01',
      input: '1.50',
      output: 'abc',
    });
    expect(bad.status).toBe(400);
    expect(await form.locator('.form-error').textContent()).toBe(errorText(bad.text));

    await form.locator('[name="price-output"]').fill('2');
    await form.locator('button[type="submit"]').click();
    const row = page.locator('[data-panel="prices-admin"] tr[data-model="my-private-model"]');
    await row.waitFor();
    const prices = async () =>
      (
        JSON.parse((await call('GET', '/v1/prices', admin)).text) as {
          overrides: Record<string, unknown>[];
        }
      ).overrides;
    expect(await prices()).toEqual([
      expect.objectContaining({
        provider: 'bedrock',
        modelId: 'my-private-model',
        effectiveFrom: '2026-01-01',
        input: '1.50',
        output: '2',
      }),
    ]);
    await row.locator('[data-action="remove-price"]').click();
    await row.locator('[data-action="confirm-remove-price"]').click();
    await row.waitFor({ state: 'detached' });
    expect(await prices()).toEqual([]);
  });

  it('a read key has no "Keys & prices" and no forms; the API refuses it', async () => {
    const read = await createKey(server.dataDir, { role: 'read' });
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const p = await context.newPage();
    await p.goto(`${server.url}/#key=${read.key}`);
    await p.waitForSelector('[data-panel="tokens-over-time"]');
    expect(await p.locator('nav', { hasText: 'Keys & prices' }).count()).toBe(0);
    await p.goto(`${server.url}/settings`);
    await p.waitForSelector('[data-state="admin-only"]');
    await settle(p);
    expect(await p.locator('form[data-form="key"], form[data-form="price"]').count()).toBe(0);
    expect((await call('POST', '/v1/keys', read.key, { role: 'admin' })).status).toBe(403);
    expect(
      (
        await call('PUT', '/v1/prices', read.key, {
          provider: 'bedrock',
          modelId: 'x',
          input: '1',
          output: '1',
        })
      ).status,
    ).toBe(403);
    await context.close();
  });
});
