/**
 * Why an event left the SDK without being accepted by the collector. Every drop is counted in
 * `stats().dropped` and reported to `onDrop`.
 */
export type DropReason =
  /** The bounded buffer was full (collector down or too slow); the drop policy chose it. */
  | 'buffer_full'
  /** The event broke the v1 contract before it was sent (the SDK checks what the server checks). */
  | 'invalid'
  /** The collector refused it with 400: resending the same bytes can never succeed. */
  | 'rejected'
  /** The collector refused the API key (401/403). */
  | 'unauthorized'
  /** A single event larger than the request size limit (413 even alone). */
  | 'too_large'
  /** Still unsent after `maxAttempts` tries. */
  | 'retries_exhausted'
  /** `record()` after `shutdown()`, or still pending when the shutdown deadline passed. */
  | 'shutdown';

export type TokenwatchErrorCode =
  | 'network'
  | 'timeout'
  | 'http_status'
  | 'rejected'
  | 'unauthorized'
  | 'too_large'
  | 'invalid_event'
  | 'no_fetch'
  | 'transport'
  | 'hook_failed'
  | 'check_failed';

/**
 * The one error type the SDK reports (through `onError`; it is never thrown into the host).
 * `retryable` says whether the SDK will try the same batch again.
 */
export class TokenwatchError extends Error {
  readonly code: TokenwatchErrorCode;
  readonly retryable: boolean;
  readonly status: number | undefined;
  readonly details: unknown;

  constructor(
    code: TokenwatchErrorCode,
    message: string,
    opts: { retryable?: boolean; status?: number; details?: unknown; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TokenwatchError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.status = opts.status;
    this.details = opts.details;
  }
}
