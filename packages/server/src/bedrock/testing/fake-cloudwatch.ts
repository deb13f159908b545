import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One datapoint of the fake's AWS/Bedrock namespace. */
export interface FakeDatapoint {
  metricName: string;
  modelId: string;
  timestampMs: number;
  value: number;
}

export interface FakeCloudWatch {
  url: string;
  datapoints: FakeDatapoint[];
  /** Every request, by operation (`ListMetrics`, `GetMetricData`), with its JSON body. */
  requests: Array<{ operation: string; body: Record<string, unknown>; authorization: string }>;
  close(): Promise<void>;
}

const read = (req: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });

/**
 * A loopback stand-in for CloudWatch's ListMetrics and GetMetricData over the AWS JSON 1.0
 * protocol that `@aws-sdk/client-cloudwatch` speaks (`X-Amz-Target:
 * GraniteServiceVersion20100801.<Operation>`, timestamps as epoch seconds). It pages its answers
 * (two items a page) so callers' NextToken loops are exercised, and sums datapoints per Period
 * as CloudWatch's `Sum` statistic does.
 */
export async function startFakeCloudWatch(): Promise<FakeCloudWatch> {
  const fake: Omit<FakeCloudWatch, 'url' | 'close'> = { datapoints: [], requests: [] };
  const server: Server = createServer(async (req, res) => {
    const text = await read(req);
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = target.split('.')[1] ?? '';
    const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
    fake.requests.push({ operation, body, authorization: String(req.headers.authorization ?? '') });
    const reply = (status: number, json: unknown) => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
      res.end(JSON.stringify(json));
    };
    const page = <T>(items: T[]): { items: T[]; next: string | undefined } => {
      const start = Number(body.NextToken ?? 0);
      const next = start + 2 < items.length ? String(start + 2) : undefined;
      return { items: items.slice(start, start + 2), next };
    };
    if (operation === 'ListMetrics') {
      const name = body.MetricName as string | undefined;
      const series = new Map<string, { metricName: string; modelId: string }>();
      for (const p of fake.datapoints) {
        if (name !== undefined && p.metricName !== name) continue;
        series.set(`${p.metricName}\u0000${p.modelId}`, {
          metricName: p.metricName,
          modelId: p.modelId,
        });
      }
      const { items, next } = page([...series.values()]);
      reply(200, {
        Metrics: items.map((s) => ({
          Namespace: 'AWS/Bedrock',
          MetricName: s.metricName,
          Dimensions: [{ Name: 'ModelId', Value: s.modelId }],
        })),
        ...(next ? { NextToken: next } : {}),
      });
      return;
    }
    if (operation === 'GetMetricData') {
      const startMs = Number(body.StartTime) * 1000;
      const endMs = Number(body.EndTime) * 1000;
      type Query = {
        Id: string;
        MetricStat: {
          Metric: { MetricName: string; Dimensions: Array<{ Name: string; Value: string }> };
          Period: number;
          Stat: string;
        };
      };
      const results = (body.MetricDataQueries as Query[]).map((q) => {
        const periodMs = q.MetricStat.Period * 1000;
        const modelId = q.MetricStat.Metric.Dimensions.find((d) => d.Name === 'ModelId')?.Value;
        const sums = new Map<number, number>();
        for (const p of fake.datapoints) {
          if (p.metricName !== q.MetricStat.Metric.MetricName || p.modelId !== modelId) continue;
          if (p.timestampMs < startMs || p.timestampMs >= endMs) continue;
          const bucket = Math.floor(p.timestampMs / periodMs) * periodMs;
          sums.set(bucket, (sums.get(bucket) ?? 0) + p.value);
        }
        const buckets = [...sums.keys()].sort((a, b) => a - b);
        return {
          Id: q.Id,
          Label: q.MetricStat.Metric.MetricName,
          Timestamps: buckets.map((b) => b / 1000),
          Values: buckets.map((b) => sums.get(b)),
          StatusCode: 'Complete',
        };
      });
      const { items, next } = page(results);
      reply(200, { MetricDataResults: items, Messages: [], ...(next ? { NextToken: next } : {}) });
      return;
    }
    reply(400, { __type: 'com.amazonaws.cloudwatch#InvalidAction', message: `unknown ${target}` });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    ...fake,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  } as FakeCloudWatch;
}
