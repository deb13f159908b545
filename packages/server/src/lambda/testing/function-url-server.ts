import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FunctionUrlEvent, FunctionUrlResult } from '../http-handler.js';

/**
 * A Lambda function URL on loopback, for tests: each HTTP request becomes the payload (format
 * 2.0) a function URL hands its function, and the function's result becomes the HTTP answer,
 * the way AWS turns it around (base64 bodies decoded, cookies as Set-Cookie). Only what a
 * browser needs to load the dashboard and talk to the API through it.
 */
export async function startFunctionUrl(
  handler: (event: FunctionUrlEvent) => Promise<FunctionUrlResult>,
): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    void (async () => {
      const event = await toEvent(req);
      const result = await handler(event);
      const headers: Record<string, string | string[]> = { ...result.headers };
      if (result.cookies?.length) headers['set-cookie'] = result.cookies;
      res.writeHead(result.statusCode, headers);
      res.end(Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8'));
    })().catch((err: unknown) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`function failed: ${(err as Error).message}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function toEvent(req: IncomingMessage): Promise<FunctionUrlEvent> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  const url = new URL(req.url ?? '/', 'http://function-url');
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (k === 'cookie' || v === undefined) continue;
    headers[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  const cookies = req.headers.cookie?.split(/;\s*/).filter((c) => c.length > 0);
  return {
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    ...(cookies?.length ? { cookies } : {}),
    ...(body.length > 0 ? { body: body.toString('base64'), isBase64Encoded: true } : {}),
    requestContext: { http: { method: req.method ?? 'GET', sourceIp: '127.0.0.1' } },
  };
}
