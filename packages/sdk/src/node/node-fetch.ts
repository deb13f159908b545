import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { HttpTransportOptions } from '../http-transport.js';

type FetchLike = NonNullable<HttpTransportOptions['fetch']>;

/**
 * A minimal fetch for the HTTP transport built on `node:http(s)` with keep-alive agents. On
 * Node 20 it costs several times less CPU per large request than the built-in fetch (undici),
 * which matters when one process exports tens of thousands of events per second. Opt in with
 * `createTokenwatch({ ..., fetch: nodeFetch() })`; the default stays `globalThis.fetch`.
 */
export function nodeFetch(opts: { maxSockets?: number } = {}): FetchLike {
  const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets ?? 8 };
  const http = new HttpAgent(agentOpts);
  const https = new HttpsAgent(agentOpts);
  return (url, init) =>
    new Promise((resolve, reject) => {
      const u = new URL(url);
      const secure = u.protocol === 'https:';
      const body = typeof init.body === 'string' ? Buffer.from(init.body) : init.body;
      const req = (secure ? httpsRequest : httpRequest)(
        u,
        {
          method: init.method,
          headers: { ...init.headers, 'content-length': String(body.byteLength) },
          agent: secure ? https : http,
          signal: init.signal,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
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
      req.on('error', reject);
      req.end(body);
    });
}
