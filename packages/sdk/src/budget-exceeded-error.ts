import type { CheckedRule, CheckSource } from './budget-check.js';

/** Who and what a refused call was for. */
export interface DeniedCall {
  userId: string;
  appId: string | undefined;
  modelId: string;
}

/**
 * Thrown by an integration with `enforce` when a budget rule denies a call, before the provider
 * receives anything (the attempt is recorded with `status: "denied"`). Catch it to show the end
 * user a friendly message: `retryAfterMs` says when the blocking windows end.
 */
export class BudgetExceededError extends Error {
  readonly code = 'budget_exceeded';
  /** The rules that refused the call (empty when the guard failed closed). */
  readonly rules: readonly CheckedRule[];
  readonly ruleIds: readonly string[];
  /** The first refusing rule's limit and usage, in its unit (tokens, requests or USD). */
  readonly limit: number | undefined;
  readonly used: number | undefined;
  /** When the last refusing window ends (ISO 8601), and how long until then. */
  readonly windowEnd: string | undefined;
  readonly retryAfterMs: number | undefined;
  /** `server` or `cache`: a rule said no; `fail-closed`: the collector could not answer in time. */
  readonly source: CheckSource;
  readonly call: DeniedCall;

  constructor(call: DeniedCall, rules: readonly CheckedRule[], source: CheckSource, nowMs: number) {
    const blocking = rules.filter((r) => r.exceeded);
    const first = blocking[0];
    let end: number | undefined;
    for (const r of blocking) {
      const t = Date.parse(r.windowEnd);
      if (Number.isFinite(t) && (end === undefined || t > end)) end = t;
    }
    super(
      first
        ? `budget exceeded for user "${call.userId}" on ${call.modelId}: rule "${first.name}" (${first.ruleId}) used ${first.used} of ${first.limit} ${first.metric} until ${first.windowEnd}`
        : `the budget of user "${call.userId}" could not be checked and the guard fails closed`,
    );
    this.name = 'BudgetExceededError';
    this.rules = blocking;
    this.ruleIds = blocking.map((r) => r.ruleId);
    this.limit = first?.limit;
    this.used = first?.used;
    this.windowEnd = end === undefined ? undefined : new Date(end).toISOString();
    this.retryAfterMs = end === undefined ? undefined : Math.max(0, end - nowMs);
    this.source = source;
    this.call = call;
  }
}
