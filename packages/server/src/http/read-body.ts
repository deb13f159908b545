import type { IncomingMessage } from 'node:http';
import { createGunzip } from 'node:zlib';
import { TokenwatchError } from '@tokenwatch/core';

/**
 * Reads a request body with a hard limit, enforced BEFORE parsing and on both the wire size
 * and the inflated size (a gzip bomb stops at the limit, it is never inflated in full).
 */
export async function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limitBytes) {
    req.resume(); // drain so the connection can answer
    throw tooLarge(limitBytes);
  }
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase().trim();
  if (encoding !== 'identity' && encoding !== 'gzip') {
    req.resume();
    throw new TokenwatchError(
      'unsupported_media_type',
      `Content-Encoding "${encoding}" is not supported; use gzip or none.`,
    );
  }
  const source = encoding === 'gzip' ? req.pipe(createGunzip()) : req;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limitBytes) {
        if (source !== req) (source as NodeJS.ReadableStream & { destroy(): void }).destroy();
        req.resume();
        throw tooLarge(limitBytes);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof TokenwatchError) throw err;
    if (encoding === 'gzip') {
      throw new TokenwatchError(
        'invalid_body',
        `The gzip body is corrupt: ${(err as Error).message}`,
      );
    }
    throw new TokenwatchError('invalid_body', 'The request body could not be read.', {
      cause: err,
    });
  }
  return Buffer.concat(chunks, size);
}

function tooLarge(limitBytes: number): TokenwatchError {
  return new TokenwatchError(
    'payload_too_large',
    `The body is larger than ${limitBytes} bytes (after decompression); send smaller batches (at most 1000 events).`,
  );
}

/** Parses JSON with an error that says where it broke; a BOM is tolerated. */
export function parseJson(body: Buffer): unknown {
  let text = body.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim().length === 0) {
    throw new TokenwatchError('invalid_body', 'The request body is empty; send JSON.');
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new TokenwatchError(
      'invalid_body',
      `The body is not valid JSON: ${(err as Error).message}`,
    );
  }
}
