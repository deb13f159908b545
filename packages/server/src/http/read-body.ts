import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
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
  const gunzip = encoding === 'gzip' ? createGunzip() : undefined;
  const source: Readable = gunzip ? req.pipe(gunzip) : req;
  try {
    return await collect(source, limitBytes);
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
  } finally {
    if (gunzip) {
      req.unpipe(gunzip);
      gunzip.destroy();
    }
  }
}

/**
 * Collects a stream up to `limitBytes`. Listeners, not `for await`: leaving a `for await` early
 * destroys the request, and with it the socket, so a client still sending its body would get a
 * broken pipe instead of the 413. Here the request stays open for the caller to drain.
 */
function collect(source: Readable, limitBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      source.pause();
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        stop();
        reject(tooLarge(limitBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      stop();
      reject(err);
    };
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('error', onError);
  });
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
