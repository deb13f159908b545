import type { PricedEvent } from '../event/usage-event.js';
import { compileRule, ruleMatches, scopeKeyOf } from '../rules/evaluate.js';
import { metricOf } from '../rules/parse-rule.js';
import type { Rule } from '../rules/rule.js';
import { windowFor } from '../rules/windows.js';

/*
 * The reference evaluator every store is held to: what the rules' alerts, values and budget
 * checks must be, computed straight from the raw events by recounting everything at every step.
 * Deliberately naive (no counters, no plans, no incremental state) so that it is obviously right;
 * it shares with the product only the window arithmetic (windows.ts, tested on its own) and the
 * level thresholds.
 */

const MINUTE = 60_000;

/** A rule as the oracle sees it: what it is, and when it was created (in the step timeline). */
export interface OracleRule {
  rule: Rule;
  /** Created just before step `beforeStep` (steps.length: after the last one), at `createdAtMs`. */
  beforeStep: number;
  createdAtMs: number;
}

/** One delivery of events to the store, at `nowMs`. */
export interface OracleStep {
  nowMs: number;
  events: PricedEvent[];
}

/** The identity of an alert, and whether it came late. */
export function alertKey(a: {
  ruleId: string;
  scopeKey: string;
  windowStartMs: number;
  levelIndex: number;
  late: boolean;
}): string {
  return `${a.ruleId}|${a.scopeKey}|${new Date(a.windowStartMs).toISOString()}|L${a.levelIndex}${a.late ? '|late' : ''}`;
}

/** The distinct accepted events: the first event with an id wins, whatever comes later. */
export function acceptedEvents(events: readonly PricedEvent[]): PricedEvent[] {
  const seen = new Set<string>();
  const out: PricedEvent[] = [];
  for (const e of events) {
    const key = `${e.projectId}\u0000${e.id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(e);
  }
  return out;
}

/** Alerts a rule must have with these accepted events: window (or period) start, level, end. */
function alertsFor(rule: Rule, events: readonly PricedEvent[], since: number) {
  const levels = compileRule(rule).levels;
  const out = new Map<
    string,
    { scopeKey: string; startMs: number; endMs: number; level: number }
  >();
  const fire = (scopeKey: string, startMs: number, endMs: number, value: number) => {
    for (const l of levels) {
      if (l.threshold > value) continue;
      out.set(`${scopeKey}|${startMs}|${l.index}`, { scopeKey, startMs, endMs, level: l.index });
    }
  };
  const matching = events.filter((e) => ruleMatches(rule, e) && metricOf(rule.metric, e) > 0);
  if (rule.window.type === 'calendar') {
    const sums = new Map<string, { scopeKey: string; startMs: number; endMs: number; v: number }>();
    for (const e of matching) {
      const w = windowFor(e.timestampMs, rule.window);
      const scopeKey = scopeKeyOf(rule, e);
      const k = `${scopeKey}|${w.startMs}`;
      const s = sums.get(k) ?? { scopeKey, startMs: w.startMs, endMs: w.endMs, v: 0 };
      s.v += metricOf(rule.metric, e);
      sums.set(k, s);
    }
    for (const s of sums.values()) if (s.endMs > since) fire(s.scopeKey, s.startMs, s.endMs, s.v);
    return out;
  }
  // Rolling: the value at every minute that has events, period by period.
  const span = rule.window.minutes * MINUTE;
  const firstMinute = Math.floor(since / MINUTE) * MINUTE;
  const minuteOf = (e: PricedEvent) => Math.floor(e.timestampMs / MINUTE) * MINUTE;
  // Evaluation points: every minute with an event, and the minute the rule started counting in.
  const points = new Map<string, { scopeKey: string; m: number }>();
  for (const e of matching) {
    const scopeKey = scopeKeyOf(rule, e);
    points.set(`${scopeKey}|${firstMinute}`, { scopeKey, m: firstMinute });
    points.set(`${scopeKey}|${minuteOf(e)}`, { scopeKey, m: minuteOf(e) });
  }
  for (const { scopeKey, m } of points.values()) {
    if (m < firstMinute) continue;
    let v = 0;
    for (const x of matching) {
      if (scopeKeyOf(rule, x) === scopeKey && minuteOf(x) > m - span && minuteOf(x) <= m)
        v += metricOf(rule.metric, x);
    }
    const period = Math.floor(m / span) * span;
    fire(scopeKey, period, period + span, v);
  }
  return out;
}

/**
 * Every alert the rules must have fired after all steps, as `alertKey`s. An alert fired at the
 * first moment its condition held: when its rule was created, or at the step that made it true;
 * it is late when its window had ended by then.
 */
export function oracleAlerts(rules: readonly OracleRule[], steps: readonly OracleStep[]): string[] {
  const keys: string[] = [];
  for (const { rule, beforeStep, createdAtMs } of rules) {
    const seen = new Set<string>();
    for (let k = beforeStep; k <= steps.length; k++) {
      // Moment k: at the rule's creation (k = beforeStep), then after step k−1.
      const atMs = k === beforeStep ? createdAtMs : (steps[k - 1] as OracleStep).nowMs;
      const events = acceptedEvents(steps.slice(0, k).flatMap((s) => s.events));
      for (const [id, a] of alertsFor(rule, events, createdAtMs)) {
        if (seen.has(id)) continue;
        seen.add(id);
        keys.push(
          alertKey({
            ruleId: rule.id,
            scopeKey: a.scopeKey,
            windowStartMs: a.startMs,
            levelIndex: a.level,
            late: a.endMs <= atMs,
          }),
        );
      }
    }
  }
  return keys.sort();
}

/** A rule's current value per scope key at `nowMs` (its calendar window, or last N minutes). */
export function oracleValues(
  rule: Rule,
  events: readonly PricedEvent[],
  nowMs: number,
): Map<string, number> {
  const out = new Map<string, number>();
  const nowMinute = Math.floor(nowMs / MINUTE) * MINUTE;
  const current = windowFor(nowMs, rule.window);
  for (const e of acceptedEvents(events)) {
    if (!ruleMatches(rule, e)) continue;
    const inWindow =
      rule.window.type === 'rolling'
        ? e.timestampMs >= nowMinute - (rule.window.minutes - 1) * MINUTE &&
          e.timestampMs < nowMinute + MINUTE
        : windowFor(e.timestampMs, rule.window).startMs === current.startMs;
    if (!inWindow) continue;
    const v = metricOf(rule.metric, e);
    if (v === 0) continue;
    const scopeKey = scopeKeyOf(rule, e);
    out.set(scopeKey, (out.get(scopeKey) ?? 0) + v);
  }
  return out;
}
