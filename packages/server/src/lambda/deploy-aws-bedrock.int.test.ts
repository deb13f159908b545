import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const DEPLOY = fileURLToPath(new URL('../../../../deploy/aws/', import.meta.url));
const installed = existsSync(join(DEPLOY, 'node_modules', 'aws-cdk-lib'));
const required = process.env.TOKENWATCH_REQUIRE_SERVICES === '1';
const SKIP_REASON = 'skipped: deploy/aws/node_modules is missing (cd deploy/aws && npm install)';

type Resource = { Type: string; Properties: Record<string, unknown> };
type Template = { Resources: Record<string, Resource> };

async function synth(props: Record<string, unknown>): Promise<Template> {
  const { App } = (await import(
    pathToFileURL(join(DEPLOY, 'node_modules/aws-cdk-lib/index.js')).href
  )) as typeof import('aws-cdk-lib');
  const { TokenwatchStack } = await import(
    pathToFileURL(join(DEPLOY, 'lib/tokenwatch-stack.mjs')).href
  );
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new TokenwatchStack(app, 'BedrockTest', props);
  return app.synth().getStackByName(stack.stackName).template as Template;
}

const of = (t: Template, type: string) =>
  Object.entries(t.Resources).filter(([, r]) => r.Type === type);

describe.skipIf(!installed && !required)(
  `CDK stack: optional Bedrock functions (${installed ? 'synthesised offline' : SKIP_REASON})`,
  () => {
    it('without Bedrock props the stack has none of them', async () => {
      const t = await synth({});
      expect(of(t, 'AWS::Logs::SubscriptionFilter')).toHaveLength(0);
      // Only the outbox schedule (deploy-aws-hardening.int.test.ts), no hourly reconciliation.
      expect(of(t, 'AWS::Events::Rule').map(([id]) => id.replace(/[0-9A-F]{8}$/, ''))).toEqual([
        'OutboxSchedule',
      ]);
      const handlers = of(t, 'AWS::Lambda::Function').map(([, r]) => r.Properties.Handler);
      expect(handlers).not.toContain('index.cloudWatchLogsHandler');
    });

    it('bedrockLogGroup, bedrockLogBucket and bedrockReconcile add their functions, wiring and IAM', async () => {
      const t = await synth({
        bedrockLogGroup: '/aws/bedrock/modelinvocations',
        bedrockLogBucket: 'my-bedrock-logs',
        bedrockLogPrefix: 'invocation-logs/AWSLogs/',
        bedrockReconcile: true,
        bedrockConfig: { invocationLogs: { userMetadataKeys: ['user'] } },
      });
      const fns = of(t, 'AWS::Lambda::Function').filter(([id]) => id.startsWith('Bedrock'));
      const byHandler = new Map(
        fns.map(([id, r]) => [String(r.Properties.Handler), { id, ...r.Properties }]),
      );
      expect([...byHandler.keys()].sort()).toEqual([
        'index.cloudWatchLogsHandler',
        'index.handler',
        'index.s3Handler',
      ]);
      const logsFn = byHandler.get('index.cloudWatchLogsHandler') as Record<string, unknown> & {
        id: string;
      };
      const env = (logsFn.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(JSON.parse(String(env.TOKENWATCH_BEDROCK))).toEqual({
        invocationLogs: { userMetadataKeys: ['user'] },
      });
      expect(logsFn.DeadLetterConfig).toBeDefined();

      const [, filter] = of(t, 'AWS::Logs::SubscriptionFilter')[0] as [string, Resource];
      expect(filter.Properties.LogGroupName).toBe('/aws/bedrock/modelinvocations');
      expect(filter.Properties.FilterPattern).toBe('{ $.schemaType = "ModelInvocationLog" }');
      expect(JSON.stringify(filter.Properties.DestinationArn)).toContain(logsFn.id);

      const invokeConfigs = of(t, 'AWS::Lambda::EventInvokeConfig');
      expect(invokeConfigs.map(([, r]) => r.Properties.MaximumRetryAttempts)).toEqual([2, 2]);

      const notifications = of(t, 'Custom::S3BucketNotifications');
      expect(JSON.stringify(notifications[0]?.[1].Properties)).toContain(
        'invocation-logs/AWSLogs/',
      );
      expect(JSON.stringify(notifications[0]?.[1].Properties)).toContain('.json.gz');

      const [, schedule] = of(t, 'AWS::Events::Rule').find(([id]) =>
        id.startsWith('BedrockReconcileSchedule'),
      ) as [string, Resource];
      expect(schedule.Properties.ScheduleExpression).toBe('rate(1 hour)');
      const policies = JSON.stringify(of(t, 'AWS::IAM::Policy').map(([, r]) => r.Properties));
      expect(policies).toContain('cloudwatch:GetMetricData');
      expect(policies).toContain('cloudwatch:ListMetrics');
      expect(policies).toContain('s3:GetObject*');
    });
  },
);
