import type { Tokens } from '../shared/call-outcome.js';
import { type IntegrationOptions, tok } from '../shared/record-options.js';
import { type StreamState, type UsageReader, wrapMethod } from '../shared/wrap-call.js';

export type OpenAIWrapperOptions = IntegrationOptions;

interface CompletionUsageLike {
  prompt_tokens?: number;
  completion_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number; cache_write_tokens?: number } | null;
}

interface ResponseUsageLike {
  input_tokens?: number;
  output_tokens?: number;
  input_tokens_details?: { cached_tokens?: number; cache_write_tokens?: number } | null;
}

/**
 * OpenAI counts cached tokens INSIDE `prompt_tokens` / `input_tokens`; the contract's
 * `inputTokens` are the uncached ones. Reasoning tokens are already inside the output count.
 */
function normalise(total: unknown, cached: unknown, written: unknown, output: unknown): Tokens {
  const cacheRead = tok(cached);
  const cacheWrite = tok(written);
  return {
    inputTokens: Math.max(0, tok(total) - cacheRead - cacheWrite),
    outputTokens: tok(output),
    cacheReadTokens: cacheRead,
    cacheWriteTokens: cacheWrite,
  };
}

export function fromCompletionUsage(u: CompletionUsageLike | null | undefined): Tokens | undefined {
  if (!u) return undefined;
  const d = u.prompt_tokens_details;
  return normalise(u.prompt_tokens, d?.cached_tokens, d?.cache_write_tokens, u.completion_tokens);
}

export function fromResponseUsage(u: ResponseUsageLike | null | undefined): Tokens | undefined {
  if (!u) return undefined;
  const d = u.input_tokens_details;
  return normalise(u.input_tokens, d?.cached_tokens, d?.cache_write_tokens, u.output_tokens);
}

const chatReader: UsageReader = {
  provider: 'openai',
  fromResult: (r) => fromCompletionUsage((r as { usage?: CompletionUsageLike })?.usage),
  streamState(hideInjected): StreamState {
    let usage: Tokens | undefined;
    return {
      onEvent(chunk) {
        const u = (chunk as { usage?: CompletionUsageLike | null })?.usage;
        if (u) usage = fromCompletionUsage(u);
      },
      usage: () => usage,
      hide: (chunk) => {
        const c = chunk as { usage?: unknown; choices?: unknown[] };
        return hideInjected && !!c?.usage && Array.isArray(c.choices) && c.choices.length === 0;
      },
    };
  },
};

const responsesReader: UsageReader = {
  provider: 'openai',
  fromResult: (r) => fromResponseUsage((r as { usage?: ResponseUsageLike })?.usage),
  streamState(): StreamState {
    let usage: Tokens | undefined;
    return {
      onEvent(ev) {
        const e = ev as { type?: string; response?: { usage?: ResponseUsageLike } };
        if (
          (e?.type === 'response.completed' ||
            e?.type === 'response.incomplete' ||
            e?.type === 'response.failed') &&
          e.response?.usage
        ) {
          usage = fromResponseUsage(e.response.usage);
        }
      },
      usage: () => usage,
    };
  },
};

/**
 * Streaming chat has no usage unless `stream_options.include_usage` is on: turn it on, and hide
 * the extra usage-only chunk from callers who did not ask for it, so their loop is unchanged.
 */
function includeUsage(params: Record<string, unknown>): {
  params: Record<string, unknown>;
  hideInjected: boolean;
} {
  if (params.stream !== true) return { params, hideInjected: false };
  const so = (params.stream_options ?? {}) as Record<string, unknown>;
  if (so.include_usage === true) return { params, hideInjected: false };
  return {
    params: { ...params, stream_options: { ...so, include_usage: true } },
    hideInjected: true,
  };
}

interface OpenAILike {
  chat?: { completions?: object };
  completions?: object;
  responses?: object;
}

/**
 * Captures usage from an `openai` client (v4–v7): `chat.completions.create` (and the `stream()`
 * / `parse()` helpers built on it), legacy `completions.create` and `responses.create`,
 * streaming included. Mutates and returns the client; the caller's results are unchanged.
 */
export function wrapOpenAI<C extends OpenAILike>(client: C, opts: OpenAIWrapperOptions): C {
  const chat = client.chat?.completions as Record<string, unknown> | undefined;
  if (chat) wrapMethod(chat, 'create', opts, chatReader, includeUsage);
  const legacy = client.completions as Record<string, unknown> | undefined;
  if (legacy) wrapMethod(legacy, 'create', opts, chatReader, includeUsage);
  const responses = client.responses as Record<string, unknown> | undefined;
  if (responses) wrapMethod(responses, 'create', opts, responsesReader);
  return client;
}
