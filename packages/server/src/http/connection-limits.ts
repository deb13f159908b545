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

/**
 * Node's HTTP parser parses every request of a chunk it has read (up to 64 KiB: ~1,800 pipelined
 * `GET /metrics`), even once the connection is closed, and builds a request and a response
 * object for each. Fed in slices, parsing stops at the first slice boundary after the close.
 */
const PARSE_SLICE_BYTES = 2_048;

/** Internal to Node's HTTP server: set while it waits for a slow reader's 'drain'. */
interface HttpServerSocket extends Socket {
  _paused?: boolean;
}

/**
 * Replaces the HTTP server's data listener on `socket` by one that hands it each chunk in
 * slices of `PARSE_SLICE_BYTES` and stops when the socket is closed. When the server pauses the
 * socket mid-chunk (its answers are not being read), the rest goes back to the socket's buffer
 * (`unshift`) and is parsed after the server resumes it.
 */
function parseInSlices(socket: HttpServerSocket): void {
  const parsers = socket.listeners('data') as Array<(chunk: Buffer) => void>;
  if (parsers.length === 0) return;
  socket.removeAllListeners('data');
  socket.on('data', (chunk: Buffer) => {
    for (let at = 0; at < chunk.length; at += PARSE_SLICE_BYTES) {
      if (socket.destroyed) return;
      if (socket._paused) {
        socket.unshift(chunk.subarray(at));
        return;
      }
      const slice =
        chunk.length <= PARSE_SLICE_BYTES ? chunk : chunk.subarray(at, at + PARSE_SLICE_BYTES);
      for (const parse of parsers) parse.call(socket, slice);
    }
  });
}

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
  server.on('connection', parseInSlices);
  server.on('drop', () => metrics.httpConnectionsClosed.inc({ reason: 'max_connections' }));
  server.on('timeout', (socket: Socket) => {
    metrics.httpConnectionsClosed.inc({ reason: 'idle' });
    socket.destroy();
  });

  const unanswered = new WeakMap<Socket, number>();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    metrics.httpRequestsReceived.inc();
    // Requests parsed from a slice already read when the connection was closed: no work.
    if (socket.destroyed) return;
    const waiting = unanswered.get(socket) ?? 0;
    if (waiting >= limits.maxPipelinedRequests) {
      metrics.httpConnectionsClosed.inc({ reason: 'pipelining' });
      socket.destroy();
      return;
    }
    unanswered.set(socket, waiting + 1);
    res.once('close', () => {
      const n = unanswered.get(socket);
      if (n !== undefined) unanswered.set(socket, n - 1);
    });
    handler(req, res);
  });
}
