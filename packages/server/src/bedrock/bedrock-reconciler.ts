import {
  type CapturedHour,
  type PublishedSeries,
  parseUsageQuery,
  type ReconciliationRow,
  type ReconciliationStore,
  type ReportedPoint,
  reconcileHours,
  TokenwatchError,
  type UsageStore,
} from '@tokenwatch/core';
import type { BedrockMetrics } from './cloudwatch-bedrock-metrics.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** The longest range one run compares (CloudWatch keeps hourly sums 455 days; a run stays small). */
export const MAX_RECONCILE_DAYS = 31;

export interface ReconcileRequest {
  projectId: string;
  /** AWS regions whose metrics are summed (tokenwatch's totals hold every region). */
  regions: readonly string[];
  fromMs: number;
  toMs: number;
  /** How long after an hour's end its row counts as settled. */
  settleMs: number;
}

export interface ReconcileOutcome {
  regions: string;
  fromMs: number;
  toMs: number;
  rows: ReconciliationRow[];
  /** Published series found; 0 means CloudWatch has no Bedrock token metrics in these regions. */
  series: number;
}

/**
 * Compares CloudWatch's AWS/Bedrock token metrics with tokenwatch's Bedrock totals per model
 * and hour, and keeps the result (a later run over the same hours replaces it).
 */
export class BedrockReconciler {
  constructor(
    private readonly usage: Pick<UsageStore, 'queryUsage'>,
    private readonly results: ReconciliationStore,
    private readonly readMetrics: (
      region: string,
      fromMs: number,
      toMs: number,
    ) => Promise<BedrockMetrics>,
    private readonly now: () => number = Date.now,
  ) {}

  async run(request: ReconcileRequest): Promise<ReconcileOutcome> {
    const fromMs = Math.floor(request.fromMs / HOUR_MS) * HOUR_MS;
    const toMs = Math.ceil(request.toMs / HOUR_MS) * HOUR_MS;
    if (!(toMs > fromMs)) {
      throw new TokenwatchError('invalid_argument', '--to must be after --from');
    }
    if (toMs - fromMs > MAX_RECONCILE_DAYS * DAY_MS) {
      throw new TokenwatchError(
        'invalid_argument',
        `reconcile at most ${MAX_RECONCILE_DAYS} days at a time`,
      );
    }
    const regions = [...new Set(request.regions)].sort();
    if (regions.length === 0) throw new TokenwatchError('invalid_argument', 'name a region');
    const published: PublishedSeries[] = [];
    const reported: ReportedPoint[] = [];
    for (const region of regions) {
      const m = await this.readMetrics(region, fromMs, toMs);
      published.push(...m.published);
      reported.push(...m.reported);
    }
    const captured = await this.captured(request.projectId, fromMs, toMs);
    const nowMs = this.now();
    const rows = reconcileHours({
      reported,
      published,
      captured,
      fromMs,
      toMs,
      nowMs,
      settleMs: request.settleMs,
    });
    await this.results.replace(request.projectId, regions.join(','), fromMs, toMs, rows, nowMs);
    return { regions: regions.join(','), fromMs, toMs, rows, series: published.length };
  }

  /** tokenwatch's Bedrock totals per model and hour, a week at a time (the query's row limit). */
  private async captured(projectId: string, fromMs: number, toMs: number): Promise<CapturedHour[]> {
    const out: CapturedHour[] = [];
    for (let start = fromMs; start < toMs; start += 7 * DAY_MS) {
      const end = Math.min(toMs, start + 7 * DAY_MS);
      const params = new URLSearchParams({
        from: String(start),
        to: String(end),
        interval: 'hour',
        groupBy: 'model',
        provider: 'bedrock',
        limit: '10000',
      });
      const query = parseUsageQuery(params, {
        projectId,
        nowMs: this.now(),
        minuteRetentionMs: 7 * DAY_MS,
      });
      for (const r of await this.usage.queryUsage(query)) {
        if (r.model === undefined || r.bucketMs === undefined) continue;
        out.push({
          modelId: r.model,
          hourStartMs: r.bucketMs,
          inputTokens: r.inputTokens,
          outputTokens: r.outputTokens,
          cacheReadTokens: r.cacheReadTokens,
          cacheWriteTokens: r.cacheWriteTokens,
        });
      }
    }
    return out;
  }
}
