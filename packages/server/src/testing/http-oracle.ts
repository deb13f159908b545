import { costNanoUsd, type PricedEvent, type ResolvedPrice } from '@tokenwatch/core';
import {
  alertKey,
  budgetAnswers,
  generateOracleCases,
  ORACLE_BASE_MS,
  ORACLE_STEPS,
  type OracleCase,
  oracleAlerts,
  oracleValues,
} from '@tokenwatch/core/testing';
import type { RunningMode } from './running-modes.js';
import { seededRandom, TokenwatchApi } from './tokenwatch-api.js';

/*
 * The rule oracle end to end: generated cases (the store-level oracle's generator) sent over HTTP
 * to a running system, their rules created over the API, and GET /v1/alerts, the rules' status
 * values and POST /v1/check compared with the reference evaluator.
 *
 * Time. The cases are shifted to the server's clock: the case's base instant becomes the start of
 * the run, so events keep their offsets (days back, minutes ahead). Steps are not 40 s apart as in
 * the store-level run but back to back, and the oracle is given the instants they really happened
 * at: each rule's `createdAt` as the API returns it, and for each step the instant its delivery
 * started. What the oracle derives from an instant only depends on its minute (window and period
 * ends are whole minutes), so a step is started only when its minute has room left for it, and the
 * run checks it ended within that minute (the server may apply it at any instant between).
 */

const MINUTE = 60_000;
const DAY = 86_400_000;

/** m1 is priced by an override of each case's project; m2 stays unpriced. */
const M1_PRICE = { input: '0.1', output: '0.2', cacheRead: '0.01', cacheWrite: '0.125' };
const M1_RESOLVED: ResolvedPrice = {
  provider: 'bedrock',
  modelId: 'm1',
  effectiveFrom: '2000-01-01',
  origin: 'override',
  inputNanoPerMTok: 100_000_000n,
  outputNanoPerMTok: 200_000_000n,
  cacheReadNanoPerMTok: 10_000_000n,
  cacheWriteNanoPerMTok: 125_000_000n,
};

export interface HttpOracleOptions {
  cases: number;
  seed: number;
  /** Cases sent at once (each to its own project). */
  concurrency?: number;
}

export interface HttpOracleReport {
  cases: number;
  events: number;
  rules: number;
  alerts: number;
  /** Rule statuses compared (every rule's current value per scope key). */
  statuses: number;
  checks: number;
  denied: number;
  /** How long each step took (delivery and drain), and the time spent waiting for a minute. */
  stepMs: number[];
  waitedMs: number;
  /** One line per case that disagrees with the oracle (empty: all agree). */
  failures: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
}

/** Waits, if needed, until the current minute has `needMs` left; returns the time waited. */
async function roomInMinute(needMs: number): Promise<number> {
  const left = MINUTE - (Date.now() % MINUTE);
  if (left >= needMs) return 0;
  await sleep(left + 50);
  return left + 50;
}

function sameMinute(a: number, b: number): boolean {
  return Math.floor(a / MINUTE) === Math.floor(b / MINUTE);
}

/** The case with its events moved by `shiftMs` and priced as the server prices them. */
function shiftCase(c: OracleCase, shiftMs: number): OracleCase {
  return {
    ...c,
    steps: c.steps.map((events) =>
      events.map((e) => {
        const priced = e.modelId === 'm1';
        return {
          ...e,
          timestampMs: e.timestampMs + shiftMs,
          priced,
          costNanoUsd: priced ? costNanoUsd(M1_RESOLVED, e) : 0,
        };
      }),
    ),
  };
}

function wireEvent(e: PricedEvent) {
  return {
    id: e.id,
    timestamp: e.timestampMs,
    userId: e.userId,
    appId: e.appId,
    modelId: e.modelId,
    provider: e.provider,
    inputTokens: e.inputTokens,
    outputTokens: e.outputTokens,
    cacheReadTokens: e.cacheReadTokens,
    cacheWriteTokens: e.cacheWriteTokens,
  };
}

function ruleBody(c: OracleCase, index: number) {
  const { rule } = c.rules[index] as OracleCase['rules'][number];
  return {
    name: rule.id,
    scope: rule.scope,
    filters: rule.filters,
    metric: rule.metric,
    window: rule.window,
    ...(rule.budget === undefined ? {} : { budget: rule.budget }),
    levels: rule.levels,
    channels: [{ type: 'log' }],
    enforce: rule.enforce,
  };
}

interface CaseRun {
  c: OracleCase;
  key: string;
  /** Server rule id → the case's rule id. */
  ruleIds: Map<string, string>;
  createdAtMs: Map<string, number>;
  delivered: Set<string>;
}

interface AlertJson {
  ruleId: string;
  scope: Record<string, string>;
  window: { start: string; end: string };
  level: { index: number };
  late: boolean;
}

/** The server's alerts of a case as the oracle's keys. */
function alertKeys(run: CaseRun, alerts: AlertJson[]): string[] {
  return alerts
    .map((a) => {
      const id = run.ruleIds.get(a.ruleId) ?? `unknown rule ${a.ruleId}`;
      const rule = run.c.rules.find((r) => r.rule.id === id)?.rule;
      if (!rule) return `${id}|${JSON.stringify(a.scope)}`;
      let windowStartMs = Date.parse(a.window.start);
      if (rule.window.type === 'rolling') {
        // The alert names the N minutes that crossed; the oracle, the period they ended in.
        const span = rule.window.minutes * MINUTE;
        windowStartMs = Math.floor((Date.parse(a.window.end) - MINUTE) / span) * span;
      }
      return alertKey({
        ruleId: id,
        scopeKey: JSON.stringify(rule.scope.map((d) => a.scope[d])),
        windowStartMs,
        levelIndex: a.level.index,
        late: a.late,
      });
    })
    .sort();
}

/**
 * Runs `options.cases` generated cases against a running system and returns what disagreed with
 * the oracle. Each case is its own project (an admin key created in the store, an m1 price
 * override over the API). Each step's events of a case are posted in random consecutive batches,
 * in the case's delivery order (out of order, duplicates and conflicting repeats included), and
 * one batch in five is posted a second time (a client retry); the system then drains before the
 * next step's rules are created.
 */
export async function runHttpOracle(
  sys: RunningMode,
  options: HttpOracleOptions,
): Promise<HttpOracleReport> {
  const api = new TokenwatchApi(sys.url);
  const checkApi = new TokenwatchApi(sys.checkUrl);
  const concurrency = options.concurrency ?? 4;
  const random = seededRandom(options.seed);
  const generated = generateOracleCases(options.cases, options.seed);
  const effectiveFrom = new Date(Date.now() - 60 * DAY).toISOString().slice(0, 10);
  const runs: CaseRun[] = [];
  for (const c of generated) {
    const key = await sys.createKey(c.projectId, 'admin');
    const price = await api.request('/v1/prices', {
      method: 'PUT',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ provider: 'bedrock', modelId: 'm1', effectiveFrom, ...M1_PRICE }),
    });
    if (price.status !== 200 && price.status !== 201)
      throw new Error(`PUT /v1/prices: ${price.status} ${price.text}`);
    runs.push({ c, key, ruleIds: new Map(), createdAtMs: new Map(), delivered: new Set() });
  }
  // The case's base instant is now (events up to 5 min ahead stay within the accepted range).
  const shiftMs = Date.now() - ORACLE_BASE_MS;
  for (const run of runs) run.c = shiftCase(run.c, shiftMs);

  const stepStarts: number[] = [];
  const stepMs: number[] = [];
  let waitedMs = 0;
  let lastStepMs = 5_000;
  for (let k = 0; k <= ORACLE_STEPS; k++) {
    await mapLimit(runs, concurrency, async (run) => {
      for (let i = 0; i < run.c.rules.length; i++) {
        const r = run.c.rules[i] as OracleCase['rules'][number];
        if (r.beforeStep !== k) continue;
        const res = await api.request('/v1/rules', {
          method: 'POST',
          headers: { authorization: `Bearer ${run.key}`, 'content-type': 'application/json' },
          body: JSON.stringify(ruleBody(run.c, i)),
        });
        if (res.status !== 201) throw new Error(`POST /v1/rules: ${res.status} ${res.text}`);
        const saved = res.json<{
          rule: { id: string; createdAt: string; countingSinceMs?: number };
        }>().rule;
        run.ruleIds.set(saved.id, r.rule.id);
        // The instant the rule started counting (its creation).
        run.createdAtMs.set(r.rule.id, saved.countingSinceMs ?? Date.parse(saved.createdAt));
      }
    });
    if (k === ORACLE_STEPS) break;
    waitedMs += await roomInMinute(2 * lastStepMs + 2_000);
    const startMs = Date.now();
    stepStarts.push(startMs);
    await mapLimit(runs, concurrency, async (run) => {
      const events = run.c.steps[k] as PricedEvent[];
      let previous: unknown[] | undefined;
      for (let i = 0; i < events.length; ) {
        const size = 1 + Math.floor(random() * Math.min(8, events.length - i));
        const batch = events.slice(i, i + size).map(wireEvent);
        i += size;
        const res = await api.postEvents(run.key, { events: batch });
        if (res.status !== 202) throw new Error(`POST /v1/events: ${res.status} ${res.text}`);
        for (const e of batch) run.delivered.add(e.id);
        if (previous && random() < 0.2) {
          const again = await api.postEvents(run.key, { events: previous });
          if (again.status !== 202) throw new Error(`retry: ${again.status} ${again.text}`);
        }
        previous = batch;
      }
    });
    await sys.drained();
    await mapLimit(runs, concurrency, async (run) => {
      for (let attempt = 0; ; attempt++) {
        const totals = await api.storedTotals(run.key);
        if (totals.requests === run.delivered.size) return;
        if (totals.requests > run.delivered.size || attempt > 600)
          throw new Error(
            `${run.c.projectId}: ${totals.requests} requests stored, ${run.delivered.size} ids sent`,
          );
        await sleep(50);
      }
    });
    const endMs = Date.now();
    lastStepMs = endMs - startMs;
    stepMs.push(lastStepMs);
    if (!sameMinute(startMs, endMs))
      throw new Error(`step ${k} took ${lastStepMs} ms and crossed a minute: the oracle's time`);
  }

  const report: HttpOracleReport = {
    cases: runs.length,
    events: 0,
    rules: 0,
    alerts: 0,
    statuses: 0,
    checks: 0,
    denied: 0,
    stepMs,
    waitedMs,
    failures: [],
  };
  report.waitedMs += await roomInMinute(15_000);
  const probeMs = Date.now();
  await mapLimit(runs, concurrency, async (run) => {
    const { c } = run;
    const all = c.steps.flat();
    report.events += all.length;
    report.rules += c.rules.length;
    const want = oracleAlerts(
      c.rules.map((r) => ({
        rule: r.rule,
        beforeStep: r.beforeStep,
        createdAtMs: run.createdAtMs.get(r.rule.id) as number,
      })),
      c.steps.map((events, i) => ({ nowMs: stepStarts[i] as number, events })),
    );
    const res = await api.get('/v1/alerts?limit=1000', run.key);
    if (res.status !== 200) throw new Error(`GET /v1/alerts: ${res.status} ${res.text}`);
    const got = alertKeys(run, res.json<{ alerts: AlertJson[] }>().alerts);
    report.alerts += got.length;
    const problems: string[] = [];
    const missing = want.filter((a) => !got.includes(a));
    const extra = got.filter((a) => !want.includes(a));
    if (missing.length > 0) problems.push(`missing alerts: ${missing.join(', ')}`);
    if (extra.length > 0) problems.push(`unexpected alerts: ${extra.join(', ')}`);

    const values: Record<string, Record<string, number>> = {};
    for (const { rule } of c.rules)
      values[rule.id] = Object.fromEntries(oracleValues(rule, all, probeMs));
    // Each rule's current value per scope key (GET /v1/rules/:id/status), in the metric's unit.
    for (const [serverId, id] of run.ruleIds) {
      const rule = c.rules.find((r) => r.rule.id === id)?.rule;
      if (!rule) continue;
      const status = await api.get(`/v1/rules/${serverId}/status`, run.key);
      if (status.status !== 200)
        throw new Error(`GET /v1/rules/:id/status: ${status.status} ${status.text}`);
      const scopes = status.json<{
        status: { scopes: { scope: Record<string, string>; value: number }[] };
      }>().status.scopes;
      const got: Record<string, number> = {};
      for (const s of scopes) {
        const value = rule.metric === 'costUsd' ? Math.round(s.value * 1e9) : s.value;
        if (value !== 0) got[JSON.stringify(rule.scope.map((d) => s.scope[d]))] = value;
      }
      const want = JSON.stringify(Object.entries(values[id] ?? {}).sort());
      const have = JSON.stringify(Object.entries(got).sort());
      report.statuses++;
      if (want !== have) problems.push(`rule ${id} status values: want ${want}, got ${have}`);
    }
    const answers = budgetAnswers(c, values);
    for (const answer of answers) {
      const { probe } = answer;
      const checked = await checkApi.request('/v1/check', {
        method: 'POST',
        headers: { authorization: `Bearer ${run.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          userId: probe.userId,
          appId: probe.appId,
          modelId: probe.modelId,
          provider: probe.provider,
          estimatedTokens: probe.estimatedTokens,
          estimatedCostUsd: probe.estimatedCostUsd,
        }),
      });
      if (checked.status !== 200)
        throw new Error(`POST /v1/check: ${checked.status} ${checked.text}`);
      const body = checked.json<{
        allowed: boolean;
        rules: { ruleId: string; exceeded: boolean }[];
      }>();
      const denied = body.rules
        .filter((r) => r.exceeded)
        .map((r) => run.ruleIds.get(r.ruleId) ?? r.ruleId)
        .sort();
      report.checks++;
      if (!body.allowed) report.denied++;
      const wantDenied = [...answer.denied].sort();
      if (body.allowed !== answer.allowed || denied.join() !== wantDenied.join())
        problems.push(
          `check ${JSON.stringify(probe)}: want allowed=${answer.allowed} denied=[${wantDenied}], got allowed=${body.allowed} denied=[${denied}]`,
        );
    }
    if (problems.length > 0 && report.failures.length < 5)
      report.failures.push(
        `${c.projectId}: ${problems.join('; ')}\n  rules created at ${JSON.stringify([...run.createdAtMs])}, steps at ${JSON.stringify(stepStarts)}\n  case: ${JSON.stringify(c)}`,
      );
  });
  if (!sameMinute(probeMs, Date.now()))
    throw new Error('the checks crossed a minute: the oracle values are of another minute');
  return report;
}
