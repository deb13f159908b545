export {
  currentUsageContext,
  type UsageContext,
  withUsageContext,
} from '../shared/usage-context.js';
export { type AiSdkMiddlewareOptions, fromAiSdkUsage, tokenwatchMiddleware } from './middleware.js';
