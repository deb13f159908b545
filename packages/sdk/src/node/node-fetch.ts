import * as http from 'node:http';
import * as https from 'node:https';
import type { HttpTransportOptions } from '../http-transport.js';
import {
  createNodeHttpFetch,
  type HttpModuleLike,
  type NodeHttpFetchOptions,
} from '../node-http-fetch.js';

type FetchLike = NonNullable<HttpTransportOptions['fetch']>;

/**
 * A minimal fetch for the HTTP transport built on `node:http(s)` with keep-alive agents. On
 * Node 20 it costs several times less CPU per large request than the built-in fetch (undici),
 * which matters when one process exports tens of thousands of events per second. It is the
 * client's default on Node ≥ 20.16; pass `createTokenwatch({ ..., fetch: nodeFetch() })` to
 * choose it explicitly (e.g. for `maxSockets`) or on older Node.
 */
export function nodeFetch(opts: NodeHttpFetchOptions = {}): FetchLike {
  return createNodeHttpFetch(
    { http: http as unknown as HttpModuleLike, https: https as unknown as HttpModuleLike },
    opts,
  );
}
