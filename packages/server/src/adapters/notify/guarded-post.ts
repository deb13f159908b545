import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { TokenwatchError } from '@tokenwatch/core';
import {
  checkUrlSyntax,
  guardedLookup,
  type NetworkPolicy,
  type ParsedTarget,
  type Resolver,
  redactUrl,
  systemResolver,
} from './ssrf-guard.js';

export interface GuardedPostOptions {
  headers?: Record<string, string>;
  body: string | Uint8Array;
  policy: NetworkPolicy;
  /** Cancels the request (the dispatcher's per-channel timeout). */
  signal?: AbortSignal;
  /** Upper bound on the whole exchange, whatever `signal` does. Default 30 s. */
  timeoutMs?: number;
  /** Bytes of the response body kept (for error messages). Default 16 KiB. */
  maxResponseBytes?: number;
  /** Host name resolution; the default is the system resolver. */
  resolve?: Resolver;
}

export interface GuardedResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The first `maxResponseBytes` of the body, as UTF-8. */
  body: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024;
const USER_AGENT = 'tokenwatch-notify/0.1';

/**
 * Pooled keep-alive agents, one per protocol and policy, so that a socket opened under one
 * policy is never reused under another. A pooled socket was checked when it connected.
 */
const agents = new Map<string, HttpAgent>();

function agentFor(https: boolean, policy: NetworkPolicy): HttpAgent {
  const key = `${https ? 'https' : 'http'}:${policy.allowPrivateNetworks}`;
  let agent = agents.get(key);
  if (!agent) {
    const options = { keepAlive: true, maxSockets: 16, maxFreeSockets: 4, timeout: 60_000 };
    agent = https ? new HttpsAgent(options) : new HttpAgent(options);
    agents.set(key, agent);
  }
  return agent;
}

function networkError(err: unknown, host: string): TokenwatchError {
  if (err instanceof TokenwatchError) return err;
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  return new TokenwatchError('unavailable', `POST to ${host} failed: ${message}`, {
    retryable: true,
    cause: err,
    context: { networkCode: code },
  });
}

/**
 * POSTs `body` to `url` with the SSRF guard: the URL is checked (`checkUrlSyntax`), the host is
 * resolved and checked again at connect time by the socket's own `lookup` (so a DNS answer that
 * changed since the URL was saved cannot reach an internal address), and redirects are never
 * followed: a 3xx is returned like any other status. Resolves with the response for any HTTP
 * status; rejects with `invalid_argument` (not retryable) for a refused URL and with
 * `unavailable` (retryable) for network errors, timeouts and aborts.
 */
export function guardedPost(url: string, options: GuardedPostOptions): Promise<GuardedResponse> {
  let target: ParsedTarget;
  try {
    target = checkUrlSyntax(url, options.policy);
  } catch (err) {
    return Promise.reject(err);
  }
  const { url: parsed, host } = target;
  const isHttps = parsed.protocol === 'https:';
  const body = typeof options.body === 'string' ? Buffer.from(options.body) : options.body;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const signal = options.signal;

  return new Promise<GuardedResponse>((resolve, reject) => {
    let settled = false;
    const started = Date.now();
    const req = (isHttps ? httpsRequest : httpRequest)({
      protocol: parsed.protocol,
      hostname: host,
      port: parsed.port === '' ? undefined : Number(parsed.port),
      path: `${parsed.pathname}${parsed.search}`,
      method: 'POST',
      headers: {
        'user-agent': USER_AGENT,
        ...options.headers,
        'content-length': String(body.byteLength),
      },
      lookup: guardedLookup(options.policy, url, options.resolve ?? systemResolver),
      // A custom resolver gets a throwaway agent: pooled sockets are only shared by requests
      // whose addresses were checked by the same resolver and policy.
      agent: options.resolve ? false : agentFor(isHttps, options.policy),
    });

    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const fail = (err: TokenwatchError) => {
      if (settled) return;
      settled = true;
      cleanup();
      req.destroy();
      reject(err);
    };
    const cancelled = (why: string) =>
      new TokenwatchError(
        'unavailable',
        `POST to ${host} ${why} after ${Date.now() - started} ms without a complete response`,
        { retryable: true, context: { timeout: true } },
      );
    const timer = setTimeout(() => fail(cancelled(`timed out (${timeoutMs} ms)`)), timeoutMs);
    const onAbort = () => fail(cancelled('was aborted'));
    if (signal) {
      if (signal.aborted) {
        fail(cancelled('was aborted'));
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
    }

    req.on('error', (err) => fail(networkError(err, host)));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on('data', (chunk: Buffer) => {
        if (kept >= maxResponseBytes) return;
        const part = chunk.subarray(0, maxResponseBytes - kept);
        chunks.push(part);
        kept += part.byteLength;
      });
      res.on('error', (err) => fail(networkError(err, host)));
      res.on('end', () => {
        if (settled) return;
        settled = true;
        cleanup();
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
      });
    });
    req.end(body);
  });
}

/** Seconds from a Retry-After header (delta-seconds or HTTP-date), capped at a day. */
export function parseRetryAfter(value: string | string[] | undefined, nowMs = Date.now()) {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  const trimmed = text.trim();
  let seconds: number;
  if (/^\d+$/.test(trimmed)) seconds = Number(trimmed);
  else {
    const at = Date.parse(trimmed);
    if (Number.isNaN(at)) return undefined;
    seconds = Math.ceil((at - nowMs) / 1000);
  }
  return Math.min(Math.max(seconds, 0), 86_400);
}

/**
 * Turns a receiver's answer into success or a `TokenwatchError` for the dispatcher: 2xx is
 * success; 408, 429 and 5xx are retryable (with `retryAfterSeconds` from Retry-After); a
 * redirect is never followed and fails for good, as do 410 Gone (`context.gone`, the endpoint
 * asks to be disabled) and every other status.
 */
export function assertDelivered(res: GuardedResponse, channel: string, host: string): void {
  const { status } = res;
  if (status >= 200 && status < 300) return;
  const snippet = res.body.replace(/\s+/g, ' ').trim().slice(0, 200);
  const said = snippet ? `: ${snippet}` : '';
  const context: Record<string, unknown> = { channel, status };
  if (status >= 300 && status < 400) {
    const location = res.headers.location;
    throw new TokenwatchError(
      'unavailable',
      `${channel} receiver ${host} answered ${status} redirect${location ? ` to ${redactUrl(location, `http://${host}`)}` : ''}; redirects are not followed, configure the final URL`,
      { retryable: false, context: { ...context, redirect: true } },
    );
  }
  if (status === 408 || status === 429 || status >= 500) {
    const retryAfterSeconds = parseRetryAfter(res.headers['retry-after']);
    throw new TokenwatchError(
      'unavailable',
      `${channel} receiver ${host} answered ${status}${said}`,
      {
        retryable: true,
        ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
        context,
      },
    );
  }
  if (status === 410) {
    throw new TokenwatchError(
      'unavailable',
      `${channel} receiver ${host} answered 410 Gone: the endpoint asks to be disabled${said}`,
      { retryable: false, context: { ...context, gone: true } },
    );
  }
  throw new TokenwatchError(
    'unavailable',
    `${channel} receiver ${host} answered ${status}${said}`,
    {
      retryable: false,
      context,
    },
  );
}
