import type { ChannelConfig, RuleMetric, RuleWindow } from '../rules/rule.js';

/** Everything a channel needs to render an alert. Stable across retries of one delivery. */
export interface AlertMessage {
  /** Alert id: unique per (rule, scope key, window start, level). */
  alertId: string;
  projectId: string;
  rule: { id: string; name: string; metric: RuleMetric; window: RuleWindow };
  /** The scope key's values, e.g. { user: 'alice', model: 'anthropic.claude-…' }; {} for the whole project. */
  scope: Record<string, string>;
  window: { start: string; end: string; timeZone: string };
  /** The level crossed; `threshold` is in the metric's user unit (USD for cost). Index -1: forecast. */
  level: { index: number; threshold: number; value?: number; percent?: number; budget?: number };
  /** The metric's value when the level was crossed, in its user unit (USD for cost). */
  value: number;
  /** True when the crossing came from events that arrived after their window had ended. */
  late: boolean;
  /** True for the forecast level (projected to reach 100 % by the window's end). */
  forecast: boolean;
  firedAt: string;
  /** Link to the dashboard view of this scope and window, when the server knows its public URL. */
  url?: string;
}

export interface Delivery {
  /** Stable id of this (alert, channel) delivery; webhooks send it as `webhook-id`. */
  id: string;
  attempt: number;
  channel: ChannelConfig;
  message: AlertMessage;
}

/**
 * A notification channel. `send` resolves when the receiver accepted the delivery and rejects
 * with a `TokenwatchError` otherwise: `retryable` says whether the dispatcher should try again
 * (with backoff, honouring `retryAfterSeconds`), or dead-letter it at once (e.g. a URL refused
 * by the SSRF guard, a 4xx other than 408/429). It must honour `signal` (per-channel timeout).
 */
export interface Notifier {
  readonly type: ChannelConfig['type'];
  send(delivery: Delivery, signal: AbortSignalLike): Promise<void>;
}

/** The part of the platform's AbortSignal a notifier uses (core has no DOM or Node types). */
export interface AbortSignalLike {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}
