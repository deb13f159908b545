import {
  type AlertMessage,
  type AlertRecord,
  type ChannelConfig,
  type DeliveryRecord,
  type DeliveryStatus,
  deliveryIdOf,
  type NewAlert,
  type Rule,
} from '@tokenwatch/core';
import { type DynamoIo, type Item, mapLimit, num, optNum } from './dynamodb-io.js';
import { alertsPk, deliveryKey, OUTBOX_DUE, pad } from './keys.js';

/** An alert item: its partition is the project's alerts, its sort key the deterministic alert id. */
export function alertItem(alert: NewAlert, channelCount: number): Item {
  return {
    pk: alertsPk(alert.projectId),
    sk: alert.alertId,
    type: 'alert',
    alertId: alert.alertId,
    projectId: alert.projectId,
    ruleId: alert.ruleId,
    scopeKey: alert.scopeKey,
    windowStartMs: alert.windowStartMs,
    windowEndMs: alert.windowEndMs,
    levelIndex: alert.levelIndex,
    threshold: alert.threshold,
    value: alert.value,
    late: alert.late,
    forecast: alert.forecast,
    firedAtMs: alert.firedAtMs,
    channelCount,
    message: JSON.stringify(alert.message),
  };
}

export function alertFromItem(item: Item): AlertRecord {
  return {
    alertId: String(item.alertId),
    projectId: String(item.projectId),
    ruleId: String(item.ruleId),
    scopeKey: String(item.scopeKey),
    windowStartMs: num(item.windowStartMs),
    windowEndMs: num(item.windowEndMs),
    levelIndex: num(item.levelIndex),
    threshold: num(item.threshold),
    value: num(item.value),
    late: item.late === true,
    forecast: item.forecast === true,
    firedAtMs: num(item.firedAtMs),
    acknowledgedAtMs: optNum(item.acknowledgedAtMs),
    message: JSON.parse(String(item.message)) as AlertMessage,
  };
}

export function deliveryItem(
  alert: NewAlert,
  channel: ChannelConfig,
  index: number,
  nowMs: number,
): Item {
  const id = deliveryIdOf(alert.alertId, index);
  return {
    ...deliveryKey(id),
    type: 'delivery',
    id,
    alertId: alert.alertId,
    projectId: alert.projectId,
    channelIndex: index,
    channel: JSON.stringify(channel),
    status: 'pending',
    attempts: 0,
    nextAttemptMs: nowMs,
    createdAtMs: nowMs,
    updatedAtMs: nowMs,
    message: JSON.stringify(alert.message),
    // Sparse outbox index: only pending and leased deliveries are in it.
    gsi2pk: OUTBOX_DUE,
    gsi2sk: `${pad(nowMs)}#${id}`,
  };
}

export function deliveryFromItem(item: Item): DeliveryRecord {
  return {
    id: String(item.id),
    alertId: String(item.alertId),
    projectId: String(item.projectId),
    channelIndex: num(item.channelIndex),
    channel: JSON.parse(String(item.channel)) as ChannelConfig,
    status: item.status as DeliveryStatus,
    attempts: num(item.attempts),
    nextAttemptMs: num(item.nextAttemptMs),
    lastError: typeof item.lastError === 'string' ? item.lastError : undefined,
    createdAtMs: num(item.createdAtMs),
    updatedAtMs: num(item.updatedAtMs),
    deliveredAtMs: optNum(item.deliveredAtMs),
    message: JSON.parse(String(item.message)) as AlertMessage,
  };
}

/**
 * Inserts an alert unless its (rule, scope key, window start, level) exists; true if this call
 * inserted it. The deliveries go first, each conditional on its deterministic id: an alert item
 * therefore never exists without its deliveries, and a batch that crashed between the two is
 * completed by whoever rolls it forward (a delivery without its alert item is still sent: it
 * carries its own copy of the message).
 */
export async function insertAlert(
  io: DynamoIo,
  alert: NewAlert,
  rule: Rule,
  nowMs: number,
): Promise<boolean> {
  await mapLimit(rule.channels, io.concurrency, (channel, i) =>
    io.put(deliveryItem(alert, channel, i, nowMs), {
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
  return io.put(alertItem(alert, rule.channels.length), {
    ConditionExpression: 'attribute_not_exists(pk)',
  });
}

/** Alerts of a project (the alerts partition holds alert items only). */
export async function projectAlerts(io: DynamoIo, projectId: string): Promise<Item[]> {
  return io.partition(alertsPk(projectId));
}
