import { formatNanoUsd, type UsageQuery, type UsageRow } from '@tokenwatch/core';

/** The JSON shape of one usage row in the API (documented in the README). */
export function usageRowToJson(row: UsageRow): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  if (row.user !== undefined) out.user = row.user;
  if (row.app !== undefined) out.app = row.app;
  if (row.model !== undefined) out.model = row.model;
  if (row.provider !== undefined) out.provider = row.provider;
  if (row.tag !== undefined) out[`tag:${row.tag.key}`] = row.tag.value;
  if (row.bucketMs !== undefined) out.bucket = new Date(row.bucketMs).toISOString();
  out.inputTokens = row.inputTokens;
  out.outputTokens = row.outputTokens;
  out.cacheReadTokens = row.cacheReadTokens;
  out.cacheWriteTokens = row.cacheWriteTokens;
  out.totalTokens = row.totalTokens;
  out.requests = row.requests;
  out.errors = row.errors;
  out.costUsd = Number(formatNanoUsd(row.costNanoUsd));
  out.costNanoUsd = row.costNanoUsd.toString();
  out.unpricedTokens = row.unpricedTokens;
  out.unpricedRequests = row.unpricedRequests;
  out.noUsageRequests = row.noUsageRequests;
  out.deniedRequests = row.deniedRequests;
  return out;
}

const MEASURE_COLUMNS = [
  'inputTokens',
  'outputTokens',
  'cacheReadTokens',
  'cacheWriteTokens',
  'totalTokens',
  'requests',
  'errors',
  'costUsd',
  'costNanoUsd',
  'unpricedTokens',
  'unpricedRequests',
  'noUsageRequests',
  'deniedRequests',
];

/**
 * RFC 4180 CSV. A cell that a spreadsheet would run as a formula (starting with = + - @ or a
 * tab / carriage return) is prefixed with a single quote: user ids come from callers.
 */
function csvCell(value: string | number): string {
  let text = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n']/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function usageRowsToCsv(rows: UsageRow[], query: UsageQuery): string {
  const dims = query.groupBy.map((g) => (g.startsWith('tag:') ? g : g));
  const columns = [...dims, ...(query.interval ? ['bucket'] : []), ...MEASURE_COLUMNS];
  const lines = [columns.join(',')];
  for (const row of rows) {
    const json = usageRowToJson(row);
    lines.push(columns.map((c) => csvCell(json[c] ?? '')).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}
