import {
  aggregateEvents,
  type CompiledRule,
  enforcedCounters,
  findCrossings,
  type NewAlert,
  type PricedEvent,
  planBatch,
  type RollupDelta,
  type RollupMeasures,
  type Rule,
  type RuleCounter,
  type TagRollupDelta,
} from '@tokenwatch/core';
import { insertAlert } from './alert-items.js';
import { type DynamoIo, type Item, mapLimit, num } from './dynamodb-io.js';
import { counterExpiry } from './dynamodb-rules.js';
import { UpdateBuilder } from './expression.js';
import {
  batchDoneKey,
  batchIntentKey,
  counterKey,
  counterPk,
  dayKey,
  hourKey,
  type ItemKey,
  MARK_PREFIX,
  markAttr,
  pad,
  TTL_ATTR,
  tagDayKey,
  tagHourKey,
} from './keys.js';
import { addLatency } from './latency-attributes.js';
import { writeMinutePages } from './minute-pages.js';

/**
 * Step 3 of a batch record (see batch-apply.ts): the updates of the rollup items and rule
 * counters its owned events touch, each conditional on the batch's mark so that a roll-forward
 * adds nothing twice, and the removal of finished batches' marks from items that carry many.
 */

/** A rollup item's measures, each ADDed as the batch's delta has it (the cost as a bigint). */
const ADDED_MEASURES = [
  'inputTokens',
  'outputTokens',
  'cacheReadTokens',
  'cacheWriteTokens',
  'totalTokens',
  'requests',
  'errors',
  'costNanoUsd',
  'unpricedTokens',
  'unpricedRequests',
  'noUsageRequests',
  'deniedRequests',
] as const satisfies readonly Exclude<keyof RollupMeasures, 'latency'>[];

/** An aggregate item carrying more marks than this gets the marks of finished batches removed. */
const MARKS_BEFORE_CLEANUP = 8;

/** Step 3: rollups and rule counters, each update conditional on the batch's mark. */
export async function applyOwned(
  io: DynamoIo,
  batchId: string,
  owned: readonly PricedEvent[],
  rules: readonly CompiledRule[],
  nowMs: number,
  minuteRetentionMs: number,
): Promise<{ alerts: NewAlert[]; enforcedCounters: RuleCounter[]; crowded: Item[] }> {
  const mark = markAttr(batchId);
  const crowded: Item[] = [];
  const noteCrowded = (item: Item | undefined) => {
    if (!item) return;
    let marks = 0;
    for (const k of Object.keys(item)) if (k.startsWith(MARK_PREFIX)) marks++;
    if (marks > MARKS_BEFORE_CLEANUP) crowded.push(item);
  };
  if (owned.length === 0) return { alerts: [], enforcedCounters: [], crowded };

  const deltas = aggregateEvents(owned);
  // `latency`: the item keeps the latency histogram (hour and day items, not tags).
  const writes: Array<{
    key: ItemKey;
    delta: RollupDelta;
    extra: Record<string, unknown>;
    latency?: boolean;
  }> = [];
  for (const d of deltas.hour) {
    const { gsi1pk, gsi1sk, ...key } = hourKey(d, d.bucketMs);
    writes.push({ key, delta: d, extra: { gsi1pk, gsi1sk }, latency: true });
  }
  for (const d of deltas.day)
    writes.push({ key: dayKey(d, d.bucketMs), delta: d, extra: {}, latency: true });
  const tag = (d: TagRollupDelta) => ({ tagKey: d.tagKey, tagValue: d.tagValue });
  for (const d of deltas.tagHour)
    writes.push({
      key: tagHourKey(d, d.tagKey, d.tagValue, d.bucketMs),
      delta: d,
      extra: tag(d),
    });
  for (const d of deltas.tagDay)
    writes.push({ key: tagDayKey(d, d.tagKey, d.tagValue, d.bucketMs), delta: d, extra: tag(d) });

  await writeMinutePages(io, batchId, deltas.minute, minuteRetentionMs);
  await mapLimit(writes, io.concurrency, async ({ key, delta: d, extra, latency }) => {
    const u = new UpdateBuilder();
    for (const measure of ADDED_MEASURES) u.add(measure, d[measure]);
    u.set(mark, 1)
      .set('projectId', d.projectId)
      .set('userId', d.userId)
      .set('appId', d.appId)
      .set('modelId', d.modelId)
      .set('provider', d.provider)
      .set('bucketMs', d.bucketMs)
      .set('lastUpdatedMs', nowMs)
      .setIfNotExists('firstUpdatedMs', nowMs);
    for (const [k, v] of Object.entries(extra)) u.set(k, v);
    if (latency && d.latency) addLatency(u, d.latency);
    u.condition(`attribute_not_exists(${u.name(mark)})`);
    noteCrowded(await io.update(key, u.build()));
  });

  // Rule counters (the rule engine of core): ADD through a SET conditional on the batch's
  // mark, so a roll-forward adds nothing twice; then the engine reads what it needs back.
  const plan = planBatch(owned, rules);
  const windows = new Map(plan.touches.map((t) => [t.counterKey, t.window]));
  /** Each updated bucket's value right after this batch's update (the update's ALL_NEW). */
  const updated = new Map<string, number>();
  const bucketId = (counter: string, scope: string, bucketMs: number) =>
    `${counter}\u0000${scope}\u0000${bucketMs}`;
  await mapLimit(plan.deltas, io.concurrency, async (d) => {
    const u = new UpdateBuilder();
    const v = u.name('value');
    u.setRaw('value', `if_not_exists(${v}, ${u.value(0)}) + ${u.value(d.delta)}`)
      .set(mark, 1)
      .set('ruleId', d.counterKey)
      .set('scopeKey', d.scopeKey)
      .set('bucketStartMs', d.bucketStartMs)
      .set('updatedAtMs', nowMs)
      .set(
        TTL_ATTR,
        counterExpiry({ window: windows.get(d.counterKey) as Rule['window'] }, d.bucketStartMs),
      )
      .condition(`attribute_not_exists(${u.name(mark)})`);
    const item = await io.update(counterKey(d.counterKey, d.scopeKey, d.bucketStartMs), u.build());
    if (item !== undefined)
      updated.set(bucketId(d.counterKey, d.scopeKey, d.bucketStartMs), num(item.value));
    noteCrowded(item);
  });
  const rows: RuleCounter[] = [];
  // A read of the single bucket this batch has just updated is answered by its update (a
  // calendar window's reads are all such): one Query less each. The value is the bucket's
  // right after this batch's addition, so `findCrossings` sees exactly the range this batch
  // moved it through (a later batch's addition is found by that batch). A bucket whose
  // update found the mark (a roll-forward's repeat) is read.
  const queried = plan.reads.filter((r) => {
    const value =
      r.fromMs === r.toMs ? updated.get(bucketId(r.counterKey, r.scopeKey, r.fromMs)) : undefined;
    if (value === undefined) return true;
    rows.push({ ruleId: r.counterKey, scopeKey: r.scopeKey, bucketStartMs: r.fromMs, value });
    return false;
  });
  await mapLimit(queried, io.concurrency, async (r) => {
    const items = await io.query({
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :a AND :b',
      ExpressionAttributeValues: {
        ':pk': counterPk(r.counterKey),
        ':a': `${r.scopeKey}#${pad(r.fromMs)}`,
        ':b': `${r.scopeKey}#${pad(r.toMs)}`,
      },
      ConsistentRead: true,
    });
    for (const i of items)
      rows.push({
        ruleId: r.counterKey,
        scopeKey: r.scopeKey,
        bucketStartMs: num(i.bucketStartMs),
        value: num(i.value),
      });
  });
  // Values read now include what later batches added; `findCrossings` takes the value before
  // this batch as the value now minus this batch's own additions, which never skips a level.
  const byId = new Map(rules.map((c) => [c.rule.id, c.rule]));
  const alerts: NewAlert[] = [];
  for (const alert of findCrossings(plan, rows, nowMs)) {
    if (await insertAlert(io, alert, byId.get(alert.ruleId) as Rule, nowMs)) alerts.push(alert);
  }
  return { alerts, enforcedCounters: enforcedCounters(plan, rows), crowded };
}

/** Removes the marks of finished batches from items that carry many. */
export async function cleanupMarks(io: DynamoIo, items: readonly Item[]): Promise<void> {
  if (items.length === 0) return;
  const ids = new Set<string>();
  for (const item of items)
    for (const k of Object.keys(item))
      if (k.startsWith(MARK_PREFIX)) ids.add(k.slice(MARK_PREFIX.length));
  const keys = [...ids].flatMap((id) => [batchIntentKey(id), batchDoneKey(id)]);
  const found = await io.batchGet(keys);
  const hasIntent = new Set<string>();
  const isDone = new Set<string>();
  for (const f of found) {
    const id = String(f.pk).slice(2);
    if (f.sk === 'D') isDone.add(id);
    else hasIntent.add(id);
  }
  // Done, or its intent expired (an intent is written before any of its marks).
  const finished = (id: string) => isDone.has(id) || !hasIntent.has(id);
  await mapLimit(items, io.concurrency, async (item) => {
    const u = new UpdateBuilder();
    let any = false;
    for (const k of Object.keys(item)) {
      if (k.startsWith(MARK_PREFIX) && finished(k.slice(MARK_PREFIX.length))) {
        u.remove(k);
        any = true;
      }
    }
    if (!any) return;
    u.condition('attribute_exists(pk)');
    await io.update({ pk: String(item.pk), sk: String(item.sk) }, u.build());
  });
}
