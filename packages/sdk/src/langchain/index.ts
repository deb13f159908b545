export { type UsageContext, withUsageContext } from '../shared/usage-context.js';
export {
  TokenwatchCallbackHandler,
  type TokenwatchCallbackHandlerOptions,
} from './callback-handler.js';
