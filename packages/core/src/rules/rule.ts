import type { BaseDimension } from '../query/usage-query.js';

/** What a rule measures. Cost is compared in nano-USD internally, stated in USD by users. */
export type RuleMetric =
  | 'totalTokens'
  | 'inputTokens'
  | 'outputTokens'
  | 'cacheReadTokens'
  | 'cacheWriteTokens'
  | 'costUsd'
  | 'requests'
  | 'unpricedTokens'
  /**
   * Amazon Bedrock tokens AWS reported (CloudWatch `AWS/Bedrock`) that tokenwatch did not capture,
   * per model and settled hour, all token classes: evaluated when a reconciliation runs, never
   * by events (see the README's Amazon Bedrock section).
   */
  | 'uncapturedTokens';

export type CalendarUnit = 'hour' | 'day' | 'week' | 'month';

export type RuleWindow =
  /** Calendar windows start at local :00 / midnight / Monday / the 1st in `timeZone` (IANA). */
  | { type: 'calendar'; unit: CalendarUnit; timeZone: string }
  /** The last `minutes` minutes, re-evaluated as events arrive. */
  | { type: 'rolling'; minutes: number };

/** A threshold: an absolute value in the metric's unit (USD for cost), or a percent of the budget. */
export type RuleLevel = { value: number } | { percent: number };

export type ChannelConfig =
  | { type: 'webhook'; url: string; secret?: string }
  | { type: 'slack'; url: string }
  | { type: 'email'; to: string[] }
  | { type: 'log' }
  | { type: 'sns'; topicArn: string };

/** A rule as users write it (config file, POST /v1/rules). */
export interface RuleInput {
  name: string;
  /** Dimensions the rule fans out over: ['user','model'] is the seed's per user × model; [] is the whole project. */
  scope: BaseDimension[];
  /** Only events whose dimensions are among these values count. */
  filters?: Partial<Record<BaseDimension, string[]>>;
  metric: RuleMetric;
  window: RuleWindow;
  /** Needed when a level is a percent; in the metric's unit (USD for cost). */
  budget?: number;
  levels: RuleLevel[];
  /** Also fire once when the projection to the window's end first reaches 100 % of the budget (or the top level). */
  forecast?: boolean;
  channels: ChannelConfig[];
  /** Budgets that block: POST /v1/check denies when an enforcing rule's top level would be passed. */
  enforce?: boolean;
  enabled?: boolean;
}

/** A stored rule. */
export interface Rule extends Required<Omit<RuleInput, 'budget' | 'filters'>> {
  id: string;
  projectId: string;
  filters: Partial<Record<BaseDimension, string[]>>;
  budget: number | undefined;
  createdAtMs: number;
  updatedAtMs: number;
  /**
   * When the rule last started counting (created, re-enabled, or changed what it measures); set
   * by the store. The rule evaluates the windows that end after this instant: the one it was
   * created in counts in full (seeded from the rollups), earlier ones never fire. Absent on rules
   * stored before it existed: `createdAtMs` then.
   */
  countingSinceMs?: number;
}

/** A level resolved to an integer threshold in the metric's base unit (tokens, requests, nano-USD). */
export interface ResolvedLevel {
  index: number;
  threshold: number;
  /** The level as written, for messages. */
  value: number | undefined;
  percent: number | undefined;
}
