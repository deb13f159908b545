import type { Rule, RuleWindow } from './rule.js';
import { windowFor } from './windows.js';

// Which counter bucket an event adds to, and from which bucket a rule counts (rule-engine.ts).

export const MINUTE_MS = 60_000;

export function floorMinute(ms: number): number {
  return Math.floor(ms / MINUTE_MS) * MINUTE_MS;
}

/** When a rule started counting (see `Rule.countingSinceMs`). */
export function countingSince(rule: Pick<Rule, 'countingSinceMs' | 'createdAtMs'>): number {
  return rule.countingSinceMs ?? rule.createdAtMs;
}

/** The counter bucket an event time adds to: its calendar window's start, or its minute. */
export function counterBucketOf(timestampMs: number, window: RuleWindow): number {
  return window.type === 'rolling'
    ? floorMinute(timestampMs)
    : windowFor(timestampMs, window).startMs;
}

/**
 * The first counter bucket a rule's evaluation reads: the start of the window it started counting
 * in, or for a rolling rule the first minute its first evaluated window spans.
 */
export function firstCountedBucket(rule: Rule): number {
  const since = countingSince(rule);
  if (rule.window.type === 'rolling')
    return floorMinute(since) - (rule.window.minutes - 1) * MINUTE_MS;
  return windowFor(since, rule.window).startMs;
}
