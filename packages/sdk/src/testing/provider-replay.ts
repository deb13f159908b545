import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createH2Server, type Http2Server } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { crc32 } from 'node:zlib';

export type Api =
  | 'converse'
  | 'converse-stream'
  | 'invoke'
  | 'invoke-stream'
  | 'chat'
  | 'chat-stream'
  | 'responses'
  | 'responses-stream'
  | 'messages'
  | 'messages-stream';

export interface ExpectedUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  status: 'ok' | 'error' | 'no_usage';
}

export type FixtureResponse =
  | { status: number; headers?: Record<string, string>; json: unknown }
  | { status: 200; headers?: Record<string, string>; sse: { event?: string; data: unknown }[] }
  | {
      status: 200;
      headers?: Record<string, string>;
      /** AWS event-stream messages; `chunk` is a model-native JSON body, base64-framed like Bedrock. */
      eventStream: (
        | { event: string; body: unknown }
        | { chunk: unknown }
        | { exception: string; body: unknown }
      )[];
    };

/** One recorded provider exchange and the usage every integration must derive from it. */
export interface Fixture {
  name: string;
  provider: 'bedrock' | 'openai' | 'anthropic';
  api: Api;
  modelId: string;
  note?: string;
  response: FixtureResponse;
  expected: ExpectedUsage;
  /** Where one integration's client library makes the same exchange something else. */
  expectedBy?: Partial<Record<'ai-sdk' | 'langchain', ExpectedUsage & { why: string }>>;
}

/** What `integration` must record for `fixture`. */
export function expectedFor(fixture: Fixture, integration?: 'ai-sdk' | 'langchain'): ExpectedUsage {
  const own = integration && fixture.expectedBy?.[integration];
  if (!own) return fixture.expected;
  const { why: _why, ...expected } = own;
  return expected;
}

export function loadFixtures(file: URL): Fixture[] {
  return JSON.parse(readFileSync(file, 'utf8')) as Fixture[];
}

const PATHS: Record<Api, RegExp> = {
  converse: /^\/model\/[^/]+\/converse$/,
  'converse-stream': /^\/model\/[^/]+\/converse-stream$/,
  invoke: /^\/model\/[^/]+\/invoke$/,
  'invoke-stream': /^\/model\/[^/]+\/invoke-with-response-stream$/,
  chat: /\/chat\/completions$/,
  'chat-stream': /\/chat\/completions$/,
  responses: /\/responses$/,
  'responses-stream': /\/responses$/,
  messages: /\/messages$/,
  'messages-stream': /\/messages$/,
};

function header(name: string, value: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const v = Buffer.from(value, 'utf8');
  const out = Buffer.alloc(1 + n.length + 1 + 2 + v.length);
  out.writeUInt8(n.length, 0);
  n.copy(out, 1);
  out.writeUInt8(7, 1 + n.length); // string
  out.writeUInt16BE(v.length, 2 + n.length);
  v.copy(out, 4 + n.length);
  return out;
}

/** Encodes one message of the AWS event-stream binary framing (prelude, headers, payload, CRCs). */
export function encodeEventStreamMessage(headers: Record<string, string>, payload: Buffer): Buffer {
  const h = Buffer.concat(Object.entries(headers).map(([k, v]) => header(k, v)));
  const total = 12 + h.length + payload.length + 4;
  const prelude = Buffer.alloc(8);
  prelude.writeUInt32BE(total, 0);
  prelude.writeUInt32BE(h.length, 4);
  const preludeCrc = Buffer.alloc(4);
  preludeCrc.writeUInt32BE(crc32(prelude), 0);
  const body = Buffer.concat([prelude, preludeCrc, h, payload]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body), 0);
  return Buffer.concat([body, crc]);
}

export interface SeenRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown> | undefined;
}

/**
 * Replays recorded provider responses on loopback so the real client libraries run their real
 * code paths: SigV4 signing and event-stream decoding for Bedrock, SSE for OpenAI and Anthropic.
 */
export class ProviderReplayServer {
  readonly requests: SeenRequest[] = [];
  private current: Fixture | undefined;
  private server: Server | undefined;
  private h2: Http2Server | undefined;
  private readonly h2Sockets = new Set<Socket>();
  /** HTTP/1.1 (OpenAI, Anthropic). */
  url = '';
  /**
   * Cleartext HTTP/2 (prior knowledge), which the Bedrock runtime client's default handler
   * speaks: so the stand-in needs no change to the client's configuration beyond `endpoint`.
   */
  h2url = '';

  async start(): Promise<this> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        let body: Record<string, unknown> | undefined;
        try {
          body = raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
        } catch {
          body = undefined;
        }
        const path = decodeURIComponent((req.url ?? '').split('?')[0] ?? '');
        this.requests.push({ method: req.method ?? '', path, headers: req.headers, body });
        const f = this.current;
        if (!f || !PATHS[f.api].test(path)) {
          res.writeHead(404, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ message: `no fixture for ${path} (current: ${f?.name})` }));
          return;
        }
        const r = f.response;
        if ('json' in r) {
          res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers });
          res.end(JSON.stringify(r.json));
          return;
        }
        if ('sse' in r) {
          res.writeHead(200, {
            'content-type': 'text/event-stream',
            'cache-control': 'no-cache',
            ...r.headers,
          });
          for (const ev of r.sse) {
            const data = typeof ev.data === 'string' ? ev.data : JSON.stringify(ev.data);
            res.write(`${ev.event ? `event: ${ev.event}\n` : ''}data: ${data}\n\n`);
          }
          res.end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream', ...r.headers });
        for (const m of r.eventStream) {
          if ('chunk' in m) {
            const bytes = Buffer.from(JSON.stringify(m.chunk)).toString('base64');
            res.write(
              encodeEventStreamMessage(
                {
                  ':event-type': 'chunk',
                  ':content-type': 'application/json',
                  ':message-type': 'event',
                },
                Buffer.from(JSON.stringify({ bytes })),
              ),
            );
          } else if ('exception' in m) {
            res.write(
              encodeEventStreamMessage(
                {
                  ':exception-type': m.exception,
                  ':content-type': 'application/json',
                  ':message-type': 'exception',
                },
                Buffer.from(JSON.stringify(m.body)),
              ),
            );
          } else {
            res.write(
              encodeEventStreamMessage(
                {
                  ':event-type': m.event,
                  ':content-type': 'application/json',
                  ':message-type': 'event',
                },
                Buffer.from(JSON.stringify(m.body)),
              ),
            );
          }
        }
        res.end();
      });
    };
    this.server = createServer(handler);
    this.h2 = createH2Server(handler as never);
    this.h2.on('connection', (socket: Socket) => {
      this.h2Sockets.add(socket);
      socket.once('close', () => this.h2Sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => this.h2?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    this.h2url = `http://127.0.0.1:${(this.h2.address() as AddressInfo).port}`;
    return this;
  }

  /** Serve this fixture to the next requests. */
  serve(fixture: Fixture): void {
    this.current = fixture;
  }

  lastRequest(): SeenRequest | undefined {
    return this.requests[this.requests.length - 1];
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    // A client that left a stream early may keep its HTTP/2 session open: close() would wait.
    for (const socket of this.h2Sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
    await new Promise<void>((resolve) => this.h2?.close(() => resolve()));
  }
}
