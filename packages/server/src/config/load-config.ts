import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  parseRuleInput,
  type RuleInput,
  TokenwatchError,
  type ValidationIssue,
} from '@tokenwatch/core';
import { type ConfigProblem, describeConfigIssues } from './config-issues.js';
import { type Config, configSchema } from './config-schema.js';

/** Environment variables and the config path they set. Documented in the README. */
const ENV_MAP: Record<string, { path: string[]; type: 'string' | 'number' }> = {
  TOKENWATCH_DATA_DIR: { path: ['dataDir'], type: 'string' },
  TOKENWATCH_HOST: { path: ['server', 'host'], type: 'string' },
  TOKENWATCH_PORT: { path: ['server', 'port'], type: 'number' },
  TOKENWATCH_PUBLIC_URL: { path: ['server', 'publicUrl'], type: 'string' },
  TOKENWATCH_SQLITE_PATH: { path: ['store', 'path'], type: 'string' },
  TOKENWATCH_SQLITE_SYNCHRONOUS: { path: ['store', 'synchronous'], type: 'string' },
  TOKENWATCH_SQLITE_THREAD: { path: ['store', 'thread'], type: 'string' },
  TOKENWATCH_FLUSH_MAX_EVENTS: { path: ['ingest', 'flushMaxEvents'], type: 'number' },
  TOKENWATCH_FLUSH_MAX_WAIT_MS: { path: ['ingest', 'flushMaxWaitMs'], type: 'number' },
  TOKENWATCH_MAX_QUEUED_EVENTS: { path: ['ingest', 'maxQueuedEvents'], type: 'number' },
  TOKENWATCH_OTLP_MAX_BODY_BYTES: { path: ['otlp', 'maxBodyBytes'], type: 'number' },
  TOKENWATCH_LOG_LEVEL: { path: ['log', 'level'], type: 'string' },
  TOKENWATCH_HTTP_MAX_CONNECTIONS: { path: ['http', 'maxConnections'], type: 'number' },
  TOKENWATCH_HTTP_MAX_PIPELINED_REQUESTS: {
    path: ['http', 'maxPipelinedRequests'],
    type: 'number',
  },
  TOKENWATCH_HTTP_HEADERS_TIMEOUT_MS: { path: ['http', 'headersTimeoutMs'], type: 'number' },
  TOKENWATCH_HTTP_REQUEST_TIMEOUT_MS: { path: ['http', 'requestTimeoutMs'], type: 'number' },
  TOKENWATCH_HTTP_KEEP_ALIVE_TIMEOUT_MS: { path: ['http', 'keepAliveTimeoutMs'], type: 'number' },
  TOKENWATCH_HTTP_IDLE_TIMEOUT_MS: { path: ['http', 'idleTimeoutMs'], type: 'number' },
  TOKENWATCH_STORE_URL: { path: ['store', 'url'], type: 'string' },
  TOKENWATCH_QUEUE_URL: { path: ['queue', 'url'], type: 'string' },
};

/**
 * A store or queue given only by URL (--store postgres://…, --queue nats://…) gets its driver from
 * the scheme. A scheme no driver takes is reported at the URL itself (not as an unknown `url` key
 * of the default driver's section) and the URL is set aside so that it is reported once.
 */
function inferDrivers(raw: Record<string, unknown>, problems: ConfigProblem[]): void {
  const infer = (section: string, byScheme: Record<string, string>, example: string) => {
    const node = raw[section];
    if (typeof node !== 'object' || node === null) return;
    const value = node as Record<string, unknown>;
    if (value.driver !== undefined || typeof value.url !== 'string') return;
    const scheme = value.url.includes('://') ? (value.url.split(':')[0] ?? '') : '';
    const driver = byScheme[scheme];
    if (driver) {
      value.driver = driver;
      return;
    }
    const schemes = Object.keys(byScheme)
      .map((s) => `${s}://`)
      .join(' or ');
    problems.push({
      path: [section, 'url'],
      reason: `${scheme ? `unsupported scheme "${scheme}://"` : `not a URL: "${value.url}"`}; expected ${schemes} (e.g. ${example})`,
    });
    delete value.url;
    if (Object.keys(value).length === 0) delete raw[section];
  };
  infer(
    'store',
    { postgres: 'postgres', postgresql: 'postgres' },
    'postgres://user:password@host:5432/db',
  );
  infer('queue', { nats: 'nats', tls: 'nats' }, 'nats://127.0.0.1:4222');
}

export interface LoadConfigOptions {
  /** Explicit config file (`--config`); otherwise `TOKENWATCH_CONFIG`, then `<dataDir>/tokenwatch.json` if present. */
  file?: string | undefined;
  env: Record<string, string | undefined>;
  /** Values from command-line flags, as config paths → value; they win over everything. */
  overrides?: Array<{ path: string[]; value: unknown }>;
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

export interface ConfigRule {
  id: string;
  project: string;
  input: RuleInput;
}

/** Ids of rules from the config file start with this (see RuleService.syncConfigRules). */
const CONFIG_RULE_ID_PREFIX = 'cfg-';

export type LoadedConfig = Config & { configFile: string | undefined; configRules: ConfigRule[] };

/** Loads, merges and validates the configuration; throws one error listing every problem. */
export function loadConfig(options: LoadConfigOptions): LoadedConfig {
  const issues: ValidationIssue[] = [];
  const raw: Record<string, unknown> = {};
  const overrideDataDir = options.overrides?.find((o) => o.path.join('.') === 'dataDir')?.value;
  const dataDirHint =
    (overrideDataDir as string | undefined) ?? options.env.TOKENWATCH_DATA_DIR ?? '.tokenwatch';
  const explicit = options.file ?? options.env.TOKENWATCH_CONFIG;
  const candidate = explicit ?? join(dataDirHint, 'tokenwatch.json');
  let configFile: string | undefined;
  if (explicit !== undefined || existsSync(candidate)) {
    configFile = resolve(candidate);
    try {
      const parsed: unknown = JSON.parse(readFileSync(candidate, 'utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        issues.push({ field: configFile, reason: 'must contain a JSON object' });
      } else if (JSON.stringify(parsed).includes('"__proto__"')) {
        // JSON.parse makes "__proto__" an own key; assigning it would change a prototype.
        issues.push({ field: configFile, reason: 'must not contain a "__proto__" key' });
      } else Object.assign(raw, parsed);
    } catch (err) {
      issues.push({ field: configFile, reason: `cannot be read: ${(err as Error).message}` });
    }
  }
  for (const [name, spec] of Object.entries(ENV_MAP)) {
    const value = options.env[name];
    if (value === undefined || value === '') continue;
    if (spec.type === 'number') {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n)) {
        issues.push({ field: name, reason: `must be a number, got "${value}"` });
        continue;
      }
      setPath(raw, spec.path, n);
    } else setPath(raw, spec.path, value);
  }
  for (const o of options.overrides ?? []) {
    if (o.value !== undefined) setPath(raw, o.path, o.value);
  }
  const problems: ConfigProblem[] = [];
  inferDrivers(raw, problems);
  const result = configSchema.safeParse(raw);
  if (!result.success) problems.push(...describeConfigIssues(result.error.issues, raw));
  for (const problem of problems) {
    const path = problem.path.join('.');
    const envName = Object.entries(ENV_MAP).find(([, s]) => s.path.join('.') === path)?.[0];
    const fromEnv = envName !== undefined && options.env[envName] !== undefined;
    issues.push({
      field: fromEnv ? `${envName} (${path})` : path || '(root)',
      reason: problem.reason,
    });
  }
  const rules: ConfigRule[] = [];
  if (result.success) {
    const seen = new Set<string>();
    result.data.rules.forEach((raw, i) => {
      const { id, project, ...definition } = raw as { id?: unknown; project?: unknown };
      const field = `rules[${i}]`;
      const projectId = typeof project === 'string' && project.length > 0 ? project : 'default';
      const name =
        typeof (definition as { name?: unknown }).name === 'string'
          ? (definition as { name: string }).name
          : `rule-${i}`;
      const slug = `${CONFIG_RULE_ID_PREFIX}${projectId === 'default' ? '' : `${projectId}-`}${(typeof id ===
      'string'
        ? id
        : name
      )
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-|-$/g, '')
        .slice(0, 64)}`;
      if (seen.has(`${projectId}/${slug}`))
        issues.push({ field: `${field}.id`, reason: `duplicate rule id "${slug}"` });
      seen.add(`${projectId}/${slug}`);
      try {
        rules.push({ id: slug, project: projectId, input: parseRuleInput(definition, field) });
      } catch (err) {
        if (err instanceof TokenwatchError && err.details.length > 0) issues.push(...err.details);
        else issues.push({ field, reason: (err as Error).message });
      }
    });
  }
  if (issues.length > 0 || !result.success) {
    const list = issues.map((i) => `  - ${i.field}: ${i.reason}`).join('\n');
    throw new TokenwatchError('invalid_config', `Invalid configuration:\n${list}`, {
      details: issues,
    });
  }
  return { ...result.data, configFile, configRules: rules };
}
