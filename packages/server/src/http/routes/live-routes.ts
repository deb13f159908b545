import { TokenwatchError } from '@tokenwatch/core';
import type { LiveMessage } from '../../live/live-feed.js';
import type { AppDeps, Route } from '../app.js';

/** A comment line this often keeps proxies and browsers from timing the stream out. */
export const HEARTBEAT_MS = 15_000;
/** A client that stops reading is dropped once this much is waiting for it. */
const MAX_BUFFERED_BYTES = 1024 * 1024;
/** How often an open stream checks whether the server is shutting down. */
const SHUTDOWN_POLL_MS = 500;

/**
 * `GET /v1/live`: server-sent events for the dashboard. One `usage` event per committed flush
 * that touched the key's project (`{type, atMs, events, totalTokens, costNanoUsd, users, apps,
 * models}`), `alert` events once alerts exist, a `: ping` comment every 15 s.
 *
 * A browser's EventSource cannot send headers, so this route ONLY also accepts the key as
 * `?key=`: the read-only stream is worth the key appearing in a URL (it is never logged). A read or
 * admin key is required; ingest keys are refused like on every read route.
 */
export function liveRoutes(deps: AppDeps, options: { heartbeatMs?: number } = {}): Route[] {
  const heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
  return [
    {
      method: 'GET',
      path: '/v1/live',
      // A browser's EventSource cannot send headers: the key may come as `?key=`.
      query: { params: { key: { type: 'string', maxLength: 512 } } },
      async handle({ req, res, query }) {
        const queryKey = query.string('key');
        const authorization =
          req.headers.authorization ?? (queryKey ? `Bearer ${queryKey}` : undefined);
        const principal = await deps.auth.authenticate(authorization, 'read');
        if (deps.isShuttingDown()) {
          throw new TokenwatchError('unavailable', 'The server is shutting down.', {
            retryAfterSeconds: 1,
          });
        }

        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          connection: 'keep-alive',
          // nginx and friends: do not buffer the stream.
          'x-accel-buffering': 'no',
        });
        res.flushHeaders();
        req.socket.setNoDelay(true);

        let closed = false;
        const write = (chunk: string) => {
          if (closed) return;
          if (res.writableLength > MAX_BUFFERED_BYTES) {
            cleanup();
            res.destroy();
            return;
          }
          res.write(chunk);
        };
        const send = (message: LiveMessage) => {
          write(`event: ${message.type}\ndata: ${JSON.stringify(message)}\n\n`);
        };
        // `retry` tells EventSource how soon to reconnect; `ready` lets a client know it is subscribed.
        write(`retry: 3000\nevent: ready\ndata: ${JSON.stringify({ atMs: deps.now() })}\n\n`);
        const unsubscribe = deps.live.subscribe(principal.projectId, send);
        const heartbeat = setInterval(() => write(': ping\n\n'), heartbeatMs);
        const shutdownPoll = setInterval(() => {
          if (!deps.isShuttingDown()) return;
          cleanup();
          res.end();
        }, SHUTDOWN_POLL_MS);
        heartbeat.unref();
        shutdownPoll.unref();
        function cleanup() {
          if (closed) return;
          closed = true;
          unsubscribe();
          clearInterval(heartbeat);
          clearInterval(shutdownPoll);
        }
        res.on('close', cleanup);
        req.on('close', cleanup);
      },
    },
  ];
}
