import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { parseUsageQuery, summariseReconciliation, TokenwatchError } from '@tokenwatch/core';
import { openReconciliationStore } from '../../adapters/reconciliation/open-reconciliation-store.js';
import { openStore } from '../../adapters/store/open-store.js';
import { cloudWatchReconciler } from '../../bedrock/reconcile-runner.js';
import { DEFAULT_PROJECT_ID } from '../../bootstrap.js';
import { sqlitePath } from '../../config/config-schema.js';
import { makePrivateDir } from '../../util/private-files.js';
import { type CliIo, COMMON_OPTIONS, configFromFlags } from '../cli-context.js';
import { table } from '../format.js';

export const RECONCILE_HELP = `tokenwatch reconcile bedrock --region R[,R2…] --from T1 --to T2 [--data-dir D] [--project P] [--endpoint URL] [--json]

Compares, per model and hour, the token counts CloudWatch's AWS/Bedrock metrics report
(InputTokenCount, OutputTokenCount and the cache metrics where published) with what tokenwatch
captured, prints model, hour, reported, captured, difference and percent, and stores the result
(GET /v1/reconciliation, the dashboard). AWS credentials come from the usual chain (environment,
profile, role). T1, T2: RFC 3339, YYYY-MM-DD or epoch ms; at most 31 days.

  --region R          one region, or several comma-separated: their metrics are summed
  --endpoint URL      CloudWatch endpoint override (a VPC endpoint)
  --settle-minutes N  an hour counts as settled N minutes after its end (default from config, 15)`;

const iso = (ms: number) => new Date(ms).toISOString().replace(':00:00.000Z', ':00Z');

export async function reconcileCommand(argv: string[], io: CliIo): Promise<number> {
  const [what, ...rest] = argv;
  if (what === undefined || what === '--help' || what === '-h' || what === 'help') {
    io.stdout(`${RECONCILE_HELP}\n`);
    return what === undefined ? 2 : 0;
  }
  if (what !== 'bedrock') {
    throw new TokenwatchError('invalid_argument', `unknown provider "${what}"; use bedrock`);
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      ...COMMON_OPTIONS,
      region: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      project: { type: 'string' },
      endpoint: { type: 'string' },
      'settle-minutes': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (values.help) {
    io.stdout(`${RECONCILE_HELP}\n`);
    return 0;
  }
  const regions = (values.region ?? '')
    .split(',')
    .map((r) => r.trim())
    .filter((r) => r.length > 0);
  if (regions.length === 0 || regions.some((r) => !/^[a-z]{2}(-[a-z]+)+-\d$/.test(r))) {
    throw new TokenwatchError('invalid_argument', '--region must name AWS regions, e.g. us-east-1');
  }
  if (values.from === undefined || values.to === undefined) {
    throw new TokenwatchError('invalid_argument', '--from and --to are required');
  }
  const config = configFromFlags(values, io);
  const projectId = values.project ?? DEFAULT_PROJECT_ID;
  const range = parseUsageQuery(new URLSearchParams({ from: values.from, to: values.to }), {
    projectId,
    nowMs: Date.now(),
    minuteRetentionMs: 7 * 86_400_000,
  });
  const settleMinutes =
    values['settle-minutes'] === undefined
      ? config.bedrock.reconcile.settleMinutes
      : Number(values['settle-minutes']);
  if (!Number.isInteger(settleMinutes) || settleMinutes < 0) {
    throw new TokenwatchError('invalid_argument', '--settle-minutes must be a whole number ≥ 0');
  }

  // A first import may come before any `serve`: the store's directory may not exist yet.
  if (config.store.driver === 'sqlite') makePrivateDir(dirname(sqlitePath(config)));
  const store = await openStore(config, { thread: 'main' });
  const results = await openReconciliationStore(config).catch(async (err: unknown) => {
    await store.close();
    throw err;
  });
  try {
    await store.migrate();
    const reconciler = cloudWatchReconciler(store, results, {
      endpoint: values.endpoint ?? config.bedrock.reconcile.endpoint,
    });
    const outcome = await reconciler.run({
      projectId,
      regions,
      fromMs: range.fromMs,
      toMs: range.toMs,
      settleMs: settleMinutes * 60_000,
    });
    const summary = summariseReconciliation(outcome.rows);
    if (values.json) {
      io.stdout(`${JSON.stringify({ ...outcome, summary })}\n`);
      return 0;
    }
    if (outcome.series === 0) {
      io.stdout(
        `CloudWatch has no AWS/Bedrock token metrics in ${outcome.regions} (none in the last two weeks, or no access).\n`,
      );
    }
    io.stdout(
      table(
        ['model', 'hour (UTC)', 'tokens', 'reported by AWS', 'captured', 'difference', '%'],
        outcome.rows.map((r) => [
          r.modelId,
          iso(r.hourStartMs),
          r.metric,
          String(r.reported),
          String(r.captured),
          String(r.difference),
          r.percent === null ? '—' : `${r.percent.toFixed(2)}${r.settled ? '' : ' (unsettled)'}`,
        ]),
        [false, false, false, true, true, true, true],
      ),
    );
    io.stdout(
      `\n${outcome.regions}, ${iso(outcome.fromMs)} → ${iso(outcome.toMs)}: reported ${summary.reported}, captured ${summary.captured}, uncaptured ${summary.uncaptured}${summary.driftPercent === null ? '' : ` (${summary.driftPercent.toFixed(2)} %)`}, captured but not reported ${summary.overCaptured}\n`,
    );
    if (outcome.alerts.length > 0)
      io.stdout(
        `${outcome.alerts.length} alert(s) of uncapturedTokens rules fired; the next tokenwatch serve sends them\n`,
      );
    return 0;
  } finally {
    await results.close();
    await store.close();
  }
}
