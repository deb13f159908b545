import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  killStartedServers,
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from '../../server/src/testing/server-process.js';
import {
  makeEvent,
  TokenwatchApi,
  type WireEvent,
} from '../../server/src/testing/tokenwatch-api.js';
import {
  goInApp,
  HAVE_CHROMIUM,
  launchChromium,
  REQUIRED,
  settle,
  warnIfSkipped,
} from './testing/browser.js';

/**
 * The dashboard on a phone (360 and 390 px wide, both themes) against a real `tokenwatch serve`:
 * no view scrolls sideways — not even with a 190-character model ARN and a long user id in the
 * data —, long ids are cut with an ellipsis and keep the full id in a title, every view has an h1
 * and a skip link, the custom range form stays hidden while a preset is chosen, and the pie's
 * legend moves below the donut.
 */

warnIfSkipped('dashboard phone tests');
const SHOTS = process.env.TOKENWATCH_SCREENSHOT_DIR ?? join(tmpdir(), 'tokenwatch-screenshots');
const PREFIX = 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/';
const LONG_ARN = `${PREFIX}${'team-platform-research-'.repeat(10)}`.slice(0, 190);
const LONG_USER = `svc-${'billing-reconciliation-worker-'.repeat(3)}eu-central-1-a`;
const VIEWS = [
  '/',
  '/breakdown',
  '/top',
  `/users/${encodeURIComponent(LONG_USER)}`,
  '/alerts',
  '/settings',
];

function seed(nowMs: number): WireEvent[] {
  const users = [LONG_USER, 'alice', 'bob', 'carol'];
  const models = [LONG_ARN, 'amazon.nova-lite-v1:0', 'anthropic.claude-3-5-haiku-20241022-v1:0'];
  return Array.from({ length: 60 }, (_, i) =>
    makeEvent({
      timestamp: new Date(nowMs - (2 + i * 7) * 60_000).toISOString(),
      userId: users[i % users.length] as string,
      appId: i % 3 === 0 ? 'support-bot' : 'chat-assistant',
      modelId: models[i % models.length] as string,
      provider: 'bedrock',
      inputTokens: 500 + i * 10,
      outputTokens: 100 + i,
      latencyMs: 300 + i * 90,
    }),
  );
}

describe.skipIf(!HAVE_CHROMIUM && !REQUIRED)('dashboard on a phone', () => {
  let server: ServerProcess;
  let browser: Browser;
  let admin: string;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    [server, browser] = await Promise.all([startServerProcess(), launchChromium()]);
    admin = server.adminKey as string;
    const api = new TokenwatchApi(server.url);
    const posted = await api.postEvents(server.ingestKey as string, { events: seed(Date.now()) });
    expect(posted.status).toBe(202);
    // A rule that fires for the long user on the long model: its scope text is long too.
    const rule = await api.request('/v1/rules', {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'Long ids',
        scope: ['user', 'model'],
        filters: { user: [LONG_USER] },
        metric: 'totalTokens',
        window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
        levels: [{ value: 1 }],
        channels: [{ type: 'log' }],
      }),
    });
    expect(rule.status, rule.text).toBe(201);
  });

  afterAll(async () => {
    await browser?.close();
    if (server) {
      await server.kill('SIGTERM');
      removeDataDir(server.dataDir);
    }
    await killStartedServers();
  });

  /** What sticks out past the viewport, for a readable failure. */
  async function overflowing(page: Page): Promise<string[]> {
    return page.evaluate(() => {
      const limit = document.documentElement.clientWidth;
      const out: string[] = [];
      for (const el of document.querySelectorAll('body *')) {
        const r = el.getBoundingClientRect();
        if (r.width > 0 && r.right > limit + 1) {
          const cls = typeof el.className === 'string' ? el.className : '';
          out.push(
            `${el.tagName.toLowerCase()}.${cls.replace(/\s+/g, '.')} right=${Math.round(r.right)}`,
          );
        }
      }
      return out.slice(0, 12);
    });
  }

  for (const theme of ['light', 'dark'] as const) {
    for (const width of [360, 390]) {
      it(`${theme}, ${width} px: no view scrolls sideways; h1 and skip link on each`, async () => {
        const context = await browser.newContext({
          viewport: { width, height: 844 },
          deviceScaleFactor: 2,
          isMobile: true,
          hasTouch: true,
          colorScheme: theme,
          timezoneId: 'Europe/Berlin',
        });
        const page = await context.newPage();
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(`${server.url}/#key=${admin}`);
        await page.waitForSelector('[data-panel="tokens-over-time"]');
        for (const path of VIEWS) {
          await goInApp(page, path);
          await page.waitForSelector('main .panel:not([data-status="loading"])');
          await settle(page);
          await page.waitForTimeout(200);
          const widths = await page.evaluate(() => ({
            scroll: document.documentElement.scrollWidth,
            client: document.documentElement.clientWidth,
          }));
          expect(
            widths.scroll,
            `${path}: ${(await overflowing(page)).join('; ')}`,
          ).toBeLessThanOrEqual(widths.client);
          if (path === '/alerts') {
            // An admin's rule form fits too.
            await page.click('[data-action="new-rule"]');
            await page.waitForSelector('form[data-form="rule"]');
            const withForm = await page.evaluate(
              () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
            );
            expect(
              withForm,
              `rule form: ${(await overflowing(page)).join('; ')}`,
            ).toBeLessThanOrEqual(0);
          }
          expect(await page.locator('main h1').count(), `${path} h1`).toBe(1);
          expect((await page.locator('main h1').textContent())?.trim()).not.toBe('');
          if (width === 390) {
            const name = path === '/' ? 'overview' : (path.split('/')[1] ?? 'view');
            await page.screenshot({
              path: join(SHOTS, `phone-${name}-${theme}.png`),
              fullPage: true,
            });
          }
          // The skip link is the first stop of the keyboard and leads to the view.
          await page.evaluate(() => {
            // Start the keyboard's sequential navigation at the top of the document.
            document.body.tabIndex = -1;
            document.body.focus();
            document.body.removeAttribute('tabindex');
          });
          await page.keyboard.press('Tab');
          const skip = await page.evaluate(() => {
            const a = document.activeElement as HTMLAnchorElement | null;
            return a
              ? { cls: a.className, href: a.getAttribute('href'), text: a.textContent }
              : null;
          });
          expect(skip, path).toEqual({ cls: 'skip-link', href: '#view', text: 'Skip to content' });
        }
        expect(errors).toEqual([]);
        await context.close();
      });
    }
  }

  it('long ids are cut with an ellipsis and keep the full id in a title', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    await page.goto(`${server.url}/top#key=${admin}`);
    await page.waitForSelector('[data-panel="top-users"][data-status="ready"]');
    await settle(page);
    for (const [panel, id] of [
      ['top-users', LONG_USER],
      ['top-models', LONG_ARN],
    ] as const) {
      const cut = await page.evaluate(
        ({ panel, id }) => {
          const row = [...document.querySelectorAll(`[data-panel="${panel}"] tbody tr`)].find(
            (r) => (r as HTMLElement).dataset.name === id,
          );
          const el = row?.querySelector('.id-text') as HTMLElement | null;
          if (!el) return null;
          const style = getComputedStyle(el);
          return {
            title: el.title,
            text: el.textContent,
            ellipsis: style.textOverflow,
            truncated: el.scrollWidth > el.clientWidth,
            lines: Math.round(
              el.getBoundingClientRect().height / Number.parseFloat(style.lineHeight),
            ),
          };
        },
        { panel, id },
      );
      expect(cut, panel).toEqual({
        title: id,
        text: id,
        ellipsis: 'ellipsis',
        truncated: true,
        lines: 1,
      });
    }
    // The user page's heading too.
    await goInApp(page, `/users/${encodeURIComponent(LONG_USER)}`);
    await page.waitForSelector('h1.user-id');
    expect(await page.getAttribute('h1.user-id', 'title')).toBe(LONG_USER);
    await context.close();
  });

  it('the custom range form shows only for "Custom…"; the pie legend sits below the donut', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    await page.goto(`${server.url}/breakdown#key=${admin}`);
    await page.waitForSelector('[data-panel="model-share"][data-status="ready"]');
    expect(await page.isVisible('form.custom-range')).toBe(false);
    await page.selectOption('select[name="range"]', 'custom');
    expect(await page.isVisible('form.custom-range')).toBe(true);
    await settle(page);
    const layout = await page.evaluate(() => {
      const el = document.querySelector('[data-chart="model-share"]') as HTMLElement;
      const chart = window.tokenwatchCharts?.getInstanceByDom(el);
      const o = chart?.getOption() as {
        legend: { orient?: string; bottom?: unknown }[];
        series: { center: string[]; radius: string[] }[];
      };
      return {
        legend: o.legend[0],
        series: o.series[0],
        height: el.clientHeight,
        width: el.clientWidth,
      };
    });
    expect(layout.legend?.orient).toBe('horizontal');
    expect(layout.legend?.bottom).toBe(0);
    // The donut (centre ± outer radius of the smaller side) ends above the legend's rows.
    const side = Math.min(layout.height, layout.width);
    const centreY = (Number.parseFloat(layout.series?.center[1] ?? '0') / 100) * layout.height;
    const outer = (Number.parseFloat(layout.series?.radius[1] ?? '0') / 100) * (side / 2);
    expect(centreY + outer).toBeLessThan(layout.height - 56);
    await context.close();
  });
});
