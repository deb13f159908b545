import {
  normaliseModel,
  type PricedEvent,
  type RuleCounter,
  type RuleStore,
  ruleMatches,
  scopeKeyOf,
  scopeValues,
  toUserUnit,
  windowFor,
} from '@tokenwatch/core';
import type { Logger } from '../logging/logger.js';
import type { RuleRegistry } from './rule-registry.js';

export interface CheckRequest {
  projectId: string;
  userId: string;
  appId: string;
  modelId: string;
  provider?: string | undefined;
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

export interface CheckResult {
  allowed: boolean;
  /** Why the decision was made without state, when the store could not be read. */
  degraded?: 'fail-open' | 'fail-closed';
  rules: CheckedRule[];
}

const MINUTE_MS = 60_000;

/**
 * Hard budgets: the counters of enforcing rules for their current windows, in memory, kept
 * current by the processor after every commit, so POST /v1/check answers without touching the
 * store. When the state could not be loaded (store unreachable at start-up), the answer follows
 * the configured fail mode: `open` allows, `closed` denies.
 */
export class BudgetEnforcer {
  /** counter key → scope key → bucket start → value. */
  private readonly state = new Map<string, Map<string, Map<number, number>>>();
  private loaded = false;

  constructor(
    private readonly store: Pick<RuleStore, 'readCounters'>,
    private readonly rules: RuleRegistry,
    private readonly failMode: 'open' | 'closed',
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** (Re)loads the current windows of every enforcing rule from the store. */
  async load(): Promise<void> {
    try {
      const nowMs = this.now();
      const fresh = new Map<string, Map<string, Map<number, number>>>();
      for (const compiled of this.rules.all()) {
        if (!compiled.rule.enforce) continue;
        const win = windowFor(nowMs, compiled.rule.window);
        const counters = await this.store.readCounters(compiled.counterKey, win.startMs, win.endMs);
        const byScope = new Map<string, Map<number, number>>();
        for (const c of counters) {
          const buckets = byScope.get(c.scopeKey) ?? new Map<number, number>();
          buckets.set(c.bucketStartMs, c.value);
          byScope.set(c.scopeKey, buckets);
        }
        fresh.set(compiled.counterKey, byScope);
      }
      this.state.clear();
      for (const [k, v] of fresh) this.state.set(k, v);
      this.loaded = true;
    } catch (err) {
      this.logger.error(`budget state could not be loaded; /v1/check fails ${this.failMode}`, {
        error: err as Error,
      });
    }
  }

  /** After a commit: the new values of the counters the batch touched. */
  apply(counters: readonly RuleCounter[]): void {
    for (const c of counters) {
      let byScope = this.state.get(c.ruleId);
      if (!byScope) {
        byScope = new Map();
        this.state.set(c.ruleId, byScope);
      }
      let buckets = byScope.get(c.scopeKey);
      if (!buckets) {
        buckets = new Map();
        byScope.set(c.scopeKey, buckets);
      }
      buckets.set(c.bucketStartMs, c.value);
    }
  }

  check(req: CheckRequest): CheckResult {
    if (!this.loaded) {
      return {
        allowed: this.failMode === 'open',
        degraded: this.failMode === 'open' ? 'fail-open' : 'fail-closed',
        rules: [],
      };
    }
    const nowMs = this.now();
    const ref = normaliseModel(req.provider, req.modelId);
    const probe = {
      projectId: req.projectId,
      userId: req.userId,
      appId: req.appId,
      modelId: ref.modelId,
      provider: ref.provider,
    } as PricedEvent;
    const results: CheckedRule[] = [];
    for (const compiled of this.rules.rulesFor([req.projectId])) {
      const rule = compiled.rule;
      if (!rule.enforce || !ruleMatches(rule, probe)) continue;
      const scopeKey = scopeKeyOf(rule, probe);
      const win = windowFor(nowMs, rule.window);
      const buckets = this.state.get(compiled.counterKey)?.get(scopeKey);
      let used = 0;
      if (buckets) {
        for (const [bucket, value] of buckets) {
          if (
            rule.window.type === 'rolling'
              ? bucket >= win.startMs && bucket < win.endMs
              : bucket === win.startMs
          )
            used += value;
          else if (bucket < win.startMs - (rule.window.type === 'rolling' ? MINUTE_MS : 0))
            buckets.delete(bucket);
        }
      }
      let estimate = 0;
      if (rule.metric === 'requests') estimate = 1;
      else if (rule.metric === 'costUsd') estimate = Math.ceil((req.estimatedCostUsd ?? 0) * 1e9);
      else if (rule.metric !== 'unpricedTokens') estimate = req.estimatedTokens ?? 0;
      const limit = compiled.fullThreshold;
      const exceeded = used >= limit || used + estimate > limit;
      results.push({
        ruleId: rule.id,
        name: rule.name,
        metric: rule.metric,
        scope: scopeValues(rule, scopeKey),
        limit: toUserUnit(rule.metric, limit),
        used: toUserUnit(rule.metric, used),
        remaining: toUserUnit(rule.metric, Math.max(0, limit - used)),
        windowEnd: new Date(win.endMs).toISOString(),
        exceeded,
      });
    }
    return { allowed: results.every((r) => !r.exceeded), rules: results };
  }
}
