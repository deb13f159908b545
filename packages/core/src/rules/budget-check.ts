import type { CompiledRule } from './evaluate.js';
import { scopeValues } from './evaluate.js';
import { toUserUnit } from './parse-rule.js';
import type { RuleWindow } from './rule.js';
import { windowFor } from './windows.js';

/** A call about to be made, as `POST /v1/check` describes it. */
export interface BudgetRequest {
  /** Tokens the call is expected to use; counted against token budgets. */
  estimatedTokens?: number | undefined;
  /** Expected cost in USD; counted against cost budgets. */
  estimatedCostUsd?: number | undefined;
}

export interface CheckedRule {
  ruleId: string;
  name: string;
  metric: string;
  scope: Record<string, string>;
  limit: number;
  used: number;
  remaining: number;
  windowEnd: string;
  exceeded: boolean;
}

/**
 * The counter buckets that make a rule's CURRENT value at `nowMs`: bucket starts in
 * [fromMs, toMs] (the calendar window's start, or the N minutes ending with the current one).
 */
export function currentBuckets(
  window: RuleWindow,
  nowMs: number,
): { fromMs: number; toMs: number; windowEndMs: number } {
  const win = windowFor(nowMs, window);
  if (window.type === 'rolling')
    return { fromMs: win.startMs, toMs: win.endMs - 60_000, windowEndMs: win.endMs };
  return { fromMs: win.startMs, toMs: win.startMs, windowEndMs: win.endMs };
}

/** What the call would add to a rule's metric, in base units. */
export function estimateFor(compiled: CompiledRule, request: BudgetRequest): number {
  switch (compiled.rule.metric) {
    case 'requests':
      return 1;
    case 'costUsd':
      return Math.ceil((request.estimatedCostUsd ?? 0) * 1e9);
    case 'unpricedTokens':
      return 0;
    default:
      return request.estimatedTokens ?? 0;
  }
}

/**
 * An enforcing rule's answer for one scope key: denied when its 100 % (the budget, or the top
 * level) is reached, or would be passed by the estimate. `used` is the rule's current value
 * (the sum of `currentBuckets`), in base units.
 */
export function checkBudget(
  compiled: CompiledRule,
  scopeKey: string,
  used: number,
  request: BudgetRequest,
  nowMs: number,
): CheckedRule {
  const rule = compiled.rule;
  const limit = compiled.fullThreshold;
  const estimate = estimateFor(compiled, request);
  return {
    ruleId: rule.id,
    name: rule.name,
    metric: rule.metric,
    scope: scopeValues(rule, scopeKey),
    limit: toUserUnit(rule.metric, limit),
    used: toUserUnit(rule.metric, used),
    remaining: toUserUnit(rule.metric, Math.max(0, limit - used)),
    windowEnd: new Date(currentBuckets(rule.window, nowMs).windowEndMs).toISOString(),
    exceeded: used >= limit || used + estimate > limit,
  };
}
