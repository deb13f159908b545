import { TokenwatchError } from './errors.js';
import { LIMITS } from './event.js';
import type { FetchLike } from './http-transport.js';

/** What `check()` asks: who is about to call which model, and how much the call may use. */
export interface CheckRequest {
  /** Default: the client's `userId` ("anonymous"). */
  userId?: string;
  /** Default: the client's `appId` (omit both when the key is bound to an app). */
  appId?: string;
  modelId: string;
  provider?: string;
  /** Tokens the call is expected to use, counted against token budgets. */
  estimatedTokens?: number;
  /** Expected cost in USD, counted against cost budgets. */
  estimatedCostUsd?: number;
  tags?: Record<string, string>;
}

/** One enforcing rule that applies to the call, as `POST /v1/check` reports it. */
export interface CheckedRule {
  ruleId: string;
  name: string;
  metric: string;
  scope: Record<string, string>;
  /** In the metric's unit: tokens, requests, or USD. */
  limit: number;
  used: number;
  remaining: number;
  /** ISO 8601: when the rule's current window ends. */
  windowEnd: string;
  /** Whether this rule refuses the call (reached, or passed by the estimate). */
  exceeded: boolean;
}

/**
 * Where an answer came from: `server` (asked now), `cache` (the server's answer for the same
 * user, app and model less than `cacheMs` ago), `fail-open` / `fail-closed` (the collector could
 * not answer in time, or recently could not: the fail mode decided).
 */
export type CheckSource = 'server' | 'cache' | 'fail-open' | 'fail-closed';

export interface CheckResult {
  allowed: boolean;
  /** Whose budget was checked: the request's user and app, or the client's defaults. */
  subject: { userId: string; appId: string | undefined };
  /** The enforcing rules that apply, with their state; empty when none do or on a failure. */
  rules: CheckedRule[];
  source: CheckSource;
  /** The server's own fail mode, when it answered without its budget state. */
  degraded?: 'fail-open' | 'fail-closed';
  /** Why the collector gave no answer (`fail-open` / `fail-closed`). */
  error?: TokenwatchError;
}

export interface CheckOptions {
  /** How long to wait for the collector. Default: the client's `check.timeoutMs`. */
  timeoutMs?: number;
  /** What to answer when the collector cannot. Default: the client's `check.failMode`. */
  failMode?: 'open' | 'closed';
}

export interface BudgetCheckOptions {
  /** Collector base URL (`/v1/check` is appended). Default: the client's `endpoint`. */
  endpoint?: string;
  /** An ingest (or admin) key. Default: the client's `apiKey`. */
  apiKey?: string;
  /** Per check. Default 50 ms. */
  timeoutMs?: number;
  /** How long an answer (or a failure) is reused for the same user, app and model. Default 1000 ms. */
  cacheMs?: number;
  /** Default `open`: allow when the collector cannot answer. `closed` refuses. */
  failMode?: 'open' | 'closed';
  /** Cached (user, app, model) answers kept at most. Default 10 000. */
  maxCacheEntries?: number;
}

/** The server's state of one (user, app, model), or the failure to get it, at `atMs`. */
interface Entry {
  atMs: number;
  /** Earliest end of the rules' windows: the state is stale from then on. */
  staleAtMs: number;
  rules?: CheckedRule[];
  /** The server answered without state (its own fail mode). */
  degraded?: { allowed: boolean; mode: 'fail-open' | 'fail-closed' };
  error?: TokenwatchError;
  /** The request in flight that will refresh this entry. */
  pending?: Promise<Entry>;
}

export interface BudgetChecker {
  check(req: CheckRequest, opts?: CheckOptions): Promise<CheckResult>;
  /** The answer `check()` would give from its cache right now, or undefined: no I/O. */
  checkCached(req: CheckRequest, opts?: CheckOptions): CheckResult | undefined;
}

function positive(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value >= 0 ? value : fallback;
}

/** A rule's estimate in its metric's unit, as the server counts it (README, POST /v1/check). */
function estimateFor(metric: string, req: CheckRequest): number {
  if (metric === 'requests') return 1;
  if (metric === 'costUsd') return req.estimatedCostUsd ?? 0;
  if (metric === 'unpricedTokens') return 0;
  return req.estimatedTokens ?? 0;
}

function isCheckedRule(r: unknown): r is CheckedRule {
  const x = r as CheckedRule;
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.ruleId === 'string' &&
    typeof x.limit === 'number' &&
    typeof x.used === 'number' &&
    typeof x.windowEnd === 'string' &&
    typeof x.exceeded === 'boolean'
  );
}

/**
 * The budget check of `POST /v1/check`, made cheap enough to run before every LLM call: one
 * request with a short timeout, answers reused per (user, app, model) for `cacheMs` (the
 * estimate is applied to the cached state again for each call), one request in flight per key,
 * and a fail mode when the collector cannot answer. It never throws or rejects.
 */
export function createBudgetChecker(
  options: Omit<BudgetCheckOptions, 'endpoint' | 'apiKey'> & {
    endpoint: string | undefined;
    apiKey: string | undefined;
    defaults: { userId: string; appId: string | undefined };
    fetch: FetchLike | undefined;
    now: () => number;
    onError: (error: TokenwatchError) => void;
  },
): BudgetChecker {
  const url = options.endpoint ? `${options.endpoint.replace(/\/+$/, '')}/v1/check` : undefined;
  const timeoutMs = positive(options.timeoutMs, 50);
  const cacheMs = positive(options.cacheMs, 1000);
  const failMode = options.failMode === 'closed' ? 'closed' : 'open';
  const maxEntries = Math.max(1, Math.floor(positive(options.maxCacheEntries, 10_000)));
  const cache = new Map<string, Entry>();
  const now = options.now;

  const identity = (req: CheckRequest) => ({
    userId: req.userId || options.defaults.userId,
    appId: req.appId || options.defaults.appId,
  });
  const keyOf = (req: CheckRequest, who: ReturnType<typeof identity>): string =>
    `${who.userId}\u0000${who.appId ?? ''}\u0000${req.modelId}\u0000${req.provider ?? ''}`;

  const failed = (
    error: TokenwatchError,
    mode: 'open' | 'closed',
    subject: CheckResult['subject'],
  ): CheckResult => ({
    allowed: mode === 'open',
    subject,
    rules: [],
    source: mode === 'open' ? 'fail-open' : 'fail-closed',
    error,
  });

  /** The answer for `req` from an entry: the estimate applied to the server's state. */
  const answer = (
    entry: Entry,
    req: CheckRequest,
    subject: CheckResult['subject'],
    source: 'server' | 'cache',
    mode: 'open' | 'closed',
  ): CheckResult => {
    if (entry.error) return failed(entry.error, mode, subject);
    if (entry.degraded) {
      const { allowed, mode: degraded } = entry.degraded;
      return { allowed, subject, rules: [], source, degraded };
    }
    const rules = (entry.rules ?? []).map((r) => {
      const estimate = estimateFor(r.metric, req);
      return { ...r, exceeded: r.used >= r.limit || r.used + estimate > r.limit };
    });
    return { allowed: rules.every((r) => !r.exceeded), subject, rules, source };
  };

  const fresh = (entry: Entry, nowMs: number): boolean =>
    nowMs - entry.atMs < cacheMs && nowMs < entry.staleAtMs;

  const remember = (key: string, entry: Entry): void => {
    cache.delete(key); // re-inserted last: the oldest key is the first to go
    if (cache.size >= maxEntries) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
    cache.set(key, entry);
  };

  const ask = async (
    req: CheckRequest,
    who: ReturnType<typeof identity>,
    waitMs: number,
  ): Promise<Entry> => {
    const atMs = now();
    const failure = (error: TokenwatchError): Entry => {
      options.onError(error);
      return { atMs, staleAtMs: Number.POSITIVE_INFINITY, error };
    };
    const doFetch = options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
    if (!url || !options.apiKey) {
      return failure(new TokenwatchError('check_failed', 'no endpoint or apiKey to check with'));
    }
    if (!doFetch) return failure(new TokenwatchError('no_fetch', 'no fetch in this runtime'));
    const body: Record<string, unknown> = { userId: who.userId, modelId: req.modelId };
    if (who.appId !== undefined) body.appId = who.appId;
    if (req.provider !== undefined) body.provider = req.provider;
    if (req.estimatedTokens !== undefined) body.estimatedTokens = req.estimatedTokens;
    if (req.estimatedCostUsd !== undefined) body.estimatedCostUsd = req.estimatedCostUsd;
    if (req.tags && Object.keys(req.tags).length > 0) body.tags = req.tags;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), waitMs);
    try {
      const res = await doFetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${options.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: ac.signal,
      });
      const text = await res.text();
      if (res.status !== 200) {
        return failure(
          new TokenwatchError(
            'check_failed',
            `POST /v1/check: ${res.status} ${text.slice(0, 300)}`,
            {
              status: res.status,
              retryable: res.status >= 500 || res.status === 429,
            },
          ),
        );
      }
      const parsed = JSON.parse(text) as {
        allowed?: unknown;
        rules?: unknown;
        degraded?: unknown;
      };
      if (typeof parsed.allowed !== 'boolean' || !Array.isArray(parsed.rules)) {
        return failure(new TokenwatchError('check_failed', 'POST /v1/check: not a check answer'));
      }
      if (parsed.degraded === 'fail-open' || parsed.degraded === 'fail-closed') {
        return {
          atMs,
          staleAtMs: Number.POSITIVE_INFINITY,
          degraded: { allowed: parsed.allowed, mode: parsed.degraded },
        };
      }
      const rules = parsed.rules.filter(isCheckedRule);
      let staleAtMs = Number.POSITIVE_INFINITY;
      for (const r of rules) {
        const end = Date.parse(r.windowEnd);
        if (Number.isFinite(end) && end < staleAtMs) staleAtMs = end;
      }
      return { atMs, staleAtMs, rules };
    } catch (cause) {
      const timedOut = ac.signal.aborted;
      return failure(
        new TokenwatchError(
          timedOut ? 'timeout' : 'network',
          timedOut
            ? `POST /v1/check: no answer within ${waitMs} ms`
            : `POST /v1/check: ${(cause as Error)?.message ?? cause}`,
          { retryable: true, cause },
        ),
      );
    } finally {
      clearTimeout(timer);
    }
  };

  const invalid = (req: CheckRequest, who: ReturnType<typeof identity>): string | undefined => {
    if (typeof req?.modelId !== 'string' || req.modelId === '') return 'modelId';
    if (req.modelId.length > LIMITS.modelIdMaxLength) return 'modelId';
    if (typeof who.userId !== 'string' || who.userId.length > LIMITS.userIdMaxLength)
      return 'userId';
    return undefined;
  };

  return {
    checkCached(req, opts = {}) {
      try {
        const who = identity(req);
        if (invalid(req, who)) return undefined;
        const entry = cache.get(keyOf(req, who));
        if (!entry || !fresh(entry, now())) return undefined;
        return answer(entry, req, who, 'cache', opts.failMode ?? failMode);
      } catch {
        return undefined;
      }
    },

    async check(req, opts = {}) {
      const mode = opts.failMode ?? failMode;
      let who: CheckResult['subject'] = { userId: options.defaults.userId, appId: undefined };
      try {
        who = identity(req);
        const bad = invalid(req, who);
        if (bad) {
          const error = new TokenwatchError('invalid_event', `check: ${bad} is missing or invalid`);
          options.onError(error);
          return failed(error, mode, who);
        }
        const key = keyOf(req, who);
        const cached = cache.get(key);
        if (cached && fresh(cached, now())) return answer(cached, req, who, 'cache', mode);
        // One request per key at a time: the calls that arrive meanwhile share its answer.
        let pending = cached?.pending;
        const mine = pending === undefined;
        if (!pending) {
          pending = ask(req, who, positive(opts.timeoutMs, timeoutMs));
          if (cached) cached.pending = pending;
          else remember(key, { atMs: Number.NEGATIVE_INFINITY, staleAtMs: 0, pending });
          pending.then(
            (e: Entry) => remember(key, e),
            () => cache.delete(key),
          );
        }
        const entry = await pending;
        return answer(entry, req, who, mine ? 'server' : 'cache', mode);
      } catch (cause) {
        const error = new TokenwatchError(
          'check_failed',
          `check failed: ${(cause as Error)?.message}`,
          {
            cause,
          },
        );
        options.onError(error);
        return failed(error, mode, who);
      }
    },
  };
}
