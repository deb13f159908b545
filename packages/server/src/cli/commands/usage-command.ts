import { parseArgs } from 'node:util';
import { parseUsageQuery, TokenwatchError, type UsageRow } from '@tokenwatch/core';
import { openStore } from '../../adapters/store/open-store.js';
import { DEFAULT_PROJECT_ID } from '../../bootstrap.js';
import { type CliIo, COMMON_OPTIONS, configFromFlags } from '../cli-context.js';
import { compactNumber, formatUsd, table } from '../format.js';

export const USAGE_HELP = `tokenwatch usage [--period 24h|7d|30d|Nh|Nd] [--from T --to T] [--top N] [--project P] [--json] [--data-dir D]

A terminal report of a period: totals, then the top users, apps and models by tokens,
with cost. Reads the local store (safe while the server runs).`;

const PERIOD = /^(\d+)([hd])$/;

export async function usageCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...COMMON_OPTIONS,
      period: { type: 'string', default: '24h' },
      from: { type: 'string' },
      to: { type: 'string' },
      top: { type: 'string', default: '10' },
      project: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (values.help) {
    io.stdout(`${USAGE_HELP}\n`);
    return 0;
  }
  const now = Date.now();
  const params = new URLSearchParams();
  if (values.from) params.set('from', values.from);
  else {
    const m = PERIOD.exec(values.period ?? '24h');
    if (!m)
      throw new TokenwatchError(
        'invalid_argument',
        `--period must look like 24h or 7d, got "${values.period}"`,
      );
    const ms = Number(m[1]) * (m[2] === 'h' ? 3_600_000 : 86_400_000);
    params.set('from', String(now - ms));
  }
  if (values.to) params.set('to', values.to);
  const top = values.top ?? '10';
  const config = configFromFlags(values, io);
  const store = await openStore(config, { thread: 'main' });
  try {
    await store.migrate();
    const projectId = values.project ?? DEFAULT_PROJECT_ID;
    const run = async (extra: Record<string, string>) => {
      const p = new URLSearchParams(params);
      for (const [k, v] of Object.entries(extra)) p.set(k, v);
      const q = parseUsageQuery(p, { projectId, nowMs: now, minuteRetentionMs: 7 * 86_400_000 });
      return { q, rows: await store.queryUsage(q) };
    };
    const totals = await run({});
    const sections = await Promise.all(
      (['user', 'app', 'model'] as const).map(async (dim) => ({
        dim,
        ...(await run({ groupBy: dim, limit: top })),
      })),
    );
    if (values.json) {
      const plain = (rows: UsageRow[]) =>
        rows.map((r) => ({ ...r, costNanoUsd: r.costNanoUsd.toString() }));
      io.stdout(
        `${JSON.stringify(
          {
            project: projectId,
            from: new Date(totals.q.fromMs).toISOString(),
            to: new Date(totals.q.toMs).toISOString(),
            totals: plain(totals.rows)[0] ?? null,
            ...Object.fromEntries(sections.map((s) => [`top_${s.dim}s`, plain(s.rows)])),
          },
          null,
          2,
        )}\n`,
      );
      return 0;
    }
    const t = totals.rows[0];
    const out: string[] = [
      `tokenwatch usage — project "${projectId}", ${new Date(totals.q.fromMs).toISOString()} → ${new Date(totals.q.toMs).toISOString()} (UTC)`,
      '',
    ];
    if (!t) {
      out.push('No usage in this period.');
      io.stdout(`${out.join('\n')}\n`);
      return 0;
    }
    out.push(
      `Total: ${compactNumber(t.totalTokens)} tokens (${compactNumber(t.inputTokens)} in, ${compactNumber(t.outputTokens)} out, ${compactNumber(t.cacheReadTokens)} cache read, ${compactNumber(t.cacheWriteTokens)} cache write), ${compactNumber(t.requests)} requests, ${t.errors} errors, ${formatUsd(t.costNanoUsd)}`,
    );
    if (t.unpricedTokens > 0) {
      out.push(
        `WARNING: ${compactNumber(t.unpricedTokens)} tokens (${t.unpricedRequests} requests) are of models without a price; they are not in the cost.`,
      );
    }
    if (t.noUsageRequests > 0) {
      out.push(
        `WARNING: ${t.noUsageRequests} calls returned no usage; their tokens and cost are unknown (at most what was seen is counted).`,
      );
    }
    if (t.deniedRequests > 0) out.push(`${t.deniedRequests} calls were denied by a budget.`);
    for (const s of sections) {
      out.push('', `Top ${s.dim}s`);
      out.push(
        table(
          [s.dim, 'tokens', 'share', 'requests', 'cost', 'unpriced'],
          s.rows.map((r) => [
            String(r[s.dim] ?? ''),
            compactNumber(r.totalTokens),
            `${((100 * r.totalTokens) / t.totalTokens).toFixed(1)}%`,
            compactNumber(r.requests),
            formatUsd(r.costNanoUsd),
            r.unpricedTokens > 0 ? compactNumber(r.unpricedTokens) : '',
          ]),
          [false, true, true, true, true, true],
        ),
      );
    }
    io.stdout(`${out.join('\n')}\n`);
    return 0;
  } finally {
    await store.close();
  }
}
