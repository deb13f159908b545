import type { Tokenwatch } from '../client-options.js';
import type { UsageRecord } from '../event.js';
import type { EnforceOptions } from './budget-guard.js';
import { currentUsageContext, type UsageContext } from './usage-context.js';

/** Options every integration takes. */
export interface IntegrationOptions extends UsageContext {
  /** The client events go to (anything with `record`; `enforce` needs the real client). */
  tokenwatch: Pick<Tokenwatch, 'record'> & Partial<Pick<Tokenwatch, 'check' | 'checkCached'>>;
  /**
   * Check the budget before each call: when an enforcing rule denies it, throw a
   * `BudgetExceededError` before the provider receives anything, and record the attempt with
   * `status: "denied"`. The same attribution as usage decides whose budget it is.
   */
  enforce?: boolean | EnforceOptions;
}

/**
 * Adds who the call was for: the per-call context wins over the integration's defaults; the
 * client's own defaults apply after that. Never throws.
 */
export function attribute(
  opts: IntegrationOptions,
  base: UsageRecord,
  callContext?: UsageContext | undefined,
): UsageRecord {
  const ctx = currentUsageContext();
  const userId = callContext?.userId ?? ctx?.userId ?? opts.userId;
  const appId = callContext?.appId ?? ctx?.appId ?? opts.appId;
  if (userId !== undefined) base.userId = userId;
  if (appId !== undefined) base.appId = appId;
  if (opts.tags || ctx?.tags || callContext?.tags) {
    base.tags = { ...opts.tags, ...ctx?.tags, ...callContext?.tags };
  }
  return base;
}

/** Records without ever throwing into the LLM call's path. */
export function safeRecord(opts: IntegrationOptions, record: UsageRecord): void {
  try {
    opts.tokenwatch.record(record);
  } catch {
    // record() never throws; a custom sink might
  }
}

/** Non-negative integer or 0: providers sometimes send null or omit a class. */
export function tok(value: unknown): number {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? Math.round(n) : 0;
}
