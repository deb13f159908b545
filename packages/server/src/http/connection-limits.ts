import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { HttpLimitsConfig } from '../config/config-schema.js';
import type { Metrics } from '../metrics/metrics.js';

/**
 * How often Node checks headers and request timeouts (its default, 30 s, would let a slowloris
 * connection outlive `headersTimeoutMs` by up to half a minute). The check walks the list of
 * connections with a request in progress only, so once a second is cheap.
 */
const TIMEOUT_CHECK_INTERVAL_MS = 1_000;

/** `createServer` options enforcing `http.*` (timeouts are also set on the server itself). */
export function httpServerOptions(limits: HttpLimitsConfig): ServerOptions {
  return {
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_INTERVAL_MS, limits.headersTimeoutMs),
  };
}

/**
 * Applies the connection cap and timeouts of `http.*` to `server`, and wraps `handler` so that a
 * connection with more than `maxPipelinedRequests` requests waiting for their answer is closed.
 *
 * Why closing: Node parses every request in a chunk it has read before it can pause the socket,
 * and queues each answer in memory until the ones before it are written. A client that pipelines
 * thousands of requests and never reads made the server hold thousands of answers per
 * connection (3.2 GB for 200 connections). Counting unanswered requests per socket and closing
 * at the cap bounds that to `maxPipelinedRequests` answers per connection; the requests past the
 * cap do no work at all.
 */
export function applyHttpLimits(
  server: Server,
  limits: HttpLimitsConfig,
  metrics: Metrics,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): void {
  server.maxConnections = limits.maxConnections;
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  // Socket inactivity (no byte either way): reaps connections that never send a request, which
  // the headers timeout does not see (it starts at a request's first byte).
  server.timeout = limits.idleTimeoutMs;
  server.on('drop', () => metrics.httpConnectionsClosed.inc({ reason: 'max_connections' }));
  server.on('timeout', (socket: Socket) => {
    metrics.httpConnectionsClosed.inc({ reason: 'idle' });
    socket.destroy();
  });

  const unanswered = new WeakMap<Socket, number>();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    // Requests parsed from a chunk already read when the connection was closed: no work.
    if (socket.destroyed) return;
    const waiting = unanswered.get(socket) ?? 0;
    if (waiting >= limits.maxPipelinedRequests) {
      metrics.httpConnectionsClosed.inc({ reason: 'pipelining' });
      socket.destroy();
      return;
    }
    unanswered.set(socket, waiting + 1);
    metrics.httpRequestsReceived.inc();
    res.once('close', () => {
      const n = unanswered.get(socket);
      if (n !== undefined) unanswered.set(socket, n - 1);
    });
    handler(req, res);
  });
}
