export {
  currentUsageContext,
  type UsageContext,
  withUsageContext,
} from '../shared/usage-context.js';
export {
  type BedrockClientLike,
  type BedrockMiddlewareOptions,
  instrumentBedrock,
  tokenwatchBedrockMiddleware,
} from './middleware.js';
