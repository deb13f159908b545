import { TokenwatchError } from '@tokenwatch/core';

/**
 * SQLSTATE classes and codes a caller may retry: connection trouble (08), a server shutting down
 * or starting (57P01–57P03), serialization failures and deadlocks (40001, 40P01), resources
 * (53), lock timeouts (55P03), and the cluster being in recovery (25006 read-only after failover).
 */
const RETRYABLE_SQLSTATE = /^(08|53|57P0[1-3]|40001|40P01|55P03|25006)/;
/** Node socket errors: the server went away or is not there (yet). */
const RETRYABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

export function pgCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Deadlock or serialization failure: the whole transaction may simply be run again. */
export function isTransientConflict(err: unknown): boolean {
  const code = pgCode(err);
  return code === '40P01' || code === '40001';
}

export function isRetryablePgError(err: unknown): boolean {
  const code = pgCode(err);
  if (code !== undefined && (RETRYABLE_SQLSTATE.test(code) || RETRYABLE_ERRNO.has(code)))
    return true;
  const message = String((err as Error | null)?.message ?? '');
  // node-postgres reports a dropped socket or a pool that cannot connect in plain messages.
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|terminating connection/i.test(
    message,
  );
}

/** Maps a driver error to the one error type: `unavailable` (retryable) or `internal`. */
export function pgError(err: unknown, what: string): TokenwatchError {
  if (err instanceof TokenwatchError) return err;
  const retryable = isRetryablePgError(err);
  return new TokenwatchError(
    retryable ? 'unavailable' : 'internal',
    `PostgreSQL ${what} failed: ${String((err as Error)?.message ?? err)}`,
    {
      retryable,
      cause: err,
      context: { sqlState: pgCode(err) },
      ...(retryable ? { retryAfterSeconds: 1 } : {}),
    },
  );
}
