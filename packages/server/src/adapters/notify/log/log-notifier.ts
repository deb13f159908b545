import { type Delivery, type Notifier, TokenwatchError } from '@tokenwatch/core';
import type { Logger } from '../../../logging/logger.js';
import { renderAlert } from '../render-alert.js';

/**
 * Log channel: the alert as one structured log line at `warn` (so the default `info` level
 * shows it), message `alert`, with the headline and every field a log pipeline may filter on.
 */
export function createLogNotifier(options: { logger: Logger }): Notifier {
  const { logger } = options;
  return {
    type: 'log',
    async send(delivery: Delivery, signal: AbortSignal): Promise<void> {
      if (delivery.channel.type !== 'log')
        throw new TokenwatchError(
          'internal',
          `log notifier got a ${delivery.channel.type} channel`,
        );
      if (signal.aborted)
        throw new TokenwatchError('unavailable', 'log delivery aborted', { retryable: true });
      const m = delivery.message;
      const r = renderAlert(m);
      logger.warn('alert', {
        event: 'tokenwatch.alert',
        summary: r.headline,
        alertId: m.alertId,
        deliveryId: delivery.id,
        projectId: m.projectId,
        ruleId: m.rule.id,
        ruleName: m.rule.name,
        metric: m.rule.metric,
        scope: m.scope,
        windowStart: m.window.start,
        windowEnd: m.window.end,
        timeZone: m.window.timeZone,
        value: m.value,
        // `level` is the log line's own field (warn): the alert's level goes under another name.
        alertLevel: m.level,
        late: m.late,
        forecast: m.forecast,
        firedAt: m.firedAt,
        ...(m.url === undefined ? {} : { url: m.url }),
      });
    },
  };
}
