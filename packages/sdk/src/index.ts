export { backoffDelay } from './backoff.js';
export type {
  BudgetCheckOptions,
  CheckedRule,
  CheckOptions,
  CheckRequest,
  CheckResult,
  CheckSource,
} from './budget-check.js';
export { BudgetExceededError, type DeniedCall } from './budget-exceeded-error.js';
export { createTokenwatch } from './client.js';
export type {
  DropInfo,
  FlushOptions,
  Tokenwatch,
  TokenwatchOptions,
  TokenwatchStats,
} from './client-options.js';
export { type DropReason, TokenwatchError, type TokenwatchErrorCode } from './errors.js';
export { type CallStatus, LIMITS, type UsageEvent, type UsageRecord } from './event.js';
export {
  createHttpTransport,
  encodeBatch,
  type HttpTransportOptions,
  parseRetryAfter,
} from './http-transport.js';
export type { Rejected, SendResult, Transport } from './transport.js';
export { createUuidV7 } from './uuid-v7.js';
