import { CONTRACT_T0 } from '@tokenwatch/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalDynamo, startDynalite } from '../adapters/store/dynamodb/testing/dynalite.js';
import { createLambdaRuntime, loadLambdaConfig } from '../lambda/lambda-runtime.js';
import { createReconcileHandler, reconciliationStoreOf } from '../lambda/reconcile-handler.js';
import { backdateRule } from '../testing/alerts-harness.js';
import {
  killStartedServers,
  removeDataDir,
  runCli,
  type ServerProcess,
  startServerProcess,
} from '../testing/server-process.js';
import { TokenwatchApi } from '../testing/tokenwatch-api.js';
import { type FakeCloudWatch, startFakeCloudWatch } from './testing/fake-cloudwatch.js';

/**
 * Issue 15: reconciliation against a local CloudWatch stand-in driven by the real AWS SDK v3
 * client. CloudWatch reports what tokenwatch captured, plus two planted gaps: 777 input tokens
 * of one model in one hour, and a model tokenwatch never saw. Exactly those are reported.
 */

const HOUR = 3_600_000;
const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const SONNET = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';
const NOVA = 'amazon.nova-pro-v1:0';
const AWS_ENV = {
  AWS_ACCESS_KEY_ID: 'AKIDLOCAL',
  AWS_SECRET_ACCESS_KEY: 'local',
  AWS_REGION: 'us-east-1',
};

interface Captured {
  model: string;
  hour: number;
  input: number;
  output: number;
  cacheRead?: number;
  cacheWrite?: number;
}

/** CloudWatch's datapoints for what was captured: one per call, a few seconds into the hour. */
function plant(cw: FakeCloudWatch, calls: readonly Captured[]): void {
  for (const [i, c] of calls.entries()) {
    const at = c.hour + 60_000 + i * 1000;
    cw.datapoints.push(
      { metricName: 'InputTokenCount', modelId: c.model, timestampMs: at, value: c.input },
      { metricName: 'OutputTokenCount', modelId: c.model, timestampMs: at, value: c.output },
    );
    if (c.cacheRead !== undefined) {
      cw.datapoints.push(
        {
          metricName: 'CacheReadInputTokenCount',
          modelId: c.model,
          timestampMs: at,
          value: c.cacheRead,
        },
        {
          metricName: 'CacheWriteInputTokenCount',
          modelId: c.model,
          timestampMs: at,
          value: c.cacheWrite ?? 0,
        },
      );
    }
  }
}

describe('tokenwatch reconcile bedrock (server, SQLite)', () => {
  let server: ServerProcess;
  let api: TokenwatchApi;
  let cw: FakeCloudWatch;
  const h0 = Math.floor(Date.now() / HOUR) * HOUR - 4 * HOUR;
  const calls: Captured[] = [
    { model: HAIKU, hour: h0, input: 1000, output: 200 },
    { model: HAIKU, hour: h0 + HOUR, input: 1500, output: 300 },
    { model: HAIKU, hour: h0 + HOUR, input: 500, output: 50 },
    {
      model: SONNET,
      hour: h0 + 2 * HOUR,
      input: 40,
      output: 900,
      cacheRead: 8192,
      cacheWrite: 1024,
    },
  ];

  beforeAll(async () => {
    cw = await startFakeCloudWatch();
    server = await startServerProcess();
    api = new TokenwatchApi(server.url);
    const events = calls.map((c, i) => ({
      id: `reconcile-${i}`,
      timestamp: c.hour + 60_000 + i * 1000,
      userId: 'alice',
      appId: 'chat',
      // The SDK path sends the profile as the caller named it: an ARN is normalised on ingest.
      modelId:
        c.model === SONNET
          ? `arn:aws:bedrock:us-east-1:123456789012:inference-profile/${SONNET}`
          : c.model,
      provider: 'bedrock',
      inputTokens: c.input,
      outputTokens: c.output,
      cacheReadTokens: c.cacheRead ?? 0,
      cacheWriteTokens: c.cacheWrite ?? 0,
    }));
    const res = await api.postEvents(server.ingestKey, { events });
    expect(res.status, res.text).toBe(202);
    plant(cw, calls);
    // The planted gaps: 777 input tokens of Haiku in the second hour tokenwatch never saw, and
    // a Nova service that does not use tokenwatch at all.
    cw.datapoints.push(
      {
        metricName: 'InputTokenCount',
        modelId: HAIKU,
        timestampMs: h0 + HOUR + 30 * 60_000,
        value: 777,
      },
      {
        metricName: 'InputTokenCount',
        modelId: NOVA,
        timestampMs: h0 + 3 * HOUR + 5_000,
        value: 3000,
      },
      {
        metricName: 'OutputTokenCount',
        modelId: NOVA,
        timestampMs: h0 + 3 * HOUR + 5_000,
        value: 120,
      },
    );
  });
  afterAll(async () => {
    await server?.kill('SIGTERM');
    await killStartedServers();
    if (server) removeDataDir(server.dataDir);
    await cw?.close();
  });

  /** The last four complete hours; every one settled (the test does not wait for CloudWatch). */
  const reconcileCli = (...extra: string[]) =>
    runCli(
      [
        ...['reconcile', 'bedrock', '--region', 'us-east-1', '--settle-minutes', '0'],
        ...['--from', new Date(h0).toISOString(), '--to', new Date(h0 + 4 * HOUR).toISOString()],
        ...['--endpoint', cw.url, '--data-dir', server.dataDir, ...extra],
      ],
      AWS_ENV,
    );

  it('reports the planted gaps exactly, and every matched hour as 0', async () => {
    const result = await reconcileCli('--json');
    expect(result.code, result.stderr).toBe(0);
    const out = JSON.parse(result.stdout) as {
      rows: Array<{
        modelId: string;
        hourStartMs: number;
        metric: string;
        reported: number;
        captured: number;
        difference: number;
        percent: number | null;
      }>;
      summary: { uncaptured: number; overCaptured: number };
    };
    const gaps = out.rows.filter((r) => r.difference !== 0);
    expect(gaps).toEqual([
      {
        modelId: HAIKU,
        hourStartMs: h0 + HOUR,
        metric: 'inputTokens',
        reported: 2777,
        captured: 2000,
        difference: 777,
        percent: 27.98,
        settled: true,
      },
      {
        modelId: NOVA,
        hourStartMs: h0 + 3 * HOUR,
        metric: 'inputTokens',
        reported: 3000,
        captured: 0,
        difference: 3000,
        percent: 100,
        settled: true,
      },
      {
        modelId: NOVA,
        hourStartMs: h0 + 3 * HOUR,
        metric: 'outputTokens',
        reported: 120,
        captured: 0,
        difference: 120,
        percent: 100,
        settled: true,
      },
    ]);
    // Everything else matched, cache classes included.
    expect(
      out.rows.filter((r) => r.difference === 0).map((r) => `${r.modelId} ${r.metric}`),
    ).toEqual([
      `${HAIKU} inputTokens`,
      `${HAIKU} outputTokens`,
      `${HAIKU} outputTokens`,
      `${SONNET} inputTokens`,
      `${SONNET} outputTokens`,
      `${SONNET} cacheReadTokens`,
      `${SONNET} cacheWriteTokens`,
    ]);
    expect(out.summary).toMatchObject({ uncaptured: 3897, overCaptured: 0 });
    // The real SDK signed its requests and asked for hourly sums.
    const get = cw.requests.find((r) => r.operation === 'GetMetricData');
    expect(get?.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDLOCAL\//);
    const queries = (get?.body.MetricDataQueries ?? []) as Array<{
      MetricStat: { Period: number; Stat: string };
    }>;
    const q = queries[0];
    expect(q?.MetricStat).toMatchObject({ Period: 3600, Stat: 'Sum' });
  });

  it('an uncapturedTokens rule fires on the planted gaps, once per model, day and level', async () => {
    const created = await api.request('/v1/rules', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${server.adminKey}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        name: 'Bedrock usage tokenwatch did not see',
        scope: ['model'],
        metric: 'uncapturedTokens',
        window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
        levels: [{ value: 500 }, { value: 3_000 }],
        channels: [{ type: 'log' }],
      }),
    });
    expect(created.status, created.text).toBe(201);
    const ruleId = (created.json() as { rule: { id: string } }).rule.id;
    // The gaps are hours ago, maybe yesterday: as if the rule had watched since before them.
    backdateRule(server.dataDir, ruleId, h0 - 24 * HOUR);
    const alerts = async () =>
      (
        (await api.get(`/v1/alerts?ruleId=${ruleId}`, server.adminKey)).json() as {
          alerts: Array<{ scope: { model: string }; level: { index: number }; value: number }>;
        }
      ).alerts
        .map((a) => `${a.scope.model} L${a.level.index} ${a.value}`)
        .sort();
    for (let run = 0; run < 2; run++) {
      const result = await reconcileCli();
      expect(result.code, result.stderr).toBe(0);
      // Haiku lacks 777 tokens in one hour; Nova lacks all 3,120 of its hour; same UTC day or not.
      expect(await alerts()).toEqual(
        [`${HAIKU} L0 777`, `${NOVA} L0 3120`, `${NOVA} L1 3120`].sort(),
      );
    }
  });

  it('GET /v1/reconciliation serves the stored result, per row and per hour', async () => {
    const res = await api.get(
      `/v1/reconciliation?from=${new Date(h0).toISOString()}&to=${new Date(h0 + 4 * HOUR).toISOString()}`,
      server.adminKey,
    );
    expect(res.status, res.text).toBe(200);
    const body = res.json<{
      summary: { reported: number; captured: number; uncaptured: number; driftPercent: number };
      hours: Array<{ hour: string; uncaptured: number }>;
      rows: Array<{ model: string; difference: number }>;
    }>();
    expect(body.rows).toHaveLength(10);
    expect(body.hours.map((h) => [h.hour, h.uncaptured])).toEqual([
      [new Date(h0).toISOString(), 0],
      [new Date(h0 + HOUR).toISOString(), 777],
      [new Date(h0 + 2 * HOUR).toISOString(), 0],
      [new Date(h0 + 3 * HOUR).toISOString(), 3120],
    ]);
    expect(body.summary.uncaptured).toBe(3897);
    expect((await api.get('/v1/reconciliation?model=x', server.adminKey)).status).toBe(400);
    expect((await api.get('/v1/reconciliation')).status).toBe(401);
  });

  it('a run over the same hours replaces the stored rows (a late event closes the gap)', async () => {
    const late = await api.postEvents(server.ingestKey, {
      id: 'reconcile-late',
      timestamp: h0 + HOUR + 40 * 60_000,
      userId: 'bob',
      appId: 'batch',
      modelId: HAIKU,
      provider: 'bedrock',
      inputTokens: 777,
      outputTokens: 0,
    });
    expect(late.status).toBe(202);
    const result = await reconcileCli();
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/uncaptured 3120/);
    const body = (
      await api.get(`/v1/reconciliation?from=${new Date(h0).toISOString()}`, server.adminKey)
    ).json<{
      rows: Array<{ model: string; difference: number }>;
    }>();
    expect(body.rows.filter((r) => r.difference !== 0).map((r) => r.model)).toEqual([NOVA, NOVA]);
  });

  it('bad arguments are refused with the reason', async () => {
    const noRegion = await runCli([
      'reconcile',
      'bedrock',
      '--from',
      '2026-01-01',
      '--to',
      '2026-01-02',
    ]);
    expect(noRegion.code).toBe(2);
    expect(noRegion.stderr).toMatch(/--region/);
    const tooLong = await runCli(
      [
        'reconcile',
        'bedrock',
        '--region',
        'us-east-1',
        '--from',
        new Date(h0 - 40 * 24 * HOUR).toISOString(),
        '--to',
        new Date(h0).toISOString(),
        '--data-dir',
        server.dataDir,
        '--endpoint',
        cw.url,
      ],
      AWS_ENV,
    );
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toMatch(/at most 31 days/);
  });
});

describe('scheduled reconcile function (DynamoDB)', () => {
  let local: LocalDynamo;
  let cw: FakeCloudWatch;
  beforeAll(async () => {
    local = await startDynalite();
    cw = await startFakeCloudWatch();
  });
  afterAll(async () => {
    await cw?.close();
    await local?.close();
  });

  it('compares the last complete hours and stores the rows in the table', async () => {
    const now = CONTRACT_T0 + 3 * HOUR + 30 * 60_000;
    const rt = await createLambdaRuntime(
      loadLambdaConfig({
        TOKENWATCH_TABLE: `reconcile-${process.pid}`,
        TOKENWATCH_DYNAMODB_ENDPOINT: local.endpoint,
        TOKENWATCH_CLOUDWATCH_ENDPOINT: cw.url,
        TOKENWATCH_LOG_LEVEL: 'silent',
        AWS_REGION: 'eu-west-1',
        TOKENWATCH_BEDROCK: JSON.stringify({ reconcile: { lookbackHours: 3 } }),
      }),
      { now: () => now },
    );
    try {
      await rt.store.migrate();
      await rt.store.createProject({ id: 'default', name: 'default', createdAtMs: CONTRACT_T0 });
      const { priceEvent, PriceCatalog, BUNDLED_CATALOG } = await import('@tokenwatch/core');
      const catalog = PriceCatalog.fromData(BUNDLED_CATALOG);
      const event = (id: string, at: number, input: number) =>
        priceEvent(
          {
            id,
            timestampMs: at,
            userId: 'u',
            appId: 'a',
            modelId: HAIKU,
            provider: 'bedrock',
            inputTokens: input,
            outputTokens: 10,
            cacheReadTokens: 0,
            cacheWriteTokens: 0,
            latencyMs: undefined,
            status: 'ok',
            tags: undefined,
          },
          'default',
          catalog,
        );
      await rt.store.applyBatch(
        [event('a', CONTRACT_T0 + 60_000, 100), event('b', CONTRACT_T0 + HOUR + 60_000, 200)],
        { nowMs: now },
      );
      cw.datapoints.push(
        {
          metricName: 'InputTokenCount',
          modelId: HAIKU,
          timestampMs: CONTRACT_T0 + 60_000,
          value: 100,
        },
        {
          metricName: 'OutputTokenCount',
          modelId: HAIKU,
          timestampMs: CONTRACT_T0 + 60_000,
          value: 10,
        },
        {
          metricName: 'InputTokenCount',
          modelId: HAIKU,
          timestampMs: CONTRACT_T0 + HOUR + 60_000,
          value: 250,
        },
        {
          metricName: 'OutputTokenCount',
          modelId: HAIKU,
          timestampMs: CONTRACT_T0 + HOUR + 60_000,
          value: 10,
        },
      );
      const outcome = await createReconcileHandler(rt)();
      expect(outcome.regions).toBe('eu-west-1');
      const stored = await reconciliationStoreOf(rt).list(
        'default',
        CONTRACT_T0,
        CONTRACT_T0 + 3 * HOUR,
      );
      expect(
        stored.map((r) => [
          r.hourStartMs - CONTRACT_T0,
          r.metric,
          r.reported,
          r.captured,
          r.difference,
        ]),
      ).toEqual([
        [0, 'inputTokens', 100, 100, 0],
        [0, 'outputTokens', 10, 10, 0],
        [HOUR, 'inputTokens', 250, 200, 50],
        [HOUR, 'outputTokens', 10, 10, 0],
      ]);
      // A second run replaces, never duplicates.
      await createReconcileHandler(rt)();
      expect(
        await reconciliationStoreOf(rt).list('default', CONTRACT_T0, CONTRACT_T0 + 3 * HOUR),
      ).toHaveLength(4);
    } finally {
      await rt.close();
    }
  });
});
