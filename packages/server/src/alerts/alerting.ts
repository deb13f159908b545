import type { ApplyResult, NewAlert, Store } from '@tokenwatch/core';
import { createNotifiers } from '../adapters/notify/notifier-registry.js';
import type { Config } from '../config/config-schema.js';
import type { ConfigRule } from '../config/load-config.js';
import type { LiveFeed } from '../live/live-feed.js';
import type { Logger } from '../logging/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { BudgetEnforcer } from './budget-enforcer.js';
import { DEFAULT_DISPATCHER_OPTIONS, Dispatcher, type DispatcherOptions } from './dispatcher.js';
import { RuleRegistry } from './rule-registry.js';
import { RuleService } from './rule-service.js';

export interface Alerting {
  registry: RuleRegistry;
  enforcer: BudgetEnforcer;
  rules: RuleService;
  dispatcher: Dispatcher;
  /** After each commit: budget state, alert metrics, dispatcher wake-up, live notices. */
  onCommitted(result: ApplyResult, nowMs: number): void;
  /** Alerts fired outside a batch (a rule save, a reconciliation): metrics, dispatch, live. */
  onAlerts(alerts: readonly NewAlert[], nowMs: number): void;
  stop(): Promise<void>;
}

function smtpConfig(smtp: NonNullable<Config['alerts']['smtp']>) {
  return {
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    from: smtp.from,
    ...(smtp.user !== undefined ? { user: smtp.user } : {}),
    ...(smtp.pass !== undefined ? { pass: smtp.pass } : {}),
  };
}

/** The dispatcher's options from the config (`serve` and `worker` alike). */
export function dispatcherOptions(config: Config): DispatcherOptions {
  return {
    ...DEFAULT_DISPATCHER_OPTIONS,
    sendTimeoutMs: config.alerts.sendTimeoutMs,
    leaseMs: config.alerts.deliveryLeaseMs,
    maxAgeMs: config.alerts.maxDeliveryAgeHours * 3_600_000,
  };
}

/**
 * The outbox dispatcher with the channels the config allows (webhook, Slack, email, log): the
 * same for `serve` and for a scale-out `worker`.
 */
export function createDispatcher(deps: {
  config: Config;
  store: Store;
  logger: Logger;
  metrics: Metrics;
  now: () => number;
}): Dispatcher {
  const { config, store, logger, metrics, now } = deps;
  const notifiers = createNotifiers({
    logger,
    policy: { allowPrivateNetworks: config.alerts.allowPrivateNetworks },
    httpTimeoutMs: config.alerts.sendTimeoutMs,
    ...(config.alerts.smtp ? { email: smtpConfig(config.alerts.smtp) } : {}),
  });
  return new Dispatcher(store, notifiers, metrics, logger, dispatcherOptions(config), now);
}

/**
 * Wires the alerting side of a server: rules (synced from the config file), their registry for
 * the processor, the in-memory budget state, and the outbox dispatcher with its channels.
 */
export async function createAlerting(deps: {
  config: Config;
  configRules: readonly ConfigRule[];
  store: Store;
  logger: Logger;
  metrics: Metrics;
  /** Where alerts are announced: this process's LiveFeed, or in scale-out every serve's (NATS). */
  live: Pick<LiveFeed, 'publish'>;
  now: () => number;
}): Promise<Alerting> {
  const { config, store, logger, metrics, live, now } = deps;
  const policy = { allowPrivateNetworks: config.alerts.allowPrivateNetworks };
  const registry = new RuleRegistry(store, logger);
  const enforcer = new BudgetEnforcer(
    store,
    registry,
    { failMode: config.alerts.enforcementFailMode, cacheMs: config.alerts.checkCacheMs },
    logger,
    now,
  );
  registry.onChange(() => enforcer.invalidate());
  const dispatcher = createDispatcher({ config, store, logger, metrics, now });
  const fired = (alerts: readonly NewAlert[], nowMs: number) => {
    if (alerts.length === 0) return;
    metrics.alertsFired.inc({}, alerts.length);
    dispatcher.wake();
    for (const alert of alerts) {
      live.publish(alert.projectId, { type: 'alert', atMs: nowMs, alert: { ...alert.message } });
      logger.info('alert fired', {
        alertId: alert.alertId,
        ruleId: alert.ruleId,
        level: alert.levelIndex,
        late: alert.late,
      });
    }
  };
  const rules = new RuleService(store, policy, registry, enforcer, now, (alerts) =>
    fired(alerts, now()),
  );
  await rules.syncConfigRules(deps.configRules);
  await registry.load();
  registry.start();
  dispatcher.start();
  return {
    registry,
    enforcer,
    rules,
    dispatcher,
    onCommitted(result, nowMs) {
      if (result.enforcedCounters.length > 0) enforcer.apply(result.enforcedCounters);
      if (result.leasedDeliveries) dispatcher.sendLeased(result.leasedDeliveries);
      fired(result.alerts, nowMs);
    },
    onAlerts: fired,
    async stop() {
      registry.stop();
      await dispatcher.stop();
    },
  };
}
