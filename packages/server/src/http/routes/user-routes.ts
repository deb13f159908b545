import { parseUsageQuery, TokenwatchError } from '@tokenwatch/core';
import type { AppDeps, Route } from '../app.js';
import { limitRule, type QuerySpec } from '../query-params.js';
import { sendJson } from '../respond.js';
import { usageRowToJson } from '../usage-format.js';

const DAY_MS = 86_400_000;
/** Most users one search returns: a search box shows a handful; a list wants /v1/usage. */
export const MAX_USER_SEARCH = 1000;
const DEFAULT_USER_SEARCH = 20;

const USER_SEARCH_QUERY: QuerySpec = {
  params: {
    prefix: { type: 'string', maxLength: 512 },
    limit: limitRule(MAX_USER_SEARCH),
    from: { type: 'timestamp' },
    to: { type: 'timestamp' },
  },
};

/**
 * `GET /v1/users?prefix=&limit=&from=&to=`: the users of the key's project with a call counted in
 * the range whose id starts with `prefix` (case-sensitive), searched over all of them — not the
 * top N a dashboard has loaded —, most tokens first.
 */
export function userRoutes(deps: AppDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/users',
      query: USER_SEARCH_QUERY,
      async handle({ req, res, query }) {
        const principal = await deps.auth.authenticate(req.headers.authorization, 'read');
        const prefix = query.string('prefix');
        if (prefix === undefined) {
          throw new TokenwatchError(
            'invalid_query',
            'Invalid query parameter: prefix is required.',
            {
              details: [{ field: 'prefix', reason: 'is required' }],
            },
          );
        }
        const limit = query.integer('limit') ?? DEFAULT_USER_SEARCH;
        // The range is read as /v1/usage reads it (defaults, checks, the rollup it comes from).
        const range = new URLSearchParams({ groupBy: 'user' });
        for (const name of ['from', 'to'] as const) {
          const value = query.string(name);
          if (value !== undefined) range.set(name, value);
        }
        const usage = parseUsageQuery(range, {
          projectId: principal.projectId,
          nowMs: deps.now(),
          minuteRetentionMs: deps.config.retention.minuteDays * DAY_MS,
        });
        // One more than asked: whether there are more matches, without counting them all.
        const rows = await deps.store.searchUsers({
          projectId: principal.projectId,
          fromMs: usage.fromMs,
          toMs: usage.toMs,
          resolution: usage.resolution,
          prefix,
          limit: limit + 1,
        });
        sendJson(res, 200, {
          users: rows.slice(0, limit).map(usageRowToJson),
          more: rows.length > limit,
          query: {
            prefix,
            from: new Date(usage.fromMs).toISOString(),
            to: new Date(usage.toMs).toISOString(),
            limit,
          },
        });
      },
    },
  ];
}
