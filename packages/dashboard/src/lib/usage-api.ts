import type { Filters } from './url-state.js';

/** One row of `GET /v1/usage` (README, "GET /v1/usage"). */
export interface UsageRow {
  user?: string;
  app?: string;
  model?: string;
  provider?: string;
  bucket?: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  totalTokens: number;
  requests: number;
  errors: number;
  costUsd: number;
  costNanoUsd: string;
  unpricedTokens: number;
  unpricedRequests: number;
  /** Calls whose usage never arrived (README, "Statuses"). */
  noUsageRequests: number;
  /** Calls a budget guard refused; not in `requests`. */
  deniedRequests: number;
  [tag: `tag:${string}`]: string | undefined;
}

export interface UsageResponse {
  rows: UsageRow[];
  query: { from: string; to: string; interval: string | null; resolution: string; limit: number };
}

export type Dimension = 'user' | 'app' | 'model' | 'provider';

export interface UsageRequest {
  fromMs: number;
  toMs: number;
  interval?: 'minute' | 'hour' | 'day' | undefined;
  groupBy?: Dimension[];
  filters: Filters;
  /** Replaces the filter of one dimension (e.g. "these top users"), intersected by the caller. */
  only?: Partial<Record<'app' | 'model' | 'user', string[]>>;
  orderBy?: 'totalTokens' | 'costUsd' | 'requests' | 'unpricedTokens' | 'bucket';
  order?: 'asc' | 'desc';
  limit?: number;
}

/** One row of `GET /v1/latency` (README, "GET /v1/latency"). */
export interface LatencyRow {
  app?: string;
  model?: string;
  timedRequests: number;
  p50Ms: number;
  p95Ms: number;
  histogram: number[];
}

export interface LatencyResponse {
  rows: LatencyRow[];
  bucketBoundsMs: number[];
}

/** The API's row cap; a response this long may be cut. */
export const MAX_ROWS = 10_000;

/** Query-string parameters of a usage request, in a stable order (tests build the same). */
export function usageParams(r: UsageRequest): URLSearchParams {
  const q = new URLSearchParams();
  q.set('from', new Date(r.fromMs).toISOString());
  q.set('to', new Date(r.toMs).toISOString());
  if (r.interval) q.set('interval', r.interval);
  if (r.groupBy && r.groupBy.length > 0) q.set('groupBy', r.groupBy.join(','));
  for (const dim of ['app', 'model', 'user'] as const) {
    const values = r.only?.[dim] ?? r.filters[dim];
    for (const v of values) q.append(dim, v);
  }
  if (r.filters.tag) q.set(`tag.${r.filters.tag.key}`, r.filters.tag.value);
  if (r.orderBy) q.set('orderBy', r.orderBy);
  if (r.order) q.set('order', r.order);
  q.set('limit', String(r.limit ?? MAX_ROWS));
  return q;
}

/** One problem the server found in a request (`error.details[]`). */
export interface ApiIssue {
  field: string;
  reason: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: ApiIssue[] = [],
  ) {
    super(message);
  }
}

/** What a panel says instead of the browser's bare "Failed to fetch". */
export const UNREACHABLE_MESSAGE =
  'Cannot reach the tokenwatch server (stopped or restarting); showing the last data, retrying.';

/** The server's message with each field it named: "The rule is invalid. levels[0].value: must be…". */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) {
    const parts = err.details.map((d) => `${d.field}: ${d.reason}`);
    return [err.message, ...parts].join(' ');
  }
  return err instanceof Error ? err.message : String(err);
}

export interface UserSearchResponse {
  /** Usage rows with `user` set, most tokens first. */
  users: UsageRow[];
  /** More users match than were returned. */
  more: boolean;
}

export interface WhoAmI {
  projectId: string;
  keyId: string;
  role: 'admin' | 'read' | 'ingest';
  appId: string | null;
}

/** A thin client of the tokenwatch HTTP API; the key travels in the Authorization header. */
export class ApiClient {
  /** Called on 401: the key was revoked or is wrong. */
  onUnauthorized: (() => void) | undefined;
  /** Called after every request: whether the server answered (false: network error or 502–504). */
  onReachability: ((reached: boolean) => void) | undefined;
  /** Requests that could not reach the server, since the page opened. */
  unreachableCount = 0;
  /**
   * Requests that failed in a way that may pass by itself (unreachable, 429, 5xx), since the page
   * opened: the shell retries a refresh that met one (`FailureRetry`).
   */
  transientFailureCount = 0;

  constructor(
    readonly baseUrl: string,
    private readonly key: string,
  ) {}

  async request<T>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    options: { params?: URLSearchParams; body?: unknown; signal?: AbortSignal } = {},
  ): Promise<T> {
    const url = `${this.baseUrl}${path}${options.params ? `?${options.params}` : ''}`;
    const headers: Record<string, string> = { authorization: `Bearer ${this.key}` };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const init: RequestInit = { method, headers };
    if (options.body !== undefined) init.body = JSON.stringify(options.body);
    if (options.signal) init.signal = options.signal;
    let res: Response;
    try {
      res = await fetch(url, init);
    } catch (err) {
      if (options.signal?.aborted) throw err;
      this.unreachableCount++;
      this.transientFailureCount++;
      this.onReachability?.(false);
      throw new ApiError(0, 'unreachable', UNREACHABLE_MESSAGE);
    }
    if (res.ok) this.onReachability?.(true);
    else {
      let code = 'http_error';
      let message = `${res.status} ${res.statusText}`;
      let details: ApiIssue[] = [];
      try {
        const body = (await res.json()) as {
          error?: { code?: string; message?: string; details?: ApiIssue[] };
        };
        code = body.error?.code ?? code;
        message = body.error?.message ?? message;
        details = Array.isArray(body.error?.details) ? body.error.details : [];
      } catch {
        // not JSON
      }
      // A proxy's 502–504, or the server's own 503 while it shuts down (not an overload's 503):
      // the server is (about to be) away.
      const away = res.status >= 502 && res.status <= 504 && code !== 'overloaded';
      if (away) this.unreachableCount++;
      if (res.status === 429 || res.status >= 500) this.transientFailureCount++;
      this.onReachability?.(!away);
      if (res.status === 401) this.onUnauthorized?.();
      throw new ApiError(res.status, code, message, details);
    }
    return (await res.json()) as T;
  }

  usage(r: UsageRequest, signal?: AbortSignal): Promise<UsageResponse> {
    return this.request<UsageResponse>('GET', '/v1/usage', {
      params: usageParams(r),
      ...(signal ? { signal } : {}),
    });
  }

  /**
   * `GET /v1/latency`: p50/p95 per group over the range (no interval, no order: most calls
   * first). The histograms are not kept per tag: the caller must not pass a tag filter.
   */
  latency(
    r: Omit<UsageRequest, 'interval' | 'orderBy' | 'order'>,
    signal?: AbortSignal,
  ): Promise<LatencyResponse> {
    return this.request<LatencyResponse>('GET', '/v1/latency', {
      params: usageParams(r),
      ...(signal ? { signal } : {}),
    });
  }

  /** How many rows `usage` would return without its limit (e.g. distinct users with groupBy user). */
  async count(r: UsageRequest, signal?: AbortSignal): Promise<number> {
    const params = usageParams(r);
    params.delete('limit');
    const res = await this.request<{ count: number }>('GET', '/v1/usage/count', {
      params,
      ...(signal ? { signal } : {}),
    });
    return res.count;
  }

  /** `GET /v1/users`: users of the range whose id starts with `prefix` (all of them, not the top N). */
  searchUsers(
    r: { prefix: string; fromMs: number; toMs: number; limit: number },
    signal?: AbortSignal,
  ): Promise<UserSearchResponse> {
    const params = new URLSearchParams({
      prefix: r.prefix,
      limit: String(r.limit),
      from: new Date(r.fromMs).toISOString(),
      to: new Date(r.toMs).toISOString(),
    });
    return this.request<UserSearchResponse>('GET', '/v1/users', {
      params,
      ...(signal ? { signal } : {}),
    });
  }

  whoami(): Promise<WhoAmI> {
    return this.request<WhoAmI>('GET', '/v1/whoami');
  }
}
