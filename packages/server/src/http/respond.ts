import type { ServerResponse } from 'node:http';
import { encodeBody } from './compression.js';

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/** Sends JSON; a body of 1 KiB or more is compressed (brotli or gzip) when the client accepts it. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  // Compressed when the client accepts it (`res.req`: the request this response answers).
  const encoded = encodeBody(res.req, JSON.stringify(body, jsonReplacer));
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...encoded.headers,
    ...headers,
  });
  res.end(encoded.body);
}

/** Sends text (CSV, metrics), compressed like JSON when the client accepts it. */
export function sendText(
  res: ServerResponse,
  status: number,
  body: string,
  contentType: string,
  headers: Record<string, string> = {},
): void {
  const encoded = encodeBody(res.req, body);
  res.writeHead(status, {
    'content-type': contentType,
    'cache-control': 'no-store',
    ...encoded.headers,
    ...headers,
  });
  res.end(encoded.body);
}

/** Sends a body already encoded (e.g. a protobuf message). */
export function sendBytes(
  res: ServerResponse,
  status: number,
  body: Buffer,
  contentType: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': body.length,
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(body);
}
