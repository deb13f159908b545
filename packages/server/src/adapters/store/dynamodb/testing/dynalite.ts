import { EventEmitter } from 'node:events';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';

export interface LocalDynamo {
  endpoint: string;
  /** Static credentials the SDK signs with (dynalite checks the signature's shape only). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  region: string;
  /**
   * An SDK request handler that gives each signed request to this dynalite's own request
   * listener in the process, without a socket (see inProcessHandler). For the long runs only
   * (the rule oracle); the other tests go through HTTP on loopback like production does.
   */
  inProcess: NonNullable<DynamoDBClientConfig['requestHandler']>;
  close(): Promise<void>;
}

/** The parts of the SDK's HttpRequest the handler reads (JSON protocol: the body is a string). */
interface SdkRequest {
  method: string;
  path: string;
  query?: Record<string, string | string[] | null>;
  headers: Record<string, string>;
  body?: unknown;
}

/**
 * The SDK's transport, minus TCP and HTTP framing: the request — serialized, signed (SigV4) and
 * retried by the unchanged SDK middleware of DynamoDbStore's client — is handed to dynalite's
 * request listener as a minimal IncomingMessage (method, url, headers, one body chunk), and its
 * response (status, headers, body) comes back as the SDK's HttpResponse. Dynalite parses,
 * validates and executes it exactly as it does a request that arrived over a socket: this is
 * the real emulator behind a shorter wire, not a mock. What it skips is the Node HTTP client and
 * server (sockets, header parsing, keep-alive), about a third of the CPU of a request when
 * both ends live in the test process; loopback HTTP itself is covered by every other test.
 */
function inProcessHandler(listener: RequestListener): LocalDynamo['inProcess'] {
  return {
    handle(request: SdkRequest) {
      return new Promise((resolve, reject) => {
        const req = new EventEmitter() as EventEmitter & Record<string, unknown>;
        const query = new URLSearchParams();
        for (const [k, v] of Object.entries(request.query ?? {}))
          for (const x of Array.isArray(v) ? v : [v]) query.append(k, x ?? '');
        const qs = query.toString();
        req.method = request.method;
        req.url = `${request.path}${qs ? `?${qs}` : ''}`;
        req.headers = Object.fromEntries(
          Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), v]),
        );
        const headers: Record<string, string> = {};
        const res = {
          statusCode: 200,
          setHeader(name: string, value: unknown) {
            headers[name.toLowerCase()] = String(value);
          },
          end(body?: string | Uint8Array) {
            resolve({
              response: {
                statusCode: res.statusCode,
                headers,
                body: typeof body === 'string' ? Buffer.from(body) : (body ?? new Uint8Array()),
              },
            });
          },
        };
        try {
          listener(req as unknown as IncomingMessage, res as unknown as ServerResponse);
        } catch (err) {
          reject(err);
          return;
        }
        // The SDK's JSON body is a Uint8Array subclass whose valueOf() decodes it (with a
        // warning), so its bytes are wrapped, not passed to Buffer.from as an object.
        const body = request.body;
        if (typeof body === 'string' && body !== '') req.emit('data', Buffer.from(body));
        else if (body instanceof Uint8Array && body.byteLength > 0)
          req.emit('data', Buffer.from(body.buffer, body.byteOffset, body.byteLength));
        req.emit('end');
      });
    },
    updateHttpClientConfig() {},
    httpHandlerConfigs() {
      return {};
    },
  } as unknown as LocalDynamo['inProcess'];
}

/**
 * Starts dynalite (a DynamoDB API implementation on LevelDB, in memory here) on loopback with
 * instant table creation. The store under test talks to it over HTTP with the real AWS SDK
 * (or, with `inProcess`, through the same SDK to the same dynalite without the socket).
 */
export async function startDynalite(): Promise<LocalDynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const listener = server.listeners('request')[0] as RequestListener;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    region: 'us-east-1',
    inProcess: inProcessHandler(listener),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
