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
  seededRandom,
  TokenwatchApi,
  type UsageRowJson,
  type WireEvent,
} from '../../server/src/testing/tokenwatch-api.js';
import { HAVE_CHROMIUM, launchChromium, REQUIRED, warnIfSkipped } from './testing/browser.js';

/**
 * The dashboard in Debian's Chromium against a real `tokenwatch serve`, seeded through the real
 * ingest API. Every chart is read from its ECharts instance and compared with what the API
 * answers for the same range and filters (computed here from the API, not from dashboard code).
 * Also: sign-in from the printed link, first-run empty state, filters ↔ URL, live updates
 * without reload, CSV export, alerts, no XSS. Screenshots go to TOKENWATCH_SCREENSHOT_DIR (or a
 * temp dir).
 */

const SHOTS = process.env.TOKENWATCH_SCREENSHOT_DIR ?? join(tmpdir(), 'tokenwatch-screenshots');
warnIfSkipped('dashboard browser tests');

const XSS_USER = '<img src=x onerror="window.__xss=1">';
const XSS_APP = '<script>window.__xss=2</script>chat';
const UNPRICED = 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/test-team';
const MODELS = [
  'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
  'anthropic.claude-3-5-haiku-20241022-v1:0',
  'us.anthropic.claude-haiku-4-5-20251001-v1:0',
  'amazon.nova-lite-v1:0',
  'amazon.nova-micro-v1:0',
  'amazon.nova-pro-v1:0',
  'meta.llama3-3-70b-instruct-v1:0',
  'mistral.mistral-large-2407-v1:0',
  'cohere.command-r-v1:0',
  UNPRICED,
];
const APPS = ['chat-assistant', 'doc-summarizer', 'code-review', 'support-bot', XSS_APP];
/** The app whose calls report no latency. */
const QUIET_APP = 'support-bot';
const USERS = [
  XSS_USER,
  ...Array.from({ length: 29 }, (_, i) => `user-${String(i + 1).padStart(2, '0')}`),
];
function seedEvents(nowMs: number): WireEvent[] {
  const rand = seededRandom(7);
  const pick = <T>(list: readonly T[], skew = 1.6): T =>
    list[Math.floor(rand() ** skew * list.length)] as T;
  const events: WireEvent[] = [];
  for (let i = 0; i < 600; i++) {
    // Most in the last 20 hours, some 26–40 hours ago (the previous period).
    const ageMin =
      i % 5 === 0 ? 26 * 60 + Math.floor(rand() * 14 * 60) : 2 + Math.floor(rand() * 20 * 60);
    events.push(
      makeEvent({
        timestamp: new Date(nowMs - ageMin * 60_000).toISOString(),
        userId: pick(USERS),
        appId: pick(APPS, 1.3),
        modelId: pick(MODELS, 1.2),
        provider: 'bedrock',
        inputTokens: 100 + Math.floor(rand() * 4000),
        outputTokens: 20 + Math.floor(rand() * 800),
        cacheReadTokens: rand() < 0.3 ? Math.floor(rand() * 2000) : 0,
        tags: { team: rand() < 0.5 ? 'growth' : 'platform' },
      }),
    );
    // Latencies from 150 ms to ~4 s, except support-bot's calls, which never report one (the
    // latency panels' empty state). Not drawn from `rand`: the other fields stay as they were.
    const made = events[events.length - 1] as WireEvent;
    if (made.appId !== QUIET_APP) made.latencyMs = 150 + ((i * 7919) % 4000);
    // Now and then a call whose usage never arrived, or one a budget guard denied.
    const last = events[events.length - 1] as WireEvent;
    if (i % 40 === 3)
      Object.assign(last, {
        status: 'no_usage',
        inputTokens: 0,
        outputTokens: 0,
        cacheReadTokens: 0,
      });
    if (i % 97 === 5)
      Object.assign(last, {
        status: 'denied',
        inputTokens: 0,
        outputTokens: 0,
        cacheReadTokens: 0,
      });
  }
  return events;
}

interface ChartData {
  x: unknown[];
  y: unknown[];
  series: { name: string; data: unknown[] }[];
}

/** Waits until no refresh is running or due (live notices coalesce into one trailing refresh). */
async function settle(page: Page): Promise<void> {
  await page.waitForTimeout(150);
  await page.waitForSelector('body[data-idle="true"]', { timeout: 15_000 });
}

async function chartData(page: Page, id: string): Promise<ChartData> {
  await page.waitForSelector(`[data-panel="${id}"][data-status="ready"]`, { timeout: 15_000 });
  await settle(page);
  return page.evaluate((chartId) => {
    const el = document.querySelector(`[data-chart="${chartId}"]`) as HTMLElement;
    const chart = window.tokenwatchCharts?.getInstanceByDom(el);
    if (!chart) throw new Error(`no chart in ${chartId}`);
    const o = chart.getOption() as {
      xAxis?: { data?: unknown[] }[];
      yAxis?: { data?: unknown[] }[];
      series: { name: string; data: unknown[] }[];
    };
    // The bar of the bucket still filling is drawn faded, as { value, itemStyle }: its value
    // is what is checked (pie slices, { name, value }, stay as they are).
    const faded = (d: unknown) =>
      d !== null && typeof d === 'object' && 'itemStyle' in d && !('name' in d);
    return {
      x: o.xAxis?.[0]?.data ?? [],
      y: o.yAxis?.[0]?.data ?? [],
      series: o.series.map((s) => ({
        name: s.name,
        data: s.data.map((d) => (faded(d) ? (d as { value: unknown }).value : d)),
      })),
    };
  }, id);
}

const HOUR = 3_600_000;

/** The default range: 24 whole hours ending with the current one. */
function last24Hours(): { from: string; to: string } {
  const to = Math.floor(Date.now() / HOUR) * HOUR + HOUR;
  return { from: new Date(to - 24 * HOUR).toISOString(), to: new Date(to).toISOString() };
}
const sum = (rows: UsageRowJson[], f: (r: UsageRowJson) => number) =>
  rows.reduce((a, r) => a + f(r), 0);

describe.skipIf(!HAVE_CHROMIUM && !REQUIRED)(
  'dashboard in Chromium against tokenwatch serve',
  () => {
    let server: ServerProcess;
    let api: TokenwatchApi;
    let admin: string;
    let ingest: string;
    let browser: Browser;
    let context: BrowserContext;
    let page: Page;
    const pageErrors: string[] = [];

    async function usage(params: Record<string, string | string[]>): Promise<UsageRowJson[]> {
      return api.usageRows(admin, { limit: '10000', ...params });
    }

    /** The hour range a time chart shows: its first bucket to the end of its last. */
    function rangeOf(x: unknown[]): { from: string; to: string } {
      const first = Date.parse(String(x[0]));
      const last = Date.parse(String(x[x.length - 1]));
      return { from: new Date(first).toISOString(), to: new Date(last + HOUR).toISOString() };
    }

    /** Checks a stacked chart over time against the API: top 8 by tokens as series, the rest as "Other". */
    async function expectStackedMatchesApi(
      chart: ChartData,
      dim: 'model' | 'app',
      filters: Record<string, string | string[]>,
    ): Promise<void> {
      const range = rangeOf(chart.x);
      const top = await usage({
        ...range,
        groupBy: dim,
        orderBy: 'totalTokens',
        limit: '8',
        ...filters,
      });
      const perKey = await usage({ ...range, groupBy: dim, interval: 'hour', ...filters });
      const total = await usage({ ...range, interval: 'hour', ...filters });
      const keys = top.map((r) => r[dim] as string);
      expect(chart.series.slice(0, keys.length).map((s) => s.name)).toEqual(keys);
      const buckets = chart.x.map(String);
      for (const [i, key] of keys.entries()) {
        const expected = buckets.map((b) =>
          sum(
            perKey.filter((r) => r[dim] === key && r.bucket === b),
            (r) => r.totalTokens,
          ),
        );
        expect(chart.series[i]?.data, `${dim} ${key}`).toEqual(expected);
      }
      const other = buckets.map(
        (b) =>
          sum(
            total.filter((r) => r.bucket === b),
            (r) => r.totalTokens,
          ) -
          sum(
            perKey.filter((r) => r.bucket === b && keys.includes(r[dim] as string)),
            (r) => r.totalTokens,
          ),
      );
      if (other.some((v) => v !== 0)) expect(chart.series[keys.length]?.data).toEqual(other);
      else expect(chart.series).toHaveLength(keys.length);
      // Every bucket of the range is on the axis; its stack adds up to the API's total.
      for (const [bi, b] of buckets.entries()) {
        const stacked = chart.series.reduce((a, s) => a + Number(s.data[bi]), 0);
        expect(stacked, b).toBe(
          sum(
            total.filter((r) => r.bucket === b),
            (r) => r.totalTokens,
          ),
        );
      }
    }

    async function shoot(name: string): Promise<void> {
      await page.waitForTimeout(350);
      await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
    }

    beforeAll(async () => {
      mkdirSync(SHOTS, { recursive: true });
      [server, browser] = await Promise.all([startServerProcess(), launchChromium()]);
      api = new TokenwatchApi(server.url);
      admin = server.adminKey as string;
      ingest = server.ingestKey as string;
      context = await browser.newContext({
        viewport: { width: 1440, height: 1000 },
        timezoneId: 'Europe/Berlin',
        colorScheme: 'light',
        acceptDownloads: true,
      });
      page = await context.newPage();
      page.on('pageerror', (e) => pageErrors.push(e.message));
    });

    afterAll(async () => {
      await browser?.close();
      if (server) {
        await server.kill('SIGTERM');
        removeDataDir(server.dataDir);
      }
      await killStartedServers();
    });

    it('signs in from the printed link, shows the first-run guide, then the first event live', async () => {
      expect(server.output().stdout).toContain(`${server.url}/#key=${admin}`);
      await page.goto(`${server.url}/#key=${admin}`);
      await page.waitForSelector('[data-state="first-run"]');
      expect(page.url()).toBe(`${server.url}/`);
      expect(await page.evaluate(() => sessionStorage.getItem('tokenwatch.key'))).toBe(admin);
      const curl = await page.textContent('[data-snippet="curl"]');
      expect(curl).toContain(`${server.url}/v1/events`);
      // An admin can create an ingest key right there; it fills the snippets.
      await page.click('text=Create an ingest key');
      await page.waitForFunction(() =>
        /twk_/.test(document.querySelector('[data-snippet="sdk"]')?.textContent ?? ''),
      );
      await shoot('first-run');

      const events = seedEvents(Date.now());
      for (let i = 0; i < events.length; i += 200) {
        expect((await api.postEvents(ingest, { events: events.slice(i, i + 200) })).status).toBe(
          202,
        );
      }
      // No reload: the live stream brings the overview.
      await page.waitForSelector('[data-panel="tokens-over-time"][data-status="ready"]', {
        timeout: 5000,
      });
      expect(page.url()).toBe(`${server.url}/`);
    });

    it('overview: stacked series and KPIs equal the API', async () => {
      const tokens = await chartData(page, 'tokens-over-time');
      expect(tokens.x).toHaveLength(24);
      await expectStackedMatchesApi(tokens, 'model', {});
      const range = rangeOf(tokens.x);
      const [total] = await usage(range);
      const kpi = async (id: string) => page.getAttribute(`[data-kpi="${id}"]`, 'data-value');
      expect(await kpi('tokens')).toBe(String(total?.totalTokens));
      expect(await kpi('cost')).toBe(total?.costNanoUsd);
      expect(await kpi('requests')).toBe(String(total?.requests));
      expect(await kpi('unpriced')).toBe(String(total?.unpricedTokens));
      expect(Number(await kpi('users'))).toBe((await usage({ ...range, groupBy: 'user' })).length);
      // Cost chart: same series, USD values.
      const cost = await chartData(page, 'cost-over-time');
      const perModel = await usage({ ...range, groupBy: 'model', interval: 'hour' });
      const first = cost.series[0] as { name: string; data: unknown[] };
      expect(first.data).toEqual(
        cost.x.map(
          (b) => perModel.find((r) => r.model === first.name && r.bucket === b)?.costUsd ?? 0,
        ),
      );
      // The unpriced model is called out, and so are the calls that returned no usage.
      expect(await page.textContent('[data-panel="unpriced"]')).toContain(UNPRICED);
      expect(total?.noUsageRequests).toBeGreaterThan(0);
      expect(await page.textContent('[data-warning="no-usage"]')).toContain(
        `${total?.noUsageRequests} calls returned no usage`,
      );
      await shoot('overview-light');
    });

    it("the seed's three charts equal the API; names render as text", async () => {
      await page.click('nav >> text=Apps, models, users');
      const bar = await chartData(page, 'app-model');
      const pie = await chartData(page, 'model-share');
      const heat = await chartData(page, 'app-user-heatmap');
      // The range of these views: the same 24 whole hours as the overview (ending with this one).
      const r = last24Hours();

      const am = await usage({ ...r, groupBy: 'app,model' });
      const apps = [...new Set(am.map((x) => x.app as string))];
      const appTotal = (a: string) =>
        sum(
          am.filter((x) => x.app === a),
          (x) => x.totalTokens,
        );
      apps.sort((a, b) => appTotal(b) - appTotal(a) || (a < b ? -1 : 1));
      expect(bar.y).toEqual(apps);
      const modelsByTokens = await usage({ ...r, groupBy: 'model' });
      const topModels = modelsByTokens.slice(0, 8).map((x) => x.model as string);
      expect(bar.series.slice(0, 8).map((s) => s.name)).toEqual(topModels);
      for (const [i, m] of topModels.entries()) {
        expect(bar.series[i]?.data, m).toEqual(
          apps.map((a) => am.find((x) => x.app === a && x.model === m)?.totalTokens ?? 0),
        );
      }
      expect(bar.series[8]?.name).toBe('Other models');
      expect(bar.series[8]?.data).toEqual(
        apps.map((a) =>
          sum(
            am.filter((x) => x.app === a && !topModels.includes(x.model as string)),
            (x) => x.totalTokens,
          ),
        ),
      );

      const slices = (pie.series[0]?.data ?? []) as { name: string; value: number }[];
      expect(slices.slice(0, 8)).toEqual(
        modelsByTokens.slice(0, 8).map((x) => ({ name: x.model, value: x.totalTokens })),
      );
      expect(slices[8]).toEqual({
        name: 'Other models',
        value: sum(modelsByTokens.slice(8), (x) => x.totalTokens),
      });

      const topUsers = (
        await usage({ ...r, groupBy: 'user', orderBy: 'totalTokens', limit: '20' })
      ).map((x) => x.user as string);
      const cells = await usage({ ...r, groupBy: 'app,user', user: topUsers });
      const appRows = await usage({ ...r, groupBy: 'app' });
      expect(heat.y).toEqual([...topUsers, 'Other users']);
      const heatApps = heat.x as string[];
      expect([...heatApps].sort()).toEqual([...apps].sort());
      const expected: [number, number, number][] = [];
      for (const [ai, a] of heatApps.entries()) {
        for (const [ui, u] of topUsers.entries()) {
          const v = cells.find((x) => x.app === a && x.user === u)?.totalTokens ?? 0;
          if (v) expected.push([ai, ui, v]);
        }
        const rest =
          (appRows.find((x) => x.app === a)?.totalTokens ?? 0) -
          sum(
            cells.filter((x) => x.app === a),
            (x) => x.totalTokens,
          );
        if (rest) expected.push([ai, topUsers.length, rest]);
      }
      expect(heat.series[0]?.data).toEqual(expected);

      // XSS: hover the cell of the user named like markup; its tooltip shows the name as text.
      const xssRow = topUsers.indexOf(XSS_USER);
      expect(xssRow).toBeGreaterThanOrEqual(0);
      const box = await page.evaluate(
        ({ row }) => {
          const el = document.querySelector('[data-chart="app-user-heatmap"]') as HTMLElement;
          el.scrollIntoView({ block: 'center' });
          const chart = window.tokenwatchCharts?.getInstanceByDom(el);
          if (!chart) throw new Error('no heat map');
          const [x, y] = chart.convertToPixel({ seriesIndex: 0 }, [0, row]) as number[];
          const rect = el.getBoundingClientRect();
          return { x: rect.left + (x ?? 0), y: rect.top + (y ?? 0) };
        },
        { row: xssRow },
      );
      await page.mouse.move(box.x, box.y);
      await page.waitForFunction(
        (name) =>
          [...document.querySelectorAll('[data-chart="app-user-heatmap"] div')].some((d) =>
            d.textContent?.includes(name),
          ),
        XSS_USER,
        { timeout: 5000 },
      );
      // Latency by model and by app: the API's p50 and p95 (GET /v1/latency), most calls first.
      for (const dim of ['model', 'app'] as const) {
        const chart = await chartData(page, `latency-${dim}`);
        const res = await api.get(
          `/v1/latency?from=${r.from}&to=${r.to}&groupBy=${dim}&limit=10`,
          admin,
        );
        expect(res.status, res.text).toBe(200);
        const rows = res.json<{ rows: Array<Record<string, unknown>> }>().rows;
        expect(rows.length).toBeGreaterThan(1);
        expect(chart.y).toEqual(rows.map((x) => x[dim]));
        expect(chart.series.map((x) => x.data)).toEqual([
          rows.map((x) => x.p50Ms),
          rows.map((x) => x.p95Ms),
        ]);
        if (dim === 'app') expect(chart.y).not.toContain(QUIET_APP);
      }
      await shoot('breakdown-light');
      // An app whose calls reported no latency: the latency panels say so instead of drawing nothing.
      const go = (to: string) =>
        page.evaluate((path) => {
          history.pushState(null, '', path);
          dispatchEvent(new PopStateEvent('popstate'));
        }, to);
      await go(`/breakdown?app=${QUIET_APP}`);
      for (const id of ['latency-model', 'latency-app']) {
        await page.waitForSelector(`[data-panel="${id}"][data-status="empty"]`);
        expect(await page.textContent(`[data-panel="${id}"] .panel-status`)).toContain(
          'No call in this range reported a latency',
        );
      }
      await go('/breakdown');
      await page.waitForSelector('[data-panel="latency-model"][data-status="ready"]');
      expect(
        await page.evaluate(() => (window as unknown as { __xss?: number }).__xss),
      ).toBeUndefined();
      expect(await page.$$('img[src="x"]')).toHaveLength(0);
    });

    it('filters and the view live in the URL; a link reproduces them', async () => {
      await page.click('nav >> text=Overview');
      await page.waitForSelector('[data-panel="tokens-over-time"][data-status="ready"]');
      await page.fill('input[name="add-app"]', 'doc-summarizer');
      await page.press('input[name="add-app"]', 'Enter');
      await page.waitForURL(/app=doc-summarizer/);
      await page.click('[data-panel="tokens-over-time"] button[data-value="app"]');
      await page.waitForURL(/stack=app/);
      await page.selectOption('select[name="range"]', '7d');
      await page.waitForURL(/range=7d/);
      const url = page.url();
      expect(new URL(url).search).toBe('?range=7d&app=doc-summarizer&stack=app');
      const chart = await chartData(page, 'tokens-over-time');
      expect(chart.x).toHaveLength(7 * 24);
      await expectStackedMatchesApi(chart, 'app', { app: 'doc-summarizer' });
      expect(chart.series.map((s) => s.name)).toEqual(['doc-summarizer']);

      // The same link in a new tab (signing in through the fragment) shows the same view.
      const other = await context.newPage();
      await other.goto(`${url}#key=${admin}`);
      const again = await chartData(other, 'tokens-over-time');
      expect(again).toEqual(chart);
      expect(await other.inputValue('select[name="range"]')).toBe('7d');
      expect(await other.textContent('.chip-row')).toContain('doc-summarizer');
      expect(new URL(other.url()).search).toBe(new URL(url).search);
      await other.close();

      // Back goes to the previous state.
      await page.goBack();
      await page.waitForURL((u) => !u.search.includes('range=7d'));
      expect(await page.inputValue('select[name="range"]')).toBe('24h');
      await page.click('text=Clear filters');
      await page.waitForURL((u) => !u.search.includes('app='));
    });

    it('new usage appears within 2 s without a reload', async () => {
      await page.goto(`${server.url}/`);
      await page.waitForSelector('[data-kpi="tokens"]');
      await settle(page);
      const before = Number(await page.getAttribute('[data-kpi="tokens"]', 'data-value'));
      const t0 = Date.now();
      const event = makeEvent({
        userId: 'live-user',
        appId: 'chat-assistant',
        modelId: MODELS[0],
        provider: 'bedrock',
        inputTokens: 1000,
        outputTokens: 234,
        timestamp: new Date().toISOString(),
      });
      expect((await api.postEvents(ingest, event)).status).toBe(202);
      await page.waitForFunction(
        (want) =>
          document.querySelector('[data-kpi="tokens"]')?.getAttribute('data-value') ===
          String(want),
        before + 1234,
        { timeout: 2000 },
      );
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(await page.textContent('.live')).toBe('Live');
    });

    it('CSV export holds exactly what the panel shows', async () => {
      await page.click('nav >> text=Top lists');
      await page.waitForSelector('[data-panel="top-users"][data-status="ready"]');
      await settle(page);
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.click('[data-panel="top-users"] [data-action="csv"]'),
      ]);
      const bytes = readFileSync((await download.path()) as string);
      // A UTF-8 byte order mark first, so Excel reads the names as UTF-8.
      expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
      const csv = bytes.subarray(3).toString('utf8');
      const lines = csv.trimEnd().split('\r\n');
      // The file name says what, over which range (UTC): hour stamps, or bare days when the
      // 24 hours run midnight to midnight (a page opened in the 23:00 UTC hour).
      const named = /^tokenwatch-top-users_(\S+?)_(\S+)\.csv$/.exec(download.suggestedFilename());
      expect(named, download.suggestedFilename()).not.toBeNull();
      const [fromStamp, toStamp] = [named?.[1] ?? '', named?.[2] ?? ''];
      const parseStamp = (s: string) =>
        Date.parse(
          /T\d{4}Z$/.test(s) ? `${s.slice(0, 13)}:${s.slice(13, 15)}:00Z` : `${s}T00:00:00Z`,
        );
      expect(fromStamp).toMatch(/^\d{4}-\d\d-\d\d(T\d{4}Z)?$/);
      expect(toStamp).toMatch(/^\d{4}-\d\d-\d\d(T\d{4}Z)?$/);
      expect(parseStamp(toStamp) - parseStamp(fromStamp)).toBe(24 * HOUR);
      expect(parseStamp(toStamp) % HOUR).toBe(0);
      expect(lines[0]).toBe('rank,user,totalTokens,costUsd,requests,unpricedTokens');
      const r = last24Hours();
      const top = await usage({ ...r, groupBy: 'user', orderBy: 'totalTokens', limit: '20' });
      expect(lines.slice(1)).toEqual(
        top.map((x, i) => {
          const name = String(x.user);
          const cell = /[",\r\n']/.test(name) ? `"${name.replace(/"/g, '""')}"` : name;
          return `${i + 1},${cell},${x.totalTokens},${x.costUsd},${x.requests},${x.unpricedTokens}`;
        }),
      );
      // The table rows show the same, names as text.
      const shown = await page.$$eval('[data-panel="top-users"] tbody tr', (rows) =>
        rows.map((row) => [(row as HTMLElement).dataset.name, (row as HTMLElement).dataset.tokens]),
      );
      expect(shown).toEqual(top.map((x) => [x.user, String(x.totalTokens)]));
      expect(await page.textContent('[data-panel="top-users"]')).toContain(XSS_USER);
      await shoot('top-light');
    });

    it('per-user page, and an alert appears in the feed', async () => {
      await page.click(`[data-panel="top-users"] a >> text=user-01`);
      await page.waitForURL(/\/users\/user-01/);
      const chart = await chartData(page, 'user-models-over-time');
      const range = rangeOf(chart.x);
      const rows = await usage({ ...range, groupBy: 'model', interval: 'hour', user: 'user-01' });
      const first = chart.series[0] as { name: string; data: unknown[] };
      expect(first.data).toEqual(
        chart.x.map(
          (b) => rows.find((x) => x.model === first.name && x.bucket === b)?.totalTokens ?? 0,
        ),
      );
      await shoot('user-light');

      await page.click('nav >> text=Alerts & budgets');
      await page.waitForSelector('[data-panel="alerts"]:not([data-status="loading"])');
      const rulesApi = await api.get('/v1/rules', admin);
      if (rulesApi.status === 404) {
        // A server without the rules API: both panels say so.
        expect(await page.$$('[data-state="unavailable"]')).toHaveLength(2);
        expect(await page.textContent('[data-panel="alerts"]')).toContain(
          'No rules API on this server yet',
        );
        return;
      }
      const rule = await api.request('/v1/rules', {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          name: 'Hourly tokens per user',
          scope: ['user'],
          // Only the new user: the demo users over the level would fire as the rule is created.
          filters: { user: ['alert-user'] },
          metric: 'totalTokens',
          window: { type: 'calendar', unit: 'hour', timeZone: 'UTC' },
          budget: 5000,
          levels: [{ percent: 50 }, { percent: 100 }],
          channels: [{ type: 'log' }],
        }),
      });
      expect(rule.status, rule.text).toBe(201);
      const t0 = Date.now();
      const big = makeEvent({
        userId: 'alert-user',
        appId: 'chat-assistant',
        modelId: MODELS[1],
        provider: 'bedrock',
        inputTokens: 6000,
        outputTokens: 100,
        timestamp: new Date().toISOString(),
      });
      expect((await api.postEvents(ingest, big)).status).toBe(202);
      await page.waitForSelector('[data-panel="alerts"] .alert-item', { timeout: 5000 });
      const feed = await page.textContent('[data-panel="alerts"]');
      expect(feed).toContain('Hourly tokens per user');
      expect(feed).toContain('user=alert-user');
      expect(Date.now() - t0).toBeLessThan(5000);
      await page.waitForSelector('[data-panel="rules"] .rule');
      expect(await page.textContent('[data-panel="rules"]')).toContain('alert-user');
      await shoot('alerts-light');
    });

    it('dark theme renders every view; no page errors, no script ran from data', async () => {
      const dark = await browser.newContext({
        viewport: { width: 1440, height: 1000 },
        timezoneId: 'Europe/Berlin',
        colorScheme: 'dark',
      });
      const p = await dark.newPage();
      p.on('pageerror', (e) => pageErrors.push(e.message));
      await p.goto(`${server.url}/#key=${admin}`);
      for (const [path, panel, name] of [
        ['/', 'tokens-over-time', 'overview-dark'],
        ['/breakdown', 'app-user-heatmap', 'breakdown-dark'],
        ['/top', 'top-users', 'top-dark'],
        ['/users/user-01', 'user-models-over-time', 'user-dark'],
        ['/alerts', 'alerts', 'alerts-dark'],
      ] as const) {
        // In-app navigation (the app routes on popstate): no reload per view.
        await p.evaluate((to) => {
          history.pushState(null, '', to);
          dispatchEvent(new PopStateEvent('popstate'));
        }, path);
        await p.waitForSelector(
          `[data-panel="${panel}"][data-status="ready"], [data-panel="${panel}"][data-status="empty"]`,
        );
        expect(await p.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
        await settle(p);
        await p.waitForTimeout(250);
        await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
      }
      expect(
        await p.evaluate(() => (window as unknown as { __xss?: number }).__xss),
      ).toBeUndefined();
      await dark.close();
      expect(pageErrors).toEqual([]);
    });
  },
);
