import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  aws_cloudwatch_actions as actions,
  CfnOutput,
  aws_cloudwatch as cloudwatch,
  Duration,
  aws_dynamodb as dynamodb,
  aws_events as events,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_logs as logs,
  aws_logs_destinations as logsDestinations,
  aws_lambda_nodejs as nodejs,
  RemovalPolicy,
  Stack,
  aws_s3 as s3,
  aws_s3_notifications as s3n,
  aws_sns as sns,
  aws_lambda_event_sources as sources,
  aws_sqs as sqs,
  aws_sns_subscriptions as subscriptions,
  aws_events_targets as targets,
} from 'aws-cdk-lib';
import { INGEST_BATCH_SIZE, INGEST_BATCHING_WINDOW_SECONDS } from './ingest-batching.mjs';
import { addOperationsAlarms } from './operations-alarms.mjs';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root: the functions are bundled from packages/server's sources. */
export const REPO_ROOT = join(here, '..', '..', '..');

/** The ingest function's timeout; the queue's visibility timeout is 6× this (AWS's advice). */
export const INGEST_TIMEOUT_SECONDS = 60;

/**
 * tokenwatch on AWS, the seed's architecture: the SDK's `/sqs` transport → SQS (with a
 * dead-letter queue) → the ingest function (exactly-once into DynamoDB, rules, alerts) → SNS;
 * the query API and ingest over HTTP on a second function behind a function URL.
 *
 * Props (also settable as context: `-c alertEmail=… -c projectId=…`):
 * - alertEmail: subscribe this address to the alert topic (AWS sends a confirmation mail).
 * - projectId: the tokenwatch project the queue's events count in (default "default").
 * - bedrockLogGroup: the CloudWatch Logs group Bedrock model invocation logging writes to; adds
 *   a subscription function that counts every invocation (README § Bedrock invocation logs).
 * - bedrockLogBucket (and bedrockLogPrefix): the S3 bucket of invocation logs; adds a function
 *   on every object created under the prefix.
 * - bedrockReconcile: `true` adds an hourly function comparing tokenwatch's totals with
 *   CloudWatch's AWS/Bedrock metrics of the stack's region (GET /v1/reconciliation).
 * - bedrockConfig: the `bedrock` section of tokenwatch.json (user/app mapping, reconcile
 *   settings), given to those functions.
 * - opsEmail: subscribe this address to the operations topic (alarms); defaults to alertEmail.
 * - apiReservedConcurrency: reserved concurrency of the API function (default 10; `off` for
 *   none): caps what a flood on the function URL can run and cost.
 * - apiAuth: the function URL's auth type, `NONE` (default: tokenwatch's API keys authenticate
 *   every request) or `AWS_IAM` (callers sign with SigV4 and pass the tokenwatch key in
 *   `x-tokenwatch-authorization`).
 * - outboxSchedule: how often an EventBridge rule invokes the ingest function to send pending
 *   alert deliveries when no usage arrives, e.g. `rate(1 minute)` (default) or `off`.
 * - queueAgeAlarmSeconds: alarm when the oldest usage message is older than this (default 600).
 * - ingestBatchingWindowSeconds: how long the queue's event source gathers messages for one
 *   invocation (1–300, default 5): longer merges more events into each rollup write (fewer
 *   DynamoDB write units at moderate rates) and counts them later (ingest-batching.mjs).
 */
export class TokenwatchStack extends Stack {
  constructor(scope, id, props = {}) {
    super(scope, id, props);
    const alertEmail = props.alertEmail ?? this.node.tryGetContext('alertEmail');
    const projectId = props.projectId ?? this.node.tryGetContext('projectId') ?? 'default';
    const ctx = (name) => props[name] ?? this.node.tryGetContext(name);
    const opsEmail = ctx('opsEmail') ?? alertEmail;
    const apiReservedConcurrency = reservedConcurrency(ctx('apiReservedConcurrency'));
    const apiAuth = functionUrlAuth(ctx('apiAuth'));
    const outboxSchedule = scheduleExpression(ctx('outboxSchedule'));
    const batchingWindowSeconds = batchingWindow(ctx('ingestBatchingWindowSeconds'));

    // One table, on demand; keys and indexes as DynamoDbStore.tableDefinition declares them.
    const table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: 'expiresAt',
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // The usage history users pay by: neither `cdk destroy` nor a console click deletes it.
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    table.addGlobalSecondaryIndex({
      indexName: 'gsi1',
      partitionKey: { name: 'gsi1pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'gsi1sk', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    table.addGlobalSecondaryIndex({
      indexName: 'gsi2',
      partitionKey: { name: 'gsi2pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'gsi2sk', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.INCLUDE,
      nonKeyAttributes: ['id', 'status', 'attempts', 'nextAttemptMs'],
    });

    const topic = new sns.Topic(this, 'AlertTopic', { displayName: 'tokenwatch alerts' });
    if (alertEmail) topic.addSubscription(new subscriptions.EmailSubscription(alertEmail));
    // CloudWatch alarms go to their own topic: they carry none of the usage alerts' message
    // attributes, so a filter policy on an alert subscription would silently drop them.
    const opsTopic = new sns.Topic(this, 'OperationsTopic', {
      displayName: 'tokenwatch operations',
    });
    if (opsEmail) opsTopic.addSubscription(new subscriptions.EmailSubscription(opsEmail));

    const deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    const queue = new sqs.Queue(this, 'UsageQueue', {
      visibilityTimeout: Duration.seconds(6 * INGEST_TIMEOUT_SECONDS),
      retentionPeriod: Duration.days(4),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: 5 },
    });

    const bundling = {
      format: nodejs.OutputFormat.ESM,
      target: 'node22',
      minify: true,
      sourceMap: true,
      // Bundle the SDK we test against (exact numbers, the same error names) rather than the runtime's.
      externalModules: ['better-sqlite3', 'pg', '@nats-io/*', 'dynalite'],
      tsconfig: join(here, '..', 'tsconfig.bundle.json'),
      mainFields: ['module', 'main'],
      banner:
        "import { createRequire as __twRequire } from 'node:module'; const require = __twRequire(import.meta.url);",
    };
    const copyDashboardHooks = {
      beforeBundling: () => [],
      beforeInstall: () => [],
      afterBundling: (inputDir, outputDir) => {
        const dist = join(inputDir, 'packages/dashboard/dist');
        return [
          `test -f "${dist}/index.html" || { echo "tokenwatch: ${dist} is missing: run \`npm run build\` at the repository root first" >&2; exit 1; }`,
          `cp -R "${dist}" "${join(outputDir, 'dashboard')}"`,
        ];
      },
    };
    const common = {
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      projectRoot: REPO_ROOT,
      depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
      bundling,
      environment: {
        TOKENWATCH_TABLE: table.tableName,
        TOKENWATCH_PROJECT_ID: projectId,
        NODE_OPTIONS: '--enable-source-maps',
      },
    };
    const logGroup = (name) =>
      new logs.LogGroup(this, name, {
        retention: logs.RetentionDays.ONE_MONTH,
        removalPolicy: RemovalPolicy.DESTROY,
      });

    const ingestFn = new nodejs.NodejsFunction(this, 'IngestFunction', {
      ...common,
      entry: join(REPO_ROOT, 'packages/server/src/lambda/sqs-handler.ts'),
      logGroup: logGroup('IngestLogs'),
      handler: 'handler',
      memorySize: 512,
      timeout: Duration.seconds(INGEST_TIMEOUT_SECONDS),
      description: 'tokenwatch: SQS usage batches → DynamoDB (exactly once), rules, SNS alerts',
    });
    ingestFn.addEventSource(
      new sources.SqsEventSource(queue, {
        // One invocation is one batch record: its rows are written once (ingest-batching.mjs).
        batchSize: INGEST_BATCH_SIZE,
        maxBatchingWindow: Duration.seconds(batchingWindowSeconds),
        reportBatchItemFailures: true,
        maxConcurrency: 10,
      }),
    );

    const apiFn = new nodejs.NodejsFunction(this, 'ApiFunction', {
      ...common,
      // The web dashboard ships inside the API function (`dashboard/` beside the bundle, found
      // by http-handler.ts), so the function URL serves the same page as `tokenwatch serve`.
      bundling: { ...bundling, commandHooks: copyDashboardHooks },
      entry: join(REPO_ROOT, 'packages/server/src/lambda/http-handler.ts'),
      logGroup: logGroup('ApiLogs'),
      handler: 'handler',
      memorySize: 1024,
      timeout: Duration.seconds(30),
      // A function URL has no throttling of its own: this caps the concurrent requests (and
      // the bill) a flood can cause; more get 429 from Lambda.
      ...(apiReservedConcurrency === undefined
        ? {}
        : { reservedConcurrentExecutions: apiReservedConcurrency }),
      description: 'tokenwatch: query API and HTTP ingest over DynamoDB (function URL)',
    });
    // The app authenticates every request with its own API keys (Authorization: Bearer …, or
    // x-tokenwatch-authorization when AWS_IAM takes the Authorization header for SigV4).
    const apiUrl = apiFn.addFunctionUrl({ authType: apiAuth });

    // Least privilege: item-level actions on this table and its indexes, Publish on this topic.
    const tableResources = [table.tableArn, `${table.tableArn}/index/*`];
    ingestFn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: [
          'dynamodb:GetItem',
          'dynamodb:PutItem',
          'dynamodb:UpdateItem',
          'dynamodb:Query',
          'dynamodb:BatchGetItem',
        ],
        resources: tableResources,
      }),
    );
    apiFn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: [
          'dynamodb:GetItem',
          'dynamodb:PutItem',
          'dynamodb:UpdateItem',
          'dynamodb:DeleteItem',
          'dynamodb:Query',
          'dynamodb:BatchGetItem',
          'dynamodb:BatchWriteItem',
        ],
        resources: tableResources,
      }),
    );
    for (const fn of [ingestFn, apiFn]) {
      fn.addToRolePolicy(
        new iam.PolicyStatement({ actions: ['sns:Publish'], resources: [topic.topicArn] }),
      );
    }

    // Without usage no function runs: this sends the outbox's retries (a failed SNS, webhook or
    // Slack delivery) on time instead of dropping them after 24 hours of quiet.
    if (outboxSchedule) {
      new events.Rule(this, 'OutboxSchedule', {
        schedule: events.Schedule.expression(outboxSchedule),
        targets: [
          new targets.LambdaFunction(ingestFn, {
            // The next tick is the retry; an old tick is pointless.
            retryAttempts: 0,
            maxEventAge: Duration.minutes(5),
          }),
        ],
        description: 'tokenwatch: send pending alert deliveries (outbox) when no usage arrives',
      });
    }

    // Alarms, to the operations topic: anything in the dead-letter queue, any function error.
    const alarmAction = new actions.SnsAction(opsTopic);
    const alarms = [
      new cloudwatch.Alarm(this, 'DeadLetterQueueAlarm', {
        alarmDescription:
          'tokenwatch: usage messages in the dead-letter queue (poison or repeatedly failing)',
        metric: deadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(5),
          statistic: 'Maximum',
        }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      new cloudwatch.Alarm(this, 'IngestErrorsAlarm', {
        alarmDescription:
          'tokenwatch: the ingest function failed (whole invocations, not poison records)',
        metric: ingestFn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      new cloudwatch.Alarm(this, 'ApiErrorsAlarm', {
        alarmDescription: 'tokenwatch: the API function failed',
        metric: apiFn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    ];
    for (const alarm of alarms) alarm.addAlarmAction(alarmAction);
    addOperationsAlarms(this, {
      queue,
      functions: { Ingest: ingestFn, Api: apiFn },
      table,
      alertTopic: topic,
      alarmAction,
      queueAgeSeconds: Number(ctx('queueAgeAlarmSeconds') ?? 600),
    });

    this.addBedrock(props, { common, logGroup, tableResources, topic, alarmAction });

    new CfnOutput(this, 'QueueUrl', {
      value: queue.queueUrl,
      description: 'USAGE_QUEUE_URL for the SDK',
    });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: deadLetterQueue.queueUrl });
    new CfnOutput(this, 'ApiUrl', {
      value: apiUrl.url,
      description: 'query API and dashboard API',
    });
    new CfnOutput(this, 'TopicArn', {
      value: topic.topicArn,
      description: 'use in rules: {"type":"sns","topicArn":…}',
    });
    new CfnOutput(this, 'OperationsTopicArn', {
      value: opsTopic.topicArn,
      description: 'CloudWatch alarms of the stack (subscribe on-call here)',
    });
    new CfnOutput(this, 'TableName', { value: table.tableName });
    new CfnOutput(this, 'CreateKeysCommand', {
      value: `npx tokenwatch aws create-keys --table ${table.tableName} --region ${this.region}`,
      description: 'creates the first admin and ingest keys and prints them once (never logged)',
    });

    this.table = table;
    this.queue = queue;
    this.topic = topic;
    this.opsTopic = opsTopic;
    this.apiFunction = apiFn;
    this.ingestFunction = ingestFn;
  }

  /** The optional Bedrock functions: invocation logs in (CloudWatch Logs, S3), reconciliation. */
  addBedrock(props, { common, logGroup, tableResources, topic, alarmAction }) {
    const ctx = (name) => props[name] ?? this.node.tryGetContext(name);
    const logGroupName = ctx('bedrockLogGroup');
    const bucketName = ctx('bedrockLogBucket');
    const prefix = ctx('bedrockLogPrefix') ?? 'AWSLogs/';
    const reconcile = ctx('bedrockReconcile') === true || ctx('bedrockReconcile') === 'true';
    const bedrockConfig = ctx('bedrockConfig');
    if (!logGroupName && !bucketName && !reconcile) return;

    const environment = {
      ...common.environment,
      ...(bedrockConfig
        ? {
            TOKENWATCH_BEDROCK:
              typeof bedrockConfig === 'string' ? bedrockConfig : JSON.stringify(bedrockConfig),
          }
        : {}),
    };
    const entry = join(REPO_ROOT, 'packages/server/src/lambda/bedrock-logs-handler.ts');
    const writeTable = new iam.PolicyStatement({
      actions: [
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:Query',
        'dynamodb:BatchGetItem',
      ],
      resources: tableResources,
    });
    const publish = new iam.PolicyStatement({
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
    });
    // CloudWatch Logs and S3 invoke asynchronously: Lambda retries twice, then parks the event
    // here. A retry never counts twice (an event's id is its record's request id).
    const deadLetterQueue = new sqs.Queue(this, 'BedrockLogsDeadLetterQueue', {
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    const logsFunction = (id, handler, description) => {
      const fn = new nodejs.NodejsFunction(this, id, {
        ...common,
        environment,
        entry,
        handler,
        logGroup: logGroup(`${id}Logs`),
        memorySize: 512,
        timeout: Duration.seconds(120),
        retryAttempts: 2,
        deadLetterQueue,
        description,
      });
      fn.addToRolePolicy(writeTable);
      fn.addToRolePolicy(publish);
      new cloudwatch.Alarm(this, `${id}ErrorsAlarm`, {
        alarmDescription: `tokenwatch: ${description} failed`,
        metric: fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }).addAlarmAction(alarmAction);
      new cloudwatch.Alarm(this, `${id}ThrottlesAlarm`, {
        alarmDescription: `tokenwatch: ${description} was throttled`,
        metric: fn.metricThrottles({ period: Duration.minutes(5), statistic: 'Sum' }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }).addAlarmAction(alarmAction);
      return fn;
    };

    if (logGroupName) {
      const fn = logsFunction(
        'BedrockLogsFunction',
        'cloudWatchLogsHandler',
        'tokenwatch: Bedrock invocation logs (CloudWatch Logs subscription) → DynamoDB',
      );
      const source = logs.LogGroup.fromLogGroupName(
        this,
        'BedrockInvocationLogGroup',
        logGroupName,
      );
      new logs.SubscriptionFilter(this, 'BedrockInvocationLogSubscription', {
        logGroup: source,
        destination: new logsDestinations.LambdaDestination(fn),
        // Only invocation records reach the function (not delivery or test messages).
        filterPattern: logs.FilterPattern.stringValue('$.schemaType', '=', 'ModelInvocationLog'),
        filterName: 'tokenwatch-bedrock-usage',
      });
    }
    if (bucketName) {
      const fn = logsFunction(
        'BedrockS3LogsFunction',
        's3Handler',
        'tokenwatch: Bedrock invocation logs (S3 objects) → DynamoDB',
      );
      const bucket = s3.Bucket.fromBucketName(this, 'BedrockInvocationLogBucket', bucketName);
      bucket.grantRead(fn, `${prefix}*`);
      bucket.addEventNotification(s3.EventType.OBJECT_CREATED, new s3n.LambdaDestination(fn), {
        prefix,
        suffix: '.json.gz',
      });
    }
    if (reconcile) {
      const fn = new nodejs.NodejsFunction(this, 'BedrockReconcileFunction', {
        ...common,
        environment,
        entry: join(REPO_ROOT, 'packages/server/src/lambda/reconcile-handler.ts'),
        handler: 'handler',
        logGroup: logGroup('BedrockReconcileLogs'),
        memorySize: 512,
        timeout: Duration.seconds(120),
        description: 'tokenwatch: hourly comparison with CloudWatch AWS/Bedrock token metrics',
      });
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: [
            'dynamodb:GetItem',
            'dynamodb:PutItem',
            'dynamodb:Query',
            'dynamodb:BatchGetItem',
          ],
          resources: tableResources,
        }),
      );
      // GetMetricData and ListMetrics have no resource-level permissions.
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['cloudwatch:GetMetricData', 'cloudwatch:ListMetrics'],
          resources: ['*'],
        }),
      );
      new events.Rule(this, 'BedrockReconcileSchedule', {
        schedule: events.Schedule.rate(Duration.hours(1)),
        targets: [new targets.LambdaFunction(fn)],
        description: 'tokenwatch: reconcile Bedrock usage with CloudWatch every hour',
      });
    }
  }
}

/** `ingestBatchingWindowSeconds`: 1–300 (Lambda's range; a batch size above 10 needs ≥ 1). */
function batchingWindow(value) {
  if (value === undefined) return INGEST_BATCHING_WINDOW_SECONDS;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 300)
    throw new Error(
      `ingestBatchingWindowSeconds must be an integer from 1 to 300, got ${JSON.stringify(value)}`,
    );
  return n;
}

/** `apiReservedConcurrency`: a positive integer, or `off` for none. */
function reservedConcurrency(value) {
  if (value === undefined || value === null) return 10;
  if (value === 'off' || value === false) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(
      `apiReservedConcurrency must be a positive integer or "off", got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/** `apiAuth`: NONE (tokenwatch's API keys) or AWS_IAM (SigV4 in front of them). */
function functionUrlAuth(value) {
  const name = value ?? 'NONE';
  if (name !== 'NONE' && name !== 'AWS_IAM') {
    throw new Error(`apiAuth must be NONE or AWS_IAM, got ${JSON.stringify(value)}`);
  }
  return lambda.FunctionUrlAuthType[name];
}

/** `outboxSchedule`: an EventBridge `rate(…)` or `cron(…)` expression, or `off`. */
function scheduleExpression(value) {
  if (value === undefined || value === null) return 'rate(1 minute)';
  if (value === 'off' || value === false) return undefined;
  if (typeof value !== 'string' || !/^(rate|cron)\(.+\)$/.test(value)) {
    throw new Error(
      `outboxSchedule must be rate(…), cron(…) or "off", got ${JSON.stringify(value)}`,
    );
  }
  return value;
}
