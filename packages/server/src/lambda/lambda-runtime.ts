import type { Notifier } from '@tokenwatch/core';
import { createNotifiers } from '../adapters/notify/notifier-registry.js';
import { DynamoDbStore } from '../adapters/store/dynamodb/dynamodb-store.js';
import { DEFAULT_DISPATCHER_OPTIONS, Dispatcher } from '../alerts/dispatcher.js';
import { RuleRegistry } from '../alerts/rule-registry.js';
import { type BedrockConfig, bedrockConfigSchema } from '../config/bedrock-config-schema.js';
import { ProjectCatalogs } from '../ingest/project-catalogs.js';
import { createLogger, type Logger, type LogLevel } from '../logging/logger.js';
import { Metrics } from '../metrics/metrics.js';

/** What the AWS functions are configured with (environment variables set by the CDK stack). */
export interface LambdaConfig {
  /** TOKENWATCH_TABLE: the DynamoDB table. */
  tableName: string;
  /** TOKENWATCH_DASHBOARD_DIR: the built dashboard the API function serves (see http-handler.ts). */
  dashboardDir?: string | undefined;
  /** TOKENWATCH_PROJECT_ID: the project SQS messages count in (the queue's IAM policy is its auth). */
  projectId: string;
  /** AWS_REGION (set by Lambda); us-east-1 for local endpoints. */
  region: string | undefined;
  /** TOKENWATCH_DYNAMODB_ENDPOINT: local endpoint (dynalite) instead of AWS. */
  dynamoEndpoint: string | undefined;
  /** TOKENWATCH_SNS_ENDPOINT: local endpoint instead of AWS. */
  snsEndpoint: string | undefined;
  /** TOKENWATCH_ALLOW_PRIVATE_NETWORKS=true: webhooks to private addresses (tests only). */
  allowPrivateNetworks: boolean;
  logLevel: LogLevel;
  /** Per-attempt timeout of a channel send; keep it well below the function's timeout. */
  sendTimeoutMs: number;
  /** Static credentials for local endpoints only (AWS uses the function's role). */
  localCredentials: { accessKeyId: string; secretAccessKey: string } | undefined;
  /**
   * TOKENWATCH_BEDROCK (JSON, the `bedrock` section of tokenwatch.json): invocation-log mapping
   * and reconciliation settings for the Bedrock functions.
   */
  bedrock: BedrockConfig;
  /** TOKENWATCH_S3_ENDPOINT, TOKENWATCH_CLOUDWATCH_ENDPOINT: local endpoints instead of AWS. */
  s3Endpoint: string | undefined;
  cloudWatchEndpoint: string | undefined;
}

function parseBedrockEnv(text: string | undefined): BedrockConfig {
  let raw: unknown = {};
  if (text !== undefined && text.trim() !== '') {
    try {
      raw = JSON.parse(text);
    } catch {
      throw new Error('TOKENWATCH_BEDROCK must be JSON (the "bedrock" section of tokenwatch.json)');
    }
  }
  const parsed = bedrockConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(
      `TOKENWATCH_BEDROCK: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

export function loadLambdaConfig(env: Record<string, string | undefined>): LambdaConfig {
  const tableName = env.TOKENWATCH_TABLE;
  if (!tableName) throw new Error('TOKENWATCH_TABLE must name the DynamoDB table');
  const level = (env.TOKENWATCH_LOG_LEVEL ?? 'info') as LogLevel;
  const local =
    env.TOKENWATCH_DYNAMODB_ENDPOINT !== undefined ||
    env.TOKENWATCH_SNS_ENDPOINT !== undefined ||
    env.TOKENWATCH_S3_ENDPOINT !== undefined ||
    env.TOKENWATCH_CLOUDWATCH_ENDPOINT !== undefined;
  return {
    tableName,
    projectId: env.TOKENWATCH_PROJECT_ID || 'default',
    dashboardDir: env.TOKENWATCH_DASHBOARD_DIR || undefined,
    region: env.AWS_REGION || (local ? 'us-east-1' : undefined),
    dynamoEndpoint: env.TOKENWATCH_DYNAMODB_ENDPOINT || undefined,
    snsEndpoint: env.TOKENWATCH_SNS_ENDPOINT || undefined,
    allowPrivateNetworks: env.TOKENWATCH_ALLOW_PRIVATE_NETWORKS === 'true',
    logLevel: ['debug', 'info', 'warn', 'error', 'silent'].includes(level) ? level : 'info',
    sendTimeoutMs: Number(env.TOKENWATCH_SEND_TIMEOUT_MS) || 5_000,
    localCredentials:
      local && env.AWS_ACCESS_KEY_ID === undefined
        ? { accessKeyId: 'local', secretAccessKey: 'local' }
        : undefined,
    bedrock: parseBedrockEnv(env.TOKENWATCH_BEDROCK),
    s3Endpoint: env.TOKENWATCH_S3_ENDPOINT || undefined,
    cloudWatchEndpoint: env.TOKENWATCH_CLOUDWATCH_ENDPOINT || undefined,
  };
}

/** Everything an invocation uses; built once per Lambda container and reused while warm. */
export interface LambdaRuntime {
  config: LambdaConfig;
  store: DynamoDbStore;
  catalogs: ProjectCatalogs;
  registry: RuleRegistry;
  dispatcher: Dispatcher;
  notifiers: Map<string, Notifier>;
  metrics: Metrics;
  logger: Logger;
  now: () => number;
  close(): Promise<void>;
}

export async function createLambdaRuntime(
  config: LambdaConfig,
  options: { now?: () => number; logger?: Logger } = {},
): Promise<LambdaRuntime> {
  const now = options.now ?? Date.now;
  const logger = options.logger ?? createLogger(config.logLevel, { fn: 'tokenwatch' });
  const store = new DynamoDbStore({
    tableName: config.tableName,
    region: config.region,
    endpoint: config.dynamoEndpoint,
    credentials: config.localCredentials,
  });
  // Loaded only here: the server never pulls in the SNS client unless it runs on AWS.
  const { createSnsNotifier } = await import('../adapters/notify/sns/sns-notifier.js');
  const sns = createSnsNotifier({
    endpoint: config.snsEndpoint,
    credentials: config.localCredentials,
  });
  const notifiers = createNotifiers({
    logger,
    policy: { allowPrivateNetworks: config.allowPrivateNetworks },
    httpTimeoutMs: config.sendTimeoutMs,
    sns,
  });
  const metrics = new Metrics();
  const dispatcher = new Dispatcher(
    store,
    notifiers,
    metrics,
    logger,
    {
      ...DEFAULT_DISPATCHER_OPTIONS,
      sendTimeoutMs: config.sendTimeoutMs,
      // Every delivery a batch made due is sent in that invocation.
      perDestinationConcurrency: DEFAULT_DISPATCHER_OPTIONS.batchSize,
    },
    now,
  );
  return {
    config,
    store,
    catalogs: new ProjectCatalogs(store, 30_000, now),
    registry: new RuleRegistry(store, logger),
    dispatcher,
    notifiers,
    metrics,
    logger,
    now,
    async close() {
      sns.close();
      await store.close();
    },
  };
}
