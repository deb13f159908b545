/**
 * The alert outbox on DynamoDB: leasing due deliveries, recording their outcome and listing a
 * project's deliveries (DynamoRules' RuleStore methods for deliveries call these). The delivery
 * items themselves are written with their alert (see insertAlert in alert-items.ts).
 */

import {
  type DeliveryOutcome,
  type DeliveryRecord,
  type DeliveryStatus,
  deliveryIdOf,
} from '@tokenwatch/core';
import { deliveryFromItem, projectAlerts } from './alert-items.js';
import { type DynamoIo, num } from './dynamodb-io.js';
import { UpdateBuilder } from './expression.js';
import { deliveryKey, GSI_OUTBOX, OUTBOX_DUE, pad } from './keys.js';

/**
 * Leases due deliveries from the sparse outbox index (pending, or leased with an expired
 * lease), one compare-and-set update each on (status, nextAttemptMs, attempts): a delivery
 * another dispatcher leased in between fails the condition and is skipped.
 */
export async function claimDeliveries(
  io: DynamoIo,
  nowMs: number,
  limit: number,
  leaseMs: number,
): Promise<DeliveryRecord[]> {
  const due = await io.query({
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
    const item = await io.update(deliveryKey(String(d.id)), b.build());
    if (item) out.push(deliveryFromItem(item));
  }
  return out;
}

export async function completeDelivery(
  io: DynamoIo,
  id: string,
  outcome: DeliveryOutcome,
  nowMs: number,
): Promise<void> {
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
  await io.update(deliveryKey(id), u.build());
}

/** A project's deliveries: the ids follow from its alerts (deterministic), read by key. */
export async function listDeliveries(
  io: DynamoIo,
  projectId: string,
  filter: { alertId?: string | undefined; status?: DeliveryStatus | undefined },
  limit: number,
): Promise<DeliveryRecord[]> {
  const alerts = await projectAlerts(io, projectId);
  const keys = alerts
    .filter((a) => filter.alertId === undefined || a.alertId === filter.alertId)
    .flatMap((a) =>
      Array.from({ length: num(a.channelCount) }, (_, i) =>
        deliveryKey(deliveryIdOf(String(a.alertId), i)),
      ),
    );
  const items = await io.batchGet(keys);
  return items
    .map(deliveryFromItem)
    .filter(
      (d) =>
        d.projectId === projectId && (filter.status === undefined || d.status === filter.status),
    )
    .sort((a, b) => b.createdAtMs - a.createdAtMs || (a.id < b.id ? -1 : 1))
    .slice(0, limit);
}
