import {
  type AlertQuery,
  type AlertRecord,
  activate,
  type CompiledRule,
  compileRule,
  counterKeyOf,
  countersFromRows,
  crossingsAtStart,
  type DeliveryOutcome,
  type DeliveryRecord,
  type DeliveryStatus,
  firstCountedBucket,
  type NewAlert,
  type Rule,
  type RuleChange,
  type RuleCounter,
  type RuleStore,
  seedQueries,
  TokenwatchError,
  windowFor,
} from '@tokenwatch/core';
import { alertFromItem, insertAlert, projectAlerts } from './alert-items.js';
import * as outbox from './delivery-outbox.js';
import { type DynamoIo, type Item, num } from './dynamodb-io.js';
import { UpdateBuilder } from './expression.js';
import {
  alertsPk,
  counterKey,
  counterPk,
  LEGACY_RULES_PK,
  PROJECTS_PK,
  pad,
  ruleKey,
  rulesPk,
  TTL_ATTR,
  ttlSeconds,
} from './keys.js';
import type { RuleLock } from './rule-lock.js';
import { seedRows } from './seed-reads.js';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/** Projects whose enabled rules a store keeps in memory (see DynamoRules.enabledRules). */
const CACHED_PROJECTS = 10_000;

/** Sort keys order as DynamoDB orders them: by UTF-8 bytes. */
function byRuleKey(a: Rule, b: Rule): number {
  return Buffer.compare(Buffer.from(a.id), Buffer.from(b.id));
}

function ruleItem(rule: Rule): Item {
  return {
    ...ruleKey(rule.projectId, rule.id),
    type: 'rule',
    projectId: rule.projectId,
    ruleId: rule.id,
    enabled: rule.enabled,
    createdAtMs: rule.createdAtMs,
    definition: JSON.stringify(rule),
  };
}

function byCreation(a: Rule, b: Rule): number {
  return a.projectId < b.projectId
    ? -1
    : a.projectId > b.projectId
      ? 1
      : a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : 1);
}

function byBucketThenScope(a: RuleCounter, b: RuleCounter): number {
  return (
    a.bucketStartMs - b.bucketStartMs ||
    (a.scopeKey < b.scopeKey ? -1 : a.scopeKey > b.scopeKey ? 1 : 0)
  );
}

/** How long a counter bucket must live: until late events can no longer reach its window. */
export function counterExpiry(rule: Pick<Rule, 'window'>, bucketStartMs: number): number {
  const endMs =
    rule.window.type === 'rolling'
      ? bucketStartMs + rule.window.minutes * MINUTE_MS
      : windowFor(bucketStartMs, rule.window).endMs;
  return ttlSeconds(Math.max(endMs, bucketStartMs) + 36 * DAY_MS);
}

/**
 * Rules, counters, alerts and the outbox on DynamoDB: the rule engine of core over items. A
 * project's rules live in one partition with its rule lock (see rule-lock.ts), which serialises
 * saving a rule with the batches that count into it.
 */
export class DynamoRules implements RuleStore {
  /**
   * Each project's enabled rules under the rules version they were read at (see RuleLock's
   * `rulesVersion`), most recently used last; at most CACHED_PROJECTS.
   */
  private readonly cache = new Map<
    string,
    { version: string; rules: CompiledRule[]; all: readonly Rule[] }
  >();
  /** Projects known to exist (a project is never deleted), so a rule save needs no GetItem. */
  private readonly knownProjects = new Set<string>();

  constructor(
    private readonly io: DynamoIo,
    private readonly lock: RuleLock,
  ) {}

  private async projectRules(projectId: string): Promise<Rule[]> {
    const items = await this.io.partition(rulesPk(projectId), 'R#');
    return items.map((i) => JSON.parse(String(i.definition)) as Rule);
  }

  private remember(projectId: string, version: string, rules: readonly Rule[]): void {
    this.cache.delete(projectId);
    this.cache.set(projectId, {
      version,
      rules: rules.filter((r) => r.enabled).map(compileRule),
      all: rules,
    });
    if (this.cache.size > CACHED_PROJECTS)
      this.cache.delete(this.cache.keys().next().value as string);
  }

  /**
   * The enabled rules of these projects, read (strongly consistent) under the batch's lease.
   * `versions` are the projects' rules versions the lease returned: a project whose rules were
   * read (or saved by this store) at that version is not read again. Without a version (no
   * writer has set one: rules saved before versions existed) the rules are always read.
   */
  async enabledRules(
    projectIds: readonly string[],
    versions?: ReadonlyMap<string, string | undefined>,
  ): Promise<CompiledRule[]> {
    const lists = await Promise.all(
      projectIds.map(async (projectId) => {
        const version = versions?.get(projectId);
        const cached = this.cache.get(projectId);
        if (version !== undefined && cached?.version === version) {
          this.cache.delete(projectId);
          this.cache.set(projectId, cached);
          return cached.rules;
        }
        const rules = await this.projectRules(projectId);
        if (version !== undefined) this.remember(projectId, version, rules);
        return rules.filter((r) => r.enabled).map(compileRule);
      }),
    );
    return lists.flat();
  }

  /** Moves rules from the single partition of earlier versions to one partition per project. */
  async migrateLegacyRules(): Promise<void> {
    for (const item of await this.io.partition(LEGACY_RULES_PK)) {
      const rule = JSON.parse(String(item.definition)) as Rule;
      await this.io.put(ruleItem(rule), { ConditionExpression: 'attribute_not_exists(pk)' });
      // Written without the lock: a cache of the project's rules (in any process) is stale.
      await this.lock.bumpVersion(rule.projectId);
      await this.io.delete({ pk: LEGACY_RULES_PK, sk: String(item.sk) });
    }
  }

  /**
   * Saves a rule under the project's exclusive lock and, when it starts counting, rebuilds its
   * counters from the rollups and fires what they have reached.
   */
  private async save(
    rule: Rule,
    nowMs: number,
    write: (previous: Rule | undefined, next: Rule) => Promise<boolean>,
  ): Promise<RuleChange | undefined> {
    let left: Rule[] | undefined;
    const change = await this.lock.withExclusive(
      rule.projectId,
      async (previousVersion) =>
        this.saveLocked(rule, nowMs, write, previousVersion, (rules) => {
          left = rules;
        }),
      (version, result) => {
        // The project's rules as this save left them (read under the exclusive lock), cached
        // under the version the lock was given back with: the next batch need not read them.
        if (left) this.remember(rule.projectId, version, left);
        else if (result === undefined) this.cache.delete(rule.projectId);
      },
    );
    return change;
  }

  private async saveLocked(
    rule: Rule,
    nowMs: number,
    write: (previous: Rule | undefined, next: Rule) => Promise<boolean>,
    version: string | undefined,
    saved: (rules: Rule[]) => void,
  ): Promise<RuleChange | undefined> {
    {
      // The rules as they were when the lock was taken: cached at that version, or read.
      const cached = version === undefined ? undefined : this.cache.get(rule.projectId);
      const rules =
        cached !== undefined && cached.version === version
          ? cached.all
          : await this.projectRules(rule.projectId);
      const previous = rules.find((r) => r.id === rule.id);
      const counterKeyOfRule = counterKeyOf(rule);
      const shared = rules.some(
        (r) => r.id !== rule.id && r.enabled && counterKeyOf(r) === counterKeyOfRule,
      );
      const activation = activate(previous, rule, nowMs, shared);
      const next = activation.rule;
      if (!(await write(previous, next))) return undefined;
      saved([...rules.filter((r) => r.id !== next.id), next].sort(byRuleKey));
      const first = firstCountedBucket(next);
      // The counter's buckets from `first` on, when this save has just written all of them.
      let seeded: RuleCounter[] | undefined;
      if (activation.seed) {
        const stale = (await this.io.partition(counterPk(counterKeyOfRule))).filter(
          (i) => num(i.bucketStartMs) >= first,
        );
        await this.io.batchDelete(stale.map((i) => ({ pk: String(i.pk), sk: String(i.sk) })));
        const counters: RuleCounter[] = [];
        for (const seed of seedQueries(next, nowMs))
          counters.push(...countersFromRows(next, seed, await seedRows(this.io, seed.query)));
        // Plain puts under the exclusive lock (no batch can touch the key): 25 per request.
        await this.io.batchPut(
          counters.map((c) => ({
            ...counterKey(c.ruleId, c.scopeKey, c.bucketStartMs),
            type: 'counter',
            ruleId: c.ruleId,
            scopeKey: c.scopeKey,
            bucketStartMs: c.bucketStartMs,
            value: c.value,
            updatedAtMs: nowMs,
            [TTL_ATTR]: counterExpiry(next, c.bucketStartMs),
          })),
        );
        // Every bucket from `first` on was deleted above and these are all that were written
        // (one per scope and window), so reading them back would return exactly these.
        seeded = counters.filter((c) => c.bucketStartMs >= first).sort(byBucketThenScope);
      }
      const alerts: NewAlert[] = [];
      if (activation.starts) {
        const counters =
          seeded ?? (await this.readCounters(counterKeyOfRule, first, Number.MAX_SAFE_INTEGER));
        for (const alert of crossingsAtStart(compileRule(next), counters, nowMs))
          if (await insertAlert(this.io, alert, next, nowMs)) alerts.push(alert);
      }
      return { rule: next, alerts };
    }
  }

  async createRule(rule: Rule, nowMs: number): Promise<RuleChange> {
    compileRule(rule);
    if (
      !this.knownProjects.has(rule.projectId) &&
      !(await this.io.get({ pk: PROJECTS_PK, sk: rule.projectId }))
    )
      throw new TokenwatchError('not_found', `project "${rule.projectId}" does not exist`);
    if (this.knownProjects.size >= CACHED_PROJECTS) this.knownProjects.clear();
    this.knownProjects.add(rule.projectId);
    const change = await this.save(rule, nowMs, async (previous, next) => {
      const created =
        !previous &&
        (await this.io.put(ruleItem(next), { ConditionExpression: 'attribute_not_exists(pk)' }));
      if (!created) throw new TokenwatchError('conflict', `rule "${rule.id}" already exists`);
      return true;
    });
    return change as RuleChange;
  }

  async updateRule(rule: Rule, nowMs: number): Promise<RuleChange | undefined> {
    compileRule(rule);
    return this.save(rule, nowMs, async (previous, next) => {
      if (!previous) return false;
      await this.io.put(ruleItem(next));
      return true;
    });
  }

  async deleteRule(projectId: string, ruleId: string): Promise<boolean> {
    // Counters stay: another rule may read them; TTL (or prune) removes old buckets.
    // The cache entry goes; the lock's new version would make batches read the rules anyway.
    this.cache.delete(projectId);
    return this.lock.withExclusive(projectId, () =>
      this.io.delete(ruleKey(projectId, ruleId), 'attribute_exists(pk)'),
    );
  }

  async getRule(projectId: string, ruleId: string): Promise<Rule | undefined> {
    const item = await this.io.get(ruleKey(projectId, ruleId));
    return item ? (JSON.parse(String(item.definition)) as Rule) : undefined;
  }

  async listRules(projectId?: string): Promise<Rule[]> {
    const projects =
      projectId !== undefined
        ? [projectId]
        : (await this.io.partition(PROJECTS_PK)).map((p) => String(p.sk));
    const lists = await Promise.all(projects.map((p) => this.projectRules(p)));
    return lists.flat().sort(byCreation);
  }

  /** Buckets of a counter key (`counterKeyOf(rule)`): one partition per counter key. */
  async readCounters(
    counterKeyValue: string,
    fromMs: number,
    toMs: number,
    scopeKey?: string,
  ): Promise<RuleCounter[]> {
    const items =
      scopeKey === undefined
        ? await this.io.partition(counterPk(counterKeyValue))
        : await this.io.query({
            KeyConditionExpression: 'pk = :pk AND sk BETWEEN :a AND :b',
            ExpressionAttributeValues: {
              ':pk': counterPk(counterKeyValue),
              ':a': `${scopeKey}#${pad(fromMs)}`,
              ':b': `${scopeKey}#${pad(toMs - 1)}`,
            },
            ConsistentRead: true,
          });
    return items
      .map((i) => ({
        ruleId: counterKeyValue,
        scopeKey: String(i.scopeKey),
        bucketStartMs: num(i.bucketStartMs),
        value: num(i.value),
      }))
      .filter((c) => c.bucketStartMs >= fromMs && c.bucketStartMs < toMs)
      .sort(byBucketThenScope);
  }

  async fireAlerts(alerts: readonly NewAlert[], nowMs: number): Promise<NewAlert[]> {
    const fired: NewAlert[] = [];
    for (const alert of alerts) {
      const rule = await this.getRule(alert.projectId, alert.ruleId);
      if (rule && (await insertAlert(this.io, alert, rule, nowMs))) fired.push(alert);
    }
    return fired;
  }

  async listAlerts(q: AlertQuery): Promise<AlertRecord[]> {
    const items = await projectAlerts(this.io, q.projectId);
    return items
      .map(alertFromItem)
      .filter(
        (a) =>
          (q.ruleId === undefined || a.ruleId === q.ruleId) &&
          (q.sinceMs === undefined || a.firedAtMs >= q.sinceMs) &&
          (q.acknowledged === undefined || (a.acknowledgedAtMs !== undefined) === q.acknowledged),
      )
      .sort((a, b) => b.firedAtMs - a.firedAtMs || (a.alertId < b.alertId ? -1 : 1))
      .slice(0, q.limit);
  }

  async acknowledgeAlert(projectId: string, alertId: string, nowMs: number): Promise<boolean> {
    const u = new UpdateBuilder().setIfNotExists('acknowledgedAtMs', nowMs);
    u.condition('attribute_exists(pk)');
    return (
      (await this.io.update({ pk: alertsPk(projectId), sk: alertId }, u.build())) !== undefined
    );
  }

  /** Leases due deliveries from the outbox (see delivery-outbox.ts). */
  async claimDeliveries(nowMs: number, limit: number, leaseMs: number): Promise<DeliveryRecord[]> {
    return outbox.claimDeliveries(this.io, nowMs, limit, leaseMs);
  }

  async completeDelivery(id: string, outcome: DeliveryOutcome, nowMs: number): Promise<void> {
    return outbox.completeDelivery(this.io, id, outcome, nowMs);
  }

  async listDeliveries(
    projectId: string,
    filter: { alertId?: string | undefined; status?: DeliveryStatus | undefined },
    limit: number,
  ): Promise<DeliveryRecord[]> {
    return outbox.listDeliveries(this.io, projectId, filter, limit);
  }
}
