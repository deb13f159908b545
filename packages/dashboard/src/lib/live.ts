import { backoffMs } from './connection.js';

/**
 * The live stream: `GET /v1/live` server-sent events. EventSource cannot send headers, so the key
 * goes in `?key=` (the server accepts that on this route only).
 *
 * EventSource's own retry gives up for good once the server answers with an error status — which
 * `/v1/live` does (503) while the server shuts down for a restart. So every error closes the
 * source and this class reconnects itself with backoff, for as long as the page is open. Only a
 * server without the route (404) makes it stop: the caller then polls.
 */

export interface UsageNotice {
  type: 'usage';
  atMs: number;
  events: number;
  totalTokens: number;
  costNanoUsd: string;
  users: string[];
  apps: string[];
  models: string[];
}

export interface AlertNotice {
  type: 'alert';
  atMs: number;
  alert: Record<string, unknown>;
}

export type LiveStatus = 'connecting' | 'live' | 'reconnecting' | 'offline';

export interface LiveHandlers {
  onUsage(n: UsageNotice): void;
  onAlert(n: AlertNotice): void;
  onStatus(s: LiveStatus): void;
}

export function liveUrl(origin: string, key: string): string {
  return `${origin}/v1/live?key=${encodeURIComponent(key)}`;
}

/** After this many failures in a row, ask the route itself whether it exists. */
const PROBE_AFTER_FAILURES = 3;

export class LiveStream {
  private source: EventSource | undefined;
  private failures = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = true;

  constructor(
    private readonly url: string,
    private readonly handlers: LiveHandlers,
  ) {}

  start(): void {
    this.stopped = false;
    this.open(this.failures === 0 ? 'connecting' : 'reconnecting');
  }

  /** Reconnects at once (e.g. the server is reachable again), unless the stream is up. */
  reconnectNow(): void {
    if (this.stopped || this.source) return;
    clearTimeout(this.timer);
    this.open('reconnecting');
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.close();
  }

  private close(): void {
    this.source?.close();
    this.source = undefined;
  }

  private open(status: LiveStatus): void {
    this.close();
    this.handlers.onStatus(status);
    const source = new EventSource(this.url);
    this.source = source;
    source.onopen = () => {
      this.failures = 0;
      this.handlers.onStatus('live');
    };
    source.onerror = () => {
      if (this.source !== source) return;
      this.close();
      this.failures++;
      this.handlers.onStatus('reconnecting');
      void this.retry();
    };
    source.addEventListener('usage', (ev) => {
      const n = parse<UsageNotice>((ev as MessageEvent<string>).data);
      if (n) this.handlers.onUsage(n);
    });
    source.addEventListener('alert', (ev) => {
      const n = parse<AlertNotice>((ev as MessageEvent<string>).data);
      if (n) this.handlers.onAlert(n);
    });
  }

  private async retry(): Promise<void> {
    if (this.failures >= PROBE_AFTER_FAILURES && (await this.routeMissing())) {
      this.stopped = true;
      this.handlers.onStatus('offline');
      return;
    }
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => {
        if (!this.stopped && !this.source) this.open('reconnecting');
      },
      backoffMs(this.failures - 1),
    );
  }

  /** True when the server answers the stream's URL with 404 or 405 (an older server). */
  private async routeMissing(): Promise<boolean> {
    const abort = new AbortController();
    try {
      const res = await fetch(this.url, { signal: abort.signal, cache: 'no-store' });
      return res.status === 404 || res.status === 405;
    } catch {
      return false;
    } finally {
      abort.abort();
    }
  }
}

function parse<T>(data: string): T | undefined {
  try {
    return JSON.parse(data) as T;
  } catch {
    return undefined;
  }
}
