import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ReconciliationStore, type Store, TokenwatchError } from '@tokenwatch/core';
import type { KeyAuthenticator } from '../auth/api-keys.js';
import type { Config } from '../config/config-schema.js';
import type { EventSink } from '../ingest/event-sink.js';
import type { IngestService } from '../ingest/ingest-service.js';
import type { ProjectCatalogs } from '../ingest/project-catalogs.js';
import type { LiveFeed } from '../live/live-feed.js';
import type { Logger } from '../logging/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { type ErrorResponse, toErrorResponse } from './error-mapping.js';
import { NO_QUERY, parseQuery, type QuerySpec, QueryValues } from './query-params.js';
import { sendBytes, sendJson } from './respond.js';
import { adminRoutes } from './routes/admin-routes.js';
import { bedrockRoutes } from './routes/bedrock-routes.js';
import { dashboardRoutes } from './routes/dashboard-routes.js';
import { eventRoutes } from './routes/event-routes.js';
import { healthRoutes } from './routes/health-routes.js';
import { latencyRoutes } from './routes/latency-routes.js';
import { liveRoutes } from './routes/live-routes.js';
import { otlpRoutes } from './routes/otlp-routes.js';
import { type RuleRouteDeps, ruleRoutes } from './routes/rule-routes.js';
import { usageRoutes } from './routes/usage-routes.js';
import { userRoutes } from './routes/user-routes.js';

/** Everything a route handler may use; built once by the composition root. */
export interface AppDeps {
  config: Config;
  store: Store;
  auth: KeyAuthenticator;
  ingest: IngestService;
  /** Where accepted events go (the group committer, or a durable queue in scale-out mode). */
  sink: EventSink;
  catalogs: ProjectCatalogs;
  metrics: Metrics;
  logger: Logger;
  now: () => number;
  /** Per-project notices of new usage and alerts, for server-sent events. */
  live: LiveFeed;
  /** Rules, alerts, budgets. */
  alerting: RuleRouteDeps;
  /** Bedrock reconciliation results (GET /v1/reconciliation); absent where none are kept. */
  reconciliation?: ReconciliationStore;
  /** Set while the process shuts down: /readyz fails so load balancers drain it. */
  isShuttingDown: () => boolean;
  /** `false`: no `GET /metrics` (AWS: per-container counters on a public URL). Default true. */
  serveMetrics?: boolean;
  /**
   * `false`: no `GET /v1/live` (AWS: a function URL buffers the whole answer, so a stream would
   * only hold an invocation until its timeout; the dashboard polls when the route is missing).
   */
  serveLive?: boolean;
  /** The built dashboard to serve at `/`; default `packages/dashboard/dist` of this checkout. */
  dashboardDir?: string | undefined;
}

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
  /** The query, already checked against the route's `query` spec. */
  query: QueryValues;
  requestId: string;
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** A path; `:name` segments become `params.name`. */
  path: string;
  /**
   * The query parameters the route takes, checked before `handle` runs (400 naming each bad one).
   * Omitted: a GET route takes none (any given is refused); other methods ignore the query.
   */
  query?: QuerySpec;
  /** Low-cardinality label for metrics (the pattern, never the concrete path). */
  handle(ctx: RequestContext): Promise<void>;
  /**
   * Renders this route's errors when its protocol prescribes the body (OTLP: a google.rpc.Status
   * in the request's encoding); the status and headers stay those of `toErrorResponse`.
   */
  renderError?(error: ErrorResponse, req: IncomingMessage): { contentType: string; body: Buffer };
}

interface CompiledRoute extends Route {
  pattern: RegExp;
  names: string[];
}

function compile(route: Route): CompiledRoute {
  const names: string[] = [];
  const source = route.path.replace(/:([a-zA-Z]+)/g, (_m, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return { ...route, pattern: new RegExp(`^${source}$`), names };
}

/** Every route of the HTTP API, in matching order (the first whose path and method match wins). */
export function buildRoutes(deps: AppDeps): Route[] {
  return [
    ...healthRoutes(deps),
    ...eventRoutes(deps),
    ...bedrockRoutes(deps),
    ...otlpRoutes(deps),
    ...usageRoutes(deps),
    ...latencyRoutes(deps),
    ...userRoutes(deps),
    ...ruleRoutes(deps, deps.alerting),
    ...adminRoutes(deps),
    ...(deps.serveLive === false ? [] : liveRoutes(deps)),
    ...dashboardRoutes(deps, { dir: deps.dashboardDir }), // last: every non-API GET path
  ];
}

/** The query spec a route is held to: its own, or none at all for a GET route that names none. */
export function querySpecOf(route: Route): QuerySpec | undefined {
  return route.query ?? (route.method === 'GET' ? NO_QUERY : undefined);
}

function parseRequestUrl(raw: string): URL {
  try {
    return new URL(raw, 'http://localhost');
  } catch {
    throw new TokenwatchError('invalid_argument', 'The request target is not a valid URL path.');
  }
}

/** Builds the request handler of the HTTP API. */
export function createHttpHandler(
  deps: AppDeps,
): (req: IncomingMessage, res: ServerResponse) => void {
  const routes = buildRoutes(deps).map(compile);

  return (req, res) => {
    const requestId = randomUUID();
    res.setHeader('x-request-id', requestId);
    let routeLabel = 'unmatched';
    let matched: CompiledRoute | undefined;
    const finish = () => {
      deps.metrics.httpRequests.inc({ route: routeLabel, status: String(res.statusCode) });
    };
    res.on('finish', finish);
    const run = async () => {
      const url = parseRequestUrl(req.url ?? '/');
      const candidates = routes.filter((r) => r.pattern.test(url.pathname));
      if (candidates.length === 0) {
        throw new TokenwatchError('not_found', `No route for ${url.pathname}.`);
      }
      const route = candidates.find((r) => r.method === req.method);
      if (!route) {
        res.setHeader('allow', candidates.map((r) => r.method).join(', '));
        sendJson(res, 405, {
          error: {
            code: 'method_not_allowed',
            message: `Use ${candidates.map((r) => r.method).join(' or ')}.`,
            requestId,
          },
        });
        return;
      }
      routeLabel = `${route.method} ${route.path}`;
      matched = route;
      const match = route.pattern.exec(url.pathname) as RegExpExecArray;
      const params: Record<string, string> = {};
      for (const [i, name] of route.names.entries()) {
        try {
          params[name] = decodeURIComponent(match[i + 1] as string);
        } catch {
          throw new TokenwatchError(
            'invalid_argument',
            `The path segment for "${name}" is not valid percent-encoding.`,
          );
        }
      }
      const spec = querySpecOf(route);
      const query = spec ? parseQuery(url.searchParams, spec) : new QueryValues(url.searchParams);
      await route.handle({ req, res, url, params, query, requestId });
    };
    run().catch((err: unknown) => {
      const response = toErrorResponse(err, requestId);
      if (response.status >= 500 && !(err instanceof TokenwatchError && err.retryable)) {
        deps.logger.error('request failed', { requestId, route: routeLabel, error: err as Error });
      }
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const render = matched?.renderError;
      const send = render
        ? () => {
            const { contentType, body } = render(response, req);
            sendBytes(res, response.status, body, contentType, response.headers);
          }
        : () => sendJson(res, response.status, response.body, response.headers);
      if (req.complete) {
        send();
        return;
      }
      // The body was refused before it was read (e.g. 413): read and discard the rest first,
      // within bounds, so a client still sending gets the answer instead of a broken pipe; then
      // close the connection, as its framing is lost.
      res.setHeader('connection', 'close');
      drainThen(req, send);
    });
  };
}

const DRAIN_MAX_BYTES = 8 * 1024 * 1024;
const DRAIN_MAX_MS = 5_000;

/** Discards the rest of a request body (at most 8 MiB or 5 s), then calls `done` once. */
function drainThen(req: IncomingMessage, done: () => void): void {
  let called = false;
  let seen = 0;
  const finish = () => {
    if (called) return;
    called = true;
    clearTimeout(timer);
    done();
  };
  const timer = setTimeout(finish, DRAIN_MAX_MS);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > DRAIN_MAX_BYTES) finish();
  });
  req.once('end', finish);
  req.once('error', finish);
  req.once('close', finish);
  req.resume();
}
