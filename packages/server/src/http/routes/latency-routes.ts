import {
  LATENCY_BOUNDS_MS,
  type LatencyRow,
  latencyRowsOf,
  parseLatencyQuery,
} from '@tokenwatch/core';
import type { AppDeps, Route } from '../app.js';
import type { QuerySpec } from '../query-params.js';
import { sendJson } from '../respond.js';
import { RANGE_AND_FILTER_PARAMS } from './usage-routes.js';

const DAY_MS = 86_400_000;

/**
 * The latency parameters' shapes; `parseLatencyQuery` (core) then checks how they combine and
 * refuses what the histograms are not kept for (tags, minutes) with a reason naming the field.
 */
const LATENCY_QUERY: QuerySpec = {
  params: RANGE_AND_FILTER_PARAMS,
  // Accepted here only to be refused by core with a clearer reason than "unknown parameter".
  dynamic: /^(tag[.:]|orderBy$|order$|format$)/,
};

/** Percentiles to 0.1 ms: the histogram's buckets are far coarser than that. */
function roundMs(ms: number): number {
  return Math.round(ms * 10) / 10;
}

function latencyRowToJson(row: LatencyRow): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (row.user !== undefined) out.user = row.user;
  if (row.app !== undefined) out.app = row.app;
  if (row.model !== undefined) out.model = row.model;
  if (row.provider !== undefined) out.provider = row.provider;
  if (row.bucketMs !== undefined) out.bucket = new Date(row.bucketMs).toISOString();
  out.timedRequests = row.timedRequests;
  out.p50Ms = roundMs(row.p50Ms);
  out.p95Ms = roundMs(row.p95Ms);
  out.histogram = row.histogram;
  return out;
}

/**
 * `GET /v1/latency`: p50 and p95 latency per group (model, app, user, provider, or none) over
 * a range, from the latency histograms of the hour and day rollups; the same range, filter and
 * grouping parameters as `/v1/usage`. Groups where no call reported a latency are left out.
 */
export function latencyRoutes(deps: AppDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/latency',
      query: LATENCY_QUERY,
      async handle({ req, res, url }) {
        const principal = await deps.auth.authenticate(req.headers.authorization, 'read');
        const query = parseLatencyQuery(url.searchParams, {
          // The project comes from the key, never from the request.
          projectId: principal.projectId,
          nowMs: deps.now(),
          minuteRetentionMs: deps.config.retention.minuteDays * DAY_MS,
        });
        const rows = latencyRowsOf(await deps.store.queryUsage(query));
        sendJson(res, 200, {
          rows: rows.map(latencyRowToJson),
          bucketBoundsMs: LATENCY_BOUNDS_MS,
          query: {
            from: new Date(query.fromMs).toISOString(),
            to: new Date(query.toMs).toISOString(),
            interval: query.interval ?? null,
            resolution: query.resolution,
            groupBy: query.groupBy,
            limit: query.limit,
          },
        });
      },
    },
  ];
}
