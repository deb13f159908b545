import {
  type CheckedRule,
  checkBudget,
  currentBuckets,
  normaliseModel,
  type PricedEvent,
  type RuleCounter,
  type RuleStore,
  ruleMatches,
  scopeKeyOf,
} from '@tokenwatch/core';
import type { Logger } from '../logging/logger.js';
import type { RuleRegistry } from './rule-registry.js';

export type { CheckedRule } from '@tokenwatch/core';

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

export interface CheckResult {
  allowed: boolean;
  /** Why the decision was made without state, when the store could not be read. */
  degraded?: 'fail-open' | 'fail-closed';
  rules: CheckedRule[];
}

export interface BudgetEnforcerOptions {
  failMode: 'open' | 'closed';
  /**
   * How long a counter read from the store answers checks before it is read again. Commits of
   * this process update it at once (embedded mode); other writers (scale-out workers, the AWS
   * queue function) are seen within this time after they commit.
   */
  cacheMs: number;
}

/** One scope key's counter buckets of one counter key, as last read or committed. */
interface Entry {
  buckets: Map<number, number>;
  fromMs: number;
  toMs: number;
  readAtMs: number;
  /** Set when a commit of this process changed the entry while a read was in flight. */
  touched: boolean;
}

/**
 * Hard budgets (`POST /v1/check`): for each enforcing rule that matches the call, the rule's
 * current value for the caller's scope key, read from the store's counters through a short
 * cache, against its 100 %. This process's own commits update the cache at once, so in
 * embedded mode a check sees every event that got its 202; in scale-out and on AWS the counters
 * are written by workers, and a check sees them within `cacheMs` of their commit. When the
 * store cannot be read, the answer follows the fail mode: `open` allows, `closed` denies.
 */
export class BudgetEnforcer {
  private readonly cache = new Map<string, Entry>();
  private readonly reads = new Map<string, Promise<void>>();

  constructor(
    private readonly store: Pick<RuleStore, 'readCounters' | 'readEnforcedCounters'>,
    private readonly rules: RuleRegistry,
    private readonly options: BudgetEnforcerOptions,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Forgets every cached counter (a rule changed: its counters may have been rebuilt). */
  invalidate(): void {
    this.cache.clear();
  }

  /** After a commit of this process: the new values of the counters the batch touched. */
  apply(counters: readonly RuleCounter[]): void {
    for (const c of counters) {
      const entry = this.cache.get(`${c.ruleId}\u0000${c.scopeKey}`);
      if (!entry || c.bucketStartMs < entry.fromMs || c.bucketStartMs > entry.toMs) continue;
      // Counters only grow between rule changes: the larger value is the later one.
      entry.buckets.set(
        c.bucketStartMs,
        Math.max(entry.buckets.get(c.bucketStartMs) ?? 0, c.value),
      );
      entry.touched = true;
    }
  }

  private async refresh(
    key: string,
    counterKey: string,
    scopeKey: string,
    fromMs: number,
    toMs: number,
  ): Promise<void> {
    const pending = this.reads.get(key);
    if (pending) return pending;
    const read = (async () => {
      // Commits that land while the read is in flight are recorded here and merged below.
      const previous = this.cache.get(key);
      if (previous && previous.fromMs === fromMs && previous.toMs === toMs)
        previous.touched = false;
      else
        this.cache.set(key, {
          buckets: new Map(),
          fromMs,
          toMs,
          readAtMs: Number.NEGATIVE_INFINITY,
          touched: false,
        });
      const readAtMs = this.now();
      // The store's own thread when it can (no queue behind the writer), else the store.
      const rows =
        this.store.readEnforcedCounters?.(counterKey, fromMs, toMs + 1, scopeKey) ??
        (await this.store.readCounters(counterKey, fromMs, toMs + 1, scopeKey));
      const buckets = new Map(rows.map((r) => [r.bucketStartMs, r.value]));
      const current = this.cache.get(key);
      if (current?.touched && current.fromMs === fromMs && current.toMs === toMs) {
        for (const [b, v] of current.buckets) buckets.set(b, Math.max(buckets.get(b) ?? 0, v));
      }
      this.cache.set(key, { buckets, fromMs, toMs, readAtMs, touched: false });
    })().finally(() => this.reads.delete(key));
    this.reads.set(key, read);
    return read;
  }

  async check(req: CheckRequest): Promise<CheckResult> {
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
    try {
      for (const compiled of this.rules.rulesFor([req.projectId])) {
        const rule = compiled.rule;
        if (!rule.enforce || !ruleMatches(rule, probe)) continue;
        const scopeKey = scopeKeyOf(rule, probe);
        const { fromMs, toMs } = currentBuckets(rule.window, nowMs);
        const key = `${compiled.counterKey}\u0000${scopeKey}`;
        const entry = this.cache.get(key);
        if (
          !entry ||
          entry.fromMs !== fromMs ||
          entry.toMs !== toMs ||
          nowMs - entry.readAtMs >= this.options.cacheMs
        ) {
          await this.refresh(key, compiled.counterKey, scopeKey, fromMs, toMs);
        }
        let used = 0;
        for (const [bucket, value] of this.cache.get(key)?.buckets ?? [])
          if (bucket >= fromMs && bucket <= toMs) used += value;
        results.push(checkBudget(compiled, scopeKey, used, req, nowMs));
      }
    } catch (err) {
      this.logger.error(
        `budget counters could not be read; /v1/check fails ${this.options.failMode}`,
        {
          error: err as Error,
        },
      );
      const open = this.options.failMode === 'open';
      return { allowed: open, degraded: open ? 'fail-open' : 'fail-closed', rules: [] };
    }
    return { allowed: results.every((r) => !r.exceeded), rules: results };
  }
}
