/**
 * Whether the tokenwatch server can be reached. Requests report what happened; after a failure
 * the watch probes `GET /healthz` with backoff until the server answers, then says it is back
 * (the shell then reconnects the live stream and refreshes the view).
 */

export type ServerState = 'up' | 'down';

/** Exponential backoff with ±25 % jitter, from 500 ms up to `maxMs`. */
export function backoffMs(
  attempt: number,
  maxMs = 15_000,
  random: () => number = Math.random,
): number {
  const base = Math.min(maxMs, 500 * 2 ** Math.max(0, attempt));
  return Math.round(base * (0.75 + 0.5 * random()));
}

export class ServerWatch {
  private current: ServerState = 'up';
  private downSince: number | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(
    private readonly origin: string,
    private readonly onChange: (state: ServerState, downSinceMs: number | undefined) => void,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): ServerState {
    return this.current;
  }

  get downSinceMs(): number | undefined {
    return this.downSince;
  }

  /** A request could not reach the server (network error, or 502–504 while it restarts). */
  reportFailure(): void {
    if (this.stopped || this.current === 'down') return;
    this.current = 'down';
    this.downSince = this.now();
    this.onChange('down', this.downSince);
    this.probe(0);
  }

  /** A request got an answer from the server. */
  reportSuccess(): void {
    if (this.stopped || this.current === 'up') return;
    clearTimeout(this.timer);
    this.current = 'up';
    this.downSince = undefined;
    this.onChange('up', undefined);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private probe(attempt: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      try {
        const res = await fetch(`${this.origin}/healthz`, { cache: 'no-store' });
        if (res.ok) {
          this.reportSuccess();
          return;
        }
      } catch {
        // still unreachable
      }
      if (this.current === 'down' && !this.stopped) this.probe(attempt + 1);
    }, backoffMs(attempt));
  }
}
