import type { ReconciliationStore, Store } from '@tokenwatch/core';
import { BedrockReconciler } from './bedrock-reconciler.js';

/**
 * A reconciler reading CloudWatch with the AWS SDK (endpoint overridable). The SDK's CloudWatch
 * client is imported at the first read (≈ 0.2 s of CPU), so a server that never reconciles
 * never loads it.
 */
export function cloudWatchReconciler(
  usage: Pick<Store, 'queryUsage' | 'listRules' | 'fireAlerts'>,
  results: ReconciliationStore,
  options: {
    endpoint?: string | undefined;
    credentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
    now?: () => number;
  } = {},
): BedrockReconciler {
  return new BedrockReconciler(
    usage,
    results,
    async (region, fromMs, toMs) => {
      const { readBedrockMetrics } = await import('./cloudwatch-bedrock-metrics.js');
      return readBedrockMetrics(
        { region, endpoint: options.endpoint, credentials: options.credentials },
        fromMs,
        toMs,
      );
    },
    options.now,
  );
}

const HOUR_MS = 3_600_000;

/** The hours a periodic run compares: the last `lookbackHours` complete hours. */
export function lookbackRange(
  nowMs: number,
  lookbackHours: number,
): { fromMs: number; toMs: number } {
  const toMs = Math.floor(nowMs / HOUR_MS) * HOUR_MS;
  return { fromMs: toMs - lookbackHours * HOUR_MS, toMs };
}
