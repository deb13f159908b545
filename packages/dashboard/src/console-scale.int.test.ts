import { mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
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
  type UsageRowJson,
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
 * Issue 13, readable at scale, in Chromium against a real `tokenwatch serve`: the heat map keeps
 * the top 15 apps and an exact "Other apps" column, its colour scale and legend leave the
 * "other"s out; each model has one colour in every chart; the bucket still filling is marked; a
 * cost made only of unpriced usage reads "unknown"; a 190-character ARN never widens the page;
 * CSV exports start with a byte order mark and name their range and filters.
 */

warnIfSkipped('dashboard scale tests');
const SHOTS = process.env.TOKENWATCH_SCREENSHOT_DIR ?? join(tmpdir(), 'tokenwatch-screenshots');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const LONG_ARN =
  `arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/${'research-'.repeat(20)}`.slice(
    0,
    190,
  );
/** Many tokens, cheap: first by tokens. */
const CHEAP = 'amazon.nova-micro-v1:0';
/** Fewer tokens, expensive: first by cost. */
const DEAR = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';
const MID = 'amazon.nova-lite-v1:0';
const APPS = Array.from({ length: 20 }, (_, i) => `app-${String(i + 1).padStart(2, '0')}`);
const USERS = Array.from({ length: 30 }, (_, i) => `user-${String(i + 1).padStart(2, '0')}`);

function seed(nowMs: number): WireEvent[] {
  const events: WireEvent[] = [];
  for (let i = 0; i < 400; i++) {
    const model = [CHEAP, CHEAP, DEAR, MID, LONG_ARN][i % 5] as string;
    events.push(
      makeEvent({
        timestamp: new Date(nowMs - (1 + (i % 20) * 55) * 60_000).toISOString(),
        // Apps and users skewed: app-01 and user-01 largest, a long tail after them.
        appId: APPS[Math.floor(20 * (((i * 7) % 400) / 400) ** 2)] as string,
        userId: USERS[(i * 11) % USERS.length] as string,
        modelId: model,
        provider: 'bedrock',
        inputTokens: model === CHEAP ? 9000 : 800 + (i % 50),
        outputTokens: 100 + (i % 30),
      }),
    );
  }
  return events;
}

describe.skipIf(!HAVE_CHROMIUM && !REQUIRED)('dashboard at scale', () => {
  let server: ServerProcess;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let api: TokenwatchApi;
  let admin: string;

  const usage = (params: Record<string, string | string[]>): Promise<UsageRowJson[]> =>
    api.usageRows(admin, { limit: '10000', ...params });

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServerProcess(), launchChromium()]);
    admin = server.adminKey as string;
    api = new TokenwatchApi(server.url);
    const posted = await api.postEvents(server.ingestKey as string, { events: seed(Date.now()) });
    expect(posted.status, posted.text).toBe(202);
    context = await browser.newContext({
      viewport: { width: 1280, height: 900 },
      acceptDownloads: true,
      timezoneId: 'UTC',
    });
    page = await context.newPage();
    await page.goto(`${server.url}/#key=${admin}`);
    await page.waitForSelector('[data-panel="tokens-over-time"]');
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    if (server) {
      await server.kill('SIGTERM');
      removeDataDir(server.dataDir);
    }
    await killStartedServers();
  });

  async function open(path: string, panel: string): Promise<void> {
    await goInApp(page, path);
    await page.waitForSelector(`[data-panel="${panel}"][data-status="ready"]`, { timeout: 15_000 });
    await settle(page);
  }

  /** The chart's option as ECharts holds it (the numbers and colours drawn). */
  async function option(chartId: string): Promise<any> {
    return page.evaluate((id) => {
      const el = document.querySelector(`[data-chart="${id}"]`) as HTMLElement;
      const chart = window.tokenwatchCharts?.getInstanceByDom(el);
      if (!chart) throw new Error(`no chart ${id}`);
      return JSON.parse(JSON.stringify(chart.getOption()));
    }, chartId);
  }

  /** The default range's query bounds: 24 whole hours ending with the current one. */
  function last24Hours(): { from: string; to: string } {
    const to = Math.floor(Date.now() / HOUR) * HOUR + HOUR;
    return { from: new Date(to - DAY).toISOString(), to: new Date(to).toISOString() };
  }

  it('heat map: top 15 apps plus an exact "Other apps" column; scale and legend without the "other"s', async () => {
    await open('/breakdown', 'app-user-heatmap');
    mkdirSync(SHOTS, { recursive: true });
    await page.locator('[data-panel="app-user-heatmap"]').screenshot({
      path: join(SHOTS, 'heatmap-other-apps.png'),
    });
    const o = await option('app-user-heatmap');
    const apps = o.xAxis[0].data as string[];
    const users = o.yAxis[0].data as string[];
    const byApp = await usage({ ...last24Hours(), groupBy: 'app', orderBy: 'totalTokens' });
    expect(byApp.length).toBe(20);
    expect(apps).toEqual([...byApp.slice(0, 15).map((r) => r.app), 'Other apps']);
    const cells = o.series[0].data as [number, number, number][];
    const column = (x: number) => cells.filter((c) => c[0] === x).reduce((a, c) => a + c[2], 0);
    for (let x = 0; x < 15; x++) expect(column(x), apps[x]).toBe(byApp[x]?.totalTokens);
    const rest = byApp.slice(15).reduce((a, r) => a + r.totalTokens, 0);
    expect(column(15)).toBe(rest);
    // The scale's top is the largest cell of a named user in a named app, from the API.
    const topUsers = users.filter((u) => u !== 'Other users');
    const named = await usage({
      ...last24Hours(),
      groupBy: 'app,user',
      user: topUsers,
      app: byApp.slice(0, 15).map((r) => r.app as string),
    });
    const max = Math.max(...named.map((r) => r.totalTokens));
    expect(o.visualMap[0].max).toBe(max);
    // The legend shows its values.
    expect(o.visualMap[0].text[0]).toMatch(/^≥ \d/);
    expect(o.visualMap[0].text[1]).toBe('0');
  });

  it('one colour per model in every chart, whatever each ranks first', async () => {
    const colours = new Map<string, string>();
    const check = (where: string, names: string[], palette: string[]) => {
      names.forEach((name, i) => {
        if (name.startsWith('Other')) return;
        const colour = palette[i] as string;
        const seen = colours.get(name);
        if (seen) expect(colour, `${name} in ${where}`).toBe(seen);
        else colours.set(name, colour);
      });
    };
    await open('/', 'tokens-over-time');
    const overview = await option('tokens-over-time');
    const overviewNames = overview.series.map((s: { name: string }) => s.name);
    expect(overviewNames[0]).toBe(CHEAP);
    check('overview', overviewNames, overview.color);
    // Ranked by cost, the expensive model comes first here.
    await open('/breakdown?share=cost', 'model-share');
    const pie = await option('model-share');
    const pieNames = pie.series[0].data.map((d: { name: string }) => d.name);
    expect(pieNames[0]).toBe(DEAR);
    check('pie', pieNames, pie.color);
    const bars = await option('app-model');
    check(
      'app × model bars',
      bars.series.map((s: { name: string }) => s.name),
      bars.color,
    );
    expect(colours.size).toBeGreaterThanOrEqual(4);
    expect(new Set(colours.values()).size).toBe(colours.size);
  });

  it('the bucket still filling is drawn faded, with its value; a past range has none', async () => {
    await open('/', 'tokens-over-time');
    await page.locator('[data-panel="tokens-over-time"]').screenshot({
      path: join(SHOTS, 'bucket-in-progress.png'),
    });
    expect(await page.textContent('[data-panel="tokens-over-time"] .panel-note')).toContain(
      'The faded bar is the current hour',
    );
    const o = await option('tokens-over-time');
    const categories = o.xAxis[0].data as string[];
    const last = categories.length - 1;
    expect(Date.parse(categories[last] as string)).toBe(Math.floor(Date.now() / HOUR) * HOUR);
    const current = await usage({
      from: categories[last] as string,
      to: new Date(Date.parse(categories[last] as string) + HOUR).toISOString(),
      groupBy: 'model',
    });
    for (const series of o.series as { name: string; data: unknown[] }[]) {
      const item = series.data[last] as { value: number; itemStyle: { opacity: number } };
      expect(item.itemStyle.opacity, series.name).toBeLessThan(1);
      const fromApi = current.find((r) => r.model === series.name)?.totalTokens ?? 0;
      if (!series.name.startsWith('Other')) expect(item.value, series.name).toBe(fromApi);
      expect(series.data.slice(0, last).every((d) => typeof d === 'number')).toBe(true);
    }
    // A fixed range that ended an hour ago: every bucket is whole.
    const to = Math.floor(Date.now() / HOUR) * HOUR - HOUR;
    await open(
      `/?from=${new Date(to - DAY).toISOString()}&to=${new Date(to).toISOString()}`,
      'tokens-over-time',
    );
    expect(await page.isHidden('[data-panel="tokens-over-time"] .panel-note')).toBe(true);
    const past = await option('tokens-over-time');
    for (const series of past.series as { data: unknown[] }[]) {
      expect(series.data.every((d) => typeof d === 'number')).toBe(true);
    }
  });

  it('a cost made only of unpriced usage reads "unknown", never $0.00; long ids stay on the page', async () => {
    await open(`/?model=${encodeURIComponent(LONG_ARN)}`, 'tokens-over-time');
    await page.waitForSelector('[data-kpi="cost"]');
    expect(await page.textContent('[data-kpi="cost"] .kpi-value')).toBe('unknown');
    const chip = page.locator('.chip-value');
    expect(await chip.getAttribute('title')).toBe(LONG_ARN);
    const widths = await page.evaluate(() => [
      document.documentElement.scrollWidth,
      document.documentElement.clientWidth,
    ]);
    expect(widths[0]).toBeLessThanOrEqual(widths[1] as number);

    await open('/top', 'top-models');
    const row = page.locator(`[data-panel="top-models"] tbody tr[data-name="${LONG_ARN}"]`);
    expect(await row.locator('td').nth(4).textContent()).toBe('unknown');
    const name = row.locator('.id-text');
    expect(await name.getAttribute('title')).toBe(LONG_ARN);
    // Cut with an ellipsis inside its cell: the text is wider than the box that shows it.
    expect(await name.evaluate((el) => el.scrollWidth > el.clientWidth)).toBe(true);
    const after = await page.evaluate(() => [
      document.documentElement.scrollWidth,
      document.documentElement.clientWidth,
    ]);
    expect(after[0]).toBeLessThanOrEqual(after[1] as number);
    // Priced models keep their dollar figure.
    const cheap = page.locator(`[data-panel="top-models"] tbody tr[data-name="${CHEAP}"] td`);
    expect(await cheap.nth(4).textContent()).toMatch(/^\$\d/);
  });

  it('CSV: a byte order mark, and the file name carries the range and the filters', async () => {
    const to = Math.floor(Date.now() / DAY) * DAY + DAY;
    const from = to - 3 * DAY;
    const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    await open(
      `/top?from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}&app=app-01&model=${encodeURIComponent(CHEAP)}`,
      'top-users',
    );
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('[data-panel="top-users"] [data-action="csv"]'),
    ]);
    expect(download.suggestedFilename()).toBe(
      `tokenwatch-top-users_${day(from)}_${day(to)}_app-app-01_model-amazon-nova-micro-v1-0.csv`,
    );
    const bytes = readFileSync((await download.path()) as string);
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const lines = bytes.subarray(3).toString('utf8').trimEnd().split('\r\n');
    const rows = await usage({
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      groupBy: 'user',
      app: 'app-01',
      model: CHEAP,
      limit: '20',
    });
    expect(lines.slice(1).map((l) => l.split(',')[1])).toEqual(rows.map((r) => r.user));
  });
});
