import { uuidv7 } from '../util/uuidv7.js';
import { type HttpRequestOptions, type HttpResponse, httpRequest } from './http-client.js';

/** A usage event as a client sends it (wire contract v1). */
export interface WireEvent {
  id: string;
  timestamp: string | number;
  userId: string;
  appId?: string;
  modelId: string;
  provider?: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens?: number;
  cacheWriteTokens?: number;
  latencyMs?: number;
  status?: 'ok' | 'error' | 'no_usage' | 'denied';
  tags?: Record<string, string>;
}

/** The measures of the API's usage rows that a recount from events can reproduce. */
export interface Totals {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  totalTokens: number;
  requests: number;
}

export const ZERO_TOTALS: Readonly<Totals> = Object.freeze({
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  totalTokens: 0,
  requests: 0,
});

/** One row of `GET /v1/usage` (JSON). */
export interface UsageRowJson extends Totals {
  user?: string;
  app?: string;
  model?: string;
  provider?: string;
  bucket?: string;
  errors: number;
  costUsd: number;
  costNanoUsd: string;
  unpricedTokens: number;
  unpricedRequests: number;
  noUsageRequests: number;
  deniedRequests: number;
  [tag: `tag:${string}`]: string | undefined;
}

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** A time-ordered UUIDv7 (what the SDK sends). */
export function newEventId(nowMs: number = Date.now()): string {
  return uuidv7(nowMs);
}

/** A valid event a minute old; override any field. */
export function makeEvent(overrides: Partial<WireEvent> = {}): WireEvent {
  const now = Date.now();
  return {
    id: newEventId(now),
    timestamp: new Date(now - 60_000).toISOString(),
    userId: 'alice',
    appId: 'chat',
    modelId: 'gpt-4o-mini',
    provider: 'openai',
    inputTokens: 100,
    outputTokens: 20,
    ...overrides,
  };
}

export function totalsOfEvent(e: WireEvent): Totals {
  const cr = e.cacheReadTokens ?? 0;
  const cw = e.cacheWriteTokens ?? 0;
  return {
    inputTokens: e.inputTokens,
    outputTokens: e.outputTokens,
    cacheReadTokens: cr,
    cacheWriteTokens: cw,
    totalTokens: e.inputTokens + e.outputTokens + cr + cw,
    requests: 1,
  };
}

export function addTotals(a: Totals, b: Totals): Totals {
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    cacheReadTokens: a.cacheReadTokens + b.cacheReadTokens,
    cacheWriteTokens: a.cacheWriteTokens + b.cacheWriteTokens,
    totalTokens: a.totalTokens + b.totalTokens,
    requests: a.requests + b.requests,
  };
}

/** The recount: what the API must report for exactly these events, each counted once. */
export function sumEvents(events: readonly WireEvent[]): Totals {
  return events.reduce<Totals>((acc, e) => addTotals(acc, totalsOfEvent(e)), { ...ZERO_TOTALS });
}

/** The recountable measures of one API row (drops dimensions, cost and the rest). */
export function pickTotals(row: Totals | undefined): Totals {
  if (!row) return { ...ZERO_TOTALS };
  return {
    inputTokens: row.inputTokens,
    outputTokens: row.outputTokens,
    cacheReadTokens: row.cacheReadTokens,
    cacheWriteTokens: row.cacheWriteTokens,
    totalTokens: row.totalTokens,
    requests: row.requests,
  };
}

/**
 * A query range that holds every acceptable event: day-aligned, from 40 days ago (the accepted
 * window is 35 days) to the day after tomorrow.
 */
export function wholeWindow(nowMs: number = Date.now()): { from: string; to: string } {
  const today = nowMs - (nowMs % DAY_MS);
  return {
    from: new Date(today - 40 * DAY_MS).toISOString(),
    to: new Date(today + 2 * DAY_MS).toISOString(),
  };
}

export type QueryParams = Record<string, string | readonly string[]> | readonly [string, string][];

function toSearch(params: QueryParams): URLSearchParams {
  const search = new URLSearchParams();
  const entries: [string, string | readonly string[]][] = Array.isArray(params)
    ? (params as readonly [string, string][]).map(([k, v]) => [k, v])
    : Object.entries(params as Record<string, string | readonly string[]>);
  for (const [k, v] of entries) {
    if (typeof v === 'string') search.append(k, v);
    else for (const one of v) search.append(k, one);
  }
  return search;
}

/** A thin client of the tokenwatch HTTP API for tests: no retries, every response returned. */
export class TokenwatchApi {
  constructor(readonly url: string) {}

  request(path: string, options: HttpRequestOptions = {}): Promise<HttpResponse> {
    return httpRequest(`${this.url}${path}`, options);
  }

  /** `POST /v1/events`; a non-string, non-Buffer body is sent as JSON. */
  postEvents(
    key: string | undefined,
    body: unknown,
    options: { headers?: Record<string, string | number>; onRequestSent?: () => void } = {},
  ): Promise<HttpResponse> {
    const payload =
      typeof body === 'string' || Buffer.isBuffer(body) ? body : (JSON.stringify(body) ?? '');
    return this.request('/v1/events', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(key === undefined ? {} : { authorization: `Bearer ${key}` }),
        ...options.headers,
      },
      body: payload,
      ...(options.onRequestSent ? { onRequestSent: options.onRequestSent } : {}),
    });
  }

  /** `POST /v1/events` with a body sent in chunks, without a Content-Length. */
  postChunked(
    key: string,
    chunks: readonly (string | Buffer)[],
    headers: Record<string, string> = {},
  ): Promise<HttpResponse> {
    return this.request('/v1/events', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
      body: chunks,
    });
  }

  get(path: string, key?: string, headers: Record<string, string> = {}): Promise<HttpResponse> {
    return this.request(path, {
      headers: { ...(key === undefined ? {} : { authorization: `Bearer ${key}` }), ...headers },
    });
  }

  /**
   * `GET /v1/usage`. `from` and `to` default to {@link wholeWindow} unless given (pass
   * `{ window: false }` to send exactly `params`).
   */
  usage(
    key: string | undefined,
    params: QueryParams = {},
    options: { headers?: Record<string, string>; window?: boolean } = {},
  ): Promise<HttpResponse> {
    const search = toSearch(params);
    if (options.window !== false) {
      const w = wholeWindow();
      if (!search.has('from')) search.set('from', w.from);
      if (!search.has('to')) search.set('to', w.to);
    }
    return this.get(`/v1/usage?${search.toString()}`, key, options.headers);
  }

  /** The rows of a usage query that must succeed. */
  async usageRows(key: string, params: QueryParams = {}): Promise<UsageRowJson[]> {
    const res = await this.usage(key, params);
    if (res.status !== 200) throw new Error(`GET /v1/usage: ${res.status} ${res.text}`);
    return res.json<{ rows: UsageRowJson[] }>().rows;
  }

  /** Everything the key's project has stored over the whole window, as one total. */
  async storedTotals(key: string, params: QueryParams = {}): Promise<Totals> {
    const rows = await this.usageRows(key, params);
    if (rows.length > 1) throw new Error(`expected at most one row, got ${rows.length}`);
    return pickTotals(rows[0]);
  }

  /** Per-user totals over the whole window. */
  async totalsByUser(key: string, params: QueryParams = {}): Promise<Map<string, Totals>> {
    const rows = await this.usageRows(key, { groupBy: 'user', limit: '10000', ...params });
    return new Map(rows.map((r) => [r.user as string, pickTotals(r)]));
  }
}

/** Per-user recount of events. */
export function sumByUser(events: readonly WireEvent[]): Map<string, Totals> {
  const out = new Map<string, Totals>();
  for (const e of events) {
    out.set(e.userId, addTotals(out.get(e.userId) ?? { ...ZERO_TOTALS }, totalsOfEvent(e)));
  }
  return out;
}

/** Reads one sample of a Prometheus text exposition, e.g. `name{reason="x"}`; 0 when absent. */
export function metricValue(metricsText: string, sample: string): number {
  for (const line of metricsText.split('\n')) {
    if (line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    if (space > 0 && line.slice(0, space) === sample) return Number(line.slice(space + 1));
  }
  return 0;
}

/** A small seeded PRNG (mulberry32), so generated loads are the same on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
