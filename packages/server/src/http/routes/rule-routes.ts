import {
  type AlertRecord,
  checkTags,
  compileRule,
  counterKeyOf,
  type Rule,
  TokenwatchError,
  type ValidationIssue,
  windowFor,
} from '@tokenwatch/core';
import type { BudgetEnforcer, CheckRequest } from '../../alerts/budget-enforcer.js';
import type { RuleRegistry } from '../../alerts/rule-registry.js';
import type { RuleService } from '../../alerts/rule-service.js';
import { ruleStatus } from '../../alerts/rule-status.js';
import type { AppDeps, Route } from '../app.js';
import { limitRule } from '../query-params.js';
import { parseJson, readBody } from '../read-body.js';
import { sendJson } from '../respond.js';

const BODY_LIMIT = 64 * 1024;
const DELIVERY_STATUSES = ['pending', 'sending', 'delivered', 'dead'] as const;

export interface RuleRouteDeps {
  rules: RuleService;
  registry: RuleRegistry;
  enforcer: BudgetEnforcer;
}

/** A rule as the API shows it. Webhook secrets are shown to admins (they need them to verify). */
function ruleToJson(rule: Rule): Record<string, unknown> {
  const { projectId: _p, createdAtMs, updatedAtMs, budget, ...rest } = rule;
  return {
    ...rest,
    ...(budget !== undefined ? { budget } : {}),
    createdAt: new Date(createdAtMs).toISOString(),
    updatedAt: new Date(updatedAtMs).toISOString(),
  };
}

export function alertToJson(a: AlertRecord): Record<string, unknown> {
  return {
    id: a.alertId,
    ruleId: a.ruleId,
    ruleName: a.message.rule.name,
    scope: a.message.scope,
    window: a.message.window,
    level: a.message.level,
    value: a.message.value,
    late: a.late,
    forecast: a.forecast,
    firedAt: new Date(a.firedAtMs).toISOString(),
    acknowledgedAt:
      a.acknowledgedAtMs === undefined ? null : new Date(a.acknowledgedAtMs).toISOString(),
  };
}

async function body(req: Parameters<Route['handle']>[0]['req']): Promise<unknown> {
  return parseJson(await readBody(req, BODY_LIMIT));
}

/**
 * `appId` may be omitted with an app-bound key (the key's app), as for events. `tags` are checked
 * like an event's; rules have no tag filters, so they do not change the answer.
 */
function parseCheck(raw: unknown, projectId: string, boundAppId: string | undefined): CheckRequest {
  const issues: ValidationIssue[] = [];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new TokenwatchError('invalid_body', 'The body must be a JSON object.');
  }
  const b = raw as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    if (
      ![
        'userId',
        'appId',
        'modelId',
        'provider',
        'estimatedTokens',
        'estimatedCostUsd',
        'tags',
      ].includes(k)
    ) {
      issues.push({ field: k.slice(0, 64), reason: 'is not a known field' });
    }
  }
  const str = (f: string, required: boolean) => {
    const v = b[f];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || v.length === 0 || v.length > 512) {
      issues.push({ field: f, reason: 'must be a non-empty string' });
      return '';
    }
    return v;
  };
  const num = (f: string) => {
    const v = b[f];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      issues.push({ field: f, reason: 'must be a number >= 0' });
      return undefined;
    }
    return v;
  };
  const req: CheckRequest = {
    projectId,
    userId: str('userId', true) as string,
    appId: (b.appId === undefined && boundAppId !== undefined
      ? boundAppId
      : str('appId', true)) as string,
    modelId: str('modelId', true) as string,
    provider: str('provider', false),
    estimatedTokens: num('estimatedTokens'),
    estimatedCostUsd: num('estimatedCostUsd'),
  };
  checkTags(b.tags, issues);
  if (issues.length > 0)
    throw new TokenwatchError('invalid_argument', 'The check request is invalid.', {
      details: issues,
    });
  return req;
}

export function ruleRoutes(deps: AppDeps, r: RuleRouteDeps): Route[] {
  const project = async (authorization: string | undefined, action: 'read' | 'admin' | 'ingest') =>
    (await deps.auth.authenticate(authorization, action)).projectId;
  return [
    {
      method: 'GET',
      path: '/v1/rules',
      async handle({ req, res }) {
        const projectId = await project(req.headers.authorization, 'admin');
        sendJson(res, 200, { rules: (await deps.store.listRules(projectId)).map(ruleToJson) });
      },
    },
    {
      method: 'POST',
      path: '/v1/rules',
      async handle({ req, res }) {
        const projectId = await project(req.headers.authorization, 'admin');
        sendJson(res, 201, { rule: ruleToJson(await r.rules.create(projectId, await body(req))) });
      },
    },
    {
      method: 'GET',
      path: '/v1/rules/:id',
      async handle({ req, res, params }) {
        const projectId = await project(req.headers.authorization, 'admin');
        const rule = await deps.store.getRule(projectId, params.id as string);
        if (!rule) throw new TokenwatchError('not_found', 'No such rule in this project.');
        sendJson(res, 200, { rule: ruleToJson(rule) });
      },
    },
    {
      method: 'PUT',
      path: '/v1/rules/:id',
      async handle({ req, res, params }) {
        const projectId = await project(req.headers.authorization, 'admin');
        sendJson(res, 200, {
          rule: ruleToJson(await r.rules.update(projectId, params.id as string, await body(req))),
        });
      },
    },
    {
      method: 'POST',
      path: '/v1/rules/:id/disable',
      async handle({ req, res, params }) {
        const projectId = await project(req.headers.authorization, 'admin');
        sendJson(res, 200, {
          rule: ruleToJson(await r.rules.setEnabled(projectId, params.id as string, false)),
        });
      },
    },
    {
      method: 'POST',
      path: '/v1/rules/:id/enable',
      async handle({ req, res, params }) {
        const projectId = await project(req.headers.authorization, 'admin');
        sendJson(res, 200, {
          rule: ruleToJson(await r.rules.setEnabled(projectId, params.id as string, true)),
        });
      },
    },
    {
      method: 'DELETE',
      path: '/v1/rules/:id',
      async handle({ req, res, params }) {
        const projectId = await project(req.headers.authorization, 'admin');
        await r.rules.delete(projectId, params.id as string);
        sendJson(res, 200, { id: params.id, deleted: true });
      },
    },
    {
      method: 'GET',
      path: '/v1/rules/:id/status',
      async handle({ req, res, params }) {
        const projectId = await project(req.headers.authorization, 'read');
        const rule = await deps.store.getRule(projectId, params.id as string);
        if (!rule) throw new TokenwatchError('not_found', 'No such rule in this project.');

        const nowMs = deps.now();
        const win = windowFor(nowMs, rule.window);
        const counters = await deps.store.readCounters(counterKeyOf(rule), win.startMs, win.endMs);
        sendJson(res, 200, {
          status: ruleStatus(compileRule(rule), counters, nowMs),
          enabled: rule.enabled,
        });
      },
    },
    {
      method: 'GET',
      path: '/v1/alerts',
      query: {
        params: {
          ruleId: { type: 'string', maxLength: 256 },
          since: { type: 'timestamp' },
          acknowledged: { type: 'boolean' },
          limit: limitRule(1000),
        },
      },
      async handle({ req, res, query }) {
        const projectId = await project(req.headers.authorization, 'read');
        const alerts = await deps.store.listAlerts({
          projectId,
          ruleId: query.string('ruleId'),
          sinceMs: query.timestamp('since'),
          acknowledged: query.boolean('acknowledged'),
          limit: query.integer('limit') ?? 100,
        });
        sendJson(res, 200, { alerts: alerts.map(alertToJson) });
      },
    },
    {
      method: 'POST',
      path: '/v1/alerts/:id/ack',
      async handle({ req, res, params }) {
        const projectId = await project(req.headers.authorization, 'admin');
        if (!(await deps.store.acknowledgeAlert(projectId, params.id as string, deps.now()))) {
          throw new TokenwatchError('not_found', 'No such alert in this project.');
        }
        sendJson(res, 200, { id: params.id, acknowledged: true });
      },
    },
    {
      method: 'GET',
      path: '/v1/deliveries',
      query: {
        params: {
          status: { type: 'enum', values: DELIVERY_STATUSES },
          alertId: { type: 'string', maxLength: 256 },
          limit: limitRule(1000),
        },
      },
      async handle({ req, res, query }) {
        const projectId = await project(req.headers.authorization, 'admin');
        const deliveries = await deps.store.listDeliveries(
          projectId,
          {
            alertId: query.string('alertId'),
            status: query.string('status') as (typeof DELIVERY_STATUSES)[number] | undefined,
          },
          query.integer('limit') ?? 100,
        );
        sendJson(res, 200, {
          deliveries: deliveries.map((d) => ({
            id: d.id,
            alertId: d.alertId,
            channel: d.channel.type,
            status: d.status,
            attempts: d.attempts,
            nextAttemptAt: d.status === 'pending' ? new Date(d.nextAttemptMs).toISOString() : null,
            lastError: d.lastError ?? null,
            createdAt: new Date(d.createdAtMs).toISOString(),
            deliveredAt:
              d.deliveredAtMs === undefined ? null : new Date(d.deliveredAtMs).toISOString(),
          })),
        });
      },
    },
    {
      method: 'POST',
      path: '/v1/check',
      async handle({ req, res }) {
        const p = await deps.auth.authenticate(req.headers.authorization, 'ingest');
        const check = parseCheck(await body(req), p.projectId, p.key.appId);
        if (p.key.appId !== undefined && check.appId !== p.key.appId) {
          throw new TokenwatchError('forbidden', 'The API key is bound to another app.');
        }
        const result = await r.enforcer.check(check);
        sendJson(res, 200, result);
      },
    },
  ];
}
