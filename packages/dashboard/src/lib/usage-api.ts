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

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
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

  constructor(
    readonly baseUrl: string,
    private readonly key: string,
  ) {}

  async request<T>(
    method: 'GET' | 'POST',
    path: string,
    options: { params?: URLSearchParams; body?: unknown; signal?: AbortSignal } = {},
  ): Promise<T> {
    const url = `${this.baseUrl}${path}${options.params ? `?${options.params}` : ''}`;
    const headers: Record<string, string> = { authorization: `Bearer ${this.key}` };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const init: RequestInit = { method, headers };
    if (options.body !== undefined) init.body = JSON.stringify(options.body);
    if (options.signal) init.signal = options.signal;
    const res = await fetch(url, init);
    if (!res.ok) {
      let code = 'http_error';
      let message = `${res.status} ${res.statusText}`;
      try {
        const body = (await res.json()) as { error?: { code?: string; message?: string } };
        code = body.error?.code ?? code;
        message = body.error?.message ?? message;
      } catch {
        // not JSON
      }
      if (res.status === 401) this.onUnauthorized?.();
      throw new ApiError(res.status, code, message);
    }
    return (await res.json()) as T;
  }

  usage(r: UsageRequest, signal?: AbortSignal): Promise<UsageResponse> {
    return this.request<UsageResponse>('GET', '/v1/usage', {
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

  whoami(): Promise<WhoAmI> {
    return this.request<WhoAmI>('GET', '/v1/whoami');
  }
}
