/**
 * The live stream: `GET /v1/live` server-sent events. EventSource cannot send headers, so the key
 * goes in `?key=` (the server accepts that on this route only). EventSource reconnects by itself;
 * when the route is missing or keeps failing, the caller falls back to polling.
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

export class LiveStream {
  private source: EventSource | undefined;
  private failures = 0;

  constructor(
    private readonly url: string,
    private readonly handlers: LiveHandlers,
  ) {}

  start(): void {
    this.stop();
    this.handlers.onStatus('connecting');
    const source = new EventSource(this.url);
    this.source = source;
    source.onopen = () => {
      this.failures = 0;
      this.handlers.onStatus('live');
    };
    source.onerror = () => {
      this.failures++;
      // CLOSED: the server answered with an error status (e.g. 404 on an older server); give up.
      if (source.readyState === EventSource.CLOSED || this.failures > 20) {
        this.stop();
        this.handlers.onStatus('offline');
      } else {
        this.handlers.onStatus('reconnecting');
      }
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

  stop(): void {
    this.source?.close();
    this.source = undefined;
  }
}

function parse<T>(data: string): T | undefined {
  try {
    return JSON.parse(data) as T;
  } catch {
    return undefined;
  }
}
