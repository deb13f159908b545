import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type FakeCloudWatch,
  startFakeCloudWatch,
} from '../../server/src/bedrock/testing/fake-cloudwatch.js';
import {
  killStartedServers,
  removeDataDir,
  runCli,
  type ServerProcess,
  startServerProcess,
} from '../../server/src/testing/server-process.js';
import { TokenwatchApi } from '../../server/src/testing/tokenwatch-api.js';
import { HAVE_CHROMIUM, launchChromium, REQUIRED, warnIfSkipped } from './testing/browser.js';

warnIfSkipped('reconciliation panel browser test');

/**
 * The "captured vs reported by AWS" panel in Chromium: hidden while no reconciliation has run,
 * then, after `tokenwatch reconcile bedrock` against a CloudWatch stand-in with a planted gap,
 * its bars are the stored per-hour totals and its summary names the gap exactly.
 */

const HOUR = 3_600_000;
const MODEL = 'anthropic.claude-3-haiku-20240307-v1:0';

describe.skipIf(!HAVE_CHROMIUM && !REQUIRED)('dashboard: captured vs reported by AWS', () => {
  let server: ServerProcess;
  let browser: Browser;
  let cw: FakeCloudWatch;
  const h0 = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;

  beforeAll(async () => {
    [server, browser, cw] = await Promise.all([
      startServerProcess(),
      launchChromium(),
      startFakeCloudWatch(),
    ]);
    const api = new TokenwatchApi(server.url);
    const events = [0, 1, 2].map((i) => ({
      id: `panel-${i}`,
      timestamp: h0 + i * HOUR + 60_000,
      userId: 'alice',
      appId: 'chat',
      modelId: MODEL,
      provider: 'bedrock',
      inputTokens: 1000 * (i + 1),
      outputTokens: 100,
    }));
    expect((await api.postEvents(server.ingestKey, { events })).status).toBe(202);
    for (const e of events) {
      cw.datapoints.push(
        {
          metricName: 'InputTokenCount',
          modelId: MODEL,
          timestampMs: e.timestamp,
          value: e.inputTokens + (e.id === 'panel-1' ? 500 : 0),
        },
        { metricName: 'OutputTokenCount', modelId: MODEL, timestampMs: e.timestamp, value: 100 },
      );
    }
  });
  afterAll(async () => {
    await browser?.close();
    await server?.kill('SIGTERM');
    await killStartedServers();
    if (server) removeDataDir(server.dataDir);
    await cw?.close();
  });

  it('is hidden before any reconciliation, then shows the stored hours and the gap', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/#key=${server.adminKey}`);
    await page.waitForSelector('body[data-idle="true"]', { timeout: 20_000 });
    expect(await page.isHidden('[data-panel="reconciliation"]')).toBe(true);

    const run = await runCli(
      [
        ...['reconcile', 'bedrock', '--region', 'us-east-1', '--settle-minutes', '0'],
        ...['--from', new Date(h0).toISOString(), '--to', new Date(h0 + 3 * HOUR).toISOString()],
        ...['--endpoint', cw.url, '--data-dir', server.dataDir],
      ],
      { AWS_ACCESS_KEY_ID: 'AKIDLOCAL', AWS_SECRET_ACCESS_KEY: 'local' },
    );
    expect(run.code, run.stderr).toBe(0);

    await page.reload();
    await page.waitForSelector('[data-panel="reconciliation"][data-status="ready"]', {
      timeout: 20_000,
    });
    const summary = await page.getAttribute(
      '[data-panel="reconciliation"] [data-uncaptured]',
      'data-uncaptured',
    );
    expect(summary).toBe('500');
    const series = await page.evaluate(() => {
      const el = document.querySelector('[data-chart="reconciliation"]') as HTMLElement;
      const chart = (
        window as unknown as {
          tokenwatchCharts?: {
            getInstanceByDom(e: HTMLElement): { getOption(): unknown } | undefined;
          };
        }
      ).tokenwatchCharts?.getInstanceByDom(el);
      const o = chart?.getOption() as { series: Array<{ name: string; data: number[] }> };
      return o.series.map((s) => [s.name, s.data]);
    });
    expect(series).toEqual([
      ['Reported by AWS', [1100, 2600, 3100]],
      ['Captured', [1100, 2100, 3100]],
    ]);
    expect(errors).toEqual([]);
    await page.close();
  });
});
