import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PricedEvent } from '@tokenwatch/core';
import { BudgetEnforcer } from '../alerts/budget-enforcer.js';
import { RuleService } from '../alerts/rule-service.js';
import { KeyAuthenticator } from '../auth/api-keys.js';
import { configSchema } from '../config/config-schema.js';
import { createHttpHandler } from '../http/app.js';
import { encodeFor } from '../http/compression.js';
import type { BatchCounts, EventSink } from '../ingest/event-sink.js';
import { IngestService } from '../ingest/ingest-service.js';
import { LiveFeed } from '../live/live-feed.js';
import { createLambdaRuntime, type LambdaRuntime, loadLambdaConfig } from './lambda-runtime.js';
import { reconciliationStoreOf } from './reconcile-handler.js';

/** A Lambda function URL request (payload format 2.0), the parts the adapter reads. */
export interface FunctionUrlEvent {
  rawPath: string;
  rawQueryString?: string;
  headers?: Record<string, string | undefined>;
  cookies?: string[];
  body?: string;
  isBase64Encoded?: boolean;
  requestContext: { http: { method: string; sourceIp?: string } };
}
export interface FunctionUrlResult {
  statusCode: number;
  headers: Record<string, string>;
  cookies?: string[];
  body: string;
  isBase64Encoded: boolean;
}

/**
 * Events posted to the function URL's `/v1/events` go straight to the store (no group commit:
 * one request is one invocation), which evaluates the rules, and the outbox is sent before answering.
 */
class DirectSink implements EventSink {
  readonly backlog = 0;
  constructor(private readonly rt: LambdaRuntime) {}
  async submit(events: readonly PricedEvent[]): Promise<BatchCounts> {
    const result = await this.rt.store.applyBatch(events, { nowMs: this.rt.now() });
    if (result.alerts.length > 0) await this.rt.dispatcher.runOnce();
    return {
      accepted: result.accepted,
      duplicates: result.duplicates,
      conflicts: result.conflicts,
    };
  }
  async close(): Promise<void> {}
}

/**
 * Where the API function finds the dashboard: `TOKENWATCH_DASHBOARD_DIR` (the runtime config),
 * else the `dashboard/` folder the CDK stack copies next to the bundle (deploy/aws), else
 * (running from a checkout) the app's default, `packages/dashboard/dist`.
 */
export function lambdaDashboardDir(configured: string | undefined): string | undefined {
  if (configured) return configured;
  const beside = join(dirname(fileURLToPath(import.meta.url)), 'dashboard');
  return existsSync(join(beside, 'index.html')) ? beside : undefined;
}

/** The server's HTTP app over DynamoDB, listening on loopback inside the function. */
export async function startApiApp(
  rt: LambdaRuntime,
): Promise<{ url: string; close(): Promise<void> }> {
  const config = {
    ...configSchema.parse({ dataDir: '/tmp/tokenwatch' }),
    bedrock: rt.config.bedrock,
  };
  // Keys are never created here: a function could hand them over only through its logs
  // (CloudWatch Logs, kept for a month). `tokenwatch aws create-keys` prints them once instead.
  if ((await rt.store.listProjects()).length === 0) {
    rt.logger.warn(
      'no project yet: create the first keys with `npx tokenwatch aws create-keys --table <TableName> --region <region>` (the stack output CreateKeysCommand)',
      { table: rt.config.tableName },
    );
  }
  await rt.registry.load();
  const enforcer = new BudgetEnforcer(
    rt.store,
    rt.registry,
    { failMode: 'open', cacheMs: config.alerts.checkCacheMs },
    rt.logger,
    rt.now,
  );
  rt.registry.onChange(() => enforcer.invalidate());
  const catalogs = rt.catalogs;
  const sink = new DirectSink(rt);
  const handler = createHttpHandler({
    config,
    store: rt.store,
    auth: new KeyAuthenticator(rt.store, config.auth.keyCacheSeconds * 1000, rt.now),
    ingest: new IngestService(sink, catalogs, rt.now),
    sink,
    catalogs,
    metrics: rt.metrics,
    logger: rt.logger,
    now: rt.now,
    live: new LiveFeed(),
    alerting: {
      rules: new RuleService(
        rt.store,
        { allowPrivateNetworks: rt.config.allowPrivateNetworks },
        rt.registry,
        enforcer,
        rt.now,
        () => void rt.dispatcher.runOnce(),
      ),
      registry: rt.registry,
      enforcer,
    },
    reconciliation: reconciliationStoreOf(rt),
    isShuttingDown: () => false,
    // Each warm container counts only its own requests, and the function URL is public:
    // CloudWatch's Lambda, SQS and DynamoDB metrics are the deployment's metrics.
    serveMetrics: false,
    serveLive: false,
    dashboardDir: lambdaDashboardDir(rt.config.dashboardDir),
  });
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const HOP_BY_HOP = new Set([
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
  'keep-alive',
  'expect',
  'upgrade',
]);
const TEXTUAL = /^(text\/|application\/(json|javascript|xml|x-ndjson|manifest\+json)|image\/svg)/;
/**
 * Adapts a function URL request to the app: the request goes to the app's loopback listener
 * with Node's own HTTP stack (the same parsing, limits and errors as `tokenwatch serve`), and
 * the response comes back as the function URL's result. A request that does not finish within
 * `timeoutMs` (the live stream: function URLs buffer responses) answers 504.
 */
export function createHttpAdapter(
  appUrl: string,
  timeoutMs = 25_000,
): (event: FunctionUrlEvent) => Promise<FunctionUrlResult> {
  return async (event) => {
    const method = event.requestContext.http.method.toUpperCase();
    const headers = new Headers();
    for (const [k, v] of Object.entries(event.headers ?? {}))
      if (v !== undefined && !HOP_BY_HOP.has(k.toLowerCase())) headers.set(k, v);
    // With the function URL's AWS_IAM auth, Authorization carries the SigV4 signature, so the
    // tokenwatch key travels in x-tokenwatch-authorization.
    const tokenwatchAuth = headers.get('x-tokenwatch-authorization');
    if (tokenwatchAuth !== null) {
      headers.set('authorization', tokenwatchAuth);
      headers.delete('x-tokenwatch-authorization');
    }
    if (event.cookies?.length) headers.set('cookie', event.cookies.join('; '));
    if (event.requestContext.http.sourceIp)
      headers.set('x-forwarded-for', event.requestContext.http.sourceIp);
    // fetch() decodes a compressed answer but keeps its Content-Encoding header, so the app is
    // asked for identity bytes and this adapter compresses what it returns to the function URL.
    const clientAcceptEncoding = headers.get('accept-encoding') ?? undefined;
    headers.set('accept-encoding', 'identity');
    const body =
      event.body === undefined || method === 'GET' || method === 'HEAD'
        ? undefined
        : Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
    const query = event.rawQueryString ? `?${event.rawQueryString}` : '';
    let res: Response;
    try {
      res = await fetch(`${appUrl}${event.rawPath}${query}`, {
        method,
        headers,
        ...(body ? { body } : {}),
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      return {
        statusCode: 504,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          error: {
            code: 'timeout',
            message: `no answer within ${timeoutMs} ms: ${(err as Error).message}`,
          },
        }),
        isBase64Encoded: false,
      };
    }
    const out: Record<string, string> = {};
    res.headers.forEach((value, key) => {
      if (key !== 'set-cookie' && key !== 'content-encoding' && !HOP_BY_HOP.has(key))
        out[key] = value;
    });
    const cookies = res.headers.getSetCookie();
    const bytes = Buffer.from(await res.arrayBuffer());
    const textual = TEXTUAL.test(res.headers.get('content-type') ?? '');
    const result = (body: string, isBase64Encoded: boolean): FunctionUrlResult => ({
      statusCode: res.status,
      headers: out,
      ...(cookies.length > 0 ? { cookies } : {}),
      body,
      isBase64Encoded,
    });
    // Function URL answers are capped at 6 MB: compressing text (as `serve` does, the same
    // rules) keeps large API answers and the dashboard's scripts well inside it.
    if (textual) {
      const encoded = encodeFor(clientAcceptEncoding, bytes);
      if (!/accept-encoding/i.test(out.vary ?? ''))
        out.vary = out.vary ? `${out.vary}, Accept-Encoding` : 'Accept-Encoding';
      const coding = encoded.headers['content-encoding'];
      if (typeof coding === 'string') {
        out['content-encoding'] = coding;
        return result(Buffer.from(encoded.body).toString('base64'), true);
      }
    }
    return textual ? result(bytes.toString('utf8'), false) : result(bytes.toString('base64'), true);
  };
}

let adapter: Promise<(event: FunctionUrlEvent) => Promise<FunctionUrlResult>> | undefined;

/** The API function's entry point (`http-handler.handler`). */
export async function handler(event: FunctionUrlEvent): Promise<FunctionUrlResult> {
  adapter ??= (async () => {
    const rt = await createLambdaRuntime(loadLambdaConfig(process.env));
    const app = await startApiApp(rt);
    return createHttpAdapter(app.url);
  })();
  return (await adapter)(event);
}
