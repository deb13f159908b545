import { EventEmitter } from 'node:events';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import dynalite from 'dynalite';
import type { DynamoDbStoreOptions } from '../dynamodb-io.js';

export interface LocalDynamo {
  endpoint: string;
  /** Static credentials the SDK signs with (dynalite checks the signature's shape only). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  region: string;
  /**
   * A client for DynamoIo that hands each command to this dynalite in the process, without the
   * SDK or a socket (see directClient). For the long runs only (the rule oracle); the other
   * tests go through the SDK over HTTP on loopback, as production does.
   */
  direct: DynamoClient;
  close(): Promise<void>;
}

/** What DynamoIo sends commands through (the SDK's DynamoDBClient, or `directClient`). */
export type DynamoClient = NonNullable<DynamoDbStoreOptions['client']>;

/** Uint8Array values as base64 text, as the JSON protocol carries binary attributes. */
function wireReplacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const original = this[key];
  if (original instanceof Uint8Array)
    return Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString(
      'base64',
    );
  return value;
}

const fromBase64 = (text: string): Uint8Array => {
  const b = Buffer.from(text, 'base64');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
};

/**
 * Binary attribute values (`{ B: base64 }`, `{ BS: [...] }`) back to bytes, wherever they are
 * (items, maps, lists). Every attribute value is an object, so only an attribute value can be a
 * one-key object whose `B` is text.
 */
function decodeBinary(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decodeBinary);
  if (value === null || typeof value !== 'object') return value;
  const o = value as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1 && typeof o.B === 'string') return { B: fromBase64(o.B) };
  if (keys.length === 1 && Array.isArray(o.BS)) return { BS: (o.BS as string[]).map(fromBase64) };
  for (const k of keys) o[k] = decodeBinary(o[k]);
  return o;
}

/** An SDK-shaped service error: its name from `__type`, a client fault for a 4xx. */
function serviceError(statusCode: number, body: { __type?: string; message?: string }): Error {
  const name = (body.__type ?? 'UnknownError').split('#').pop() as string;
  return Object.assign(new Error(body.message ?? name), {
    name,
    $fault: statusCode >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: statusCode },
  });
}

/**
 * A client that gives each command's input to this dynalite's request listener in the process,
 * as the JSON the DynamoDB wire protocol carries (binary attributes as base64), and returns the
 * parsed answer (binary attributes as bytes again, errors named from their `__type` as the SDK
 * names them). Dynalite parses, validates and executes it exactly as a request that arrived
 * over a socket: the real emulator, not a mock. What it skips is the AWS SDK (middleware,
 * SigV4 signing, serde, retries) and the HTTP framing: about 40 % of the CPU of the DynamoDB rule
 * oracle, which checks the store's semantics and is its only user. Every other DynamoDB test
 * goes through the SDK over loopback HTTP, as production does.
 */
function directClient(listener: RequestListener, region: string): DynamoClient {
  const authorization = `AWS4-HMAC-SHA256 Credential=local/20260101/${region}/dynamodb/aws4_request, SignedHeaders=host, Signature=0`;
  const call = (operation: string, input: unknown): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const req = new EventEmitter() as EventEmitter & Record<string, unknown>;
      req.method = 'POST';
      req.url = '/';
      req.headers = {
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': `DynamoDB_20120810.${operation}`,
        'x-amz-date': '20260101T000000Z',
        authorization,
      };
      const res = {
        statusCode: 200,
        setHeader() {},
        end(body?: string) {
          try {
            const parsed = body ? JSON.parse(body) : {};
            if (res.statusCode >= 300) reject(serviceError(res.statusCode, parsed));
            else
              resolve({ ...(decodeBinary(parsed) as object), $metadata: { httpStatusCode: 200 } });
          } catch (err) {
            reject(err);
          }
        },
      };
      try {
        listener(req as unknown as IncomingMessage, res as unknown as ServerResponse);
        req.emit('data', Buffer.from(JSON.stringify(input, wireReplacer)));
        req.emit('end');
      } catch (err) {
        reject(err);
      }
    });
  return {
    send(command: { input: unknown; constructor: { name: string } }) {
      return call(command.constructor.name.replace(/Command$/, ''), command.input);
    },
    destroy() {},
  } as unknown as DynamoClient;
}

/**
 * Starts dynalite (a DynamoDB API implementation on LevelDB, in memory here) on loopback with
 * instant table creation. The store under test talks to it over HTTP with the real AWS SDK
 * (or, with `direct`, to the same dynalite without the SDK and the socket).
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
    direct: directClient(listener, 'us-east-1'),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
