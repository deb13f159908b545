import { createBudgetGuard } from '../shared/budget-guard.js';
import type { Tokens } from '../shared/call-outcome.js';
import { type CallEnd, finishRecord } from '../shared/call-outcome.js';
import { attribute, type IntegrationOptions, safeRecord, tok } from '../shared/record-options.js';

export type BedrockMiddlewareOptions = IntegrationOptions;

/** Structural slice of the AWS SDK v3 middleware stack (no runtime import of the SDK). */
export interface MiddlewareStackLike {
  add(
    middleware: (
      next: (args: unknown) => Promise<unknown>,
      context: { commandName?: string },
    ) => (args: unknown) => Promise<unknown>,
    options: { step: 'initialize'; name: string; override?: boolean },
  ): void;
}

/** Any AWS SDK v3 client (its `middlewareStack.add` is overloaded per step, so only the name is checked). */
export interface BedrockClientLike {
  middlewareStack: { add: (...args: never[]) => unknown };
}

interface TokenUsageLike {
  inputTokens?: number;
  outputTokens?: number;
  cacheReadInputTokens?: number;
  cacheWriteInputTokens?: number;
}

/** Bedrock's `inputTokens` already EXCLUDES cache reads and writes: no subtraction. */
function fromTokenUsage(u: TokenUsageLike): Tokens {
  return {
    inputTokens: tok(u.inputTokens),
    outputTokens: tok(u.outputTokens),
    cacheReadTokens: tok(u.cacheReadInputTokens),
    cacheWriteTokens: tok(u.cacheWriteInputTokens),
  };
}

/** `amazon-bedrock-invocationMetrics` from the last chunk of InvokeModelWithResponseStream. */
function fromInvocationMetrics(m: Record<string, unknown>): Tokens {
  return {
    inputTokens: tok(m.inputTokenCount),
    outputTokens: tok(m.outputTokenCount),
    cacheReadTokens: tok(m.cacheReadInputTokenCount),
    cacheWriteTokens: tok(m.cacheWriteInputTokenCount),
  };
}

const decoder = new TextDecoder();

interface ChunkUsage {
  tokens?: Tokens;
  /** Anthropic-schema usage seen on message_start / message_delta, used if metrics are absent. */
  anthropic?: Record<string, unknown>;
  /** Whether a final count arrived (the metrics, or Anthropic's message_delta). */
  reported?: boolean;
}

function inspectChunk(bytes: Uint8Array | undefined, state: ChunkUsage): void {
  if (!bytes) return;
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(decoder.decode(bytes)) as Record<string, unknown>;
  } catch {
    return;
  }
  const metrics = body['amazon-bedrock-invocationMetrics'];
  if (metrics && typeof metrics === 'object') {
    state.tokens = fromInvocationMetrics(metrics as Record<string, unknown>);
    state.reported = true;
    return;
  }
  // Anthropic Messages schema: message_start carries input/cache, message_delta the cumulative
  // output. Overwrite, never add.
  const message = body.message as { usage?: Record<string, unknown> } | undefined;
  const usage = (body.type === 'message_start' ? message?.usage : body.usage) as
    | Record<string, unknown>
    | undefined;
  if (usage && (body.type === 'message_start' || body.type === 'message_delta')) {
    state.anthropic = { ...state.anthropic };
    for (const [k, v] of Object.entries(usage))
      if (v !== null && v !== undefined) state.anthropic[k] = v;
    if (body.type === 'message_delta') state.reported = true;
  }
}

function anthropicTokens(u: Record<string, unknown>): Tokens {
  return {
    inputTokens: tok(u.input_tokens),
    outputTokens: tok(u.output_tokens),
    cacheReadTokens: tok(u.cache_read_input_tokens),
    cacheWriteTokens: tok(u.cache_creation_input_tokens),
  };
}

/** AWS request ids are UUIDs; the same check the collector's invocation-log reader makes. */
const AWS_REQUEST_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/;

/**
 * The event id of the call: `bedrock:<AWS request id>`, the id the collector gives the same call
 * when it reads Bedrock's model invocation log, so a call seen both ways counts once. Undefined
 * (the SDK then makes a UUIDv7) when the response or error carries no request id.
 */
export function bedrockRequestEventId(outputOrError: unknown): string | undefined {
  const requestId = (outputOrError as { $metadata?: { requestId?: unknown } } | undefined)
    ?.$metadata?.requestId;
  return typeof requestId === 'string' && AWS_REQUEST_ID.test(requestId)
    ? `bedrock:${requestId}`
    : undefined;
}

function header(response: unknown, name: string): string | undefined {
  const headers = (response as { headers?: Record<string, string | undefined> } | undefined)
    ?.headers;
  if (!headers) return undefined;
  return headers[name] ?? headers[name.toLowerCase()];
}

/**
 * Wraps an async iterable so `onItem` sees each item and `onEnd` runs exactly once: with
 * `undefined` after the last item, with the error if iteration failed, with `'early'` when the
 * consumer stopped before the end.
 */
function tap<T>(
  source: AsyncIterable<T>,
  onItem: (item: T) => void,
  onEnd: (outcome: undefined | 'early' | { error: unknown }) => void,
): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      const it = source[Symbol.asyncIterator]();
      let ended = false;
      const end = (o: undefined | 'early' | { error: unknown }): void => {
        if (ended) return;
        ended = true;
        try {
          onEnd(o);
        } catch {
          // never into the caller
        }
      };
      return {
        async next(): Promise<IteratorResult<T>> {
          let r: IteratorResult<T>;
          try {
            r = await it.next();
          } catch (error) {
            end({ error });
            throw error;
          }
          if (r.done) end(undefined);
          else {
            try {
              onItem(r.value);
            } catch {
              // never into the caller
            }
          }
          return r;
        },
        async return(value?: unknown): Promise<IteratorResult<T>> {
          end('early');
          return it.return ? it.return(value) : { done: true, value: undefined as never };
        },
      };
    },
  };
}

/**
 * The middleware itself: one usage event per logical call (it sits in the initialize step, so
 * the SDK's own retries are inside it). Covers Converse, ConverseStream (the `metadata` event),
 * InvokeModel (the `x-amzn-bedrock-*-token-count` headers the SDK does not expose) and
 * InvokeModelWithResponseStream (`amazon-bedrock-invocationMetrics` in the last chunk).
 */
export function tokenwatchBedrockMiddleware(opts: BedrockMiddlewareOptions) {
  const guard = createBudgetGuard(opts.tokenwatch, opts.enforce);
  return (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) =>
    async (args: unknown): Promise<unknown> => {
      const command = context.commandName;
      if (
        command !== 'ConverseCommand' &&
        command !== 'ConverseStreamCommand' &&
        command !== 'InvokeModelCommand' &&
        command !== 'InvokeModelWithResponseStreamCommand'
      ) {
        return next(args);
      }
      const t0 = performance.now();
      const modelId = String(
        (args as { input?: { modelId?: unknown } }).input?.modelId ?? 'unknown',
      );
      // The context is read when the call starts: a stream consumed later keeps its caller.
      const base0 = attribute(opts, { modelId, provider: 'bedrock' });
      // Before the SDK's retry, signing and sending: a denied call never leaves the process.
      if (guard) await guard.call(base0, (args as { input?: unknown }).input).check();
      let id: string | undefined;
      const emit = (tokens: Tokens | undefined, end: CallEnd, reported: boolean): void => {
        if (id !== undefined) base0.id = id;
        safeRecord(opts, finishRecord(base0, end, tokens, reported, performance.now() - t0));
      };
      const endOf = (o: undefined | 'early' | { error: unknown }): CallEnd =>
        o === undefined ? 'done' : o === 'early' ? 'abandoned' : 'failed';
      let result: { response?: unknown; output?: Record<string, unknown> };
      try {
        result = (await next(args)) as typeof result;
      } catch (error) {
        id = bedrockRequestEventId(error);
        emit(undefined, 'failed', false);
        throw error;
      }
      id = bedrockRequestEventId(result.output);
      try {
        const out = result.output ?? {};
        if (command === 'ConverseCommand') {
          const usage = out.usage as TokenUsageLike | undefined;
          emit(usage && fromTokenUsage(usage), 'done', usage !== undefined);
        } else if (command === 'InvokeModelCommand') {
          const r = result.response;
          const input = header(r, 'x-amzn-bedrock-input-token-count');
          const output = header(r, 'x-amzn-bedrock-output-token-count');
          emit(
            {
              inputTokens: tok(input),
              outputTokens: tok(output),
              cacheReadTokens: tok(header(r, 'x-amzn-bedrock-cache-read-input-token-count')),
              cacheWriteTokens: tok(header(r, 'x-amzn-bedrock-cache-write-input-token-count')),
            },
            'done',
            input !== undefined || output !== undefined, // a proxy may strip them
          );
        } else if (command === 'ConverseStreamCommand' && out.stream) {
          let usage: Tokens | undefined;
          out.stream = tap(
            out.stream as AsyncIterable<{ metadata?: { usage?: TokenUsageLike } }>,
            (ev) => {
              if (ev.metadata?.usage) usage = fromTokenUsage(ev.metadata.usage);
            },
            (o) => emit(usage, endOf(o), usage !== undefined),
          );
        } else if (command === 'InvokeModelWithResponseStreamCommand' && out.body) {
          const state: ChunkUsage = {};
          out.body = tap(
            out.body as AsyncIterable<{ chunk?: { bytes?: Uint8Array } }>,
            (ev) => inspectChunk(ev.chunk?.bytes, state),
            (o) => {
              const tokens =
                state.tokens ?? (state.anthropic ? anthropicTokens(state.anthropic) : undefined);
              emit(tokens, endOf(o), state.reported === true);
            },
          );
        } else {
          emit(undefined, 'done', false); // a result without its stream: usage unknown
        }
      } catch {
        // never into the caller
      }
      return result;
    };
}

/**
 * Adds usage capture to a `BedrockRuntimeClient` (the app's own, or the one given to LangChain's
 * `ChatBedrockConverse({ client })`; use either this or the LangChain handler, not both, or the
 * calls count twice). Returns the client.
 */
export function instrumentBedrock<C extends BedrockClientLike>(
  client: C,
  opts: BedrockMiddlewareOptions,
): C {
  (client.middlewareStack as unknown as MiddlewareStackLike).add(
    tokenwatchBedrockMiddleware(opts),
    {
      step: 'initialize',
      name: 'tokenwatchUsage',
      override: true,
    },
  );
  return client;
}
