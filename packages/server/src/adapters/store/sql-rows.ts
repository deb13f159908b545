import type {
  AlertMessage,
  AlertRecord,
  ApiKeyRecord,
  ChannelConfig,
  DeliveryRecord,
  DeliveryStatus,
  ModelPriceEntry,
  RollupMeasures,
} from '@tokenwatch/core';
import { LATENCY_BUCKETS } from '@tokenwatch/core';

/**
 * Row shapes of the tables SQLite and PostgreSQL share (keys, price overrides, alerts, deliveries), their mapping
 * to the port's records, and the rollup measure columns.
 */
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
  /** SQLite stores booleans as 0/1, PostgreSQL as booleans. */
  late: number | boolean;
  forecast: number | boolean;
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
    late: r.late === 1 || r.late === true,
    forecast: r.forecast === 1 || r.forecast === true,
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

export interface KeyRow {
  id: string;
  project_id: string;
  hash: string;
  prefix: string;
  role: ApiKeyRecord['role'];
  app_id: string | null;
  name: string | null;
  created_at_ms: number;
  revoked_at_ms: number | null;
}

export function keyFromRow(r: KeyRow): ApiKeyRecord {
  return {
    id: r.id,
    projectId: r.project_id,
    hash: r.hash,
    prefix: r.prefix,
    role: r.role,
    appId: r.app_id ?? undefined,
    name: r.name ?? undefined,
    createdAtMs: r.created_at_ms,
    revokedAtMs: r.revoked_at_ms ?? undefined,
  };
}

/**
 * The measures of the first schema version. Migrations written then back-fill exactly these:
 * a column added later does not exist yet when they run on a fresh database.
 */
export const MEASURE_COLUMNS_V1 = [
  'input_tokens',
  'output_tokens',
  'cache_read_tokens',
  'cache_write_tokens',
  'total_tokens',
  'requests',
  'errors',
  'cost_nano_usd',
  'unpriced_tokens',
  'unpriced_requests',
] as const;

/** Measures added after the first version, each by its own migration (`ADD COLUMN … DEFAULT 0`). */
export const MEASURE_COLUMNS_ADDED = ['no_usage_requests', 'denied_requests'] as const;

/** The measures of every rollup row, as SQL columns (SQLite and PostgreSQL alike). */
export const MEASURE_COLUMNS = [...MEASURE_COLUMNS_V1, ...MEASURE_COLUMNS_ADDED] as const;

/** The field of `RollupMeasures` each column holds. */
const MEASURE_FIELD: Record<
  (typeof MEASURE_COLUMNS)[number],
  Exclude<keyof RollupMeasures, 'latency'>
> = {
  input_tokens: 'inputTokens',
  output_tokens: 'outputTokens',
  cache_read_tokens: 'cacheReadTokens',
  cache_write_tokens: 'cacheWriteTokens',
  total_tokens: 'totalTokens',
  requests: 'requests',
  errors: 'errors',
  cost_nano_usd: 'costNanoUsd',
  unpriced_tokens: 'unpricedTokens',
  unpriced_requests: 'unpricedRequests',
  no_usage_requests: 'noUsageRequests',
  denied_requests: 'deniedRequests',
};

/** A rollup row's measures, in the order of {@link MEASURE_COLUMNS}. */
export function measureValues(m: RollupMeasures): Array<number | bigint> {
  return MEASURE_COLUMNS.map((c) => m[MEASURE_FIELD[c]] as number | bigint);
}

/**
 * The latency histogram's columns, one count per bucket (`latency_b00` … `latency_b19`, see
 * LATENCY_BOUNDS_MS): plain integers, so a histogram of any rows is their SUMs and an upsert adds
 * them like the other measures. Only in the hour and day rollups (not minute, not tags).
 */
export const LATENCY_COLUMNS: readonly string[] = Array.from(
  { length: LATENCY_BUCKETS },
  (_, i) => `latency_b${String(i).padStart(2, '0')}`,
);

const NANO_PER_USD = 1_000_000_000n;

/**
 * SQLite's rollups hold a cost as whole USD (`cost_usd`) plus the nano-USD below a dollar
 * (`cost_nano_usd`): its integers are 64-bit and an overflowing sum silently becomes a float.
 */
export function splitCost(costNanoUsd: bigint): { usd: bigint; nano: bigint } {
  return { usd: costNanoUsd / NANO_PER_USD, nano: costNanoUsd % NANO_PER_USD };
}

/**
 * The measures of a result row whose columns are named as in {@link MEASURE_COLUMNS}; the
 * driver's integers become numbers, the cost an exact bigint (plus `cost_usd` when the row has
 * one: SQLite's whole dollars).
 */
export function measuresFromRow(
  r: Record<string, unknown>,
  toNumber: (value: unknown) => number,
): RollupMeasures {
  const m = {} as Record<keyof RollupMeasures, number | bigint>;
  for (const c of MEASURE_COLUMNS) {
    m[MEASURE_FIELD[c]] =
      c === 'cost_nano_usd'
        ? BigInt((r[c] as bigint | number | string | null | undefined) ?? 0)
        : toNumber(r[c]);
  }
  if (r.cost_usd !== undefined && r.cost_usd !== null) {
    m.costNanoUsd =
      BigInt(r.cost_usd as bigint | number | string) * NANO_PER_USD + (m.costNanoUsd as bigint);
  }
  const measures = m as unknown as RollupMeasures;
  // Selected only by a query that asked for the histogram.
  if (r[LATENCY_COLUMNS[0] as string] !== undefined) {
    measures.latency = LATENCY_COLUMNS.map((c) => toNumber(r[c]));
  }
  return measures;
}

/** The columns of an `api_keys` row, in the order of {@link keyParams}. */
export const KEY_COLUMNS =
  'id, project_id, hash, prefix, role, app_id, name, created_at_ms, revoked_at_ms';

/** A key's values for an INSERT over {@link KEY_COLUMNS}. */
export function keyParams(key: ApiKeyRecord): unknown[] {
  return [
    key.id,
    key.projectId,
    key.hash,
    key.prefix,
    key.role,
    key.appId ?? null,
    key.name ?? null,
    key.createdAtMs,
    key.revokedAtMs ?? null,
  ];
}

/** A `price_overrides` row (both SQL stores). */
export interface PriceOverrideRow {
  provider: string;
  model_id: string;
  effective_from: string;
  input: string;
  output: string;
  cache_read: string | null;
  cache_write: string | null;
}

export function priceOverrideFromRow(r: PriceOverrideRow): ModelPriceEntry {
  const entry: ModelPriceEntry = {
    provider: r.provider,
    modelId: r.model_id,
    effectiveFrom: r.effective_from,
    input: r.input,
    output: r.output,
  };
  if (r.cache_read !== null) entry.cacheRead = r.cache_read;
  if (r.cache_write !== null) entry.cacheWrite = r.cache_write;
  return entry;
}

/** An override's values for the upsert, in the order of its columns (`project_id` first). */
export function priceOverrideParams(projectId: string, e: ModelPriceEntry): unknown[] {
  return [
    projectId,
    e.provider,
    e.modelId,
    e.effectiveFrom,
    e.input,
    e.output,
    e.cacheRead ?? null,
    e.cacheWrite ?? null,
  ];
}
