import { DynamoDbReconciliationStore } from '../adapters/reconciliation/dynamodb-reconciliation-store.js';
import type { ReconcileOutcome } from '../bedrock/bedrock-reconciler.js';
import { cloudWatchReconciler, lookbackRange } from '../bedrock/reconcile-runner.js';
import { createLambdaRuntime, type LambdaRuntime, loadLambdaConfig } from './lambda-runtime.js';

/** The reconciliation results table of a runtime: the stack's one DynamoDB table. */
export function reconciliationStoreOf(rt: LambdaRuntime): DynamoDbReconciliationStore {
  return new DynamoDbReconciliationStore({
    tableName: rt.config.tableName,
    region: rt.config.region,
    endpoint: rt.config.dynamoEndpoint,
    credentials: rt.config.localCredentials,
  });
}

/**
 * The scheduled function (EventBridge, hourly): compares the last `lookbackHours` complete hours
 * of the function's region with CloudWatch's AWS/Bedrock token metrics and stores the result.
 * A failure throws (the schedule runs it again next hour; the lookback covers the missed hours).
 */
export function createReconcileHandler(rt: LambdaRuntime): () => Promise<ReconcileOutcome> {
  const settings = rt.config.bedrock.reconcile;
  const results = reconciliationStoreOf(rt);
  return async () => {
    const region = settings.region ?? rt.config.region;
    if (region === undefined)
      throw new Error('no region: set AWS_REGION or bedrock.reconcile.region');
    const reconciler = cloudWatchReconciler(rt.store, results, {
      endpoint: settings.endpoint ?? rt.config.cloudWatchEndpoint,
      credentials: rt.config.localCredentials,
      now: rt.now,
    });
    const outcome = await reconciler.run({
      projectId: rt.config.projectId,
      regions: [region],
      ...lookbackRange(rt.now(), settings.lookbackHours),
      settleMs: settings.settleMinutes * 60_000,
    });
    rt.logger.info('bedrock reconciliation', {
      region,
      rows: outcome.rows.length,
      series: outcome.series,
      uncapturedTokens: outcome.rows
        .filter((r) => r.settled && r.difference > 0)
        .reduce((s, r) => s + r.difference, 0),
      alerts: outcome.alerts.length,
    });
    if (outcome.alerts.length > 0) await rt.dispatcher.runOnce();
    return outcome;
  };
}

let runtime: Promise<LambdaRuntime> | undefined;
let handle: (() => Promise<ReconcileOutcome>) | undefined;
/** Entry point (`reconcile-handler.handler`). */
export async function handler(): Promise<void> {
  runtime ??= createLambdaRuntime(loadLambdaConfig(process.env));
  handle ??= createReconcileHandler(await runtime);
  await handle();
}
