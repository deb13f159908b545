import type { CheckRequest, CheckResult } from './budget-check.js';
import type { Tokenwatch, TokenwatchStats } from './client-options.js';
import type { DropReason } from './errors.js';

/** The client of `disabled: true`: records and sends nothing, and allows every call. */
export const disabledClient: Tokenwatch = {
  record: () => undefined,
  flush: async () => true,
  shutdown: async () => undefined,
  stats: emptyStats,
  check: async (req) => disabledCheck(req),
  checkCached: (req) => disabledCheck(req),
};

/** A disabled client checks nothing and allows everything. */
function disabledCheck(req: CheckRequest): CheckResult {
  return {
    allowed: true,
    subject: { userId: req.userId || 'anonymous', appId: req.appId },
    rules: [],
    source: 'fail-open',
  };
}

/** The stats of a client that has done nothing yet (a fresh object each call). */
export function emptyStats(): TokenwatchStats {
  return {
    sent: 0,
    duplicates: 0,
    dropped: 0,
    droppedByReason: emptyReasons(),
    retried: 0,
    pending: 0,
  };
}

/** Zero drops of every reason. */
function emptyReasons(): Record<DropReason, number> {
  return {
    buffer_full: 0,
    invalid: 0,
    rejected: 0,
    unauthorized: 0,
    too_large: 0,
    retries_exhausted: 0,
    shutdown: 0,
  };
}
