/** How long a health or readiness check waits for one dependency before calling it unreachable. */
export const HEALTH_CHECK_TIMEOUT_MS = 2_000;

/**
 * Runs one dependency check with a deadline: resolves to undefined when it succeeded, or to a
 * one-line problem (its error, or that it did not answer in time). Never rejects and never waits
 * longer than `timeoutMs`, so a health endpoint answers even while a dependency hangs.
 */
export async function checkWithin(
  name: string,
  check: () => Promise<unknown>,
  timeoutMs = HEALTH_CHECK_TIMEOUT_MS,
): Promise<string | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`${name} did not answer within ${timeoutMs} ms`), timeoutMs);
  });
  try {
    return await Promise.race([
      check().then(
        () => undefined,
        (err: unknown) =>
          `${name} unavailable: ${err instanceof Error ? err.message : String(err)}`,
      ),
      timedOut,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
