import type { CheckRequest, CheckResult } from '../budget-check.js';
import { BudgetExceededError } from '../budget-exceeded-error.js';
import type { Tokenwatch } from '../client-options.js';
import type { UsageRecord } from '../event.js';

/** What an estimate may depend on: the call about to be made. */
export interface GuardedCall {
  userId: string | undefined;
  appId: string | undefined;
  modelId: string;
  provider: string | undefined;
  /** The request as the integration sees it (OpenAI/Anthropic body, Bedrock command input, …). */
  params: unknown;
}

export interface Estimate {
  estimatedTokens?: number;
  estimatedCostUsd?: number;
}

/** `enforce: true` takes the client's check settings; an object overrides them per integration. */
export interface EnforceOptions {
  /** What to do when the collector cannot answer in time. Default: the client's (`open`). */
  failMode?: 'open' | 'closed';
  /** Default: the client's `check.timeoutMs` (50 ms). */
  timeoutMs?: number;
  /** Expected usage of the call, counted against the budgets (default: none, so a call is refused once the budget is reached). */
  estimate?: Estimate | ((call: GuardedCall) => Estimate | undefined);
}

/** The tag a denied call's event carries: why it was denied. */
export const DENIED_TAG = 'tokenwatch.denied';

type Checker = Pick<Tokenwatch, 'record' | 'check' | 'checkCached'>;

/**
 * The budget guard every integration runs before the provider is called, for one call:
 * `peek` decides from the cache alone (so a wrapper can keep returning the SDK's own promise
 * object on a hit); `check` asks the collector. A denial records the attempt (`status:
 * "denied"`, no tokens) and gives the `BudgetExceededError` to throw.
 */
export interface GuardedCallCheck {
  /** `true`: allowed; an error: denied (already recorded); undefined: not in the cache. */
  peek(): true | BudgetExceededError | undefined;
  /** Resolves when allowed; rejects with the (recorded) `BudgetExceededError` when denied. */
  check(): Promise<void>;
}

export interface BudgetGuard {
  /** The check of one call: `base` is its attributed record, `params` what the estimate sees. */
  call(base: UsageRecord, params: unknown): GuardedCallCheck;
}

export function createBudgetGuard(
  tokenwatch: Partial<Checker>,
  enforce: boolean | EnforceOptions | undefined,
): BudgetGuard | undefined {
  if (!enforce) return undefined;
  if (typeof tokenwatch.check !== 'function' || typeof tokenwatch.checkCached !== 'function') {
    throw new TypeError('enforce needs a tokenwatch client from createTokenwatch() (with check())');
  }
  const client = tokenwatch as Checker;
  const opts: EnforceOptions = enforce === true ? {} : enforce;
  const checkOpts: { failMode?: 'open' | 'closed'; timeoutMs?: number } = {};
  if (opts.failMode) checkOpts.failMode = opts.failMode;
  if (opts.timeoutMs !== undefined) checkOpts.timeoutMs = opts.timeoutMs;

  const requestOf = (base: UsageRecord, params: unknown): CheckRequest => {
    const req: CheckRequest = { modelId: base.modelId };
    if (base.userId !== undefined) req.userId = base.userId;
    if (base.appId !== undefined) req.appId = base.appId;
    if (base.provider !== undefined) req.provider = base.provider;
    if (base.tags) {
      const tags: Record<string, string> = {};
      for (const [k, v] of Object.entries(base.tags)) if (v !== undefined) tags[k] = String(v);
      req.tags = tags;
    }
    let estimate: Estimate | undefined;
    try {
      estimate =
        typeof opts.estimate === 'function'
          ? opts.estimate({
              userId: base.userId,
              appId: base.appId,
              modelId: base.modelId,
              provider: base.provider,
              params,
            })
          : opts.estimate;
    } catch {
      estimate = undefined; // a throwing estimator must not block or break the call
    }
    if (estimate?.estimatedTokens !== undefined) req.estimatedTokens = estimate.estimatedTokens;
    if (estimate?.estimatedCostUsd !== undefined) req.estimatedCostUsd = estimate.estimatedCostUsd;
    return req;
  };

  const deny = (base: UsageRecord, result: CheckResult): BudgetExceededError => {
    const error = new BudgetExceededError(
      { ...result.subject, modelId: base.modelId },
      result.rules,
      result.source,
      Date.now(),
    );
    try {
      client.record({
        ...base,
        inputTokens: 0,
        outputTokens: 0,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        status: 'denied',
        latencyMs: 0,
        tags: {
          ...base.tags,
          [DENIED_TAG]: result.source === 'fail-closed' ? 'fail-closed' : 'budget',
        },
      });
    } catch {
      // recording never stands in the way of the answer
    }
    return error;
  };

  return {
    call(base, params) {
      const req = requestOf(base, params);
      return {
        peek() {
          const result = client.checkCached(req, checkOpts);
          if (!result) return undefined;
          return result.allowed ? true : deny(base, result);
        },
        async check() {
          const result = await client.check(req, checkOpts);
          if (!result.allowed) throw deny(base, result);
        },
      };
    },
  };
}
