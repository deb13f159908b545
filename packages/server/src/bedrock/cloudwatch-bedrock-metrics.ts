import {
  CloudWatchClient,
  GetMetricDataCommand,
  ListMetricsCommand,
  type MetricDataQuery,
} from '@aws-sdk/client-cloudwatch';
import {
  type PublishedSeries,
  RECONCILED_METRICS,
  type ReconciledMetric,
  type ReportedPoint,
  TokenwatchError,
} from '@tokenwatch/core';

/** What CloudWatch says about Bedrock's token usage in one region. */
export interface BedrockMetrics {
  published: PublishedSeries[];
  reported: ReportedPoint[];
}

export interface CloudWatchOptions {
  region: string;
  /** Endpoint override (VPC endpoint, or a local stand-in in tests). */
  endpoint?: string | undefined;
  credentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
}

const NAMESPACE = 'AWS/Bedrock';
const HOUR_MS = 3_600_000;
/** GetMetricData takes at most 500 queries per call. */
const MAX_QUERIES = 500;

/**
 * Reads the hourly sums of `AWS/Bedrock` token metrics per `ModelId` over [fromMs, toMs):
 * ListMetrics tells which series exist (only those are compared, so a metric AWS does not publish
 * for a model is never a false gap), GetMetricData their hourly `Sum`s. Period 3600 is kept by
 * CloudWatch for 455 days, so any hour of that range can be compared. ListMetrics only lists
 * series with data in the last two weeks: an older range finds no series and says so.
 */
export async function readBedrockMetrics(
  options: CloudWatchOptions,
  fromMs: number,
  toMs: number,
): Promise<BedrockMetrics> {
  const client = new CloudWatchClient({
    region: options.region,
    ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
    ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
    maxAttempts: 5,
  });
  try {
    const published: PublishedSeries[] = [];
    for (const { metric, cloudWatchName } of RECONCILED_METRICS) {
      let next: string | undefined;
      do {
        const page = await client.send(
          new ListMetricsCommand({
            Namespace: NAMESPACE,
            MetricName: cloudWatchName,
            Dimensions: [{ Name: 'ModelId' }],
            ...(next !== undefined ? { NextToken: next } : {}),
          }),
        );
        for (const m of page.Metrics ?? []) {
          const dims = m.Dimensions ?? [];
          const model =
            dims.length === 1 && dims[0]?.Name === 'ModelId' ? dims[0].Value : undefined;
          if (model) published.push({ modelId: model, metric });
        }
        next = page.NextToken;
      } while (next);
    }
    const reported: ReportedPoint[] = [];
    const byId = new Map<string, PublishedSeries>();
    const queries: MetricDataQuery[] = published.map((s, i) => {
      const id = `m${i}`;
      byId.set(id, s);
      const name = RECONCILED_METRICS.find((m) => m.metric === s.metric)?.cloudWatchName;
      return {
        Id: id,
        MetricStat: {
          Metric: {
            Namespace: NAMESPACE,
            MetricName: name,
            Dimensions: [{ Name: 'ModelId', Value: s.modelId }],
          },
          Period: 3600,
          Stat: 'Sum',
        },
        ReturnData: true,
      };
    });
    for (let i = 0; i < queries.length; i += MAX_QUERIES) {
      let next: string | undefined;
      do {
        const page = await client.send(
          new GetMetricDataCommand({
            MetricDataQueries: queries.slice(i, i + MAX_QUERIES),
            StartTime: new Date(fromMs),
            EndTime: new Date(toMs),
            ScanBy: 'TimestampAscending',
            ...(next !== undefined ? { NextToken: next } : {}),
          }),
        );
        for (const result of page.MetricDataResults ?? []) {
          const series = result.Id === undefined ? undefined : byId.get(result.Id);
          if (!series) continue;
          const timestamps = result.Timestamps ?? [];
          const values = result.Values ?? [];
          for (const [j, ts] of timestamps.entries()) {
            const value = values[j];
            if (value === undefined || !Number.isFinite(value)) continue;
            const hourStartMs = Math.floor(ts.getTime() / HOUR_MS) * HOUR_MS;
            reported.push({
              modelId: series.modelId,
              metric: series.metric as ReconciledMetric,
              hourStartMs,
              value: Math.round(value),
            });
          }
        }
        next = page.NextToken;
      } while (next);
    }
    return { published, reported };
  } catch (err) {
    if (err instanceof TokenwatchError) throw err;
    throw new TokenwatchError(
      'unavailable',
      `CloudWatch (${options.region}) could not be read: ${(err as Error).message}`,
      { cause: err },
    );
  } finally {
    client.destroy();
  }
}
