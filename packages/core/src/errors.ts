/**
 * The one error type of tokenwatch. Every failure that crosses a module boundary is a
 * `TokenwatchError` with a stable `code`; the HTTP layer maps codes to statuses in one file
 * (server/src/http/error-mapping.ts), consumers decide ack / retry / dead-letter on `retryable`.
 */
export type ErrorCode =
  | 'invalid_body' // the request body is not usable at all (not JSON, wrong shape)
  | 'invalid_event' // one or more events break the contract; details name index, field, reason
  | 'invalid_query' // a query parameter is unknown or malformed
  | 'invalid_config' // configuration file or environment is wrong
  | 'invalid_argument' // an API or CLI argument is wrong
  | 'unauthenticated' // no key, or an unknown / revoked key
  | 'forbidden' // the key is valid but its role or app binding does not allow this
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'overloaded' // backpressure: retry after `retryAfterSeconds`
  | 'unavailable' // a dependency (store, queue) failed; retry later
  | 'internal';

/** A single reason a value was rejected: which event, which field, why. */
export interface ValidationIssue {
  /** Position of the event in the request batch, when the request had several. */
  index?: number;
  /** Dotted path of the field, e.g. `tags.team` or `inputTokens`; `''` for the whole value. */
  field: string;
  reason: string;
}

export interface ErrorOptions {
  retryable?: boolean;
  details?: ValidationIssue[];
  retryAfterSeconds?: number;
  cause?: unknown;
  context?: Record<string, unknown>;
}

const RETRYABLE_BY_DEFAULT: ReadonlySet<ErrorCode> = new Set(['overloaded', 'unavailable']);

export class TokenwatchError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: ValidationIssue[];
  readonly retryAfterSeconds: number | undefined;
  readonly context: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TokenwatchError';
    this.code = code;
    this.retryable = options.retryable ?? RETRYABLE_BY_DEFAULT.has(code);
    this.details = options.details ?? [];
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.context = options.context ?? {};
  }
}

export function isTokenwatchError(value: unknown): value is TokenwatchError {
  return value instanceof TokenwatchError;
}
