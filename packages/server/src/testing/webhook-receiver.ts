import {
  createServer,
  type IncomingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A real webhook receiver for end-to-end alert tests (and the alerts benchmark): `node:http` on
 * 127.0.0.1, recording every request, deduplicating by `webhook-id` the way a receiver following
 * the Standard Webhooks spec would. It can be switched between answering, failing (any status),
 * hanging (reads the request, never answers) and being down (the listener closed: connection
 * refused), then back on the same port. No dev dependencies, so the benchmark can use it.
 */

export interface WebhookHit {
  /** `webhook-id` header (the delivery id). */
  id: string;
  timestamp: string | undefined;
  signature: string | undefined;
  headers: IncomingHttpHeaders;
  path: string;
  body: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: Record<string, unknown> | undefined;
  /** `Date.now()` and `performance.now()` when the whole body had arrived. */
  receivedAtMs: number;
  receivedAtPerf: number;
  /** What the receiver answered (0 for a request it held open). */
  status: number;
  /** For a held request (mode `hang`): `performance.now()` when the sender gave up (closed it). */
  closedAtPerf?: number;
}

export type ReceiverMode =
  /** `delayMs`: answer after that long, as a slow endpoint does. */
  | { kind: 'ok'; status?: number; delayMs?: number }
  | { kind: 'fail'; status: number; headers?: Record<string, string> }
  | { kind: 'hang' }
  | { kind: 'redirect'; location: string; status?: number };

export interface WebhookReceiver {
  port: number;
  /** `http://127.0.0.1:<port><path>` */
  url(path?: string): string;
  /** Every request that arrived, in order, whatever the answer. */
  readonly hits: WebhookHit[];
  /** The receiver's own dedupe: the first 2xx-answered hit of each `webhook-id`. */
  readonly accepted: Map<string, WebhookHit>;
  /** Hits answered 2xx whose `webhook-id` had already been accepted (dropped as repeats). */
  readonly repeats: WebhookHit[];
  /** Requests held open right now (mode `hang`). */
  hangingCount(): number;
  setMode(mode: ReceiverMode): void;
  /** Closes the listener and every connection: the port refuses connections until `up()`. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  /** Resolves when `predicate()` holds (checked on every hit and every 50 ms). */
  waitFor(predicate: () => boolean, timeoutMs: number, what?: string): Promise<void>;
  /** Answers every held request with 503 and closes. */
  close(): Promise<void>;
  /** Called on every hit after it is recorded (for latency measurements). */
  onHit?: (hit: WebhookHit) => void;
}

export async function startWebhookReceiver(
  mode: ReceiverMode = { kind: 'ok' },
): Promise<WebhookReceiver> {
  let current = mode;
  const hits: WebhookHit[] = [];
  const accepted = new Map<string, WebhookHit>();
  const repeats: WebhookHit[] = [];
  const held = new Set<ServerResponse>();
  const sockets = new Set<Socket>();
  const waiters = new Set<() => void>();
  let server: Server | undefined;
  let port = 0;

  const handler = (
    req: import('node:http').IncomingMessage,
    res: ServerResponse,
    self: WebhookReceiver,
  ) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: Record<string, unknown> | undefined;
      try {
        json = JSON.parse(body) as Record<string, unknown>;
      } catch {
        json = undefined;
      }
      const header = (name: string) => {
        const v = req.headers[name];
        return Array.isArray(v) ? v[0] : v;
      };
      const hit: WebhookHit = {
        id: header('webhook-id') ?? '',
        timestamp: header('webhook-timestamp'),
        signature: header('webhook-signature'),
        headers: req.headers,
        path: req.url ?? '',
        body,
        json,
        receivedAtMs: Date.now(),
        receivedAtPerf: performance.now(),
        status: 0,
      };
      hits.push(hit);
      const m = current;
      if (m.kind === 'hang') {
        held.add(res);
        res.on('close', () => {
          held.delete(res);
          hit.closedAtPerf = performance.now();
        });
      } else if (m.kind === 'fail') {
        hit.status = m.status;
        res.writeHead(m.status, m.headers ?? {});
        res.end('failing on purpose');
      } else if (m.kind === 'redirect') {
        hit.status = m.status ?? 302;
        res.writeHead(hit.status, { location: m.location });
        res.end();
      } else {
        const answer = () => {
          if (res.headersSent || res.destroyed) return;
          hit.status = m.status ?? 204;
          if (accepted.has(hit.id)) repeats.push(hit);
          else accepted.set(hit.id, hit);
          res.writeHead(hit.status);
          res.end();
        };
        if (m.delayMs) {
          setTimeout(() => {
            answer();
            for (const w of [...waiters]) w();
          }, m.delayMs);
        } else answer();
      }
      self.onHit?.(hit);
      for (const w of [...waiters]) w();
    });
  };

  const listen = async (self: WebhookReceiver) => {
    const s = createServer({ keepAliveTimeout: 5_000 }, (req, res) => handler(req, res, self));
    s.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        s.off('error', reject);
        resolve();
      });
    });
    port = (s.address() as AddressInfo).port;
    server = s;
  };

  const closeListener = async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    for (const res of held) {
      if (!res.headersSent) {
        res.writeHead(503);
        res.end();
      }
    }
    held.clear();
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
  };

  const self: WebhookReceiver = {
    get port() {
      return port;
    },
    url: (path = '/hook') => `http://127.0.0.1:${port}${path}`,
    hits,
    accepted,
    repeats,
    hangingCount: () => held.size,
    setMode(next) {
      current = next;
    },
    down: closeListener,
    up: () => listen(self),
    waitFor(predicate, timeoutMs, what = 'condition') {
      if (predicate()) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!predicate()) return;
          cleanup();
          resolve();
        };
        const interval = setInterval(check, 50);
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(
              `receiver :${port}: ${what} did not happen within ${timeoutMs} ms (${hits.length} hits, ${accepted.size} accepted)`,
            ),
          );
        }, timeoutMs);
        const cleanup = () => {
          clearInterval(interval);
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
      });
    },
    close: closeListener,
  };
  await listen(self);
  return self;
}
