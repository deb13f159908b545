import type { IncomingMessage } from 'node:http';
import { MAX_QUERY_ROWS, ORDER_FIELDS, parseUsageQuery, type UsageQuery } from '@tokenwatch/core';
import type { AppDeps, Route } from '../app.js';
import { limitRule, type QuerySpec } from '../query-params.js';
import { sendJson, sendText } from '../respond.js';
import { usageRowsToCsv, usageRowToJson } from '../usage-format.js';

const DAY_MS = 86_400_000;

const FILTER_VALUE = { type: 'string', maxLength: 512, repeatable: true } as const;

/**
 * The range, grouping and filter parameters `/v1/usage` shares with `/v1/latency`. Filters repeat
 * (`user=a&user=b`); `tag.<key>` / `tag:<key>` filters are checked by core.
 */
export const RANGE_AND_FILTER_PARAMS: QuerySpec['params'] = {
  from: { type: 'timestamp' },
  to: { type: 'timestamp' },
  interval: { type: 'enum', values: ['minute', 'hour', 'day', 'month', 'none', ''] },
  groupBy: { type: 'string', maxLength: 1024 },
  limit: limitRule(MAX_QUERY_ROWS),
  user: FILTER_VALUE,
  userId: FILTER_VALUE,
  app: FILTER_VALUE,
  appId: FILTER_VALUE,
  model: FILTER_VALUE,
  modelId: FILTER_VALUE,
  provider: FILTER_VALUE,
};

/** The usage parameters' shapes; `parseUsageQuery` (core) then checks how they combine. */
const USAGE_QUERY: QuerySpec = {
  params: {
    ...RANGE_AND_FILTER_PARAMS,
    orderBy: { type: 'enum', values: [...ORDER_FIELDS, 'cost'] },
    order: { type: 'enum', values: ['asc', 'desc'] },
    format: { type: 'enum', values: ['json', 'csv'] },
  },
  dynamic: /^tag[.:]/,
};

export function usageRoutes(deps: AppDeps): Route[] {
  const parse = async (req: IncomingMessage, url: URL): Promise<UsageQuery> => {
    const principal = await deps.auth.authenticate(req.headers.authorization, 'read');
    return parseUsageQuery(url.searchParams, {
      // The project comes from the key, never from the request: no parameter can reach another.
      projectId: principal.projectId,
      nowMs: deps.now(),
      minuteRetentionMs: deps.config.retention.minuteDays * DAY_MS,
    });
  };
  const describe = (query: UsageQuery) => ({
    from: new Date(query.fromMs).toISOString(),
    to: new Date(query.toMs).toISOString(),
    interval: query.interval ?? null,
    resolution: query.resolution,
    groupBy: query.groupBy,
    orderBy: query.orderBy,
    order: query.order,
    limit: query.limit,
  });
  return [
    {
      method: 'GET',
      path: '/v1/usage',
      query: USAGE_QUERY,
      async handle({ req, res, url }) {
        const query = await parse(req, url);
        const rows = await deps.store.queryUsage(query);
        const wantsCsv =
          url.searchParams.get('format') === 'csv' ||
          /\btext\/csv\b/.test(req.headers.accept ?? '');
        if (wantsCsv) {
          sendText(res, 200, usageRowsToCsv(rows, query), 'text/csv; charset=utf-8', {
            'content-disposition': 'attachment; filename="tokenwatch-usage.csv"',
          });
          return;
        }
        sendJson(res, 200, { rows: rows.map(usageRowToJson), query: describe(query) });
      },
    },
    {
      // How many rows /v1/usage would return without its limit: `groupBy=user` counts the
      // active users of the range without sending them all.
      method: 'GET',
      path: '/v1/usage/count',
      query: USAGE_QUERY,
      async handle({ req, res, url }) {
        const query = await parse(req, url);
        sendJson(res, 200, { count: await deps.store.countGroups(query), query: describe(query) });
      },
    },
  ];
}
