import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { DynamoDbStore, tableDefinition } from '../adapters/store/dynamodb/dynamodb-store.js';
import { startDynalite } from '../adapters/store/dynamodb/testing/dynalite.js';
import { createFirstKeys } from '../bootstrap.js';
import type { FunctionUrlEvent, FunctionUrlResult } from './http-handler.js';
import { startFunctionUrl } from './testing/function-url-server.js';

const DEPLOY = fileURLToPath(new URL('../../../../deploy/aws/', import.meta.url));
const installed = existsSync(join(DEPLOY, 'node_modules', 'aws-cdk-lib'));
// CI installs deploy/aws (.ci/run) and requires these tests; a plain `npm test` skips them.
const required = process.env.TOKENWATCH_REQUIRE_SERVICES === '1';
const SKIP_REASON = 'skipped: deploy/aws/node_modules is missing (cd deploy/aws && npm install)';
const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);

type Template = {
  Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
  Outputs: Record<string, unknown>;
};

function resources(t: Template, type: string) {
  return Object.entries(t.Resources).filter(([, r]) => r.Type === type);
}
function only(t: Template, type: string): [string, Record<string, unknown>] {
  const found = resources(t, type);
  expect(found, type).toHaveLength(1);
  const [id, r] = found[0] as [string, { Properties: Record<string, unknown> }];
  return [id, r.Properties];
}

/** The directory `cdk synth -o out` bundled a function into (its id starts with `idPrefix`). */
function bundleDir(out: string, idPrefix: string): string {
  const template = JSON.parse(
    readFileSync(join(out, 'Tokenwatch.template.json'), 'utf8'),
  ) as Template;
  const [, fn] = resources(template, 'AWS::Lambda::Function').find(([id]) =>
    id.startsWith(idPrefix),
  ) as [string, { Properties: { Code: { S3Key: string } } }];
  return join(out, `asset.${fn.Properties.Code.S3Key.replace(/\.zip$/, '')}`);
}

/**
 * A migrated table on a fresh dynalite and the environment a bundled function reads, set on
 * this process; `close` puts the environment back and stops dynalite.
 */
async function bundleTable(table: string) {
  const local = await startDynalite();
  const store = new DynamoDbStore({
    tableName: table,
    endpoint: local.endpoint,
    region: local.region,
    credentials: local.credentials,
  });
  await store.migrate();
  const saved = { ...process.env };
  Object.assign(process.env, {
    TOKENWATCH_TABLE: table,
    TOKENWATCH_DYNAMODB_ENDPOINT: local.endpoint,
    TOKENWATCH_SNS_ENDPOINT: 'http://127.0.0.1:9',
    TOKENWATCH_LOG_LEVEL: 'silent',
    AWS_REGION: 'us-east-1',
  });
  return {
    store,
    close: async () => {
      process.env = saved;
      await store.close();
      await local.close();
    },
  };
}

if (!installed && !required) console.warn(`CDK stack tests ${SKIP_REASON}`);

describe.skipIf(!installed && !required)(
  `CDK stack in deploy/aws (${installed ? 'synthesised offline' : SKIP_REASON})`,
  () => {
    const out = mkdtempSync(join(tmpdir(), 'tokenwatch-cdk-'));
    afterAll(() => rmSync(out, { recursive: true, force: true }));

    it('synthesises with the table, queues, mapping, topic, least-privilege IAM, alarms and outputs', async () => {
      // The template through the CDK's own API, without bundling (fast).
      const { App } = (await import(
        pathToFileURL(join(DEPLOY, 'node_modules/aws-cdk-lib/index.js')).href
      )) as typeof import('aws-cdk-lib');
      const { TokenwatchStack } = await import(
        pathToFileURL(join(DEPLOY, 'lib/tokenwatch-stack.mjs')).href
      );
      const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
      const stack = new TokenwatchStack(app, 'Test', { alertEmail: 'ops@example.com' });
      const t = app.synth().getStackByName(stack.stackName).template as Template;

      const [tableId, table] = only(t, 'AWS::DynamoDB::Table');
      expect(table.KeySchema).toEqual([
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ]);
      expect(table.BillingMode).toBe('PAY_PER_REQUEST');
      expect(table.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
      const gsis = table.GlobalSecondaryIndexes as Array<{ IndexName: string; KeySchema: unknown }>;
      expect(gsis.map((g) => g.IndexName)).toEqual(['gsi1', 'gsi2']);
      // The same keys and indexes as the table the adapter creates for itself locally.
      const def = tableDefinition('x');
      expect(table.KeySchema).toEqual(def.KeySchema);
      expect(gsis.map((g) => [g.IndexName, g.KeySchema])).toEqual(
        (def.GlobalSecondaryIndexes ?? []).map((g) => [g.IndexName, g.KeySchema]),
      );

      const queues = resources(t, 'AWS::SQS::Queue');
      expect(queues).toHaveLength(2);
      const [queueId, queue] = queues.find(([, q]) => q.Properties.RedrivePolicy) as [
        string,
        { Properties: Record<string, unknown> },
      ];
      const [dlqId] = queues.find(([id]) => id !== queueId) as [string, unknown];
      expect(queue.Properties.RedrivePolicy).toEqual({
        deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] },
        maxReceiveCount: 5,
      });
      const functions = resources(t, 'AWS::Lambda::Function').filter(([id]) =>
        id.startsWith('IngestFunction'),
      );
      expect(functions).toHaveLength(1);
      const ingestTimeout = Number(
        (functions[0]?.[1].Properties as { Timeout?: number } | undefined)?.Timeout,
      );
      expect(Number(queue.Properties.VisibilityTimeout)).toBeGreaterThanOrEqual(6 * ingestTimeout);

      const [, mapping] = only(t, 'AWS::Lambda::EventSourceMapping');
      // The settings `npm run bench:aws` measures the write units at.
      const batching = (await import(
        pathToFileURL(join(DEPLOY, 'lib/ingest-batching.mjs')).href
      )) as {
        INGEST_BATCH_SIZE: number;
        INGEST_BATCHING_WINDOW_SECONDS: number;
      };
      expect(mapping).toMatchObject({
        EventSourceArn: { 'Fn::GetAtt': [queueId, 'Arn'] },
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        BatchSize: batching.INGEST_BATCH_SIZE,
        MaximumBatchingWindowInSeconds: batching.INGEST_BATCHING_WINDOW_SECONDS,
      });

      const topics = resources(t, 'AWS::SNS::Topic');
      expect(topics.map(([, r]) => r.Properties.DisplayName).sort()).toEqual([
        'tokenwatch alerts',
        'tokenwatch operations',
      ]);
      const [topicId] = topics.find(([id]) => id.startsWith('AlertTopic')) as [string, unknown];
      const [opsTopicId] = topics.find(([id]) => id.startsWith('OperationsTopic')) as [
        string,
        unknown,
      ];
      // alertEmail gets both the usage alerts and (no opsEmail given) the operations alarms.
      const subscriptions = resources(t, 'AWS::SNS::Subscription').map(([, r]) => r.Properties);
      expect(subscriptions).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            Protocol: 'email',
            Endpoint: 'ops@example.com',
            TopicArn: { Ref: topicId },
          }),
          expect.objectContaining({
            Protocol: 'email',
            Endpoint: 'ops@example.com',
            TopicArn: { Ref: opsTopicId },
          }),
        ]),
      );
      expect(subscriptions).toHaveLength(2);

      // Every inline policy names its resources: this table (and its indexes), topic and queue.
      const allowed = new Set([tableId, topicId, queueId]);
      for (const [, policy] of resources(t, 'AWS::IAM::Policy')) {
        const doc = policy.Properties.PolicyDocument as {
          Statement: Array<{ Action: unknown; Resource: unknown }>;
        };
        for (const statement of doc.Statement) {
          const text = JSON.stringify(statement.Resource);
          expect(text, JSON.stringify(statement)).not.toContain('"*"');
          const refs = [...text.matchAll(/"(?:Ref|Fn::GetAtt)":\s*\[?"([A-Za-z0-9]+)"/g)].map(
            (m) => m[1],
          );
          expect(refs.length).toBeGreaterThan(0);
          for (const ref of refs)
            expect(allowed.has(ref as string), `${ref} in ${text}`).toBe(true);
          expect(JSON.stringify(statement.Action)).not.toMatch(
            /dynamodb:\*|dynamodb:Scan|DeleteTable|sns:\*/,
          );
        }
      }

      const alarms = resources(t, 'AWS::CloudWatch::Alarm');
      expect(alarms).toHaveLength(8);
      const dlqAlarm = alarms.find(([, a]) =>
        JSON.stringify(a.Properties.Dimensions ?? []).includes(dlqId),
      );
      expect(dlqAlarm?.[1].Properties).toMatchObject({
        MetricName: 'ApproximateNumberOfMessagesVisible',
        AlarmActions: [{ Ref: opsTopicId }],
      });
      expect(Object.keys(t.Outputs)).toEqual(
        expect.arrayContaining(['QueueUrl', 'ApiUrl', 'TopicArn']),
      );
    });

    it('`cdk synth` (the CLI npx runs) works offline, and the bundled ingest function counts an SQS batch', async () => {
      const cdk = join(DEPLOY, 'node_modules/aws-cdk/bin/cdk');
      await promisify(execFile)(
        process.execPath,
        [cdk, 'synth', '--quiet', '--no-notices', '-o', out],
        {
          cwd: DEPLOY,
          env: { ...process.env, CDK_DISABLE_VERSION_CHECK: '1' },
          timeout: 80_000,
        },
      );
      const asset = bundleDir(out, 'IngestFunction');
      expect(readdirSync(asset)).toContain('index.mjs');

      // The bundle as Lambda would run it, against dynalite.
      const { store, close } = await bundleTable(`bundle-${process.pid}`);
      try {
        const bundled = (await import(pathToFileURL(join(asset, 'index.mjs')).href)) as {
          handler: (e: unknown) => Promise<unknown>;
        };
        const body = JSON.stringify({
          events: [
            {
              id: 'e-1',
              timestamp: new Date().toISOString(),
              userId: 'alice',
              appId: 'a',
              modelId: 'm',
              provider: 'bedrock',
              inputTokens: 7,
              outputTokens: 1,
            },
          ],
        });
        const event = {
          Records: [
            { messageId: '1', body },
            { messageId: '2', body },
            { messageId: '3', body: 'nope' },
          ],
        };
        expect(await bundled.handler(event)).toEqual({
          batchItemFailures: [{ itemIdentifier: '3' }],
        });
        // The OutboxSchedule rule's event: an outbox pass, not an SQS batch.
        expect(
          await bundled.handler({ source: 'aws.events', 'detail-type': 'Scheduled Event' }),
        ).toEqual({ attempted: 0, passes: 1 });
        const { makeQuery } = await import('@tokenwatch/core/testing');
        const [row] = await store.queryUsage(
          makeQuery({
            projectId: 'default',
            fromMs: Date.now() - 86_400_000,
            toMs: Date.now() + 3_600_000,
          }),
        );
        expect([row?.totalTokens, row?.requests]).toEqual([8, 1]);
      } finally {
        await close();
      }
    }, 85_000);

    it.skipIf(!haveChromium && !required)(
      `the bundled API function serves the dashboard, which works against it on dynalite (${haveChromium ? 'Chromium' : `skipped: ${CHROMIUM} is missing`})`,
      async () => {
        // The bundle of the `cdk synth` above.
        const asset = bundleDir(out, 'ApiFunction');
        expect(readdirSync(join(asset, 'dashboard'))).toContain('index.html');
        const { store, close } = await bundleTable(`dashboard-${process.pid}`);
        const keys = await createFirstKeys(store, { projectId: 'default', nowMs: Date.now() });
        const bundled = (await import(pathToFileURL(join(asset, 'index.mjs')).href)) as {
          handler: (e: FunctionUrlEvent) => Promise<FunctionUrlResult>;
        };
        const site = await startFunctionUrl(bundled.handler);
        const browser = await chromium.launch({
          executablePath: CHROMIUM,
          args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
        });
        try {
          const now = Date.now();
          const events = Array.from({ length: 40 }, (_, i) => ({
            id: `dash-${i}`,
            timestamp: new Date(now - i * 60_000).toISOString(),
            userId: `user-${i % 4}`,
            appId: i % 2 ? 'chat' : 'search',
            modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
            provider: 'bedrock',
            inputTokens: 100 + i,
            outputTokens: 10,
          }));
          const posted = await fetch(`${site.url}/v1/events`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${keys.ingestKey}`,
              'content-type': 'application/json',
            },
            body: JSON.stringify({ events }),
          });
          expect(posted.status, await posted.text()).toBe(202);
          const total = events.reduce((s, e) => s + e.inputTokens + e.outputTokens, 0);

          // The page's script comes gzipped through the function URL and decodes to the bundle's file.
          const html = await (await fetch(`${site.url}/`)).text();
          const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
          expect(script, html.slice(0, 300)).toBeDefined();
          // node:http, not fetch: fetch would decode the gzip body itself.
          const raw = await new Promise<{ headers: Record<string, unknown>; body: Buffer }>(
            (resolve, reject) => {
              httpGet(`${site.url}${script}`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
                const chunks: Buffer[] = [];
                res.on('data', (c: Buffer) => chunks.push(c));
                res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
              }).on('error', reject);
            },
          );
          expect(raw.headers['content-encoding']).toBe('gzip');
          expect(gunzipSync(raw.body)).toEqual(
            readFileSync(join(asset, 'dashboard', String(script).slice(1))),
          );

          // The dashboard itself, signed in with the admin key, shows the usage the API counted.
          const page = await browser.newPage();
          const pageErrors: string[] = [];
          page.on('pageerror', (e) => pageErrors.push(e.message));
          await page.goto(`${site.url}/#key=${keys.adminKey}`);
          await page.waitForSelector('[data-panel="tokens-over-time"][data-status="ready"]', {
            timeout: 30_000,
          });
          expect(await page.getAttribute('[data-kpi="tokens"]', 'data-value')).toBe(String(total));
          // No live stream on a function URL: the page says it polls, it does not show an outage.
          await page.waitForSelector('.live-offline', { timeout: 30_000 });
          expect(await page.locator('.outage:visible').count()).toBe(0);
          expect(pageErrors).toEqual([]);
        } finally {
          await browser.close();
          await site.close();
          await close();
        }
      },
      90_000,
    );
  },
);
