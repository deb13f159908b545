import { BaseCallbackHandler } from '@langchain/core/callbacks/base';
import type { Serialized } from '@langchain/core/load/serializable';
import type { BaseMessage } from '@langchain/core/messages';
import type { LLMResult } from '@langchain/core/outputs';
import type { UsageRecord } from '../event.js';
import { unrefTimer } from '../exit-hook.js';
import { type BudgetGuard, createBudgetGuard } from '../shared/budget-guard.js';
import { type CallEnd, finishRecord, type Tokens } from '../shared/call-outcome.js';
import { attribute, type IntegrationOptions, safeRecord, tok } from '../shared/record-options.js';
import type { UsageContext } from '../shared/usage-context.js';

export interface TokenwatchCallbackHandlerOptions extends IntegrationOptions {
  /**
   * LangChain tells a callback handler nothing when the caller stops reading a stream (a
   * `break` out of `.stream()`): such a run never ends. A run silent this long (since its start
   * or its last chunk) is recorded as abandoned: `status: 'no_usage'`, what was known of its
   * usage, the tag `tokenwatch.stream: 'abandoned'`. If it ends after all, its end reuses that
   * record's id, so it is never counted twice (the collector lists it as a conflict). Default
   * 15 minutes (longer than providers let a call run); 0 turns it off.
   */
  abandonedAfterMs?: number;
}

interface RunInfo {
  t0: number;
  modelId: string;
  provider: string | undefined;
  context: UsageContext;
  /** When the run started or a chunk last arrived (performance.now()). */
  lastSeen: number;
  /** Anthropic streams: per-class maximum over the chunks' usage (see handleLLMNewToken). */
  streamMax?: Required<Tokens>;
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
const DEFAULT_ABANDONED_AFTER_MS = 15 * 60_000;
/** Runs recorded as abandoned whose late end is still expected (their event ids). */
const MAX_SWEPT_RUNS = 10_000;

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
      // ChatOpenAI leaves a usage_metadata without counts when the response had no usage.
      if (!u || (typeof u.input_tokens !== 'number' && typeof u.output_tokens !== 'number')) {
        continue;
      }
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
  if (tu && (typeof tu.promptTokens === 'number' || typeof tu.completionTokens === 'number')) {
    return { inputTokens: tok(tu.promptTokens), outputTokens: tok(tu.completionTokens) };
  }
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
  private readonly opts: TokenwatchCallbackHandlerOptions;
  private readonly runs = new Map<string, RunInfo>();
  /** Runs recorded as abandoned → the id that record was sent with, and the run. */
  private readonly swept = new Map<string, { id: string; run: RunInfo }>();
  private readonly abandonedAfterMs: number;
  private readonly guard: BudgetGuard | undefined;
  private sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(opts: TokenwatchCallbackHandlerOptions) {
    // With enforce, the start handler's BudgetExceededError must reach the caller: LangChain
    // swallows a handler's error unless raiseError is set (it then also logs it).
    super({ _awaitHandler: true, raiseError: Boolean(opts.enforce) });
    this.opts = opts;
    this.abandonedAfterMs = opts.abandonedAfterMs ?? DEFAULT_ABANDONED_AFTER_MS;
    this.guard = createBudgetGuard(opts.tokenwatch, opts.enforce);
  }

  /** With enforce: the budget check before the model is called; a denied run is not kept. */
  private guardRun(runId: string, params: unknown): void | Promise<void> {
    const run = this.runs.get(runId);
    if (!this.guard || !run) return;
    const guard = this.guard;
    const base = attribute(this.opts, { modelId: run.modelId }, run.context);
    if (run.provider) base.provider = run.provider;
    const checked = guard.call(base, params);
    const verdict = checked.peek();
    if (verdict === true) return;
    const refuse = (error: unknown): never => {
      this.runs.delete(runId);
      throw error;
    };
    if (verdict) refuse(verdict);
    return checked.check().catch(refuse);
  }

  /** Records a run with how it ended; `id` fixes the event id (default: the client's UUIDv7). */
  private finish(run: RunInfo, end: CallEnd, usage: Tokens | undefined, id?: string): void {
    const base: UsageRecord = { modelId: run.modelId };
    if (run.provider) base.provider = run.provider;
    if (id !== undefined) base.id = id;
    const record = finishRecord(base, end, usage, usage !== undefined, performance.now() - run.t0);
    safeRecord(this.opts, attribute(this.opts, record, run.context));
  }

  /** Records the runs silent since `olderThan` as abandoned. */
  private sweep(olderThan: number): void {
    for (const [runId, run] of this.runs) {
      if (run.lastSeen > olderThan) continue;
      this.runs.delete(runId);
      this.abandon(runId, run);
    }
    if (this.runs.size === 0 && this.sweeper !== undefined) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private abandon(runId: string, run: RunInfo): void {
    const id = `lc-${runId}`.slice(0, 128);
    this.finish(run, 'abandoned', run.streamMax, id);
    if (this.swept.size >= MAX_SWEPT_RUNS) {
      const oldest = this.swept.keys().next().value;
      if (oldest !== undefined) this.swept.delete(oldest);
    }
    this.swept.set(runId, { id, run });
  }

  /**
   * A sweep timer while runs are open; it never holds the process, and it stops itself at the
   * first sweep that finds no run (so starting and ending runs costs no timer each).
   */
  private armSweeper(): void {
    if (this.sweeper !== undefined || this.abandonedAfterMs <= 0 || this.runs.size === 0) return;
    const every = Math.max(10, Math.min(this.abandonedAfterMs, 60_000));
    this.sweeper = setInterval(() => this.sweep(performance.now() - this.abandonedAfterMs), every);
    unrefTimer(this.sweeper);
  }

  private start(
    llm: Serialized | undefined,
    runId: string,
    extra: Record<string, unknown> | undefined,
    metadata: Record<string, unknown> | undefined,
  ): void {
    try {
      if (this.runs.size >= MAX_OPEN_RUNS) {
        const [oldest, run] = this.runs.entries().next().value ?? [];
        if (oldest !== undefined && run !== undefined) {
          this.runs.delete(oldest);
          this.abandon(oldest, run); // most likely a stream left open
        }
      }
      const lsProvider = str(metadata?.ls_provider);
      const t0 = performance.now();
      this.runs.set(runId, {
        t0,
        lastSeen: t0,
        modelId: modelFrom(llm as { kwargs?: Record<string, unknown> }, extra, metadata),
        provider: lsProvider === undefined ? undefined : (PROVIDERS[lsProvider] ?? lsProvider),
        context: contextFrom(metadata),
      });
      this.armSweeper();
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
  ): void | Promise<void> {
    this.start(llm, runId, extraParams, metadata);
    return this.guardRun(runId, extraParams?.invocation_params);
  }

  override handleLLMStart(
    llm: Serialized,
    _prompts: string[],
    runId: string,
    _parentRunId?: string,
    extraParams?: Record<string, unknown>,
    _tags?: string[],
    metadata?: Record<string, unknown>,
  ): void | Promise<void> {
    this.start(llm, runId, extraParams, metadata);
    return this.guardRun(runId, extraParams?.invocation_params);
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
    const run = this.runs.get(runId);
    if (!run) return;
    run.lastSeen = performance.now();
    try {
      const u = (fields?.chunk as { message?: { usage_metadata?: UsageMetadataLike } } | undefined)
        ?.message?.usage_metadata;
      if (!u || run.provider !== 'anthropic') return;
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
    } catch {
      // never into LangChain (with enforce, raiseError would pass it to the caller)
    }
  }

  override handleLLMEnd(
    output: LLMResult,
    runId: string,
    _parentRunId?: string,
    _tags?: string[],
    extraParams?: Record<string, unknown>,
  ): void {
    const ended = this.end(runId);
    if (!ended || extraParams?.cached === true) return; // LLM-cache hit: no provider usage
    try {
      // No usage (`streamUsage: false`, a proxy that drops it): no_usage, never a free success.
      const usage = ended.run.streamMax ?? usageFrom(output as LLMResultLike);
      this.finish(ended.run, 'done', usage, ended.id);
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
    const ended = this.end(runId);
    if (!ended || extraParams?.cached === true) return;
    try {
      this.finish(ended.run, 'failed', ended.run.streamMax, ended.id);
    } catch {
      // never into LangChain
    }
  }

  /**
   * The run that ends now: an open one, or one already recorded as abandoned, whose late end
   * reuses that record's id. The collector keeps the first payload of an id, so the late end is
   * a visible conflict (GET /v1/conflicts), never a second count of the same call.
   */
  private end(runId: string): { run: RunInfo; id?: string } | undefined {
    const run = this.runs.get(runId);
    if (run) {
      this.runs.delete(runId);
      return { run };
    }
    const swept = this.swept.get(runId);
    if (!swept) return undefined;
    this.swept.delete(runId);
    return swept;
  }
}
