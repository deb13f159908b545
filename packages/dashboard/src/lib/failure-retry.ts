import { backoffMs } from './connection.js';
import { type Clock, realClock } from './refresh-scheduler.js';

/**
 * Asks for another refresh, after a backoff, when one met a passing failure (the server busy or
 * briefly away: a 429, a 5xx, a network error). Without it a panel that failed its load kept
 * showing the error until the next live notice or the page's 60 s refresh: on a quiet project,
 * a minute of "error" for a 503 that lasted a second. The wait starts near 2 s and doubles up to
 * `maxMs` while refreshes keep failing; a refresh without such a failure resets it.
 */
export class FailureRetry {
  private attempt = 0;
  private timer: unknown;
  private stopped = false;

  constructor(
    private readonly request: () => void,
    private readonly maxMs = 30_000,
    private readonly clock: Clock = realClock,
    private readonly random: () => number = Math.random,
  ) {}

  /** A refresh ended: whether it met a passing failure. */
  settled(failed: boolean): void {
    if (this.stopped) return;
    if (!failed) {
      this.attempt = 0;
      this.cancel();
      return;
    }
    // One retry waits at a time: a failure seen while it waits is what it will retry.
    if (this.timer !== undefined) return;
    const wait = backoffMs(this.attempt + 2, this.maxMs, this.random);
    this.attempt++;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.request();
    }, wait);
  }

  /** Whether a retry is waiting. */
  get waiting(): boolean {
    return this.timer !== undefined;
  }

  stop(): void {
    this.stopped = true;
    this.cancel();
  }

  private cancel(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
