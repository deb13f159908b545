import { normaliseModel } from '../model/index.js';

/**
 * The token classes CloudWatch's `AWS/Bedrock` namespace publishes per `ModelId`, and the
 * tokenwatch measure each one is compared with. `InputTokenCount` counts uncached input, as
 * tokenwatch's `inputTokens` does; the cache metrics exist only for models with prompt caching.
 */
export const RECONCILED_METRICS = [
  { metric: 'inputTokens', cloudWatchName: 'InputTokenCount' },
  { metric: 'outputTokens', cloudWatchName: 'OutputTokenCount' },
  { metric: 'cacheReadTokens', cloudWatchName: 'CacheReadInputTokenCount' },
  { metric: 'cacheWriteTokens', cloudWatchName: 'CacheWriteInputTokenCount' },
] as const;

export type ReconciledMetric = (typeof RECONCILED_METRICS)[number]['metric'];

/** One hourly sum CloudWatch reported, keyed by its `ModelId` dimension as published. */
export interface ReportedPoint {
  modelId: string;
  hourStartMs: number;
  metric: ReconciledMetric;
  value: number;
}

/** Which (ModelId, metric) series CloudWatch has at all (ListMetrics): the others are not compared. */
export interface PublishedSeries {
  modelId: string;
  metric: ReconciledMetric;
}

/** tokenwatch's hourly totals of one model (a Bedrock model id as stored, i.e. normalised). */
export interface CapturedHour {
  modelId: string;
  hourStartMs: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

/** One line of the reconciliation table. */
export interface ReconciliationRow {
  modelId: string;
  hourStartMs: number;
  metric: ReconciledMetric;
  /** What AWS reported (CloudWatch), in tokens. */
  reported: number;
  /** What tokenwatch counted, in tokens. */
  captured: number;
  /** reported − captured: positive means usage tokenwatch did not capture. */
  difference: number;
  /** difference / reported × 100, rounded to 0.01; null when AWS reported nothing. */
  percent: number | null;
  /**
   * The hour ended long enough ago for both sides to be complete (CloudWatch and invocation
   * logs arrive minutes late); an unsettled row may still change and is never alerted on.
   */
  settled: boolean;
}

export interface ReconcileInput {
  reported: readonly ReportedPoint[];
  published: readonly PublishedSeries[];
  captured: readonly CapturedHour[];
  /** Hours whose start is in [fromMs, toMs) are compared. */
  fromMs: number;
  toMs: number;
  nowMs: number;
  /** How long after an hour's end it counts as settled. */
  settleMs: number;
}

const HOUR_MS = 3_600_000;

/** CloudWatch's ModelId as tokenwatch stores the same model (ARN wrappers removed, prefixes kept). */
export function reportedModelId(dimension: string): string {
  return normaliseModel('bedrock', dimension).modelId;
}

const key = (modelId: string, metric: string) => `${modelId}\u0000${metric}`;

/**
 * Compares, per model, hour and token class, what AWS reported with what tokenwatch captured.
 * Series CloudWatch does not publish (e.g. cache metrics of a model without caching) are not
 * compared, so they never show as a gap; input and output of a model tokenwatch captured but
 * CloudWatch does not know (another region, an unmatched profile) are, with 0 reported. Hours
 * where both sides are 0 are left out. Pure.
 */
export function reconcileHours(input: ReconcileInput): ReconciliationRow[] {
  const firstHour = Math.ceil(input.fromMs / HOUR_MS) * HOUR_MS;
  const reported = new Map<string, number>();
  for (const p of input.reported) {
    if (p.hourStartMs < firstHour || p.hourStartMs >= input.toMs) continue;
    const k = `${key(reportedModelId(p.modelId), p.metric)}\u0000${p.hourStartMs}`;
    reported.set(k, (reported.get(k) ?? 0) + p.value);
  }
  const captured = new Map<string, number>();
  const series = new Map<string, { modelId: string; metric: ReconciledMetric }>();
  for (const s of input.published) {
    const modelId = reportedModelId(s.modelId);
    series.set(key(modelId, s.metric), { modelId, metric: s.metric });
  }
  for (const c of input.captured) {
    if (c.hourStartMs < firstHour || c.hourStartMs >= input.toMs) continue;
    for (const { metric } of RECONCILED_METRICS) {
      const k = `${key(c.modelId, metric)}\u0000${c.hourStartMs}`;
      captured.set(k, (captured.get(k) ?? 0) + c[metric]);
    }
    for (const metric of ['inputTokens', 'outputTokens'] as const) {
      if (!series.has(key(c.modelId, metric)))
        series.set(key(c.modelId, metric), { modelId: c.modelId, metric });
    }
  }
  const rows: ReconciliationRow[] = [];
  for (const { modelId, metric } of series.values()) {
    for (let hour = firstHour; hour < input.toMs; hour += HOUR_MS) {
      const k = `${key(modelId, metric)}\u0000${hour}`;
      const r = reported.get(k) ?? 0;
      const c = captured.get(k) ?? 0;
      if (r === 0 && c === 0) continue;
      const difference = r - c;
      rows.push({
        modelId,
        hourStartMs: hour,
        metric,
        reported: r,
        captured: c,
        difference,
        percent: r === 0 ? null : Math.round((difference / r) * 10_000) / 100,
        settled: hour + HOUR_MS + input.settleMs <= input.nowMs,
      });
    }
  }
  const order = new Map(RECONCILED_METRICS.map((m, i) => [m.metric as string, i]));
  return rows.sort(
    (a, b) =>
      a.hourStartMs - b.hourStartMs ||
      (a.modelId < b.modelId ? -1 : a.modelId > b.modelId ? 1 : 0) ||
      (order.get(a.metric) ?? 0) - (order.get(b.metric) ?? 0),
  );
}

/** Totals of a set of rows: what a panel or a rule looks at. */
export interface ReconciliationSummary {
  reported: number;
  captured: number;
  /** Σ max(0, reported − captured): tokens AWS counted that tokenwatch did not. */
  uncaptured: number;
  /** Σ max(0, captured − reported): tokens tokenwatch counted that AWS did not (other regions…). */
  overCaptured: number;
  /** uncaptured / reported × 100, rounded to 0.01; null when nothing was reported. */
  driftPercent: number | null;
}

export function summariseReconciliation(
  rows: readonly Pick<ReconciliationRow, 'reported' | 'captured'>[],
): ReconciliationSummary {
  let reported = 0;
  let captured = 0;
  let uncaptured = 0;
  let overCaptured = 0;
  for (const r of rows) {
    reported += r.reported;
    captured += r.captured;
    if (r.reported > r.captured) uncaptured += r.reported - r.captured;
    else overCaptured += r.captured - r.reported;
  }
  return {
    reported,
    captured,
    uncaptured,
    overCaptured,
    driftPercent: reported === 0 ? null : Math.round((uncaptured / reported) * 10_000) / 100,
  };
}
