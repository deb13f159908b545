import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/** What the receiver does with one request. Unlisted requests get 202. */
export type Fault =
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: unknown }
  /** Wait before answering (a slow collector). */
  | { kind: 'delay'; ms: number; then?: Fault }
  /** Close the socket before reading the body: the request never arrives. */
  | { kind: 'disconnect' }
  /** Make the events durable, then drop the connection before the answer: a lost 202. */
  | { kind: 'accept-then-disconnect' };

export interface ReceivedRequest {
  at: number;
  headers: IncomingMessage['headers'];
  events: Record<string, unknown>[];
  /** Status the receiver answered (0 when it dropped the connection). */
  status: number;
}

/**
 * A real HTTP receiver on loopback that records what an SDK sends and injects faults. It is
 * not a model of the tokenwatch server: it only dedupes on id (as the contract promises) so
 * tests can check that retries never double count.
 */
export class LoopbackReceiver {
  readonly requests: ReceivedRequest[] = [];
  /** Accepted events by id, first arrival wins. */
  readonly accepted = new Map<string, Record<string, unknown>>();
  private readonly faults: Fault[] = [];
  /** When set, every request not covered by `faults` gets this. */
  defaultFault: Fault | undefined;
  private server: Server | undefined;
  private readonly sockets = new Set<import('node:net').Socket>();
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
    return this;
  }

  /** Queue faults for the next requests, in order. */
  inject(...faults: Fault[]): void {
    this.faults.push(...faults);
  }

  get eventCount(): number {
    return this.requests.reduce((n, r) => n + (r.status === 202 ? r.events.length : 0), 0);
  }

  async waitFor(pred: () => boolean, timeoutMs = 5000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > until) throw new Error('waitFor timed out');
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let fault = this.faults.shift() ?? this.defaultFault;
    if (fault?.kind === 'disconnect') {
      this.requests.push({ at: Date.now(), headers: req.headers, events: [], status: 0 });
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let raw = Buffer.concat(chunks);
    if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
    const body = JSON.parse(raw.toString('utf8')) as { events?: Record<string, unknown>[] };
    const events = Array.isArray(body.events) ? body.events : [body as Record<string, unknown>];
    const record: ReceivedRequest = { at: Date.now(), headers: req.headers, events, status: 0 };
    this.requests.push(record);
    while (fault?.kind === 'delay') {
      await new Promise((r) => setTimeout(r, (fault as { ms: number }).ms));
      fault = fault.then;
    }
    if (req.socket.destroyed) return;
    if (fault?.kind === 'status') {
      record.status = fault.status;
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
      res.end(
        JSON.stringify(fault.body ?? { error: { code: 'injected', message: 'injected fault' } }),
      );
      return;
    }
    let duplicates = 0;
    for (const e of events) {
      if (this.accepted.has(String(e.id))) duplicates++;
      else this.accepted.set(String(e.id), e);
    }
    if (fault?.kind === 'accept-then-disconnect') {
      req.socket.destroy();
      return;
    }
    record.status = 202;
    res.writeHead(202, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ accepted: events.length - duplicates, duplicates, conflicts: 0 }));
  }
}
