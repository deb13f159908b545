import type { UsageRecord } from '../event.js';
import { attribute, type IntegrationOptions, safeRecord, tok } from '../shared/record-options.js';
import type { UsageContext } from '../shared/usage-context.js';

export interface AiSdkMiddlewareOptions<V extends 'v3' | 'v4' = 'v3'> extends IntegrationOptions {
  /**
   * The middleware spec to declare: `v3` for ai@6 (`@ai-sdk/provider@3`), `v4` for ai@7. The
   * usage shapes of both are the same; `v2` (ai@5, flat usage) is read as well.
   */
  specificationVersion?: V;
}

type Tokens = Pick<
  UsageRecord,
  'inputTokens' | 'outputTokens' | 'cacheReadTokens' | 'cacheWriteTokens'
>;

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
  const start = (params: CallOptionsLike, model: ModelLike) => {
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
    const t0 = performance.now();
    return (tokens: Tokens | undefined, status: 'ok' | 'error'): void =>
      safeRecord(opts, { ...base, ...tokens, status, latencyMs: performance.now() - t0 });
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
      const emit = start(params, model);
      let result: R;
      try {
        result = await doGenerate();
      } catch (error) {
        emit(undefined, 'error');
        throw error;
      }
      emit(fromAiSdkUsage((result as { usage?: unknown })?.usage), 'ok');
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
      const emit = start(params, model);
      let result: R;
      try {
        result = await doStream();
      } catch (error) {
        emit(undefined, 'error');
        throw error;
      }
      let done = false;
      let failed = false;
      const tap = new TransformStream<P, P>({
        transform(part, controller) {
          try {
            if (part.type === 'error') failed = true;
            else if (part.type === 'finish' && !done) {
              done = true;
              emit(fromAiSdkUsage(part.usage), failed ? 'error' : 'ok');
            }
          } catch {
            // never into the caller
          }
          controller.enqueue(part);
        },
        flush() {
          if (!done) {
            done = true;
            emit(undefined, 'error'); // ended without a finish part: no usage reported
          }
        },
      });
      return { ...result, stream: result.stream.pipeThrough(tap) };
    },
  };
}
