import {
  type CapturedHour,
  compileRule,
  type NewAlert,
  type PublishedSeries,
  parseUsageQuery,
  type ReconciliationRow,
  type ReconciliationStore,
  type ReportedPoint,
  reconcileHours,
  type Store,
  TokenwatchError,
  uncapturedAlerts,
  windowFor,
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
  /** Alerts of `uncapturedTokens` rules this run fired (in the outbox, to be sent). */
  alerts: NewAlert[];
}

/**
 * Compares CloudWatch's AWS/Bedrock token metrics with tokenwatch's Bedrock totals per model
 * and hour, keeps the result (a later run over the same hours replaces it), and fires the
 * levels the project's `uncapturedTokens` rules reach.
 */
export class BedrockReconciler {
  constructor(
    private readonly usage: Pick<Store, 'queryUsage' | 'listRules' | 'fireAlerts'>,
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
    const alerts = await this.fireRules(request.projectId, regions.join(','), fromMs, toMs, nowMs);
    return { regions: regions.join(','), fromMs, toMs, rows, series: published.length, alerts };
  }

  /**
   * The `uncapturedTokens` rules of the project, over the windows this run's hours fall in: a
   * window is judged on every stored hour of it (of this run's region set), not just the run's.
   */
  private async fireRules(
    projectId: string,
    regions: string,
    fromMs: number,
    toMs: number,
    nowMs: number,
  ): Promise<NewAlert[]> {
    const rules = (await this.usage.listRules(projectId)).filter(
      (r) => r.enabled && r.metric === 'uncapturedTokens' && r.window.type === 'calendar',
    );
    const alerts: NewAlert[] = [];
    for (const rule of rules) {
      const from = windowFor(fromMs, rule.window).startMs;
      const to = windowFor(toMs - 1, rule.window).endMs;
      const stored = (await this.results.list(projectId, from, to)).filter(
        (r) => r.regions === regions,
      );
      alerts.push(...uncapturedAlerts(compileRule(rule), stored, nowMs));
    }
    return this.usage.fireAlerts(alerts, nowMs);
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
