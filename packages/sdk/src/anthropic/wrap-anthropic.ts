import type { Tokens } from '../shared/call-outcome.js';
import { type IntegrationOptions, tok } from '../shared/record-options.js';
import { type StreamState, type UsageReader, wrapMethod } from '../shared/wrap-call.js';

export type AnthropicWrapperOptions = IntegrationOptions;

/** Anthropic's `input_tokens` already EXCLUDES cache reads and writes: no subtraction. */
export function fromAnthropicUsage(
  u: Record<string, unknown> | null | undefined,
): Tokens | undefined {
  if (!u) return undefined;
  return {
    inputTokens: tok(u.input_tokens),
    outputTokens: tok(u.output_tokens),
    cacheReadTokens: tok(u.cache_read_input_tokens),
    cacheWriteTokens: tok(u.cache_creation_input_tokens),
  };
}

const messagesReader: UsageReader = {
  provider: 'anthropic',
  fromResult: (r) => fromAnthropicUsage((r as { usage?: Record<string, unknown> })?.usage),
  streamState(): StreamState {
    let usage: Record<string, unknown> | undefined;
    let final = false;
    // message_start has input and cache tokens; message_delta carries CUMULATIVE totals:
    // overwrite each non-null field, never add. Only message_delta's is the final count.
    const merge = (u: Record<string, unknown> | undefined): void => {
      if (!u) return;
      usage = { ...usage };
      for (const [k, v] of Object.entries(u)) if (v !== null && v !== undefined) usage[k] = v;
    };
    return {
      onEvent(ev) {
        const e = ev as {
          type?: string;
          message?: { usage?: Record<string, unknown> };
          usage?: Record<string, unknown>;
        };
        if (e?.type === 'message_start') merge(e.message?.usage);
        else if (e?.type === 'message_delta' && e.usage) {
          merge(e.usage);
          final = true;
        }
      },
      usage: () => fromAnthropicUsage(usage),
      reported: () => final,
    };
  },
};

interface AnthropicLike {
  messages?: object;
  beta?: { messages?: object };
}

/**
 * Captures usage from an `@anthropic-ai/sdk` client: `messages.create` (streaming or not) and
 * the `messages.stream()` helper, which is built on it; `beta.messages` likewise. Mutates and
 * returns the client; the caller's results are unchanged.
 */
export function wrapAnthropic<C extends AnthropicLike>(
  client: C,
  opts: AnthropicWrapperOptions,
): C {
  const messages = client.messages as Record<string, unknown> | undefined;
  if (messages) wrapMethod(messages, 'create', opts, messagesReader);
  const beta = client.beta?.messages as Record<string, unknown> | undefined;
  if (beta) wrapMethod(beta, 'create', opts, messagesReader);
  return client;
}
