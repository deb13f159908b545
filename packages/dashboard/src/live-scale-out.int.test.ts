import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../server/src/testing/alerts-harness.js';
import {
  createScaleOutEnv,
  killStartedWorkers,
  type ScaleOutEnv,
  startWorkerProcess,
} from '../../server/src/testing/scale-out-harness.js';
import {
  killStartedServers,
  type ServerProcess,
  startServerProcess,
} from '../../server/src/testing/server-process.js';
import { natsReachable, postgresReachable } from '../../server/src/testing/services.js';
import { makeEvent, TokenwatchApi } from '../../server/src/testing/tokenwatch-api.js';
import {
  HAVE_CHROMIUM,
  launchChromium,
  REQUIRED,
  settle,
  warnIfSkipped,
} from './testing/browser.js';

/**
 * The dashboard against scale-out: `tokenwatch serve --queue nats://…` and a `tokenwatch worker`
 * on PostgreSQL. The worker commits; its live notice travels over NATS to serve and down the
 * page's `/v1/live`, so the overview shows new usage without a reload, with the badge "Live".
 */

warnIfSkipped('dashboard scale-out live tests');
const servicesUp = (await postgresReachable()) && (await natsReachable());

/**
 * The page also refreshes on its own every 60 s. Everything below happens well before that, so
 * only a live notice can explain an update (checked, not assumed).
 */
const IDLE_REFRESH_MS = 60_000;

describe.skipIf((!HAVE_CHROMIUM || !servicesUp) && !REQUIRED)(
  'dashboard live in scale-out mode',
  () => {
    let env: ScaleOutEnv;
    let server: ServerProcess;
    let browser: Browser;
    let page: Page;
    let admin: string;
    let ingest: string;

    const event = (tokens: number) =>
      makeEvent({
        userId: 'scale-user',
        appId: 'chat-assistant',
        inputTokens: tokens,
        outputTokens: 0,
        timestamp: new Date().toISOString(),
      });

    beforeAll(async () => {
      if (!servicesUp) throw new Error('PostgreSQL and NATS are required (see DEVELOPERS.md)');
      env = await createScaleOutEnv('dashlive');
      [server, browser] = await Promise.all([
        startServerProcess({ dataDir: env.dataDir }),
        launchChromium(),
      ]);
      await startWorkerProcess(env);
      admin = server.adminKey as string;
      ingest = server.ingestKey as string;
      const api = new TokenwatchApi(server.url);
      expect((await api.postEvents(ingest, event(1000))).status).toBe(202);
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      page = await context.newPage();
    });

    afterAll(async () => {
      await browser?.close();
      await killStartedWorkers();
      await server?.kill('SIGTERM');
      await killStartedServers();
      await env?.cleanup();
    });

    it('shows usage committed by a worker without a reload, badge "Live"', async () => {
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      // The first event is committed by the worker (asynchronously): wait until the API has it.
      const api = new TokenwatchApi(server.url);
      await eventually(async () => (await api.storedTotals(admin)).inputTokens === 1000, {
        timeoutMs: 30_000,
        what: 'the worker committed the first event',
      });
      // Then until the page shows it. The first load is not what this test checks: in one CI run
      // (2026-12-04, machine saturated) it showed no figures within 20 s, for a cause not found
      // (the page now loads again by itself after a 429, a 5xx or a network error; that run's
      // page did not yet). So a load that has not shown the figure in 15 s is reloaded (at most
      // twice); what comes after the first figure must then arrive without a reload.
      let loadedAt = 0;
      for (let attempt = 1; ; attempt++) {
        loadedAt = Date.now();
        if (attempt === 1) await page.goto(`${server.url}/#key=${admin}`);
        else await page.reload();
        try {
          await page.waitForFunction(
            () =>
              document.querySelector('[data-kpi="tokens"]')?.getAttribute('data-value') === '1000',
            null,
            { timeout: 15_000 },
          );
          break;
        } catch (err) {
          if (attempt === 3) throw err;
        }
      }
      await page.waitForFunction(() => document.querySelector('.live')?.textContent === 'Live');
      await settle(page);
      const navigations: string[] = [];
      page.on('framenavigated', (f) => navigations.push(f.url()));
      const refreshes = Number(await page.getAttribute('body', 'data-refreshes'));

      for (const [tokens, want] of [
        [234, 1234],
        [66, 1300],
      ] as const) {
        expect((await api.postEvents(ingest, event(tokens))).status).toBe(202);
        await page.waitForFunction(
          (w) =>
            document.querySelector('[data-kpi="tokens"]')?.getAttribute('data-value') === String(w),
          want,
          { timeout: 10_000 },
        );
      }
      // Before the page's own 60 s refresh could have run: the updates came from live notices.
      expect(Date.now() - loadedAt).toBeLessThan(IDLE_REFRESH_MS - 5_000);
      expect(Number(await page.getAttribute('body', 'data-refreshes'))).toBeGreaterThan(refreshes);
      expect(navigations).toEqual([]);
      expect(await page.textContent('.live')).toBe('Live');
      expect(errors).toEqual([]);
    });
  },
);
