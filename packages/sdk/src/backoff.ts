/**
 * "Full jitter" exponential backoff: a uniform delay in [0, min(cap, base·2^(attempt-1))), so
 * many clients that failed together do not retry together.
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  capMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}
