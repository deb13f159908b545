import {
  type AlertQuery,
  type AlertRecord,
  compileRule,
  counterKeyOf,
  type DeliveryOutcome,
  type DeliveryRecord,
  type DeliveryStatus,
  deliveryIdOf,
  type Rule,
  type RuleCounter,
  type RuleStore,
  rollupMeasure,
  ruleMatches,
  scopeKeyOf,
  TokenwatchError,
  windowFor,
} from '@tokenwatch/core';
import { alertFromItem, deliveryFromItem, projectAlerts } from './alert-items.js';
import { type DynamoIo, type Item, mapLimit, num } from './dynamodb-io.js';
import { readRollups } from './dynamodb-usage.js';
import { UpdateBuilder } from './expression.js';
import {
  alertsPk,
  counterKey,
  counterPk,
  deliveryKey,
  GSI_OUTBOX,
  OUTBOX_DUE,
  PROJECTS_PK,
  pad,
  RULES_PK,
  TTL_ATTR,
  ttlSeconds,
} from './keys.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

function ruleItem(rule: Rule): Item {
  return {
    pk: RULES_PK,
    sk: rule.id,
    type: 'rule',
    projectId: rule.projectId,
    createdAtMs: rule.createdAtMs,
    definition: JSON.stringify(rule),
  };
}

/** Rules, counters, alerts and the outbox on DynamoDB. */
export class DynamoRules implements RuleStore {
  constructor(private readonly io: DynamoIo) {}

  /**
   * Sets the current window of the rule's counters from the rollups, unless the rule is off or
   * another enabled rule with the same counter key keeps them current (see RuleStore.createRule).
   */
  private async seed(rule: Rule, nowMs: number): Promise<void> {
    if (!rule.enabled) return;
    const key = counterKeyOf(rule);
    const shared = (await this.listRules(rule.projectId)).some(
      (r) => r.id !== rule.id && r.enabled && counterKeyOf(r) === key,
    );
    if (shared) return;
    let fromMs: number;
    let toMs: number;
    let resolution: 'minute' | 'hour';
    let bucketOf: (bucketMs: number) => number;
    let windowEndMs: number;
    if (rule.window.type === 'rolling') {
      const minute = nowMs - (nowMs % MINUTE_MS);
      fromMs = minute - (rule.window.minutes - 1) * MINUTE_MS;
      toMs = minute + MINUTE_MS;
      resolution = 'minute';
      bucketOf = (b) => b;
      windowEndMs = toMs;
    } else {
      const win = windowFor(nowMs, rule.window);
      fromMs = win.startMs;
      toMs = win.endMs;
      resolution = fromMs % HOUR_MS === 0 && toMs % HOUR_MS === 0 ? 'hour' : 'minute';
      bucketOf = () => win.startMs;
      windowEndMs = win.endMs;
    }
    const firstBucket =
      rule.window.type === 'rolling' ? fromMs : windowFor(nowMs, rule.window).startMs;
    const stale = (await this.io.partition(counterPk(key))).filter((i) => {
      const b = num(i.bucketStartMs);
      return b >= firstBucket && b < toMs;
    });
    await this.io.batchDelete(stale.map((i) => ({ pk: String(i.pk), sk: String(i.sk) })));
    const rows = await readRollups(this.io, rule.projectId, resolution, fromMs, toMs);
    const sums = new Map<string, { scopeKey: string; bucket: number; total: number }>();
    for (const r of rows) {
      if (!ruleMatches(rule, r)) continue;
      // Rollup rows are sums: take the measure directly rather than per event.
      const measure = rollupMeasure(rule.metric, r);
      if (measure === 0) continue;
      const scopeKey = scopeKeyOf(rule, r);
      const bucket = bucketOf(r.bucketMs);
      const k = `${scopeKey}\u0000${bucket}`;
      const s = sums.get(k);
      if (s) s.total += measure;
      else sums.set(k, { scopeKey, bucket, total: measure });
    }
    await mapLimit([...sums.values()], this.io.concurrency, (s) =>
      this.io.put({
        ...counterKey(key, s.scopeKey, s.bucket),
        type: 'counter',
        ruleId: key,
        scopeKey: s.scopeKey,
        bucketStartMs: s.bucket,
        value: s.total,
        updatedAtMs: nowMs,
        [TTL_ATTR]: ttlSeconds(Math.max(windowEndMs, s.bucket) + 36 * DAY_MS),
      }),
    );
  }

  async createRule(rule: Rule, nowMs: number): Promise<void> {
    compileRule(rule);
    if (!(await this.io.get({ pk: PROJECTS_PK, sk: rule.projectId })))
      throw new TokenwatchError('not_found', `project "${rule.projectId}" does not exist`);
    const created = await this.io.put(ruleItem(rule), {
      ConditionExpression: 'attribute_not_exists(pk)',
    });
    if (!created) throw new TokenwatchError('conflict', `rule "${rule.id}" already exists`);
    await this.seed(rule, nowMs);
  }

  async updateRule(rule: Rule, nowMs: number): Promise<boolean> {
    compileRule(rule);
    const existing = await this.getRule(rule.projectId, rule.id);
    if (!existing) return false;
    const written = await this.io.put(ruleItem(rule), {
      ConditionExpression: 'projectId = :p',
      ExpressionAttributeValues: { ':p': rule.projectId },
    });
    if (!written) return false;
    if (counterKeyOf(existing) !== counterKeyOf(rule) || !existing.enabled)
      await this.seed(rule, nowMs);
    return true;
  }

  async deleteRule(projectId: string, ruleId: string): Promise<boolean> {
    const deleted = await this.io.delete({ pk: RULES_PK, sk: ruleId }, 'projectId = :p', {
      ':p': projectId,
    });
    // Counters stay: another rule may read them; TTL (or prune) removes old buckets.
    return deleted;
  }

  async getRule(projectId: string, ruleId: string): Promise<Rule | undefined> {
    const item = await this.io.get({ pk: RULES_PK, sk: ruleId });
    if (!item || item.projectId !== projectId) return undefined;
    return JSON.parse(String(item.definition)) as Rule;
  }

  async listRules(projectId?: string): Promise<Rule[]> {
    const items = await this.io.partition(RULES_PK);
    return items
      .filter((i) => projectId === undefined || i.projectId === projectId)
      .map((i) => JSON.parse(String(i.definition)) as Rule)
      .sort((a, b) =>
        a.projectId < b.projectId
          ? -1
          : a.projectId > b.projectId
            ? 1
            : a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : 1),
      );
  }

  /** Buckets of a counter key (`counterKeyOf(rule)`): one partition per counter key. */
  async readCounters(counterKey: string, fromMs: number, toMs: number): Promise<RuleCounter[]> {
    const items = await this.io.partition(counterPk(counterKey));
    return items
      .map((i) => ({
        ruleId: counterKey,
        scopeKey: String(i.scopeKey),
        bucketStartMs: num(i.bucketStartMs),
        value: num(i.value),
      }))
      .filter((c) => c.bucketStartMs >= fromMs && c.bucketStartMs < toMs)
      .sort(
        (a, b) =>
          a.bucketStartMs - b.bucketStartMs ||
          (a.scopeKey < b.scopeKey ? -1 : a.scopeKey > b.scopeKey ? 1 : 0),
      );
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

  /**
   * Leases due deliveries from the sparse outbox index (pending, or leased with an expired
   * lease), one compare-and-set update each on (status, nextAttemptMs, attempts): a delivery
   * another dispatcher leased in between fails the condition and is skipped.
   */
  async claimDeliveries(nowMs: number, limit: number, leaseMs: number): Promise<DeliveryRecord[]> {
    const due = await this.io.query({
      IndexName: GSI_OUTBOX,
      KeyConditionExpression: 'gsi2pk = :due AND gsi2sk <= :now',
      ExpressionAttributeValues: { ':due': OUTBOX_DUE, ':now': `${pad(nowMs)}#\uffff` },
      Limit: Math.max(limit * 2, 10),
    });
    const out: DeliveryRecord[] = [];
    for (const d of due) {
      if (out.length >= limit) break;
      const next = nowMs + leaseMs;
      const b = new UpdateBuilder();
      const attempts = b.name('attempts');
      const status = b.name('status');
      const nextAttempt = b.name('nextAttemptMs');
      b.set('status', 'sending')
        .setRaw('attempts', `${attempts} + ${b.value(1)}`)
        .set('nextAttemptMs', next)
        .set('updatedAtMs', nowMs)
        .set('gsi2sk', `${pad(next)}#${String(d.id)}`)
        .condition(
          `${status} IN (${b.value('pending')}, ${b.value('sending')}) AND ${nextAttempt} = ${b.value(num(d.nextAttemptMs))} AND ${attempts} = ${b.value(num(d.attempts))} AND ${nextAttempt} <= ${b.value(nowMs)}`,
        );
      const item = await this.io.update(deliveryKey(String(d.id)), b.build());
      if (item) out.push(deliveryFromItem(item));
    }
    return out;
  }

  async completeDelivery(id: string, outcome: DeliveryOutcome, nowMs: number): Promise<void> {
    const u = new UpdateBuilder().set('updatedAtMs', nowMs);
    if (outcome.status === 'delivered') {
      u.set('status', 'delivered')
        .set('deliveredAtMs', nowMs)
        .remove('lastError')
        .remove('gsi2pk')
        .remove('gsi2sk');
    } else if (outcome.status === 'retry') {
      u.set('status', 'pending')
        .set('nextAttemptMs', outcome.nextAttemptMs)
        .set('lastError', outcome.error.slice(0, 1000))
        .set('gsi2sk', `${pad(outcome.nextAttemptMs)}#${id}`);
    } else {
      u.set('status', 'dead')
        .set('lastError', outcome.error.slice(0, 1000))
        .remove('gsi2pk')
        .remove('gsi2sk');
    }
    u.condition('attribute_exists(pk)');
    await this.io.update(deliveryKey(id), u.build());
  }

  /** A project's deliveries: the ids follow from its alerts (deterministic), read by key. */
  async listDeliveries(
    projectId: string,
    filter: { alertId?: string | undefined; status?: DeliveryStatus | undefined },
    limit: number,
  ): Promise<DeliveryRecord[]> {
    const alerts = await projectAlerts(this.io, projectId);
    const keys = alerts
      .filter((a) => filter.alertId === undefined || a.alertId === filter.alertId)
      .flatMap((a) =>
        Array.from({ length: num(a.channelCount) }, (_, i) =>
          deliveryKey(deliveryIdOf(String(a.alertId), i)),
        ),
      );
    const items = await this.io.batchGet(keys);
    return items
      .map(deliveryFromItem)
      .filter(
        (d) =>
          d.projectId === projectId && (filter.status === undefined || d.status === filter.status),
      )
      .sort((a, b) => b.createdAtMs - a.createdAtMs || (a.id < b.id ? -1 : 1))
      .slice(0, limit);
  }
}
