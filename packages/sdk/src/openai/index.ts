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
