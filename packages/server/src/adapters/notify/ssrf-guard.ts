import { lookup as dnsLookup } from 'node:dns/promises';
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isIPv4, isIPv6, type LookupFunction } from 'node:net';
import { TokenwatchError } from '@tokenwatch/core';
import { type AddressKind, classifyAddress } from './ip-classify.js';

/**
 * Where webhook and Slack URLs may point. `allowPrivateNetworks` (config `alerts.allowPrivateNetworks`)
 * opens loopback, private, link-local, unique-local, CGNAT and reserved addresses, for local use
 * with a receiver on the same machine or network; cloud metadata endpoints, unspecified,
 * multicast and broadcast addresses stay refused whatever the policy.
 */
export interface NetworkPolicy {
  allowPrivateNetworks: boolean;
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to every address it has. The default uses `dns.promises.lookup` (getaddrinfo). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) => {
  const addresses = await dnsLookup(hostname, { all: true, verbatim: true });
  return addresses.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

const REFUSED_ALWAYS: ReadonlySet<AddressKind> = new Set([
  'metadata',
  'unspecified',
  'multicast',
  'broadcast',
]);

const MAX_URL_LENGTH = 2048;

function refused(message: string, context: Record<string, unknown>): TokenwatchError {
  return new TokenwatchError('invalid_argument', message, {
    retryable: false,
    context: { ...context, ssrf: true },
  });
}

/** Why an address may not be reached under the policy, or undefined when it may. */
export function addressRefusal(address: string, policy: NetworkPolicy): string | undefined {
  const { kind, embeddedIPv4 } = classifyAddress(address);
  if (kind === 'public') return undefined;
  if (!REFUSED_ALWAYS.has(kind) && policy.allowPrivateNetworks) return undefined;
  return embeddedIPv4 ? `${kind}, embeds ${embeddedIPv4}` : kind;
}

function assertAddressAllowed(
  host: string,
  address: string,
  policy: NetworkPolicy,
  url: string,
): void {
  const reason = addressRefusal(address, policy);
  if (reason === undefined) return;
  const kind = classifyAddress(address).kind;
  const hint = REFUSED_ALWAYS.has(kind)
    ? ''
    : '; set alerts.allowPrivateNetworks: true to allow private targets (local use only)';
  const what = host === address ? `address ${address}` : `${host} resolves to ${address}`;
  throw refused(`URL refused: ${what} (${reason})${hint}`, { url: redactUrl(url), address, kind });
}

/** The URL without its query string (Slack and other webhook URLs carry secrets in the path or query). */
function redactUrl(url: string, base?: string): string {
  try {
    const u = new URL(url, base);
    return `${u.protocol}//${u.host}`;
  } catch {
    return '(unparsable)';
  }
}

export interface ParsedTarget {
  url: URL;
  /** Host name or address without IPv6 brackets. */
  host: string;
  /** True when the host is an IP address, which needs no resolution. */
  literal: boolean;
}

/**
 * Checks what can be checked without DNS: an absolute http(s) URL without credentials, and, if
 * its host is an IP address (in any form WHATWG URL normalises: `2130706433`, `0177.0.0.1`,
 * `0x7f.1`, `[::ffff:127.0.0.1]`), that the address is allowed. `localhost` and `*.localhost`
 * count as loopback by name. Throws `invalid_argument` (not retryable).
 */
export function checkUrlSyntax(url: string, policy: NetworkPolicy): ParsedTarget {
  if (typeof url !== 'string' || url.length === 0) throw refused('URL is empty', {});
  if (url.length > MAX_URL_LENGTH)
    throw refused(`URL is longer than ${MAX_URL_LENGTH} characters`, {});
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw refused('URL is not a valid absolute URL', {});
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw refused(`URL refused: scheme ${parsed.protocol} is not http: or https:`, {
      url: redactUrl(url),
    });
  if (parsed.username !== '' || parsed.password !== '')
    throw refused('URL refused: credentials (user@host) are not allowed in a webhook URL', {
      url: redactUrl(url),
    });
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw refused('URL refused: no host', {});
  const literal = isIPv4(host) || isIPv6(host);
  if (literal) assertAddressAllowed(host, host, policy, url);
  else if (!policy.allowPrivateNetworks && /(^|\.)localhost\.?$/i.test(host))
    throw refused(
      `URL refused: ${host} is loopback by name; set alerts.allowPrivateNetworks: true to allow private targets (local use only)`,
      { url: redactUrl(url), kind: 'loopback' },
    );
  return { url: parsed, host, literal };
}

async function resolveChecked(
  host: string,
  policy: NetworkPolicy,
  url: string,
  resolve: Resolver,
): Promise<ResolvedAddress[]> {
  let addresses: ResolvedAddress[];
  try {
    addresses = await resolve(host);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new TokenwatchError('unavailable', `cannot resolve ${host}: ${String(code ?? err)}`, {
      retryable: true,
      cause: err,
      context: { url: redactUrl(url), dnsCode: code },
    });
  }
  if (addresses.length === 0)
    throw new TokenwatchError('unavailable', `cannot resolve ${host}: no addresses`, {
      retryable: true,
      context: { url: redactUrl(url) },
    });
  // Every address must pass: a client may connect to any of them.
  for (const a of addresses) assertAddressAllowed(host, a.address, policy, url);
  return addresses;
}

export interface CheckedUrl extends ParsedTarget {
  addresses: ResolvedAddress[];
}

/**
 * Checks a webhook or Slack URL when it is saved and before it is used: `checkUrlSyntax`, then
 * resolves the host and refuses it if ANY of its addresses is not allowed. Throws
 * `invalid_argument` (not retryable) for a refused URL, `unavailable` (retryable) when the
 * name does not resolve. A URL that passes here is checked again at connect time by
 * `guardedPost`, because DNS answers can change between the two (DNS rebinding).
 */
export async function checkUrl(
  url: string,
  policy: NetworkPolicy,
  resolve: Resolver = systemResolver,
): Promise<CheckedUrl> {
  const target = checkUrlSyntax(url, policy);
  const addresses = target.literal
    ? [{ address: target.host, family: isIPv4(target.host) ? (4 as const) : (6 as const) }]
    : await resolveChecked(target.host, policy, url, resolve);
  return { ...target, addresses };
}

/**
 * A `lookup` for net/http that resolves with `resolve` and refuses the connection if any
 * address is not allowed: the check happens on the address the socket actually connects to.
 */
function guardedLookup(policy: NetworkPolicy, url: string, resolve: Resolver): LookupFunction {
  return (hostname, options, callback) => {
    resolveChecked(hostname, policy, url, resolve).then(
      (all) => {
        const family = options.family === 4 || options.family === 6 ? options.family : 0;
        const usable = family === 0 ? all : all.filter((a) => a.family === family);
        if (options.all) {
          callback(null, usable);
          return;
        }
        const first = usable[0];
        if (!first) {
          const err = Object.assign(new Error(`no IPv${family} address for ${hostname}`), {
            code: 'ENOTFOUND',
          });
          callback(err as NodeJS.ErrnoException, '', 0);
          return;
        }
        callback(null, first.address, first.family);
      },
      (err: Error) => callback(err as NodeJS.ErrnoException, '', 0),
    );
  };
}

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
