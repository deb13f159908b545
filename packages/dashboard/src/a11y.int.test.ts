import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  killStartedServers,
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
 * Accessibility: axe-core (the engine behind Lighthouse's and most CI accessibility checks) run
 * in Chromium on every view, in both themes, at desktop and phone width, against a real
 * `tokenwatch serve` with data in every panel (priced and unpriced models, calls without usage,
 * latencies, a fired alert) — and on the admin's forms open. The bar is the issue's: no
 * violation of impact "serious" or "critical".
 */

warnIfSkipped('dashboard accessibility tests');
// Evaluated through the DevTools protocol, which the page's CSP (script-src 'self') does not
// govern: the page is checked exactly as served, its CSP on.
const AXE_SOURCE = readFileSync(
  createRequire(import.meta.url).resolve('axe-core/axe.min.js'),
  'utf8',
);
const VIEWS = ['/', '/breakdown', '/top', '/users/alice', '/alerts', '/settings'];

interface Violation {
  id: string;
  impact: string | null;
  help: string;
  targets: string[];
}

/** axe's serious and critical violations on the page as it is now, in a readable form. */
async function seriousViolations(page: Page): Promise<Violation[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    // axe is injected at run time, without types here.
    const axe = (window as any).axe;
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return (
      result.violations as {
        id: string;
        impact: string | null;
        help: string;
        nodes: { target: string[] }[];
      }[]
    )
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        targets: v.nodes.slice(0, 5).map((n) => n.target.join(' ')),
      }));
  });
}

describe.skipIf(!HAVE_CHROMIUM && !REQUIRED)('dashboard accessibility (axe)', () => {
  let server: ServerProcess;
  let browser: Browser;
  let admin: string;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServerProcess(), launchChromium()]);
    admin = server.adminKey as string;
    const api = new TokenwatchApi(server.url);
    const now = Date.now();
    const users = ['alice', 'bob', 'carol'];
    const models = [
      'amazon.nova-lite-v1:0',
      'anthropic.claude-3-5-haiku-20241022-v1:0',
      'acme.unpriced-v1',
    ];
    const events = Array.from({ length: 45 }, (_, i) =>
      makeEvent({
        timestamp: new Date(now - (2 + i * 11) * 60_000).toISOString(),
        userId: users[i % users.length] as string,
        appId: i % 2 === 0 ? 'support-bot' : 'chat-assistant',
        modelId: models[i % models.length] as string,
        provider: 'bedrock',
        inputTokens: i % 9 === 4 ? 0 : 400 + i * 10,
        outputTokens: i % 9 === 4 ? 0 : 90 + i,
        latencyMs: 250 + i * 70,
        ...(i % 9 === 4 ? { status: 'no_usage' as const } : {}),
      }),
    );
    const posted = await api.postEvents(server.ingestKey as string, { events });
    expect(posted.status, posted.text).toBe(202);
    const rule = await api.request('/v1/rules', {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'Daily tokens per user',
        scope: ['user'],
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

  for (const theme of ['light', 'dark'] as const) {
    for (const width of [1280, 390]) {
      it(`${theme}, ${width} px: no serious or critical violation on any view`, async () => {
        const context = await browser.newContext({
          viewport: { width, height: 900 },
          colorScheme: theme,
          ...(width < 500 ? { isMobile: true, hasTouch: true } : {}),
        });
        const page = await context.newPage();
        await page.goto(`${server.url}/#key=${admin}`);
        await page.waitForSelector('[data-panel="tokens-over-time"]');
        const found: Record<string, Violation[]> = {};
        for (const path of VIEWS) {
          await goInApp(page, path);
          await page.waitForSelector('main .panel:not([data-status="loading"])');
          await settle(page);
          const violations = await seriousViolations(page);
          if (violations.length > 0) found[path] = violations;
          if (path === '/alerts') {
            // The admin's rule form, open.
            await page.click('[data-action="new-rule"]');
            await page.waitForSelector('form[data-form="rule"]');
            const inForm = await seriousViolations(page);
            if (inForm.length > 0) found['/alerts (rule form)'] = inForm;
          }
        }
        expect(found).toEqual({});
        await context.close();
      });
    }
  }
});
