import fc from 'fast-check';
import type { PricedEvent } from '../event/usage-event.js';
import type { BaseDimension } from '../query/usage-query.js';
import type { Rule, RuleLevel, RuleMetric, RuleWindow } from '../rules/rule.js';

/*
 * Generated cases for the rule oracle: a project, its rules (each created at some point of the
 * stream) and its events, delivered in steps: out of order, late, ahead of the clock, repeated
 * (same payload: a duplicate; another payload: a conflict, the first delivered wins) and split
 * into batches at random. Every case stands on its own project, so thousands of cases can share
 * one store and one step timeline.
 */

const MINUTE = 60_000;
const DAY = 86_400_000;

/**
 * The step timeline every case shares: 2026-03-29T00:58:00Z and then every 40 s, so the UTC hour
 * ends during the run (01:00Z) exactly when Europe/Berlin springs forward (its day is 23 hours),
 * and Asia/Kolkata's hours start at :30 UTC.
 */
export const ORACLE_BASE_MS = Date.UTC(2026, 2, 29, 0, 58, 0);
export const ORACLE_STEP_MS = 40_000;
export const ORACLE_STEPS = 5;

export function stepTime(step: number): number {
  return ORACLE_BASE_MS + step * ORACLE_STEP_MS;
}

/** When a rule created before step `beforeStep` is created (ORACLE_STEPS: after the last step). */
export function ruleCreationTime(beforeStep: number): number {
  return beforeStep < ORACLE_STEPS
    ? stepTime(beforeStep) - 10_000
    : stepTime(ORACLE_STEPS - 1) + 10_000;
}

/** The moment budget checks and rule values are compared, after everything. */
export const ORACLE_PROBE_MS = stepTime(ORACLE_STEPS - 1) + 20_000;

export interface CaseRule {
  rule: Rule;
  beforeStep: number;
}

export interface CaseProbe {
  userId: string;
  appId: string;
  modelId: string;
  provider: string;
  estimatedTokens: number;
  estimatedCostUsd: number;
}

export interface OracleCase {
  projectId: string;
  rules: CaseRule[];
  /** The events delivered at each step, in delivery order (ORACLE_STEPS lists). */
  steps: PricedEvent[][];
  probes: CaseProbe[];
}

const USERS = ['u1', 'u2', 'u3'];
const APPS = ['a1', 'a2'];
const MODELS = ['m1', 'm2'];

interface Payload {
  timestampMs: number;
  userId: string;
  appId: string;
  modelId: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  costNanoUsd: number;
  priced: boolean;
}

/** Event times: mostly the last hour (rolling and hour windows), then days back, a few ahead. */
const timeArb = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: -70 * MINUTE, max: 2 * MINUTE }) },
  { weight: 3, arbitrary: fc.integer({ min: -12 * MINUTE, max: 0 }) },
  { weight: 2, arbitrary: fc.integer({ min: -3 * DAY, max: -70 * MINUTE }) },
  { weight: 1, arbitrary: fc.integer({ min: -30 * DAY, max: -3 * DAY }) },
  { weight: 1, arbitrary: fc.integer({ min: 2 * MINUTE, max: 5 * MINUTE - 1 }) },
);

const payloadArb: fc.Arbitrary<Payload> = fc
  .record({
    offset: timeArb,
    userId: fc.constantFrom(...USERS),
    appId: fc.constantFrom(...APPS),
    modelId: fc.constantFrom(...MODELS),
    inputTokens: fc.integer({ min: 0, max: 40 }),
    outputTokens: fc.integer({ min: 0, max: 40 }),
    cacheReadTokens: fc.integer({ min: 0, max: 10 }),
    cacheWriteTokens: fc.integer({ min: 0, max: 10 }),
    costNanoUsd: fc.integer({ min: 0, max: 5_000 }),
    priced: fc.boolean(),
  })
  .map(({ offset, priced, costNanoUsd, ...rest }) => ({
    ...rest,
    timestampMs: ORACLE_BASE_MS + offset,
    priced,
    costNanoUsd: priced ? costNanoUsd : 0,
  }));

const metricArb = fc.constantFrom<RuleMetric>(
  'totalTokens',
  'totalTokens',
  'inputTokens',
  'outputTokens',
  'requests',
  'costUsd',
  'unpricedTokens',
);

const windowArb: fc.Arbitrary<RuleWindow> = fc.oneof(
  fc.record({
    type: fc.constant('calendar' as const),
    unit: fc.constantFrom('hour' as const, 'day' as const, 'week' as const, 'month' as const),
    timeZone: fc.constantFrom('UTC', 'Europe/Berlin', 'America/New_York'),
  }),
  fc.record({
    type: fc.constant('calendar' as const),
    unit: fc.constantFrom('hour' as const, 'day' as const),
    timeZone: fc.constant('Asia/Kolkata'),
  }),
  fc.record({
    type: fc.constant('rolling' as const),
    minutes: fc.constantFrom(1, 2, 5, 7, 60),
  }),
);

/** Thresholds that a handful of the generated events can reach, in the metric's user unit. */
function levelValue(metric: RuleMetric): fc.Arbitrary<number> {
  if (metric === 'requests') return fc.integer({ min: 1, max: 8 });
  if (metric === 'costUsd') return fc.integer({ min: 1, max: 25 }).map((n) => n * 1e-6);
  return fc.integer({ min: 5, max: 400 });
}

const scopeArb = fc.constantFrom<BaseDimension[]>(
  [],
  ['user'],
  ['user', 'model'],
  ['app'],
  ['app', 'user'],
);

type Filters = Partial<Record<BaseDimension, string[]>>;

interface RuleShape {
  scope: BaseDimension[];
  filters: Filters;
  metric: RuleMetric;
  window: RuleWindow;
  levels: RuleLevel[];
  budget: number | undefined;
  enforce: boolean;
  beforeStep: number;
  /** A second rule measuring the same thing (shared counters), other levels, maybe created later. */
  twin: { levels: RuleLevel[]; budget: number | undefined; beforeStep: number } | undefined;
}

function levelsArb(
  metric: RuleMetric,
): fc.Arbitrary<{ levels: RuleLevel[]; budget: number | undefined }> {
  return fc.oneof(
    fc.uniqueArray(levelValue(metric), { minLength: 1, maxLength: 3 }).map((values) => ({
      levels: values.sort((a, b) => a - b).map((value) => ({ value })),
      budget: undefined,
    })),
    fc
      .tuple(levelValue(metric), fc.subarray([50, 80, 100], { minLength: 1 }))
      .map(([budget, percents]) => ({
        levels: percents.map((percent) => ({ percent })),
        budget,
      })),
  );
}

const stepArb = fc.integer({ min: 0, max: ORACLE_STEPS });

const ruleShapeArb: fc.Arbitrary<RuleShape> = metricArb.chain((metric) =>
  fc
    .record({
      scope: scopeArb,
      filters: fc.oneof(
        { weight: 3, arbitrary: fc.constant<Filters>({}) },
        { weight: 1, arbitrary: fc.constant<Filters>({ app: ['a1'] }) },
        { weight: 1, arbitrary: fc.constant<Filters>({ model: ['m2'], user: ['u1', 'u2'] }) },
      ),
      metric: fc.constant(metric),
      window: windowArb,
      levels: levelsArb(metric),
      enforce: fc.boolean(),
      beforeStep: stepArb,
      twin: fc.option(fc.record({ levels: levelsArb(metric), beforeStep: stepArb }), {
        nil: undefined,
      }),
    })
    .map(({ levels, twin, ...rest }) => ({
      ...rest,
      levels: levels.levels,
      budget: levels.budget,
      twin: twin && { ...twin.levels, beforeStep: twin.beforeStep },
    })),
);

function makeRule(
  projectId: string,
  id: string,
  shape: RuleShape,
  levels: RuleLevel[],
  budget: number | undefined,
): Rule {
  return {
    id,
    projectId,
    name: id,
    scope: shape.scope,
    filters: shape.filters,
    metric: shape.metric,
    window: shape.window,
    budget,
    levels,
    forecast: false,
    channels: [{ type: 'log' }],
    enforce: shape.enforce,
    enabled: true,
    createdAtMs: 0,
    updatedAtMs: 0,
  };
}

interface Delivery {
  /** Index into the distinct payloads. */
  payload: number;
  /** Which id it carries: its own, or another payload's (a conflict). */
  idOf: number;
  step: number;
  /** Sort key within its step. */
  order: number;
}

/** Cases for one project each; `index` makes ids unique across a packed run. */
export function oracleCaseArb(index: () => number): fc.Arbitrary<OracleCase> {
  return fc
    .record({
      payloads: fc.array(payloadArb, { minLength: 1, maxLength: 20 }),
      shapes: fc.array(ruleShapeArb, { minLength: 1, maxLength: 3 }),
      extra: fc.array(
        fc.record({
          pick: fc.nat(),
          conflict: fc.boolean(),
          conflictWith: fc.nat(),
        }),
        { maxLength: 6 },
      ),
      steps: fc.array(fc.integer({ min: 0, max: ORACLE_STEPS - 1 }), {
        minLength: 30,
        maxLength: 30,
      }),
      orders: fc.array(fc.nat(), { minLength: 30, maxLength: 30 }),
      probes: fc.array(
        fc.record({
          userId: fc.constantFrom(...USERS),
          appId: fc.constantFrom(...APPS),
          modelId: fc.constantFrom(...MODELS),
          estimatedTokens: fc.integer({ min: 0, max: 100 }),
          estimatedCostUsd: fc.integer({ min: 0, max: 10 }).map((n) => n * 1e-6),
        }),
        { minLength: 1, maxLength: 3 },
      ),
    })
    .map(({ payloads, shapes, extra, steps, orders, probes }) => {
      const projectId = `oc${index()}`;
      const deliveries: Delivery[] = payloads.map((_, i) => ({
        payload: i,
        idOf: i,
        step: steps[i % steps.length] as number,
        order: orders[i % orders.length] as number,
      }));
      extra.forEach((x, j) => {
        const payload = x.pick % payloads.length;
        const k = payloads.length + j;
        deliveries.push({
          payload: x.conflict ? x.conflictWith % payloads.length : payload,
          idOf: payload,
          step: steps[k % steps.length] as number,
          order: orders[k % orders.length] as number,
        });
      });
      const stepEvents: PricedEvent[][] = Array.from({ length: ORACLE_STEPS }, () => []);
      deliveries
        .sort((a, b) => a.step - b.step || a.order - b.order)
        .forEach((d) => {
          const p = payloads[d.payload] as Payload;
          (stepEvents[d.step] as PricedEvent[]).push({
            projectId,
            id: `e${d.idOf}`,
            provider: 'bedrock',
            latencyMs: undefined,
            status: 'ok',
            tags: undefined,
            fingerprint: `fp${d.payload}`,
            ...p,
          });
        });
      const rules: CaseRule[] = [];
      shapes.forEach((shape, i) => {
        rules.push({
          rule: makeRule(projectId, `${projectId}-r${i}`, shape, shape.levels, shape.budget),
          beforeStep: shape.beforeStep,
        });
        if (shape.twin)
          rules.push({
            rule: makeRule(
              projectId,
              `${projectId}-r${i}t`,
              shape,
              shape.twin.levels,
              shape.twin.budget,
            ),
            beforeStep: shape.twin.beforeStep,
          });
      });
      return {
        projectId,
        rules,
        steps: stepEvents,
        probes: probes.map((p) => ({ ...p, provider: 'bedrock' })),
      };
    });
}
