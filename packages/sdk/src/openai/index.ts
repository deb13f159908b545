export { BudgetExceededError } from '../budget-exceeded-error.js';
export type { EnforceOptions, Estimate, GuardedCall } from '../shared/budget-guard.js';
export {
  currentUsageContext,
  type UsageContext,
  withUsageContext,
} from '../shared/usage-context.js';
export {
  fromCompletionUsage,
  fromResponseUsage,
  type OpenAIWrapperOptions,
  wrapOpenAI,
} from './wrap-openai.js';
