import {
  parseUsageQuery,
  splitLogText,
  summariseReconciliation,
  TokenwatchError,
} from '@tokenwatch/core';
import { addProblems, InvocationLogImporter } from '../../bedrock/invocation-log-importer.js';
import { invocationLogMapping } from '../../config/bedrock-config-schema.js';
import type { AppDeps, Route } from '../app.js';
import { readBody } from '../read-body.js';
import { sendJson } from '../respond.js';

/** JSON, JSON lines or a CloudWatch export as text: the reader splits any of them. */
const LOG_TYPES =
  /^(application\/(json|x-ndjson|jsonl|x-jsonlines|[\w.+-]+\+json)|text\/plain)(\s*;.*)?$/i;

/** Bedrock model invocation logs in, for shippers other than the CLI and the AWS stack. */
export function bedrockRoutes(deps: AppDeps): Route[] {
  const settings = deps.config.bedrock.invocationLogs;
  const importer = new InvocationLogImporter(
    deps.sink,
    deps.catalogs,
    invocationLogMapping(settings),
    deps.now,
  );
  return [
    {
      method: 'POST',
      path: '/v1/import/bedrock-logs',
      async handle({ req, res }) {
        const principal = await deps.auth.authenticate(req.headers.authorization, 'ingest');
        const type = req.headers['content-type'];
        if (type !== undefined && !LOG_TYPES.test(type)) {
          req.resume();
          throw new TokenwatchError(
            'unsupported_media_type',
            `Content-Type "${type}" is not accepted; send JSON, JSON lines or text/plain.`,
          );
        }
        const body = await readBody(req, settings.importMaxBodyBytes);
        const text = body.toString('utf8');
        const { records, problems } = splitLogText(text);
        if (records.length === 0 && problems.length === 0) {
          throw new TokenwatchError('invalid_body', 'The body holds no invocation-log record.');
        }
        const tally = await importer.importRecords(
          records,
          { projectId: principal.projectId, boundAppId: principal.key.appId },
          (i) => `record ${i}`,
        );
        addProblems(tally, problems, 'body');
        sendJson(res, 200, tally);
      },
    },
    {
      method: 'GET',
      path: '/v1/reconciliation',
      query: { params: { from: { type: 'timestamp' }, to: { type: 'timestamp' } } },
      async handle({ req, res, query }) {
        const principal = await deps.auth.authenticate(req.headers.authorization, 'read');
        if (!deps.reconciliation) {
          throw new TokenwatchError(
            'not_found',
            'Reconciliation results are not kept by this deployment.',
          );
        }
        const params = new URLSearchParams();
        const from = query.string('from');
        const to = query.string('to');
        params.set('from', from ?? String(deps.now() - 48 * 3_600_000));
        if (to !== undefined) params.set('to', to);
        const range = parseUsageQuery(params, {
          projectId: principal.projectId,
          nowMs: deps.now(),
          minuteRetentionMs: 7 * 86_400_000,
        });
        const rows = await deps.reconciliation.list(principal.projectId, range.fromMs, range.toMs);
        // Per hour over every model and class: what a chart of captured vs reported shows.
        const hours = new Map<number, typeof rows>();
        for (const r of rows) hours.set(r.hourStartMs, [...(hours.get(r.hourStartMs) ?? []), r]);
        sendJson(res, 200, {
          from: new Date(range.fromMs).toISOString(),
          to: new Date(range.toMs).toISOString(),
          summary: summariseReconciliation(rows.filter((r) => r.settled)),
          hours: [...hours.entries()].map(([hourStartMs, list]) => ({
            hour: new Date(hourStartMs).toISOString(),
            settled: list.every((r) => r.settled),
            ...summariseReconciliation(list),
          })),
          rows: rows.map((r) => ({
            model: r.modelId,
            hour: new Date(r.hourStartMs).toISOString(),
            metric: r.metric,
            reported: r.reported,
            captured: r.captured,
            difference: r.difference,
            percent: r.percent,
            settled: r.settled,
            regions: r.regions,
            computedAt: new Date(r.computedAtMs).toISOString(),
          })),
        });
      },
    },
  ];
}
