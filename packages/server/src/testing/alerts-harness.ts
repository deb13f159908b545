import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { HttpResponse } from './http-client.js';
import { CLI_PATH, makeDataDir, type ServerProcess, startServerProcess } from './server-process.js';
import { newEventId, TokenwatchApi, type WireEvent } from './tokenwatch-api.js';

/**
 * Helpers for end-to-end alerting tests against a real `tokenwatch serve`: a config file in the
 * data dir (`<data-dir>/tokenwatch.json`), a client for the rule, alert, delivery and check
 * APIs, "eventually" polls; and, re-exported from time-zones.ts, time-zone arithmetic done
 * independently of the product to check calendar windows across DST changes.
 */

/**
 * Makes a rule of a running embedded server look as if it had started counting at `sinceMs`
 * (a rule that has existed for weeks), by editing its stored definition: the server's clock
 * cannot be moved, and a rule only watches the windows that end after it started counting. The
 * server sees the change at its next batch (it rereads rules when the database changed).
 */
export function backdateRule(dataDir: string, ruleId: string, sinceMs: number): void {
  const db = new Database(join(dataDir, 'tokenwatch.db'));
  try {
    db.pragma('busy_timeout = 5000');
    const changed = db
      .prepare(
        "UPDATE rules SET definition = json_set(definition, '$.countingSinceMs', ?) WHERE rule_id = ?",
      )
      .run(sinceMs, ruleId).changes;
    if (changed !== 1) throw new Error(`no rule ${ruleId} to backdate`);
  } finally {
    db.close();
  }
}

/** Writes `<dataDir>/tokenwatch.json`. */
export function writeConfigFile(dataDir: string, config: Record<string, unknown>): void {
  writeFileSync(join(dataDir, 'tokenwatch.json'), `${JSON.stringify(config, null, 2)}\n`);
}

/** An alert as `GET /v1/alerts` shows it. */
export interface AlertJson {
  id: string;
  ruleId: string;
  ruleName: string;
  scope: Record<string, string>;
  window: { start: string; end: string; timeZone: string };
  level: { index: number; threshold: number; value?: number; percent?: number; budget?: number };
  value: number;
  late: boolean;
  forecast: boolean;
  firedAt: string;
  acknowledgedAt: string | null;
}

/** A delivery as `GET /v1/deliveries` shows it. */
export interface DeliveryJson {
  id: string;
  alertId: string;
  channel: string;
  status: 'pending' | 'sending' | 'delivered' | 'dead';
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

export interface RuleJson {
  id: string;
  name: string;
  enabled: boolean;
  channels: Array<{ type: string; url?: string; secret?: string; to?: string[] }>;
  [k: string]: unknown;
}

/** The body of a 4xx: `{ error: { code, message, details: [{ field, reason }] } }`. */
export interface ErrorJson {
  error: {
    code: string;
    message: string;
    details?: Array<{ field: string; reason: string }>;
  };
}

/** Fields named by an error response. */
export function errorFields(res: HttpResponse): string[] {
  return (res.json<ErrorJson>().error.details ?? []).map((d) => d.field);
}

/** A client of the alerting API with the server's keys. */
export class AlertsClient {
  readonly api: TokenwatchApi;

  constructor(
    readonly url: string,
    readonly adminKey: string,
    readonly ingestKey: string,
  ) {
    this.api = new TokenwatchApi(url);
  }

  /** `key`: the admin key by default; `null` sends no Authorization header. */
  send(
    method: string,
    path: string,
    body?: unknown,
    key: string | null = this.adminKey,
  ): Promise<HttpResponse> {
    const headers: Record<string, string> = {};
    if (key !== null) headers.authorization = `Bearer ${key}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return this.api.request(path, {
      method,
      headers,
      ...(body === undefined
        ? {}
        : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      timeoutMs: 30_000,
    });
  }

  postRule(rule: unknown, key?: string): Promise<HttpResponse> {
    return this.send('POST', '/v1/rules', rule, key ?? this.adminKey);
  }

  /** Creates a rule that must be accepted; returns it as stored (with generated webhook secrets). */
  async createRule(rule: unknown): Promise<RuleJson> {
    const res = await this.postRule(rule);
    if (res.status !== 201) throw new Error(`POST /v1/rules: ${res.status} ${res.text}`);
    return res.json<{ rule: RuleJson }>().rule;
  }

  async rules(): Promise<RuleJson[]> {
    const res = await this.send('GET', '/v1/rules');
    if (res.status !== 200) throw new Error(`GET /v1/rules: ${res.status} ${res.text}`);
    return res.json<{ rules: RuleJson[] }>().rules;
  }

  async alerts(params: Record<string, string> = {}): Promise<AlertJson[]> {
    const search = new URLSearchParams({ limit: '1000', ...params });
    const res = await this.send('GET', `/v1/alerts?${search.toString()}`);
    if (res.status !== 200) throw new Error(`GET /v1/alerts: ${res.status} ${res.text}`);
    return res.json<{ alerts: AlertJson[] }>().alerts;
  }

  async deliveries(params: Record<string, string> = {}): Promise<DeliveryJson[]> {
    const search = new URLSearchParams({ limit: '1000', ...params });
    const res = await this.send('GET', `/v1/deliveries?${search.toString()}`);
    if (res.status !== 200) throw new Error(`GET /v1/deliveries: ${res.status} ${res.text}`);
    return res.json<{ deliveries: DeliveryJson[] }>().deliveries;
  }

  /** `POST /v1/events` that must be answered 202; returns the counts. */
  async ingest(
    events: WireEvent[],
  ): Promise<{ accepted: number; duplicates: number; conflicts: number }> {
    const res = await this.api.postEvents(this.ingestKey, { events });
    if (res.status !== 202) throw new Error(`POST /v1/events: ${res.status} ${res.text}`);
    return res.json();
  }

  check(body: unknown, key: string = this.ingestKey): Promise<HttpResponse> {
    return this.send('POST', '/v1/check', body, key);
  }
}

export interface AlertServer {
  server: ServerProcess;
  client: AlertsClient;
  dataDir: string;
}

/**
 * Writes `config` to `<dataDir>/tokenwatch.json` (a fresh data dir unless given), starts
 * `tokenwatch serve` on it and returns a client with the keys printed at the first start
 * (pass `keys` when restarting on a data dir whose keys were printed before).
 */
export async function startAlertServer(
  options: {
    config?: Record<string, unknown>;
    dataDir?: string;
    label?: string;
    keys?: { adminKey: string; ingestKey: string };
    env?: Record<string, string>;
  } = {},
): Promise<AlertServer> {
  const dataDir = options.dataDir ?? makeDataDir(options.label ?? 'alerts');
  if (options.config !== undefined) writeConfigFile(dataDir, options.config);
  const server = await startServerProcess({
    dataDir,
    ...(options.env !== undefined ? { env: options.env } : {}),
  });
  const adminKey = options.keys?.adminKey ?? server.adminKey;
  const ingestKey = options.keys?.ingestKey ?? server.ingestKey;
  if (adminKey === undefined || ingestKey === undefined) {
    throw new Error('no keys: pass the keys printed at the first start when restarting');
  }
  return { server, client: new AlertsClient(server.url, adminKey, ingestKey), dataDir };
}

export interface BoundedCliResult {
  /** Exit code; null when the process was killed at the deadline. */
  code: number | null;
  /** True when it was still running at the deadline (and was SIGKILLed). */
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI (`node dist/cli.js ...args`) and SIGKILLs it (by its PID) if it has not exited
 * after `timeoutMs`: for commands that must exit on their own, e.g. `serve` with a bad config.
 */
export function runCliWithin(
  args: string[],
  timeoutMs: number,
  env: Record<string, string> = {},
): Promise<BoundedCliResult> {
  return new Promise((resolve) => {
    let timedOut = false;
    const child = execFile(
      process.execPath,
      [CLI_PATH, ...args],
      { env: { ...process.env, TOKENWATCH_LOG_LEVEL: 'warn', ...env } },
      (err, stdout, stderr) => {
        clearTimeout(timer);
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code: timedOut ? null : code, timedOut, stdout, stderr });
      },
    );
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }, timeoutMs);
  });
}

/** Polls `probe` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new Error(
        `${options.what ?? 'condition'} did not hold within ${options.timeoutMs ?? 20_000} ms${why}`,
      );
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
  }
}

let eventSeq = 0;

/**
 * An event time `backMs` before now, but never before the current UTC hour began: a test that
 * creates a rule and then sends "recent" events wants them in the rule's current calendar window
 * (hour, day or month, in UTC or any zone with a whole-hour offset). Near the hour's start, now −
 * 30 s would be the previous hour, a window that ended before the rule existed, which never
 * fires (README § rules): the test would fail at every boundary it happened to straddle.
 */
export function recentInCurrentHour(backMs: number, nowMs = Date.now()): number {
  return Math.max(nowMs - backMs, nowMs - (nowMs % 3_600_000));
}

/** An event at `timestampMs` (default: 30 s ago, within this hour) with a UUIDv7 id; override any field. */
export function usageEvent(
  overrides: Partial<WireEvent> & { timestampMs?: number } = {},
): WireEvent {
  const { timestampMs, ...rest } = overrides;
  const ts = timestampMs ?? recentInCurrentHour(30_000);
  eventSeq++;
  return {
    id: `${newEventId(ts)}-${eventSeq}`,
    timestamp: new Date(ts).toISOString(),
    userId: 'alice',
    appId: 'chat',
    modelId: 'gpt-4o-mini',
    provider: 'openai',
    inputTokens: 100,
    outputTokens: 0,
    ...rest,
  };
}

export {
  type DstChange,
  iso,
  type LocalTime,
  latestDstChange,
  localDayWindow,
  localHourWindow,
  localTime,
  MINUTE_MS,
  offsetMinutes,
} from './time-zones.js';
