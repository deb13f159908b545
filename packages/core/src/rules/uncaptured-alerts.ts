import { countingSince } from './counter-buckets.js';
import { buildAlert, type CompiledRule, crossedLevels, type NewAlert } from './evaluate.js';
import { windowFor } from './windows.js';

/** A reconciliation row as the `uncapturedTokens` metric reads it (see core/bedrock/reconcile). */
export interface UncapturedHour {
  modelId: string;
  hourStartMs: number;
  /** Reported by AWS minus captured by tokenwatch, in tokens. */
  difference: number;
  /** Only settled hours count: both sides are complete. */
  settled: boolean;
}

/**
 * The alerts an `uncapturedTokens` rule owes for reconciliation rows (one region set's, covering
 * every hour of the windows to judge): per scope key (the model, or the whole project) and
 * calendar window, the tokens AWS reported beyond what was captured in its settled hours, every
 * class summed (an hour where tokenwatch counted more adds nothing). Levels reached fire once per
 * (rule, scope key, window, level), as for every rule; windows that ended before the rule started
 * counting never do.
 */
export function uncapturedAlerts(
  compiled: CompiledRule,
  rows: readonly UncapturedHour[],
  nowMs: number,
): NewAlert[] {
  const rule = compiled.rule;
  if (rule.metric !== 'uncapturedTokens' || rule.window.type !== 'calendar') return [];
  const since = countingSince(rule);
  const models = rule.filters.model;
  const sums = new Map<
    string,
    { scopeKey: string; startMs: number; endMs: number; value: number }
  >();
  for (const row of rows) {
    if (!row.settled || row.difference <= 0) continue;
    if (models && models.length > 0 && !models.includes(row.modelId)) continue;
    const win = windowFor(row.hourStartMs, rule.window);
    if (win.endMs <= since) continue;
    const scopeKey = JSON.stringify(rule.scope.map(() => row.modelId));
    const key = `${scopeKey}\u0000${win.startMs}`;
    const sum = sums.get(key) ?? { scopeKey, startMs: win.startMs, endMs: win.endMs, value: 0 };
    sum.value += row.difference;
    sums.set(key, sum);
  }
  const out: NewAlert[] = [];
  for (const s of sums.values()) {
    for (const level of crossedLevels(compiled.levels, 0, s.value))
      out.push(buildAlert(compiled, s.scopeKey, s.startMs, s.endMs, level, s.value, nowMs));
  }
  return out;
}
