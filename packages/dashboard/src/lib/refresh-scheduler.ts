export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The browser's clock and timers. */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/**
 * Coalesces refresh requests (one per live notice, possibly hundreds a second) into refreshes
 * that never overlap and start at least `max(minGapMs, factor × last duration)` apart, so a busy
 * stream or a slow query cannot pile load on the server. A request during a refresh runs once
 * more after it (trailing edge), so the last change is always shown.
 */
export class RefreshScheduler {
  private running = false;
  private pending = false;
  private timer: unknown;
  private lastStart = Number.NEGATIVE_INFINITY;
  private lastDuration = 0;
  private stopped = false;

  constructor(
    private readonly run: () => Promise<void>,
    private readonly opts: { minGapMs: number; factor: number } = { minGapMs: 1000, factor: 3 },
    private readonly clock: Clock = realClock,
  ) {}

  request(): void {
    if (this.stopped) return;
    this.pending = true;
    this.pump();
  }

  /** Nothing running, requested or waiting. */
  isIdle(): boolean {
    return !this.running && !this.pending && this.timer === undefined;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private pump(): void {
    if (this.running || !this.pending || this.timer !== undefined || this.stopped) return;
    const gap = Math.max(this.opts.minGapMs, this.opts.factor * this.lastDuration);
    const wait = this.lastStart + gap - this.clock.now();
    if (wait > 0) {
      this.timer = this.clock.setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, wait);
      return;
    }
    this.pending = false;
    void this.execute();
  }

  private async execute(): Promise<void> {
    this.running = true;
    this.lastStart = this.clock.now();
    try {
      await this.run();
    } catch {
      // the view shows its own errors
    } finally {
      this.lastDuration = this.clock.now() - this.lastStart;
      this.running = false;
      this.pump();
    }
  }
}
