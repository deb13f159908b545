import type { BudgetExceededError } from '../budget-exceeded-error.js';
import type { UsageRecord } from '../event.js';
import { createBudgetGuard, type GuardedCallCheck } from './budget-guard.js';
import { type CallEnd, finishRecord, type Tokens } from './call-outcome.js';
import { attribute, type IntegrationOptions, safeRecord } from './record-options.js';

/** How one SDK method's results carry usage. */
export interface UsageReader {
  provider: string;
  /** Usage of a non-streaming result; undefined when the result carries none. */
  fromResult(result: unknown): Tokens | undefined;
  /**
   * A fresh per-stream accumulator: feed it each event, read the usage at the end. With
   * `hideInjected`, `hide` says which events exist only because the wrapper asked for usage.
   */
  streamState(hideInjected: boolean): StreamState;
}

export interface StreamState {
  onEvent(event: unknown): void;
  /** What is known of the usage so far: the final report, or a partial count before it. */
  usage(): Tokens | undefined;
  /** Whether the provider's final usage report was seen. Default: `usage()` is defined. */
  reported?(): boolean;
  hide?(event: unknown): boolean;
}

interface StreamLike {
  iterator?: () => AsyncIterator<unknown>;
  [Symbol.asyncIterator]?: () => AsyncIterator<unknown>;
}

/**
 * Wraps a Stainless-style SDK stream (OpenAI, Anthropic) in place. Those streams keep their
 * source in an `iterator` factory that `[Symbol.asyncIterator]`, `tee()` and
 * `toReadableStream()` all go through, so patching it covers every way of consuming the stream.
 */
function tapStream(
  stream: StreamLike,
  newState: () => StreamState,
  done: (t: Tokens | undefined, end: CallEnd, reported: boolean) => void,
): void {
  const original = typeof stream.iterator === 'function' ? stream.iterator.bind(stream) : undefined;
  if (!original) {
    done(undefined, 'done', false); // a stream we cannot read: its usage is unknown
    return;
  }
  stream.iterator = () => {
    const it = original();
    const state = newState();
    let ended = false;
    const end = (how: CallEnd): void => {
      if (ended) return;
      ended = true;
      const usage = state.usage();
      done(usage, how, state.reported ? state.reported() : usage !== undefined);
    };
    return {
      async next(): Promise<IteratorResult<unknown>> {
        for (;;) {
          let r: IteratorResult<unknown>;
          try {
            r = await it.next();
          } catch (error) {
            end('failed');
            throw error;
          }
          if (r.done) {
            end('done');
            return r;
          }
          try {
            state.onEvent(r.value);
            if (state.hide?.(r.value)) continue; // an event only we asked for
          } catch {
            // never into the caller
          }
          return r;
        }
      },
      async return(value?: unknown): Promise<IteratorResult<unknown>> {
        end('abandoned');
        return it.return ? it.return(value) : { done: true, value: undefined };
      },
    };
  };
}

/**
 * Replaces `target[method]` with a function that calls the original and observes its result
 * without changing what the caller gets: the SDK's own promise object (with `withResponse()`
 * and friends) is returned as is; a stream is tapped in place before the caller sees it.
 */
export function wrapMethod(
  target: Record<string, unknown>,
  method: string,
  opts: IntegrationOptions,
  reader: UsageReader,
  prepare?: (params: Record<string, unknown>) => {
    params: Record<string, unknown>;
    hideInjected: boolean;
  },
): void {
  const original = target[method];
  if (typeof original !== 'function' || (original as { __tokenwatch?: true }).__tokenwatch) return;
  const guard = createBudgetGuard(opts.tokenwatch, opts.enforce);
  const wrapped = function (this: unknown, ...args: unknown[]): unknown {
    let params = args[0] as Record<string, unknown> | undefined;
    let hideInjected = false;
    let base: UsageRecord | undefined;
    try {
      if (params && typeof params === 'object' && prepare) {
        const p = prepare(params);
        params = p.params;
        hideInjected = p.hideInjected;
        args[0] = params;
      }
      base = attribute(opts, {
        modelId: String(params?.model ?? 'unknown'),
        provider: reader.provider,
      });
    } catch {
      base = undefined;
    }
    const call = (): unknown => {
      const t0 = performance.now();
      const result = (original as (...a: unknown[]) => unknown).apply(this, args);
      if (!base || !result || typeof (result as PromiseLike<unknown>).then !== 'function')
        return result;
      const b = base;
      const emit = (tokens: Tokens | undefined, end: CallEnd, reported: boolean): void => {
        safeRecord(opts, finishRecord(b, end, tokens, reported, performance.now() - t0));
      };
      const observe = (promise: PromiseLike<unknown>): void => {
        promise.then(
          (value) => {
            try {
              const isStream =
                params?.stream === true &&
                value !== null &&
                typeof value === 'object' &&
                'iterator' in value;
              if (isStream) {
                tapStream(value as StreamLike, () => reader.streamState(hideInjected), emit);
              } else {
                const tokens = reader.fromResult(value);
                emit(tokens, 'done', tokens !== undefined);
              }
            } catch {
              // never into the caller
            }
          },
          () => emit(undefined, 'failed', false),
        );
      };
      // Stainless SDK promises parse lazily: observe the parse the caller asks for, so a caller
      // who only wants `asResponse()` still gets an unread body.
      const lazy = result as { parse?: () => PromiseLike<unknown> };
      if (typeof lazy.parse === 'function') {
        const parse = lazy.parse.bind(result);
        let observed = false;
        lazy.parse = () => {
          const p = parse();
          if (!observed) {
            observed = true;
            observe(p);
          }
          return p;
        };
      } else {
        observe(result as PromiseLike<unknown>);
      }
      return result;
    };
    if (!guard || !base) return call();
    let checked: GuardedCallCheck;
    let verdict: true | BudgetExceededError | undefined;
    try {
      checked = guard.call(base, params);
      verdict = checked.peek();
    } catch {
      return call(); // a fault of the guard itself never blocks the call
    }
    // A cached answer keeps the SDK's own promise object (withResponse() and all); otherwise the
    // call starts once the collector has answered, through a stand-in for that object.
    if (verdict === true) return call();
    if (verdict) return deferredCall(Promise.reject(verdict));
    return deferredCall(checked.check().then(() => ({ value: call() })));
  };
  (wrapped as unknown as { __tokenwatch: true }).__tokenwatch = true;
  target[method] = wrapped;
}

/**
 * Stands in for a Stainless `APIPromise` (OpenAI, Anthropic) that exists only once `box`
 * resolves: awaiting it gives the call's result, and any of the SDK promise's methods
 * (`withResponse()`, `asResponse()`, `_thenUnwrap()`, …) are called on the real one when it
 * exists, returning a stand-in again. A denial rejects all of them with the guard's error.
 */
function deferredCall(box: Promise<{ value: unknown }>): unknown {
  box.catch(() => undefined); // the caller may attach its handlers later; never unhandled here
  let settled: Promise<unknown> | undefined;
  const result = () => {
    settled ??= box.then((b) => b.value);
    return settled;
  };
  return new Proxy(Object.create(null) as object, {
    get(_target, prop) {
      if (prop === 'then') {
        return (ok?: (v: unknown) => unknown, ko?: (e: unknown) => unknown) =>
          result().then(ok, ko);
      }
      if (prop === 'catch') return (ko?: (e: unknown) => unknown) => result().catch(ko);
      if (prop === 'finally') return (f?: () => void) => result().finally(f);
      if (prop === Symbol.toStringTag) return 'Promise';
      if (typeof prop === 'symbol') return undefined;
      return (...args: unknown[]) =>
        deferredCall(
          box.then((b) => ({
            value: (b.value as Record<string, (...a: unknown[]) => unknown>)[prop]?.(...args),
          })),
        );
    },
  });
}
