import type {
  AlertMessage,
  AlertRecord,
  ChannelConfig,
  DeliveryRecord,
  DeliveryStatus,
} from '@tokenwatch/core';

/** Row shapes of the alerts and deliveries tables, and their mapping to the port's records. */
export interface AlertRow {
  alert_id: string;
  project_id: string;
  rule_id: string;
  scope_key: string;
  window_start_ms: number;
  window_end_ms: number;
  level_index: number;
  threshold: number;
  value: number;
  late: number;
  forecast: number;
  fired_at_ms: number;
  acknowledged_at_ms: number | null;
  message: string;
}

export function alertFromRow(r: AlertRow): AlertRecord {
  return {
    alertId: r.alert_id,
    projectId: r.project_id,
    ruleId: r.rule_id,
    scopeKey: r.scope_key,
    windowStartMs: r.window_start_ms,
    windowEndMs: r.window_end_ms,
    levelIndex: r.level_index,
    threshold: r.threshold,
    value: r.value,
    late: r.late === 1,
    forecast: r.forecast === 1,
    firedAtMs: r.fired_at_ms,
    acknowledgedAtMs: r.acknowledged_at_ms ?? undefined,
    message: JSON.parse(r.message) as AlertMessage,
  };
}

export interface DeliveryRow {
  delivery_id: string;
  alert_id: string;
  project_id: string;
  channel_index: number;
  channel: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_ms: number;
  last_error: string | null;
  created_at_ms: number;
  updated_at_ms: number;
  delivered_at_ms: number | null;
  message: string;
}

export function deliveryFromRow(r: DeliveryRow): DeliveryRecord {
  return {
    id: r.delivery_id,
    alertId: r.alert_id,
    projectId: r.project_id,
    channelIndex: r.channel_index,
    channel: JSON.parse(r.channel) as ChannelConfig,
    status: r.status,
    attempts: r.attempts,
    nextAttemptMs: r.next_attempt_ms,
    lastError: r.last_error ?? undefined,
    createdAtMs: r.created_at_ms,
    updatedAtMs: r.updated_at_ms,
    deliveredAtMs: r.delivered_at_ms ?? undefined,
    message: JSON.parse(r.message) as AlertMessage,
  };
}
