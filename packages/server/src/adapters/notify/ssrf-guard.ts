import { lookup as dnsLookup } from 'node:dns/promises';
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
export function redactUrl(url: string, base?: string): string {
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
export function guardedLookup(
  policy: NetworkPolicy,
  url: string,
  resolve: Resolver,
): LookupFunction {
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
