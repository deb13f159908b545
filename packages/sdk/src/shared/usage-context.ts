import { AsyncLocalStorage } from 'node:async_hooks';

/** Who an LLM call is for; set per call with {@link withUsageContext}. */
export interface UsageContext {
  userId?: string;
  appId?: string;
  tags?: Record<string, string>;
}

// One store for every integration in the process, so a context set once reaches the Bedrock
// middleware and the OpenAI/Anthropic/AI SDK wrappers alike. It holds no data of its own.
const storage = new AsyncLocalStorage<UsageContext>();

/**
 * Runs `fn` with a usage context: every LLM call made inside it (awaited or not) is attributed
 * to this user/app, nested contexts merge over their parent.
 */
export function withUsageContext<T>(context: UsageContext, fn: () => T): T {
  const parent = storage.getStore();
  const merged: UsageContext = parent ? { ...parent, ...context } : { ...context };
  if (parent?.tags && context.tags) merged.tags = { ...parent.tags, ...context.tags };
  return storage.run(merged, fn);
}

/** The context of the current async call chain, if any. */
export function currentUsageContext(): UsageContext | undefined {
  return storage.getStore();
}
