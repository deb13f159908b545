import type { UsageRecord } from '../event.js';
import { createBudgetGuard } from '../shared/budget-guard.js';
import { type CallEnd, finishRecord, type Tokens } from '../shared/call-outcome.js';
import { attribute, type IntegrationOptions, safeRecord, tok } from '../shared/record-options.js';
import type { UsageContext } from '../shared/usage-context.js';

export interface AiSdkMiddlewareOptions<V extends 'v3' | 'v4' = 'v3'> extends IntegrationOptions {
  /**
   * The middleware spec to declare: `v3` for ai@6 (`@ai-sdk/provider@3`), `v4` for ai@7. The
   * usage shapes of both are the same; `v2` (ai@5, flat usage) is read as well.
   */
  specificationVersion?: V;
}

/** The parts of a language-model call the middleware reads (structural: V2, V3 and V4 fit). */
interface ModelLike {
  provider: string;
  modelId: string;
}
interface CallOptionsLike {
  providerOptions?: Record<string, unknown> | undefined;
}
type StreamPartLike = { type: string; usage?: unknown };

/**
 * Whether the provider reported usage at all: providers that get none leave every count
 * undefined (V3/V4 `inputTokens.total` and `outputTokens.total`, V2's flat counts).
 */
export function hasAiSdkUsage(usage: unknown): boolean {
  if (!usage || typeof usage !== 'object') return false;
  const u = usage as Record<string, unknown>;
  const count = (v: unknown): boolean =>
    typeof v === 'number' ||
    (typeof v === 'object' && v !== null && typeof (v as { total?: unknown }).total === 'number');
  return count(u.inputTokens) || count(u.outputTokens);
}

/**
 * V3/V4: `{ inputTokens: { total, noCache, cacheRead, cacheWrite }, outputTokens: { total } }`
 * where total input INCLUDES cache. V2: flat `{ inputTokens, outputTokens, cachedInputTokens }`.
 */
export function fromAiSdkUsage(usage: unknown): Tokens | undefined {
  if (!usage || typeof usage !== 'object') return undefined;
  const u = usage as Record<string, unknown>;
  if (typeof u.inputTokens === 'object' && u.inputTokens !== null) {
    const i = u.inputTokens as Record<string, unknown>;
    const o = (u.outputTokens ?? {}) as Record<string, unknown>;
    const cacheRead = tok(i.cacheRead);
    const cacheWrite = tok(i.cacheWrite);
    const uncached =
      typeof i.noCache === 'number'
        ? tok(i.noCache)
        : Math.max(0, tok(i.total) - cacheRead - cacheWrite);
    return {
      inputTokens: uncached,
      outputTokens: tok(o.total),
      cacheReadTokens: cacheRead,
      cacheWriteTokens: cacheWrite,
    };
  }
  const cached = tok(u.cachedInputTokens);
  return {
    inputTokens: Math.max(0, tok(u.inputTokens) - cached),
    outputTokens: tok(u.outputTokens),
    cacheReadTokens: cached,
    cacheWriteTokens: 0,
  };
}

const PROVIDERS: Record<string, string> = {
  'amazon-bedrock': 'bedrock',
  bedrock: 'bedrock',
  openai: 'openai',
  azure: 'azure-openai',
  anthropic: 'anthropic',
};

/** `openai.chat` → `openai`, `amazon-bedrock` → `bedrock`, others kept (their first segment). */
function providerOf(model: ModelLike): string {
  const head = String(model.provider ?? 'unknown').split('.')[0] ?? 'unknown';
  return PROVIDERS[head] ?? head;
}

function callContext(params: CallOptionsLike): UsageContext | undefined {
  const raw = params.providerOptions?.tokenwatch;
  if (!raw || typeof raw !== 'object') return undefined;
  const r = raw as Record<string, unknown>;
  const ctx: UsageContext = {};
  if (typeof r.userId === 'string') ctx.userId = r.userId;
  if (typeof r.appId === 'string') ctx.appId = r.appId;
  if (r.tags && typeof r.tags === 'object') ctx.tags = r.tags as Record<string, string>;
  return ctx;
}

/**
 * A language-model middleware for the Vercel AI SDK: one usage event per provider call, for
 * `generateText`/`generateObject` (wrapGenerate) and `streamText`/`streamObject` (wrapStream,
 * from the final `finish` part). Per-call user/app/tags go in
 * `providerOptions: { tokenwatch: { userId, appId, tags } }` or `withUsageContext`.
 *
 * ```ts
 * const model = wrapLanguageModel({ model: bedrock('us.anthropic.claude-sonnet-4-5-20250929-v1:0'),
 *   middleware: tokenwatchMiddleware({ tokenwatch }) });
 * ```
 */
export function tokenwatchMiddleware<V extends 'v3' | 'v4' = 'v3'>(
  opts: AiSdkMiddlewareOptions<V>,
) {
  const guard = createBudgetGuard(opts.tokenwatch, opts.enforce);
  const start = async (params: CallOptionsLike, model: ModelLike) => {
    let base: UsageRecord;
    try {
      base = attribute(
        opts,
        { modelId: String(model.modelId ?? 'unknown'), provider: providerOf(model) },
        callContext(params),
      );
    } catch {
      base = { modelId: 'unknown' };
    }
    // Before the provider is called (and before the AI SDK's retries see an error to retry).
    if (guard) await guard.call(base, params).check();
    const t0 = performance.now();
    return (usage: unknown, end: CallEnd): void => {
      const reported = hasAiSdkUsage(usage);
      const tokens = reported ? fromAiSdkUsage(usage) : undefined;
      safeRecord(opts, finishRecord(base, end, tokens, reported, performance.now() - t0));
    };
  };

  return {
    specificationVersion: (opts.specificationVersion ?? 'v3') as V,

    async wrapGenerate<R>({
      doGenerate,
      params,
      model,
    }: {
      doGenerate: () => PromiseLike<R>;
      params: CallOptionsLike;
      model: ModelLike;
    }): Promise<R> {
      const emit = await start(params, model);
      let result: R;
      try {
        result = await doGenerate();
      } catch (error) {
        emit(undefined, 'failed');
        throw error;
      }
      emit((result as { usage?: unknown })?.usage, 'done');
      return result;
    },

    async wrapStream<R extends { stream: ReadableStream<P> }, P extends StreamPartLike>({
      doStream,
      params,
      model,
    }: {
      doStream: () => PromiseLike<R>;
      params: CallOptionsLike;
      model: ModelLike;
    }): Promise<R> {
      const emit = await start(params, model);
      let result: R;
      try {
        result = await doStream();
      } catch (error) {
        emit(undefined, 'failed');
        throw error;
      }
      return { ...result, stream: tapParts(result.stream, emit) };
    },
  };
}

/**
 * Passes the parts through and reports how the stream ended, once: with the `finish` part's
 * usage (an `error` part before it makes it a failure), when it ended without one, when the
 * source failed, or when the consumer cancelled it (abandoned). A pull-through stream, so the
 * consumer's cancel is seen here and reaches the provider's stream.
 */
function tapParts<P extends StreamPartLike>(
  source: ReadableStream<P>,
  emit: (usage: unknown, end: CallEnd) => void,
): ReadableStream<P> {
  const reader = source.getReader();
  let failed = false;
  let finished = false;
  const end = (usage: unknown, how: CallEnd): void => {
    if (finished) return;
    finished = true;
    try {
      emit(usage, how);
    } catch {
      // never into the caller
    }
  };
  return new ReadableStream<P>({
    async pull(controller) {
      let r: Awaited<ReturnType<typeof reader.read>>;
      try {
        r = await reader.read();
      } catch (error) {
        end(undefined, 'failed');
        throw error;
      }
      if (r.done) {
        end(undefined, failed ? 'failed' : 'done'); // no finish part: no usage reported
        controller.close();
        return;
      }
      const part = r.value;
      if (part.type === 'error') failed = true;
      else if (part.type === 'finish') end(part.usage, failed ? 'failed' : 'done');
      controller.enqueue(part);
    },
    async cancel(reason) {
      end(undefined, 'abandoned');
      await reader.cancel(reason);
    },
  });
}
