import type { IncomingMessage } from 'node:http';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

/** Bodies smaller than this go as they are: below a packet, compressing saves nothing. */
export const COMPRESS_MIN_BYTES = 1024;

/**
 * Brotli quality: the default (11) costs ~50× gzip's CPU on JSON; 5 compresses it a little
 * better than gzip's default at about the same cost.
 */
const BROTLI_QUALITY = 5;

export type ContentCoding = 'br' | 'gzip';

/**
 * The coding to answer with, from Accept-Encoding: brotli, then gzip, when the client accepts
 * it (`q=0` refuses a coding; `*` accepts any not named). Undefined: send the body as is.
 */
export function chooseCoding(acceptEncoding: string | undefined): ContentCoding | undefined {
  if (!acceptEncoding) return undefined;
  const weights = new Map<string, number>();
  for (const part of acceptEncoding.split(',')) {
    const [name = '', ...params] = part.trim().toLowerCase().split(';');
    if (!name) continue;
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/.exec(p);
      if (m) q = Number(m[1]);
    }
    weights.set(name.trim(), Number.isFinite(q) ? q : 0);
  }
  const weightOf = (coding: string) => weights.get(coding) ?? weights.get('*') ?? 0;
  const br = weightOf('br');
  const gzip = Math.max(weightOf('gzip'), weights.get('x-gzip') ?? 0);
  if (br > 0 && br >= gzip) return 'br';
  if (gzip > 0) return 'gzip';
  return undefined;
}

/**
 * The body to send and the headers that describe it: compressed when the request accepts a
 * coding and the body is worth it. Synchronous on purpose: the whole body is in memory already
 * (a usage response is bounded by its row limit), and a body sent in one piece keeps its
 * Content-Length, so no chunked encoding and no half-sent response if something fails.
 */
export function encodeBody(
  req: IncomingMessage | undefined,
  payload: string | Buffer,
): { body: Buffer | string; headers: Record<string, string | number> } {
  return encodeFor(req?.headers['accept-encoding'], payload);
}

/** `encodeBody` for an Accept-Encoding value (the Lambda adapter has no IncomingMessage). */
export function encodeFor(
  acceptEncoding: string | undefined,
  payload: string | Buffer,
): { body: Buffer | string; headers: Record<string, string | number> } {
  const length = Buffer.byteLength(payload);
  // The representation depends on Accept-Encoding whatever this one is: caches must know.
  const vary = { vary: 'Accept-Encoding' };
  const coding = length >= COMPRESS_MIN_BYTES ? chooseCoding(acceptEncoding) : undefined;
  if (!coding) return { body: payload, headers: { ...vary, 'content-length': length } };
  const input = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const body =
    coding === 'br'
      ? brotliCompressSync(input, {
          params: {
            [constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
            [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
            [constants.BROTLI_PARAM_SIZE_HINT]: input.length,
          },
        })
      : gzipSync(input);
  return {
    body,
    headers: { ...vary, 'content-encoding': coding, 'content-length': body.length },
  };
}
