import { TokenwatchError } from './errors.js';
import { LIMITS, type UsageEvent } from './event.js';
import type { SendResult, Transport } from './transport.js';

export type FetchLike = (
  url: string,
  init: {
    method: string;
    headers: Record<string, string>;
    body: string | Uint8Array;
    signal: AbortSignal;
  },
) => Promise<{
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}>;

export interface HttpTransportOptions {
  /** Base URL of the collector, e.g. `https://tokenwatch.example.com`; `/v1/events` is appended. */
  endpoint: string;
  apiKey: string;
  /** Defaults to `globalThis.fetch`. */
  fetch?: FetchLike;
  /** `gzip` compresses bodies above `compressAboveBytes` where CompressionStream exists. */
  compression?: 'gzip' | 'none';
  compressAboveBytes?: number;
}

const encoder = new TextEncoder();

interface CompressionStreamCtor {
  new (
    format: 'gzip',
  ): { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> };
}

async function gzip(data: Uint8Array): Promise<Uint8Array | undefined> {
  const CS = (globalThis as { CompressionStream?: CompressionStreamCtor }).CompressionStream;
  if (!CS) return undefined;
  const cs = new CS('gzip');
  const writer = cs.writable.getWriter();
  void writer.write(data).catch(() => undefined);
  void writer.close().catch(() => undefined);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = cs.readable.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.byteLength;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/** Retry-After is seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : undefined;
}

function errorIndices(body: string): number[] | undefined {
  try {
    const parsed = JSON.parse(body) as { error?: { details?: { index?: unknown }[] } };
    const details = parsed.error?.details;
    if (!Array.isArray(details)) return undefined;
    const out = new Set<number>();
    for (const d of details) {
      if (typeof d?.index !== 'number') return undefined; // a batch-level problem: all at fault
      out.add(d.index);
    }
    return out.size > 0 ? [...out] : undefined;
  } catch {
    return undefined;
  }
}

/** Serialises a batch; exported so the bench and other transports frame bodies the same way. */
export function encodeBatch(events: readonly UsageEvent[]): Uint8Array {
  return encoder.encode(JSON.stringify({ events }));
}

/** `POST {endpoint}/v1/events`, mapping each response onto a {@link SendResult}. */
export function createHttpTransport(opts: HttpTransportOptions): Transport {
  const url = `${opts.endpoint.replace(/\/+$/, '')}/v1/events`;
  const compression = opts.compression ?? 'gzip';
  const compressAbove = opts.compressAboveBytes ?? 16 * 1024;

  return {
    async send(events, signal): Promise<SendResult> {
      const doFetch = opts.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
      if (!doFetch) {
        return {
          kind: 'fatal',
          reason: 'rejected',
          error: new TokenwatchError('no_fetch', 'no fetch in this runtime: pass options.fetch'),
        };
      }
      const json = JSON.stringify({ events });
      // UTF-8 takes at most 3 bytes per UTF-16 unit: only long bodies need an exact count.
      const exact = json.length * 3 > LIMITS.maxBodyBytes ? encoder.encode(json) : undefined;
      const size = exact ? exact.byteLength : json.length;
      if (size > LIMITS.maxBodyBytes && events.length > 1) {
        return {
          kind: 'split',
          error: new TokenwatchError('too_large', 'batch above 1 MiB', { retryable: true }),
        };
      }
      // A string body is the cheapest for fetch to send; bytes only when compressing.
      let body: string | Uint8Array = json;
      const headers: Record<string, string> = {
        authorization: `Bearer ${opts.apiKey}`,
        'content-type': 'application/json',
      };
      if (compression === 'gzip' && size > compressAbove) {
        const zipped = await gzip(exact ?? encoder.encode(json)).catch(() => undefined);
        if (zipped) {
          body = zipped;
          headers['content-encoding'] = 'gzip';
        }
      }
      let res: Awaited<ReturnType<FetchLike>>;
      let text: string;
      try {
        res = await doFetch(url, { method: 'POST', headers, body, signal });
        text = await res.text();
      } catch (cause) {
        const timeout = signal.aborted;
        return {
          kind: 'retry',
          error: new TokenwatchError(
            timeout ? 'timeout' : 'network',
            timeout ? 'request timed out' : `network error: ${(cause as Error)?.message ?? cause}`,
            { retryable: true, cause },
          ),
        };
      }
      const status = res.status;
      if (status >= 200 && status < 300) {
        let accepted = events.length;
        let duplicates = 0;
        try {
          const parsed = JSON.parse(text) as { accepted?: number; duplicates?: number };
          if (typeof parsed.accepted === 'number') accepted = parsed.accepted;
          if (typeof parsed.duplicates === 'number') duplicates = parsed.duplicates;
        } catch {
          // a 2xx without our body (a proxy): the events are durable all the same
        }
        return { kind: 'ok', accepted, duplicates };
      }
      const snippet = text.slice(0, 500);
      if (status === 413) {
        return {
          kind: 'split',
          error: new TokenwatchError('too_large', `413: ${snippet}`, { status, retryable: true }),
        };
      }
      if (status === 429 || status === 503 || status === 408 || status >= 500) {
        const afterMs = parseRetryAfter(res.headers.get('retry-after'), Date.now());
        const error = new TokenwatchError('http_status', `${status}: ${snippet}`, {
          status,
          retryable: true,
        });
        return afterMs === undefined ? { kind: 'retry', error } : { kind: 'retry', error, afterMs };
      }
      if (status === 401 || status === 403) {
        return {
          kind: 'fatal',
          reason: 'unauthorized',
          error: new TokenwatchError('unauthorized', `${status}: ${snippet}`, { status }),
        };
      }
      const invalid = status === 400 ? errorIndices(text) : undefined;
      const error = new TokenwatchError('rejected', `${status}: ${snippet}`, {
        status,
        details: snippet,
      });
      return invalid ? { kind: 'reject', error, invalid } : { kind: 'reject', error };
    },
  };
}
