import type {
  BudgetCheckOptions,
  CheckOptions,
  CheckRequest,
  CheckResult,
} from './budget-check.js';
import type { DropReason, TokenwatchError } from './errors.js';
import type { UsageEvent, UsageRecord } from './event.js';
import type { HttpTransportOptions } from './http-transport.js';
import type { Transport } from './transport.js';

// The client's public surface: its options, its stats and what it can do (client.ts builds it).

export interface DropInfo {
  reason: DropReason;
  count: number;
  /** The dropped events (empty for `invalid`, which never became an event). */
  events: readonly UsageEvent[];
  error?: TokenwatchError;
}

export interface TokenwatchOptions {
  /** Collector base URL (`/v1/events` is appended). Required unless `transport` is given. */
  endpoint?: string;
  /** Ingest API key. Required unless `transport` is given. */
  apiKey?: string;
  /** Default `appId` of every event (omit when the key is bound to an app). */
  appId?: string;
  /** Default `userId` when a call names none. Default `"anonymous"`: the contract requires one. */
  userId?: string;
  /** Tags added to every event (an event's own tags win). */
  tags?: Record<string, string>;
  /** Ship through another transport (e.g. `@tokenwatch/sdk/sqs`) instead of HTTP. */
  transport?: Transport;
  /** Custom fetch for the HTTP transport (default `globalThis.fetch`). */
  fetch?: HttpTransportOptions['fetch'];
  /** Gzip request bodies above 16 KiB where CompressionStream exists. Default `gzip`. */
  compression?: 'gzip' | 'none';
  /** Events per request, at most 1000. Default 500. */
  maxBatchSize?: number;
  /** A partial batch is sent at most this long after its first event. Default 1000 ms. */
  flushIntervalMs?: number;
  /**
   * Most events held in memory, queued and in flight together. Beyond it the drop policy
   * applies, so a dead collector costs bounded memory. Default 10 000.
   */
  maxBufferSize?: number;
  /** Which event to lose when the buffer is full. Default `drop-oldest`. */
  dropPolicy?: 'drop-oldest' | 'drop-newest';
  /** Requests in flight at once. Default 2. */
  maxConcurrency?: number;
  /** Tries per batch (first send included) before it is dropped. Default 10. */
  maxAttempts?: number;
  /** Backoff base and cap (full jitter). Defaults 250 ms and 30 s. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** A Retry-After above this is clamped. Default 300 s. */
  maxRetryAfterMs?: number;
  /** Per-request timeout. Default 10 s. */
  requestTimeoutMs?: number;
  /** Drain the buffer when the process is about to exit (Node `beforeExit`). Default true. */
  flushOnExit?: boolean;
  /**
   * How long the exit drain may hold the process, and `shutdown()`'s default deadline. Default
   * 2000 ms. Requests in flight never hold a finished process themselves (Node ≥ 20.16, default
   * fetch): it exits at most this long after its own work ends, whatever the collector does.
   */
  exitTimeoutMs?: number;
  /** The budget check (`check()` and the integrations' `enforce`): timeout, cache, fail mode. */
  check?: BudgetCheckOptions;
  /** Record nothing and send nothing (tests, local dev); `check()` allows everything. */
  disabled?: boolean;
  onDrop?: (info: DropInfo) => void;
  onError?: (error: TokenwatchError) => void;
  /** Injected clock and randomness, for tests. */
  now?: () => number;
  random?: () => number;
}

export interface TokenwatchStats {
  /** Events the collector made durable (duplicates included). */
  sent: number;
  /** Of `sent`, those the collector had already seen (a retry after a lost response). */
  duplicates: number;
  /** Events lost, by any reason. */
  dropped: number;
  droppedByReason: Record<DropReason, number>;
  /** Send attempts that will be tried again. */
  retried: number;
  /** Events queued or in flight now. */
  pending: number;
}

export interface FlushOptions {
  /** Resolve `false` if not everything settled by then. Default: wait for every retry. */
  timeoutMs?: number;
}

export interface Tokenwatch {
  /** Queues one usage event. Synchronous, O(1), never throws, never waits for the network. */
  record(event: UsageRecord): void;
  /**
   * Sends everything recorded so far; resolves `true` once each of those events is accepted or
   * dropped, `false` on timeout. Never rejects. Await it before a Lambda handler returns.
   */
  flush(opts?: FlushOptions): Promise<boolean>;
  /**
   * Flushes (deadline: `timeoutMs`, default `exitTimeoutMs`), then drops what is left and stops.
   * Never rejects, and resolves by then whatever the collector does.
   */
  shutdown(opts?: FlushOptions): Promise<void>;
  stats(): TokenwatchStats;
  /**
   * Asks the collector whether a call may go ahead (`POST /v1/check`), with a short timeout, a
   * per-(user, app, model) cache and a fail mode. Never rejects: a network problem answers per
   * the fail mode; `allowed` is false only when an enforcing rule says so, or failing closed.
   */
  check(req: CheckRequest, opts?: CheckOptions): Promise<CheckResult>;
  /** What `check()` would answer from its cache right now, or undefined. No I/O. */
  checkCached(req: CheckRequest, opts?: CheckOptions): CheckResult | undefined;
}
