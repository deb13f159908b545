import { TokenwatchError } from '@tokenwatch/core';

/** SQLite error codes a caller may retry (the database was busy, or the disk had a hiccup). */
const RETRYABLE_SQLITE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|PROTOCOL)/;

/** A driver error as the store's error: retryable when SQLite says it may pass. */
export function storeError(err: unknown, what: string): TokenwatchError {
  if (err instanceof TokenwatchError) return err;
  const code = (err as { code?: unknown }).code;
  const retryable = typeof code === 'string' && RETRYABLE_SQLITE.test(code);
  return new TokenwatchError(
    retryable ? 'unavailable' : 'internal',
    `SQLite ${what} failed: ${String((err as Error).message ?? err)}`,
    {
      retryable,
      cause: err,
      context: { sqliteCode: code },
    },
  );
}
