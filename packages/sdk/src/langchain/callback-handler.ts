import { BaseCallbackHandler } from '@langchain/core/callbacks/base';
import type { Serialized } from '@langchain/core/load/serializable';
import type { BaseMessage } from '@langchain/core/messages';
import type { LLMResult } from '@langchain/core/outputs';
import type { UsageRecord } from '../event.js';
import { attribute, type IntegrationOptions, safeRecord, tok } from '../shared/record-options.js';
import type { UsageContext } from '../shared/usage-context.js';

export type TokenwatchCallbackHandlerOptions = IntegrationOptions;

interface RunInfo {
  t0: number;
  modelId: string;
  provider: string | undefined;
  context: UsageContext;
  /** Anthropic streams: per-class maximum over the chunks' usage (see handleLLMNewToken). */
  streamMax?: Required<
    Pick<UsageRecord, 'inputTokens' | 'outputTokens' | 'cacheReadTokens' | 'cacheWriteTokens'>
  >;
}

interface UsageMetadataLike {
  input_tokens?: number;
  output_tokens?: number;
  input_token_details?: { cache_read?: number; cache_creation?: number };
}

interface LLMResultLike {
  generations?: { message?: { usage_metadata?: UsageMetadataLike } }[][];
  llmOutput?: Record<string, unknown> | undefined;
}

/** LangChain's `ls_provider` → the contract's provider names. */
const PROVIDERS: Record<string, string> = {
  amazon_bedrock: 'bedrock',
  bedrock: 'bedrock',
  openai: 'openai',
  azure: 'azure-openai',
  anthropic: 'anthropic',
};

// A run that never ends (a crashed stream) must not leak: keep at most this many open.
const MAX_OPEN_RUNS = 10_000;

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function contextFrom(metadata: Record<string, unknown> | undefined): UsageContext {
  if (!metadata) return {};
  const ctx: UsageContext = {};
  const userId = str(metadata.userId) ?? str(metadata.user_id);
  const appId = str(metadata.appId) ?? str(metadata.app_id);
  if (userId) ctx.userId = userId;
  if (appId) ctx.appId = appId;
  const tags = metadata.tags;
  if (tags && typeof tags === 'object' && !Array.isArray(tags)) {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(tags)) if (typeof v === 'string') out[k] = v;
    ctx.tags = out;
  }
  return ctx;
}

function modelFrom(
  llm: { kwargs?: Record<string, unknown> } | undefined,
  extra: Record<string, unknown> | undefined,
  metadata: Record<string, unknown> | undefined,
): string {
  const params = extra?.invocation_params as Record<string, unknown> | undefined;
  return (
    str(metadata?.ls_model_name) ??
    str(params?.model) ??
    str(params?.modelId) ??
    str(llm?.kwargs?.model) ??
    str(llm?.kwargs?.model_name) ??
    'unknown'
  );
}

/** Reads usage the way every chat model agrees on: the message's `usage_metadata`, never `llmOutput`. */
function usageFrom(output: LLMResultLike): Partial<UsageRecord> | undefined {
  for (const gens of output.generations ?? []) {
    for (const g of gens ?? []) {
      const u = g?.message?.usage_metadata;
      if (!u) continue;
      const cacheRead = tok(u.input_token_details?.cache_read);
      const cacheWrite = tok(u.input_token_details?.cache_creation);
      // usage_metadata.input_tokens is the SUM of all input classes, for every provider.
      return {
        inputTokens: Math.max(0, tok(u.input_tokens) - cacheRead - cacheWrite),
        outputTokens: tok(u.output_tokens),
        cacheReadTokens: cacheRead,
        cacheWriteTokens: cacheWrite,
      };
    }
  }
  // Plain LLMs (no messages): OpenAI-style tokenUsage, prompt tokens include cached ones.
  const tu = output.llmOutput?.tokenUsage as
    | { promptTokens?: number; completionTokens?: number }
    | undefined;
  if (tu) return { inputTokens: tok(tu.promptTokens), outputTokens: tok(tu.completionTokens) };
  return undefined;
}

/**
 * LangChain.js callback handler: one usage event per chat-model (or LLM) run, streaming included.
 * User, app and tags come from the invoke config's `metadata` (`userId`, `appId`, `tags`), which
 * LangChain passes down to nested runs; else from `withUsageContext`; else from these options.
 * LLM-cache hits are not provider usage and are not recorded. The handler is awaited and only
 * enqueues, so it neither delays nor reorders LangChain's other callbacks.
 */
export class TokenwatchCallbackHandler extends BaseCallbackHandler {
  name = 'tokenwatch';
  private readonly opts: IntegrationOptions;
  private readonly runs = new Map<string, RunInfo>();

  constructor(opts: TokenwatchCallbackHandlerOptions) {
    super({ _awaitHandler: true });
    this.opts = opts;
  }

  private start(
    llm: Serialized | undefined,
    runId: string,
    extra: Record<string, unknown> | undefined,
    metadata: Record<string, unknown> | undefined,
  ): void {
    try {
      if (this.runs.size >= MAX_OPEN_RUNS) {
        const oldest = this.runs.keys().next().value;
        if (oldest !== undefined) this.runs.delete(oldest);
      }
      const lsProvider = str(metadata?.ls_provider);
      this.runs.set(runId, {
        t0: performance.now(),
        modelId: modelFrom(llm as { kwargs?: Record<string, unknown> }, extra, metadata),
        provider: lsProvider === undefined ? undefined : (PROVIDERS[lsProvider] ?? lsProvider),
        context: contextFrom(metadata),
      });
    } catch {
      // never into LangChain
    }
  }

  override handleChatModelStart(
    llm: Serialized,
    _messages: BaseMessage[][],
    runId: string,
    _parentRunId?: string,
    extraParams?: Record<string, unknown>,
    _tags?: string[],
    metadata?: Record<string, unknown>,
  ): void {
    this.start(llm, runId, extraParams, metadata);
  }

  override handleLLMStart(
    llm: Serialized,
    _prompts: string[],
    runId: string,
    _parentRunId?: string,
    extraParams?: Record<string, unknown>,
    _tags?: string[],
    metadata?: Record<string, unknown>,
  ): void {
    this.start(llm, runId, extraParams, metadata);
  }

  /**
   * LangChain sums the chunks' usage when streaming. For Anthropic that counts the output twice
   * over: message_start carries an initial output count and message_delta the CUMULATIVE one,
   * so the merged total exceeds Anthropic's figure. Each class is monotonic over the chunks, so
   * its maximum is the true total. Only chunks with usage (two per stream) do any work here.
   */
  override handleLLMNewToken(
    _token: string,
    _idx: unknown,
    runId: string,
    _parentRunId?: string,
    _tags?: string[],
    fields?: { chunk?: unknown },
  ): void {
    const u = (fields?.chunk as { message?: { usage_metadata?: UsageMetadataLike } } | undefined)
      ?.message?.usage_metadata;
    if (!u) return;
    const run = this.runs.get(runId);
    if (run?.provider !== 'anthropic') return;
    const cacheRead = tok(u.input_token_details?.cache_read);
    const cacheWrite = tok(u.input_token_details?.cache_creation);
    const m = run.streamMax ?? {
      inputTokens: 0,
      outputTokens: 0,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
    };
    m.inputTokens = Math.max(m.inputTokens, tok(u.input_tokens) - cacheRead - cacheWrite);
    m.outputTokens = Math.max(m.outputTokens, tok(u.output_tokens));
    m.cacheReadTokens = Math.max(m.cacheReadTokens, cacheRead);
    m.cacheWriteTokens = Math.max(m.cacheWriteTokens, cacheWrite);
    run.streamMax = m;
  }

  override handleLLMEnd(
    output: LLMResult,
    runId: string,
    _parentRunId?: string,
    _tags?: string[],
    extraParams?: Record<string, unknown>,
  ): void {
    const run = this.runs.get(runId);
    this.runs.delete(runId);
    if (!run || extraParams?.cached === true) return; // LLM-cache hit: no provider usage
    try {
      const record: UsageRecord = {
        modelId: run.modelId,
        latencyMs: performance.now() - run.t0,
        status: 'ok',
        ...(run.streamMax ?? usageFrom(output as LLMResultLike)),
      };
      if (run.provider) record.provider = run.provider;
      safeRecord(this.opts, attribute(this.opts, record, run.context));
    } catch {
      // never into LangChain
    }
  }

  override handleLLMError(
    _err: unknown,
    runId: string,
    _parentRunId?: string,
    _tags?: string[],
    extraParams?: Record<string, unknown>,
  ): void {
    const run = this.runs.get(runId);
    this.runs.delete(runId);
    if (!run || extraParams?.cached === true) return;
    try {
      const record: UsageRecord = {
        modelId: run.modelId,
        latencyMs: performance.now() - run.t0,
        status: 'error',
      };
      if (run.provider) record.provider = run.provider;
      safeRecord(this.opts, attribute(this.opts, record, run.context));
    } catch {
      // never into LangChain
    }
  }
}
