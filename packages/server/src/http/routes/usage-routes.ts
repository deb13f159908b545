import type { IncomingMessage } from 'node:http';
import { parseUsageQuery, type UsageQuery } from '@tokenwatch/core';
import type { AppDeps, Route } from '../app.js';
import { sendJson, sendText } from '../respond.js';
import { usageRowsToCsv, usageRowToJson } from '../usage-format.js';

const DAY_MS = 86_400_000;

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
      async handle({ req, res, url }) {
        const query = await parse(req, url);
        sendJson(res, 200, { count: await deps.store.countGroups(query), query: describe(query) });
      },
    },
  ];
}
