import type { NatsConnection } from '@nats-io/transport-node';
import { checkWithin, HEALTH_CHECK_TIMEOUT_MS } from '../../../health/deadline.js';
import type { Logger } from '../../../logging/logger.js';

/**
 * What this process knows of its NATS connection, from the client's own status events: a
 * dropped connection is known at once (the socket closed), so ingest can refuse at once instead
 * of waiting out a publish timeout, and /readyz can say so. `check()` also pings the server,
 * bounded, to catch a connection that is open but no longer answered.
 */
export class NatsHealth {
  private downSince: number | undefined;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect' || s.type === 'staleConnection') {
          if (this.downSince === undefined) {
            this.downSince = now();
            logger.warn('NATS connection lost; reconnecting', {
              server: 'server' in s ? s.server : undefined,
            });
          }
        } else if (s.type === 'reconnect') {
          if (this.downSince !== undefined)
            logger.info('NATS connection restored', { server: s.server });
          this.downSince = undefined;
        } else if (s.type === 'close') {
          this.closed = true;
        }
      }
    })().catch(() => {});
  }

  /** Why NATS cannot be used right now, from what is already known (no I/O); undefined when it can. */
  get problem(): string | undefined {
    if (this.closed || this.nc.isClosed()) return 'NATS connection closed';
    if (this.downSince !== undefined)
      return `NATS unreachable for ${Math.round((this.now() - this.downSince) / 1000)} s (reconnecting)`;
    return undefined;
  }

  /** `problem`, or a round trip to the server within `timeoutMs`. Never rejects. */
  async check(timeoutMs = HEALTH_CHECK_TIMEOUT_MS): Promise<string | undefined> {
    return this.problem ?? (await checkWithin('NATS', () => this.nc.rtt(), timeoutMs));
  }
}
