import type { PricedEvent } from '../event/usage-event.js';
import type { BaseDimension } from '../query/usage-query.js';
import { counterBucketOf, MINUTE_MS } from './counter-buckets.js';
import { type CompiledRule, scopeKeyOf } from './evaluate.js';
import type { Rule, RuleWindow } from './rule.js';
import { metricOf } from './rule-thresholds.js';

// The first half of the rule engine (rule-engine.ts): what a batch's new events add to which
// counters, and which counters must be read back to find the crossings.

/** What a batch adds to one counter bucket (`counterKey`: see `counterKeyOf`). */
export interface CounterDelta {
  counterKey: string;
  scopeKey: string;
  bucketStartMs: number;
  delta: number;
}

/** Counter buckets a plan needs to read back: bucket starts in [fromMs, toMs], both inclusive. */
export interface CounterRange {
  counterKey: string;
  scopeKey: string;
  fromMs: number;
  toMs: number;
}

/** Rules that read the same counters, with what the hot path needs to know of them at once. */
export interface RuleGroup {
  rules: CompiledRule[];
  /** The lowest level of any of them: a value below it crosses nothing (forecasts aside). */
  lowestThreshold: number;
  forecasts: boolean;
  enforces: boolean;
}

/** One (counter key, scope key) a batch adds to, and the rules that read those counters. */
export interface Touch {
  counterKey: string;
  scopeKey: string;
  window: RuleWindow;
  group: RuleGroup;
  /** Bucket start → what the batch adds. */
  deltas: Map<number, number>;
}

export interface BatchPlan {
  /** Counter additions (see `inLockOrder` for the order SQL stores write them in). */
  readonly deltas: readonly CounterDelta[];
  /** What `findCrossings` needs to read after the additions. */
  readonly reads: readonly CounterRange[];
  readonly touches: readonly Touch[];
}

function byText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function byNumber(a: number, b: number): number {
  return a - b;
}

/**
 * Counter deltas in (counter key, scope key, bucket) order: SQL stores write them in this order
 * so that concurrent transactions queue on row locks instead of deadlocking.
 */
export function inLockOrder(deltas: readonly CounterDelta[]): CounterDelta[] {
  return [...deltas].sort(
    (a, b) =>
      byText(a.counterKey, b.counterKey) ||
      byText(a.scopeKey, b.scopeKey) ||
      a.bucketStartMs - b.bucketStartMs,
  );
}

/** Groups rules by the counters they read: rules measuring the same thing share one set. */
export function groupByCounterKey(rules: readonly CompiledRule[]): Map<string, CompiledRule[]> {
  const groups = new Map<string, CompiledRule[]>();
  for (const compiled of rules) {
    if (!compiled.rule.enabled) continue;
    const group = groups.get(compiled.counterKey);
    if (group) group.push(compiled);
    else groups.set(compiled.counterKey, [compiled]);
  }
  return groups;
}

const EVENT_FIELD = {
  user: 'userId',
  app: 'appId',
  model: 'modelId',
  provider: 'provider',
} as const satisfies Record<BaseDimension, keyof PricedEvent>;

type Field = (typeof EVENT_FIELD)[BaseDimension];

/**
 * Whether an event counts for a rule, with the rule's filters turned into sets once per batch
 * (the same test as `ruleMatches`, which runs once per event here).
 */
function matcherOf(rule: Rule): (e: PricedEvent) => boolean {
  const filters: Array<[Field, Set<string>]> = [];
  for (const dim of Object.keys(rule.filters) as BaseDimension[]) {
    const allowed = rule.filters[dim];
    if (allowed && allowed.length > 0) filters.push([EVENT_FIELD[dim], new Set(allowed)]);
  }
  const projectId = rule.projectId;
  return (e) => {
    if (e.projectId !== projectId) return false;
    for (const [field, allowed] of filters) if (!allowed.has(e[field] as string)) return false;
    return true;
  };
}

/** A batch's touches of one rule group, found by the event's scope values without building keys. */
class ScopeTrie {
  private readonly root = new Map<string, unknown>();
  private readonly fields: Field[];

  constructor(rule: Rule) {
    this.fields = rule.scope.map((d) => EVENT_FIELD[d]);
  }

  get(e: PricedEvent, create: () => Touch): Touch {
    if (this.fields.length === 0) {
      let t = this.root.get('') as Touch | undefined;
      if (!t) {
        t = create();
        this.root.set('', t);
      }
      return t;
    }
    let node = this.root;
    const last = this.fields.length - 1;
    for (let i = 0; i < last; i++) {
      const value = e[this.fields[i] as Field] as string;
      let child = node.get(value) as Map<string, unknown> | undefined;
      if (!child) {
        child = new Map();
        node.set(value, child);
      }
      node = child;
    }
    const value = e[this.fields[last] as Field] as string;
    let t = node.get(value) as Touch | undefined;
    if (!t) {
      t = create();
      node.set(value, t);
    }
    return t;
  }
}

/** What a batch's NEW events (already deduplicated) add to the counters of `rules`. */
export function planBatch(
  fresh: readonly PricedEvent[],
  rules: readonly CompiledRule[],
): BatchPlan {
  const touches: Touch[] = [];
  for (const [counterKey, list] of groupByCounterKey(rules)) {
    const rule = (list[0] as CompiledRule).rule;
    const group: RuleGroup = {
      rules: list,
      lowestThreshold: Math.min(
        ...list.map((c) => c.levels[0]?.threshold ?? Number.POSITIVE_INFINITY),
      ),
      forecasts: list.some((c) => c.rule.forecast),
      enforces: list.some((c) => c.rule.enforce),
    };
    const matches = matcherOf(rule);
    const trie = new ScopeTrie(rule);
    for (const e of fresh) {
      if (!matches(e)) continue;
      const amount = metricOf(rule.metric, e);
      if (amount === 0) continue;
      const touch = trie.get(e, () => {
        const t: Touch = {
          counterKey,
          scopeKey: scopeKeyOf(rule, e),
          window: rule.window,
          group,
          deltas: new Map(),
        };
        touches.push(t);
        return t;
      });
      const bucket = counterBucketOf(e.timestampMs, rule.window);
      touch.deltas.set(bucket, (touch.deltas.get(bucket) ?? 0) + amount);
    }
  }
  const deltas: CounterDelta[] = [];
  const reads: CounterRange[] = [];
  for (const t of touches) {
    const buckets =
      t.deltas.size === 1 ? [...t.deltas.keys()] : [...t.deltas.keys()].sort(byNumber);
    for (const b of buckets)
      deltas.push({
        counterKey: t.counterKey,
        scopeKey: t.scopeKey,
        bucketStartMs: b,
        delta: t.deltas.get(b) as number,
      });
    if (t.window.type === 'rolling') {
      // Every minute from the first changed one to N−1 minutes after the last changed one may
      // have a new value; each of those values sums the N minutes before it.
      const reach = (t.window.minutes - 1) * MINUTE_MS;
      reads.push({
        counterKey: t.counterKey,
        scopeKey: t.scopeKey,
        fromMs: (buckets[0] as number) - reach,
        toMs: (buckets[buckets.length - 1] as number) + reach,
      });
    } else {
      for (const b of buckets)
        reads.push({ counterKey: t.counterKey, scopeKey: t.scopeKey, fromMs: b, toMs: b });
    }
  }
  return { deltas, reads, touches };
}

/** Counter values by `${counterKey}\0${scopeKey}`, then bucket start. */
