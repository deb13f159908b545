import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  killStartedServers,
  makeDataDir,
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from '../../server/src/testing/server-process.js';
import { makeEvent, TokenwatchApi } from '../../server/src/testing/tokenwatch-api.js';
import {
  goInApp,
  HAVE_CHROMIUM,
  launchChromium,
  REQUIRED,
  settle,
  warnIfSkipped,
} from './testing/browser.js';

/**
 * A server restart under an open dashboard: `tokenwatch serve` is stopped with SIGTERM (its
 * `/v1/live` answers 503 while it shuts down, then nothing listens), the page shows an outage
 * banner and a stale marker instead of a ticking "updated" clock, panels say the server cannot
 * be reached (not "Failed to fetch"); a new server on the same port and data dir brings the
 * banner down and live updates back without a reload.
 */

warnIfSkipped('dashboard live-reconnect tests');

describe.skipIf(!HAVE_CHROMIUM && !REQUIRED)('dashboard across a server restart', () => {
  const dataDir = makeDataDir('dash-restart');
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  let admin: string;
  let ingest: string;

  const event = (tokens: number) =>
    makeEvent({
      userId: 'restart-user',
      appId: 'chat-assistant',
      modelId: 'amazon.nova-lite-v1:0',
      provider: 'bedrock',
      inputTokens: tokens,
      outputTokens: 0,
      timestamp: new Date().toISOString(),
    });
  const kpiTokens = async () =>
    Number(await page.getAttribute('[data-kpi="tokens"]', 'data-value'));

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServerProcess({ dataDir }), launchChromium()]);
    admin = server.adminKey as string;
    ingest = server.ingestKey as string;
    expect((await new TokenwatchApi(server.url).postEvents(ingest, event(1000))).status).toBe(202);
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.kill('SIGTERM');
    await killStartedServers();
    removeDataDir(dataDir);
  });

  it('shows the outage, keeps the last time as stale, and comes back live after a restart', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/#key=${admin}`);
    await page.waitForSelector('[data-panel="tokens-over-time"][data-status="ready"]');
    await page.waitForFunction(() => document.querySelector('.live')?.textContent === 'Live');
    await settle(page);
    expect(await page.isVisible('[data-state="outage"]')).toBe(false);
    const lastUpdate = ((await page.textContent('.updated')) ?? '').replace('updated ', '');
    expect(lastUpdate).toMatch(/^\d\d:\d\d:\d\d$/);

    // Stop the server the way a restart does.
    const port = Number(new URL(server.url).port);
    await server.kill('SIGTERM');
    await page.waitForSelector('[data-state="outage"]:not([hidden])', { timeout: 20_000 });
    await page.waitForSelector('.updated[data-stale="true"]', { timeout: 20_000 });
    expect(await page.textContent('[data-state="outage"]')).toContain(
      'Cannot reach the tokenwatch server',
    );
    expect(await page.textContent('.updated')).toBe(`stale · data from ${lastUpdate}`);
    expect(await page.textContent('.live')).not.toBe('Live');

    // Another view while the server is away: its panels say why, the clock does not move.
    const refreshes = Number(await page.getAttribute('body', 'data-refreshes'));
    await goInApp(page, '/top');
    await page.waitForFunction((n) => Number(document.body.dataset.refreshes) > n, refreshes, {
      timeout: 20_000,
    });
    await page.waitForSelector('[data-panel="top-users"][data-status="error"]');
    expect(await page.textContent('[data-panel="top-users"] .panel-status')).toContain(
      'Cannot reach the tokenwatch server',
    );
    expect(await page.evaluate(() => document.body.textContent)).not.toContain('Failed to fetch');
    expect(await page.textContent('.updated')).toBe(`stale · data from ${lastUpdate}`);

    // A new server on the same port and data dir: the banner goes, the stream comes back.
    server = await startServerProcess({ dataDir, port });
    expect(server.url).toBe(`http://127.0.0.1:${port}`);
    await page.waitForSelector('[data-state="outage"]', { state: 'hidden', timeout: 30_000 });
    await page.waitForFunction(
      () => document.querySelector('.live')?.textContent === 'Live',
      null,
      {
        timeout: 30_000,
      },
    );
    await page.waitForSelector('.updated[data-stale="false"]', { timeout: 20_000 });
    await page.waitForSelector('[data-panel="top-users"][data-status="ready"]');

    // Live updates arrive again: an event posted now changes the overview's total.
    await goInApp(page, '/');
    await page.waitForSelector('[data-kpi="tokens"]');
    await settle(page);
    const before = await kpiTokens();
    expect(before).toBe(1000);
    expect((await new TokenwatchApi(server.url).postEvents(ingest, event(234))).status).toBe(202);
    await page.waitForFunction(
      (want) =>
        document.querySelector('[data-kpi="tokens"]')?.getAttribute('data-value') === String(want),
      before + 234,
      { timeout: 10_000 },
    );
    expect(errors).toEqual([]);
  });

  it('loads again within seconds a panel whose load met a passing 503, with no live notice', async () => {
    // A busy server (or a proxy in front of it) answers the first page load's usage queries
    // with 503 "overloaded"; the server stays up and the live stream connected, and no usage
    // arrives, so neither an outage nor a live notice would bring the panel back: only the
    // page's own retry, within seconds, long before its 60 s refresh.
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const busyPage = await context.newPage();
    const errors: string[] = [];
    busyPage.on('pageerror', (e) => errors.push(e.message));
    let refused = 0;
    let busy = true;
    await busyPage.route('**/v1/usage?*', async (route) => {
      if (!busy) return route.continue();
      refused++;
      return route.fulfill({
        status: 503,
        headers: { 'content-type': 'application/json', 'retry-after': '1' },
        body: JSON.stringify({
          error: { code: 'overloaded', message: 'The server is busy; retry shortly.' },
        }),
      });
    });
    try {
      await busyPage.goto(`${server.url}/#key=${admin}`);
      await busyPage.waitForSelector('[data-panel="tokens-over-time"][data-status="error"]', {
        timeout: 20_000,
      });
      await busyPage.waitForFunction(() => document.querySelector('.live')?.textContent === 'Live');
      expect(await busyPage.isVisible('[data-state="outage"]')).toBe(false);
      expect(refused).toBeGreaterThan(0);
      busy = false;
      const shownAfterError = Date.now();
      await busyPage.waitForSelector('[data-panel="tokens-over-time"][data-status="ready"]', {
        timeout: 15_000,
      });
      expect(Date.now() - shownAfterError).toBeLessThan(15_000);
      await busyPage.waitForSelector('[data-kpi="tokens"]');
      // Every event of this project is from the last minutes: the overview's 24 h hold them all.
      const stored = await new TokenwatchApi(server.url).storedTotals(admin);
      expect(stored.totalTokens).toBeGreaterThan(0);
      expect(Number(await busyPage.getAttribute('[data-kpi="tokens"]', 'data-value'))).toBe(
        stored.totalTokens,
      );
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
