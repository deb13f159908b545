import type { NewAlert, Store } from '@tokenwatch/core';
import { openReconciliationStore } from '../adapters/reconciliation/open-reconciliation-store.js';
import type { Config } from '../config/config-schema.js';
import type { Logger } from '../logging/logger.js';
import { cloudWatchReconciler, lookbackRange } from './reconcile-runner.js';

export interface ReconcileJob {
  stop(): Promise<void>;
}

/**
 * The periodic reconciliation of `serve` or a `worker` when `bedrock.reconcile.enabled`: every
 * `everyMinutes`, the last `lookbackHours` complete hours are compared again (so late events and
 * late metrics settle), and the result replaces the stored one. Several processes running it
 * write the same rows: harmless. A failed run is logged and retried at the next tick.
 */
export function startReconcileJob(
  config: Config,
  store: Store,
  logger: Logger,
  now: () => number = Date.now,
  /** A run fired alerts (`uncapturedTokens` rules): they are in the outbox, to be sent. */
  onAlerts: (alerts: readonly NewAlert[]) => void = () => {},
): ReconcileJob | undefined {
  const settings = config.bedrock.reconcile;
  if (!settings.enabled || settings.region === undefined) return undefined;
  const region = settings.region;
  let running: Promise<void> | undefined;
  let stopped = false;
  const resultsPromise = openReconciliationStore(config);
  const tick = () => {
    if (running || stopped) return;
    running = (async () => {
      try {
        const results = await resultsPromise;
        const reconciler = cloudWatchReconciler(store, results, {
          endpoint: settings.endpoint,
          now,
        });
        const { fromMs, toMs } = lookbackRange(now(), settings.lookbackHours);
        const outcome = await reconciler.run({
          projectId: settings.project,
          regions: [region],
          fromMs,
          toMs,
          settleMs: settings.settleMinutes * 60_000,
        });
        const uncaptured = outcome.rows
          .filter((r) => r.settled && r.difference > 0)
          .reduce((s, r) => s + r.difference, 0);
        logger.info('bedrock reconciliation', {
          region,
          rows: outcome.rows.length,
          series: outcome.series,
          uncapturedTokens: uncaptured,
          alerts: outcome.alerts.length,
        });
        if (outcome.alerts.length > 0) onAlerts(outcome.alerts);
      } catch (err) {
        logger.warn('bedrock reconciliation failed; retrying at the next run', {
          error: err as Error,
        });
      } finally {
        running = undefined;
      }
    })();
  };
  const first = setTimeout(tick, 10_000);
  first.unref();
  const timer = setInterval(tick, settings.everyMinutes * 60_000);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearTimeout(first);
      clearInterval(timer);
      await running;
      await (await resultsPromise.catch(() => undefined))?.close();
    },
  };
}
