import type { FetchLike } from './http-transport.js';

/** The parts of Node's `http` / `https` modules used here (no Node types in the core client). */
interface SocketLike {
  unref(): unknown;
}
interface IncomingLike {
  statusCode?: number;
  headers: Record<string, string | string[] | undefined>;
  on(event: 'data', fn: (chunk: Uint8Array) => void): unknown;
  on(event: 'end', fn: () => void): unknown;
  on(event: 'error', fn: (error: Error) => void): unknown;
}
interface RequestLike {
  on(event: 'socket', fn: (socket: SocketLike) => void): unknown;
  on(event: 'error', fn: (error: Error) => void): unknown;
  end(body: Uint8Array): unknown;
}
export interface HttpModuleLike {
  Agent: new (opts: { keepAlive: boolean; maxSockets: number }) => unknown;
  request(
    url: URL,
    opts: {
      method: string;
      headers: Record<string, string>;
      agent: unknown;
      signal: AbortSignal;
    },
    onResponse: (res: IncomingLike) => void,
  ): RequestLike;
}

export interface NodeHttpFetchOptions {
  /** Connections per origin. Default 8. */
  maxSockets?: number;
  /**
   * Let a request in flight not keep the process alive (default true): an app that has finished
   * then reaches Node's `beforeExit`, where the exit drain holds it for at most `exitTimeoutMs`,
   * whatever the collector does. Awaited `flush()`, `shutdown()` and `check()` hold the process
   * themselves while they wait.
   */
  unref?: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A minimal fetch for the SDK's requests on `node:http(s)` with keep-alive agents: cheaper per
 * request than Node 20's built-in fetch, and its sockets can be unref'd. The modules are passed
 * in so this file needs no Node import (see `@tokenwatch/sdk/node` and the client's default).
 */
export function createNodeHttpFetch(
  modules: { http: HttpModuleLike; https: HttpModuleLike },
  opts: NodeHttpFetchOptions = {},
): FetchLike {
  const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets ?? 8 };
  const httpAgent = new modules.http.Agent(agentOpts);
  const httpsAgent = new modules.https.Agent(agentOpts);
  const unref = opts.unref !== false;
  return (url, init) =>
    new Promise((resolve, reject) => {
      const u = new URL(url);
      const secure = u.protocol === 'https:';
      const body = typeof init.body === 'string' ? encoder.encode(init.body) : init.body;
      const req = (secure ? modules.https : modules.http).request(
        u,
        {
          method: init.method,
          headers: { ...init.headers, 'content-length': String(body.byteLength) },
          agent: secure ? httpsAgent : httpAgent,
          signal: init.signal,
        },
        (res) => {
          const chunks: Uint8Array[] = [];
          let size = 0;
          res.on('data', (c) => {
            chunks.push(c);
            size += c.byteLength;
          });
          res.on('error', reject);
          res.on('end', () => {
            const all = new Uint8Array(size);
            let at = 0;
            for (const c of chunks) {
              all.set(c, at);
              at += c.byteLength;
            }
            const text = decoder.decode(all);
            resolve({
              status: res.statusCode ?? 0,
              headers: {
                get: (name: string) => {
                  const v = res.headers[name.toLowerCase()];
                  return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
                },
              },
              text: async () => text,
            });
          });
        },
      );
      // A reused keep-alive socket is ref'd again by the agent before this event: unref each time.
      if (unref) req.on('socket', (socket) => socket.unref());
      req.on('error', reject);
      req.end(body);
    });
}

/**
 * The client's default fetch on Node: `node:http(s)` with unref'd sockets, through
 * `process.getBuiltinModule` (Node ≥ 20.16) so nothing here imports Node. Elsewhere (edge
 * runtimes, browsers, older Node) undefined: the global `fetch` is used.
 */
export function defaultNodeFetch(): FetchLike | undefined {
  const proc = (
    globalThis as {
      process?: { getBuiltinModule?: (id: string) => unknown; versions?: { node?: string } };
    }
  ).process;
  if (typeof proc?.getBuiltinModule !== 'function' || !proc.versions?.node) return undefined;
  try {
    const http = proc.getBuiltinModule('node:http') as HttpModuleLike | undefined;
    const https = proc.getBuiltinModule('node:https') as HttpModuleLike | undefined;
    return http && https ? createNodeHttpFetch({ http, https }) : undefined;
  } catch {
    return undefined;
  }
}
