export {
  currentUsageContext,
  type UsageContext,
  withUsageContext,
} from '../shared/usage-context.js';
export {
  type AnthropicWrapperOptions,
  fromAnthropicUsage,
  wrapAnthropic,
} from './wrap-anthropic.js';
