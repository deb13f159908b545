import {
  type KeyRole,
  type ModelPriceEntry,
  parseDecimalUsd,
  TokenwatchError,
  type ValidationIssue,
} from '@tokenwatch/core';
import { generateKey } from '../../auth/api-keys.js';
import type { AppDeps, Route } from '../app.js';
import { limitRule } from '../query-params.js';
import { parseJson, readBody } from '../read-body.js';
import { sendJson } from '../respond.js';

const ROLES: readonly KeyRole[] = ['ingest', 'admin', 'read'];
const ADMIN_BODY_LIMIT = 64 * 1024;

async function readJsonObject(
  req: Parameters<Route['handle']>[0]['req'],
): Promise<Record<string, unknown>> {
  const body = parseJson(await readBody(req, ADMIN_BODY_LIMIT));
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new TokenwatchError('invalid_body', 'The body must be a JSON object.');
  }
  return body as Record<string, unknown>;
}

function rejectUnknown(
  body: Record<string, unknown>,
  allowed: string[],
  issues: ValidationIssue[],
): void {
  for (const k of Object.keys(body)) {
    if (!allowed.includes(k))
      issues.push({ field: k.slice(0, 64), reason: 'is not a known field' });
  }
}

function optionalString(
  body: Record<string, unknown>,
  field: string,
  max: number,
  issues: ValidationIssue[],
): string | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > max) {
    issues.push({ field, reason: `must be a string of 1-${max} characters` });
    return undefined;
  }
  return v;
}

/** Validates a price override; every price is a decimal string of USD per 1M tokens. */
export function parsePriceOverride(body: Record<string, unknown>): ModelPriceEntry {
  const issues: ValidationIssue[] = [];
  rejectUnknown(
    body,
    ['provider', 'modelId', 'effectiveFrom', 'input', 'output', 'cacheRead', 'cacheWrite'],
    issues,
  );
  const provider = optionalString(body, 'provider', 64, issues);
  const modelId = optionalString(body, 'modelId', 512, issues);
  if (!provider) issues.push({ field: 'provider', reason: 'is required' });
  if (!modelId) issues.push({ field: 'modelId', reason: 'is required' });
  const effectiveFrom = body.effectiveFrom ?? '1970-01-01';
  if (
    typeof effectiveFrom !== 'string' ||
    !/^\d{4}-\d{2}-\d{2}$/.test(effectiveFrom) ||
    Number.isNaN(Date.parse(`${effectiveFrom}T00:00:00Z`))
  ) {
    issues.push({ field: 'effectiveFrom', reason: 'must be a date YYYY-MM-DD (UTC)' });
  }
  const entry: ModelPriceEntry = {
    provider: provider?.toLowerCase() ?? '',
    modelId: modelId ?? '',
    effectiveFrom: effectiveFrom as string,
    input: '',
    output: '',
  };
  for (const field of ['input', 'output', 'cacheRead', 'cacheWrite'] as const) {
    const v = body[field];
    if (v === undefined || v === null) {
      if (field === 'input' || field === 'output') issues.push({ field, reason: 'is required' });
      continue;
    }
    const text = typeof v === 'number' ? String(v) : v;
    if (typeof text !== 'string') {
      issues.push({ field, reason: 'must be a decimal string of USD per 1M tokens, e.g. "3.30"' });
      continue;
    }
    try {
      parseDecimalUsd(text, field);
      entry[field] = text;
    } catch (err) {
      issues.push({ field, reason: (err as Error).message });
    }
  }
  if (issues.length > 0) {
    throw new TokenwatchError('invalid_argument', 'The price override is invalid.', {
      details: issues,
    });
  }
  return entry;
}

export function adminRoutes(deps: AppDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/whoami',
      async handle({ req, res }) {
        const p = await deps.auth
          .authenticate(req.headers.authorization, 'read')
          .catch(() => deps.auth.authenticate(req.headers.authorization, 'ingest'));
        sendJson(res, 200, {
          projectId: p.projectId,
          keyId: p.key.id,
          role: p.key.role,
          appId: p.key.appId ?? null,
        });
      },
    },
    {
      method: 'GET',
      path: '/v1/keys',
      async handle({ req, res }) {
        const p = await deps.auth.authenticate(req.headers.authorization, 'admin');
        const keys = await deps.store.listKeys(p.projectId);
        sendJson(res, 200, {
          keys: keys.map((k) => ({
            id: k.id,
            prefix: k.prefix,
            role: k.role,
            appId: k.appId ?? null,
            name: k.name ?? null,
            createdAt: new Date(k.createdAtMs).toISOString(),
            revokedAt: k.revokedAtMs === undefined ? null : new Date(k.revokedAtMs).toISOString(),
          })),
        });
      },
    },
    {
      method: 'POST',
      path: '/v1/keys',
      async handle({ req, res }) {
        const p = await deps.auth.authenticate(req.headers.authorization, 'admin');
        const body = await readJsonObject(req);
        const issues: ValidationIssue[] = [];
        rejectUnknown(body, ['role', 'appId', 'name'], issues);
        const role = body.role;
        if (typeof role !== 'string' || !ROLES.includes(role as KeyRole)) {
          issues.push({ field: 'role', reason: `must be one of ${ROLES.join(', ')}` });
        }
        const appId = optionalString(body, 'appId', 256, issues);
        const name = optionalString(body, 'name', 128, issues);
        if (appId && role !== 'ingest')
          issues.push({ field: 'appId', reason: 'only ingest keys can be bound to an app' });
        if (issues.length > 0)
          throw new TokenwatchError('invalid_argument', 'The key request is invalid.', {
            details: issues,
          });
        const created = generateKey({
          projectId: p.projectId,
          role: role as KeyRole,
          appId,
          name,
          nowMs: deps.now(),
        });
        await deps.store.createKey(created.record);
        sendJson(res, 201, {
          id: created.record.id,
          key: created.key,
          role,
          appId: appId ?? null,
          name: name ?? null,
        });
      },
    },
    {
      method: 'DELETE',
      path: '/v1/keys/:id',
      async handle({ req, res, params }) {
        const p = await deps.auth.authenticate(req.headers.authorization, 'admin');
        const revoked = await deps.store.revokeKey(p.projectId, params.id as string, deps.now());
        if (!revoked) throw new TokenwatchError('not_found', 'No such key in this project.');
        deps.auth.invalidate();
        sendJson(res, 200, { id: params.id, revoked: true });
      },
    },
    {
      method: 'GET',
      path: '/v1/prices',
      async handle({ req, res }) {
        const p = await deps.auth.authenticate(req.headers.authorization, 'read');
        const bundled = deps.catalogs.bundledCatalog;
        sendJson(res, 200, {
          overrides: await deps.store.listPriceOverrides(p.projectId),
          bundled: { models: bundled.list() },
        });
      },
    },
    {
      method: 'PUT',
      path: '/v1/prices',
      async handle({ req, res }) {
        const p = await deps.auth.authenticate(req.headers.authorization, 'admin');
        const entry = parsePriceOverride(await readJsonObject(req));
        await deps.store.putPriceOverride(p.projectId, entry);
        deps.catalogs.invalidate(p.projectId);
        sendJson(res, 200, { override: entry });
      },
    },
    {
      method: 'DELETE',
      path: '/v1/prices',
      query: {
        params: {
          provider: { type: 'string', maxLength: 256 },
          modelId: { type: 'string', maxLength: 256 },
          effectiveFrom: { type: 'string', maxLength: 64 },
        },
      },
      async handle({ req, res, query }) {
        const p = await deps.auth.authenticate(req.headers.authorization, 'admin');
        const provider = query.string('provider');
        const modelId = query.string('modelId');
        const effectiveFrom = query.string('effectiveFrom') ?? '1970-01-01';
        if (!provider || !modelId) {
          throw new TokenwatchError(
            'invalid_argument',
            'provider and modelId are required query parameters.',
          );
        }
        const deleted = await deps.store.deletePriceOverride(
          p.projectId,
          provider,
          modelId,
          effectiveFrom,
        );
        if (!deleted) throw new TokenwatchError('not_found', 'No such price override.');
        deps.catalogs.invalidate(p.projectId);
        sendJson(res, 200, { deleted: true });
      },
    },
    {
      method: 'GET',
      path: '/v1/conflicts',
      query: { params: { limit: limitRule(1000) } },
      async handle({ req, res, query }) {
        const p = await deps.auth.authenticate(req.headers.authorization, 'read');
        const conflicts = await deps.store.listConflicts(
          p.projectId,
          query.integer('limit') ?? 100,
        );
        sendJson(res, 200, {
          conflicts: conflicts.map((c) => ({
            eventId: c.eventId,
            firstFingerprint: c.firstFingerprint,
            conflictingFingerprint: c.conflictingFingerprint,
            seenAt: new Date(c.seenAtMs).toISOString(),
          })),
        });
      },
    },
  ];
}
