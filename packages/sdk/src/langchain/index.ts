export { BudgetExceededError } from '../budget-exceeded-error.js';
export type { EnforceOptions, Estimate, GuardedCall } from '../shared/budget-guard.js';
export { type UsageContext, withUsageContext } from '../shared/usage-context.js';
export {
  TokenwatchCallbackHandler,
  type TokenwatchCallbackHandlerOptions,
} from './callback-handler.js';
