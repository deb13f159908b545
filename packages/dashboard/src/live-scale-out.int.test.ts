import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    const kpiTokens = async () =>
      Number(await page.getAttribute('[data-kpi="tokens"]', 'data-value'));

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
      const loadedAt = Date.now();
      await page.goto(`${server.url}/#key=${admin}`);
      // The first event is committed by the worker (asynchronously): wait until it is shown.
      await page.waitForSelector('[data-kpi="tokens"]', { timeout: 20_000 });
      if ((await kpiTokens()) !== 1000) {
        await page.reload();
        await page.waitForFunction(
          () =>
            document.querySelector('[data-kpi="tokens"]')?.getAttribute('data-value') === '1000',
          null,
          { timeout: 20_000 },
        );
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
        expect((await new TokenwatchApi(server.url).postEvents(ingest, event(tokens))).status).toBe(
          202,
        );
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
