import {
  type CompiledRule,
  projectToWindowEnd,
  type RuleCounter,
  scopeValues,
  toUserUnit,
  windowFor,
} from '@tokenwatch/core';

const MINUTE_MS = 60_000;

export interface ScopeStatus {
  scope: Record<string, string>;
  /** In the metric's user unit (USD for cost). */
  value: number;
  percentOfBudget: number | undefined;
  nextLevel: { index: number; threshold: number; percent?: number } | null;
  /** Calendar windows: the value at the window's end at the current rate, and when the next level would be crossed. */
  projectedValue: number | null;
  projectedCrossingAt: string | null;
}

export interface RuleStatus {
  ruleId: string;
  window: { start: string; end: string; resetsInMs: number | null; timeZone: string };
  scopes: ScopeStatus[];
}

/** Current window per scope key: value, next level, reset time and a linear forecast. */
export function ruleStatus(
  compiled: CompiledRule,
  counters: readonly RuleCounter[],
  nowMs: number,
): RuleStatus {
  const rule = compiled.rule;
  const rolling = rule.window.type === 'rolling';
  const win = windowFor(nowMs, rule.window);
  const values = new Map<string, number>();
  for (const c of counters) {
    const inWindow = rolling
      ? c.bucketStartMs >= win.startMs && c.bucketStartMs < win.endMs
      : c.bucketStartMs === win.startMs;
    if (inWindow) values.set(c.scopeKey, (values.get(c.scopeKey) ?? 0) + c.value);
  }
  const scopes: ScopeStatus[] = [...values.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([scopeKey, value]) => {
      const next = compiled.levels.find((l) => l.threshold > value);
      let projectedValue: number | null = null;
      let projectedCrossingAt: string | null = null;
      if (!rolling) {
        projectedValue = toUserUnit(
          rule.metric,
          projectToWindowEnd(value, win.startMs, win.endMs, nowMs),
        );
        const elapsed = Math.max(MINUTE_MS, nowMs - win.startMs);
        const rate = value / elapsed;
        if (next && rate > 0) {
          const at = win.startMs + next.threshold / rate;
          if (at < win.endMs) projectedCrossingAt = new Date(Math.max(at, nowMs)).toISOString();
        }
      }
      const status: ScopeStatus = {
        scope: scopeValues(rule, scopeKey),
        value: toUserUnit(rule.metric, value),
        percentOfBudget: Number.isFinite(compiled.fullThreshold)
          ? (100 * value) / compiled.fullThreshold
          : undefined,
        nextLevel: next
          ? {
              index: next.index,
              threshold: toUserUnit(rule.metric, next.threshold),
              ...(next.percent !== undefined ? { percent: next.percent } : {}),
            }
          : null,
        projectedValue,
        projectedCrossingAt,
      };
      return status;
    });
  return {
    ruleId: rule.id,
    window: {
      start: new Date(win.startMs).toISOString(),
      end: new Date(win.endMs).toISOString(),
      resetsInMs: rolling ? null : win.endMs - nowMs,
      timeZone: rule.window.type === 'calendar' ? rule.window.timeZone : 'UTC',
    },
    scopes,
  };
}
