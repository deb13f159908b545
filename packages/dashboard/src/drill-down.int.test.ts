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
 * Issue 13, drill-down and user search, in Chromium against a real `tokenwatch serve`: a click on
 * a bar, a slice or a heat-map cell opens the view filtered to it (in the URL); the user box
 * searches every user on the server (`GET /v1/users`), not the top ones loaded.
 */

warnIfSkipped('dashboard drill-down tests');
const APPS = ['chat', 'search', 'review'];
const MODELS = ['amazon.nova-lite-v1:0', 'amazon.nova-micro-v1:0', 'amazon.nova-pro-v1:0'];
/** 250 users: the smallest are past any top 200 a panel loads. */
const USERS = Array.from({ length: 250 }, (_, i) => `user-${String(i).padStart(3, '0')}`);

function seed(nowMs: number): WireEvent[] {
  return USERS.flatMap((userId, i) =>
    [0, 1].map((k) =>
      makeEvent({
        timestamp: new Date(nowMs - (2 + ((i * 13 + k * 7) % 300)) * 60_000).toISOString(),
        userId,
        appId: APPS[(i + k) % 3] as string,
        modelId: MODELS[(i * 2 + k) % 3] as string,
        provider: 'bedrock',
        inputTokens: 20_000 - i * 60 + k,
        outputTokens: 10,
        latencyMs: 200 + ((i * 7 + k * 3) % 40) * 75,
      }),
    ),
  );
}

describe.skipIf(!HAVE_CHROMIUM && !REQUIRED)('drill-down and user search', () => {
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  let api: TokenwatchApi;
  let admin: string;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServerProcess(), launchChromium()]);
    admin = server.adminKey as string;
    api = new TokenwatchApi(server.url);
    const posted = await api.postEvents(server.ingestKey as string, { events: seed(Date.now()) });
    expect(posted.status, posted.text).toBe(202);
    // Charts drawn without animation: a click lands where the final layout says.
    const context = await browser.newContext({
      viewport: { width: 1280, height: 900 },
      reducedMotion: 'reduce',
    });
    page = await context.newPage();
    await page.goto(`${server.url}/#key=${admin}`);
    await page.waitForSelector('[data-panel="tokens-over-time"]');
  }, 60_000);

  afterAll(async () => {
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

  /**
   * Where on the page a data item is drawn (the middle of its bar, slice or cell), from the
   * chart's own layout, and its series' name and item name.
   */
  async function itemAt(
    chartId: string,
    seriesIndex: number,
    dataIndex: number,
  ): Promise<{ x: number; y: number }> {
    return page.evaluate(
      ({ id, si, di }) => {
        const el = document.querySelector(`[data-chart="${id}"]`) as HTMLElement;
        el.scrollIntoView({ block: 'center' });
        const chart = window.tokenwatchCharts?.getInstanceByDom(el) as any;
        const box = el.getBoundingClientRect();
        const layout = chart.getModel().getSeriesByIndex(si).getData().getItemLayout(di);
        let x: number;
        let y: number;
        if (layout && 'cx' in layout) {
          const angle = (layout.startAngle + layout.endAngle) / 2;
          const r = (layout.r + layout.r0) / 2;
          x = layout.cx + Math.cos(angle) * r;
          y = layout.cy + Math.sin(angle) * r;
        } else if (layout && 'width' in layout) {
          x = layout.x + layout.width / 2;
          y = layout.y + layout.height / 2;
        } else {
          const value = chart.getOption().series[si].data[di];
          [x, y] = chart.convertToPixel({ seriesIndex: si }, [value[0], value[1]]);
        }
        return { x: box.left + x, y: box.top + y };
      },
      { id: chartId, si: seriesIndex, di: dataIndex },
    );
  }

  async function option(chartId: string): Promise<any> {
    return page.evaluate((id) => {
      const el = document.querySelector(`[data-chart="${id}"]`) as HTMLElement;
      return JSON.parse(JSON.stringify(window.tokenwatchCharts?.getInstanceByDom(el)?.getOption()));
    }, chartId);
  }

  async function clickItem(chartId: string, seriesIndex: number, dataIndex: number) {
    const at = await itemAt(chartId, seriesIndex, dataIndex);
    await page.mouse.click(at.x, at.y);
  }

  const query = () => new URL(page.url()).searchParams;

  it('the user box searches every user on the server as it is typed', async () => {
    await open('/', 'tokens-over-time');
    const top200 = await api.usageRows(admin, { groupBy: 'user', limit: '200' });
    expect(top200.map((r) => r.user)).not.toContain('user-249');
    const searched = page.waitForRequest((r) => r.url().includes('/v1/users?prefix=user-24'));
    await page.locator('input[name="add-user"]').pressSequentially('user-24');
    const request = await searched;
    await page.waitForSelector('input[name="add-user"][data-suggestions-for="user-24"]');
    const offered = await page.$$eval('#suggest-user option', (os) =>
      os.map((o) => (o as HTMLOptionElement).value),
    );
    const answer = await api.get(`/v1/users?${new URL(request.url()).searchParams}`, admin);
    const expected = answer.json().users.map((u: { user: string }) => u.user);
    expect(expected).toContain('user-249');
    expect(offered).toEqual(expected);
    await page.fill('input[name="add-user"]', 'user-249');
    await page.press('input[name="add-user"]', 'Enter');
    await page.waitForSelector('.chip[data-filter="User: user-249"]');
    expect(query().getAll('user')).toEqual(['user-249']);
  });

  it('a bar over time filters to its model', async () => {
    await open('/', 'tokens-over-time');
    const o = await option('tokens-over-time');
    const series = o.series[0];
    const values = (series.data as (number | { value: number })[]).map((d) =>
      typeof d === 'number' ? d : d.value,
    );
    const biggest = values.indexOf(Math.max(...values));
    await clickItem('tokens-over-time', 0, biggest);
    await page.waitForFunction(
      (m) => new URL(location.href).searchParams.get('model') === m,
      series.name,
    );
    expect(new URL(page.url()).pathname).toBe('/');
    expect(query().getAll('model')).toEqual([series.name]);
  });

  it('a slice of the model share opens the overview filtered to that model', async () => {
    await open('/breakdown', 'model-share');
    const o = await option('model-share');
    // The second slice: not the model the previous test left in the URL.
    const slice = o.series[0].data[1];
    await clickItem('model-share', 0, 1);
    await page.waitForFunction(() => location.pathname === '/');
    expect(query().getAll('model')).toEqual([slice.name]);
  });

  it('an app × model bar opens the overview filtered to both', async () => {
    await open('/breakdown', 'app-model');
    const o = await option('app-model');
    const app = o.yAxis[0].data[0];
    const model = o.series[0].name;
    await clickItem('app-model', 0, 0);
    await page.waitForFunction(() => location.pathname === '/');
    expect(query().getAll('app')).toEqual([app]);
    expect(query().getAll('model')).toEqual([model]);
  });

  it('the keyboard drills down too: Tab to a chart, arrows to an item, Enter', async () => {
    await open('/breakdown', 'app-model');
    const o = await option('app-model');
    // Focus the chart as Tab does (the page's tab order is checked by the phone and axe tests).
    await page.focus('[data-chart="app-model"]');
    await page.keyboard.press('ArrowRight');
    // The first key selects the first item; one step down is the next model's bar on that app.
    await page.keyboard.press('ArrowDown');
    const said = await page.textContent('[data-chart="app-model"] + .visually-hidden');
    const first = o.series.findIndex(
      (s: { data: unknown[] }, i: number) => i > 0 && s.data[0] !== null && s.data[0] !== undefined,
    );
    const app = o.yAxis[0].data[0];
    const model = o.series[first].name;
    expect(said).toContain(`${model}, ${app}:`);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => location.pathname === '/');
    expect(query().getAll('app')).toEqual([app]);
    expect(query().getAll('model')).toEqual([model]);
  });

  it('a latency bar opens the overview filtered to that model', async () => {
    await open('/breakdown', 'latency-model');
    const o = await option('latency-model');
    expect(o.series.map((s: { name: string }) => s.name)).toEqual(['p50', 'p95']);
    expect(o.yAxis[0].data).toHaveLength(MODELS.length);
    const model = o.yAxis[0].data[1];
    await clickItem('latency-model', 1, 1);
    await page.waitForFunction(() => location.pathname === '/');
    expect(query().getAll('model')).toEqual([model]);
  });

  it('the keyboard drills down from the latency by app chart', async () => {
    await open('/breakdown', 'latency-app');
    const o = await option('latency-app');
    await page.focus('[data-chart="latency-app"]');
    await page.keyboard.press('ArrowRight');
    const said = await page.textContent('[data-chart="latency-app"] + .visually-hidden');
    const app = o.yAxis[0].data[0];
    expect(said).toContain(`p50, ${app}:`);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => location.pathname === '/');
    expect(query().getAll('app')).toEqual([app]);
  });

  it("a heat-map cell opens the user's page filtered to the app", async () => {
    await open('/breakdown', 'app-user-heatmap');
    const o = await option('app-user-heatmap');
    const cells = o.series[0].data as [number, number, number][];
    const index = cells.findIndex((c) => c[1] === 0);
    const [x, y] = cells[index] as [number, number, number];
    const app = o.xAxis[0].data[x];
    const user = o.yAxis[0].data[y];
    await clickItem('app-user-heatmap', 0, index);
    await page.waitForFunction(() => location.pathname.startsWith('/users/'));
    expect(decodeURIComponent(new URL(page.url()).pathname)).toBe(`/users/${user}`);
    expect(query().getAll('app')).toEqual([app]);
    await page.waitForSelector('[data-panel="user-models-over-time"][data-status="ready"]');
    expect(await page.textContent('h1.user-id')).toBe(user);
  });
});
