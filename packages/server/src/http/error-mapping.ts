import { type ErrorCode, TokenwatchError } from '@tokenwatch/core';

/** The only place that knows which HTTP status each error code means. */
const STATUS: Record<ErrorCode, number> = {
  invalid_body: 400,
  invalid_event: 400,
  invalid_query: 400,
  invalid_config: 500,
  invalid_argument: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  overloaded: 503,
  unavailable: 503,
  internal: 500,
};

export interface ErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: {
    error: {
      code: ErrorCode;
      message: string;
      details?: TokenwatchError['details'];
      requestId: string;
    };
  };
}

/** Renders any thrown value as an HTTP error; unknown errors become a 500 without internals. */
export function toErrorResponse(err: unknown, requestId: string): ErrorResponse {
  const e =
    err instanceof TokenwatchError
      ? err
      : new TokenwatchError('internal', 'Internal error; it has been logged.', { cause: err });
  const headers: Record<string, string> = {};
  if (e.retryAfterSeconds !== undefined)
    headers['retry-after'] = String(Math.ceil(e.retryAfterSeconds));
  else if (STATUS[e.code] === 503) headers['retry-after'] = '1';
  if (e.code === 'unauthenticated') headers['www-authenticate'] = 'Bearer';
  return {
    status: STATUS[e.code],
    headers,
    body: {
      error: {
        code: e.code,
        message: e.message,
        ...(e.details.length > 0 ? { details: e.details } : {}),
        requestId,
      },
    },
  };
}
