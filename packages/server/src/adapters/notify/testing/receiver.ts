import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AlertMessage, ChannelConfig, Delivery } from '@tokenwatch/core';

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  remoteAddress: string | undefined;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** 'hang' reads the request and never answers. */
export type ReceiverHandler = (req: ReceivedRequest) => Reply | 'hang';

export interface Receiver {
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  requests: ReceivedRequest[];
  /** Replaces the handler. */
  reply(handler: ReceiverHandler): void;
  close(): Promise<void>;
}

/**
 * A real HTTP receiver on the loopback interface. Bound to `::` (dual stack) by default, so that
 * as a canary it sees a connection to any local address: 127.0.0.1, ::1, 0.0.0.0,
 * ::ffff:127.0.0.1.
 */
export async function startReceiver(
  handler: ReceiverHandler = () => ({ status: 204 }),
  host = '::',
): Promise<Receiver> {
  let current = handler;
  const requests: ReceivedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received: ReceivedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        remoteAddress: req.socket.remoteAddress,
      };
      requests.push(received);
      const reply = current(received);
      if (reply === 'hang') return;
      res.writeHead(reply.status, reply.headers ?? {});
      res.end(reply.body ?? '');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    reply(next) {
      current = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function sampleMessage(overrides: Partial<AlertMessage> = {}): AlertMessage {
  return {
    alertId: 'alr_01J9ZK5W3Q8X',
    projectId: 'default',
    rule: {
      id: 'rul_seed',
      name: 'seed',
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'hour', timeZone: 'UTC' },
    },
    scope: { user: 'alice', model: 'anthropic.claude-3-haiku-20240307-v1:0' },
    window: { start: '2024-10-08T14:00:00.000Z', end: '2024-10-08T15:00:00.000Z', timeZone: 'UTC' },
    level: { index: 0, threshold: 10_000, value: 10_000 },
    value: 12_345,
    late: false,
    forecast: false,
    firedAt: '2024-10-08T14:37:12.000Z',
    url: 'http://localhost:8080/ui/usage?user=alice',
    ...overrides,
  };
}

let seq = 0;

export function sampleDelivery(
  channel: ChannelConfig,
  message: AlertMessage = sampleMessage(),
  attempt = 1,
): Delivery {
  seq += 1;
  return { id: `dlv_${process.pid}_${seq}`, attempt, channel, message };
}
