interface ProcessLike {
  on(event: 'beforeExit', listener: () => void): unknown;
  off?(event: 'beforeExit', listener: () => void): unknown;
}

interface TimerLike {
  unref?(): void;
}

/**
 * Runs `drain` when the runtime is about to exit because it has nothing left to do (Node's
 * `beforeExit`; not on `process.exit()` or signals, where no async work can run). While it
 * drains, a timer holds the process for at most `timeoutMs`. Runtimes without `process`
 * (edge, browsers) get a no-op: call `flush()` yourself there.
 * Returns the function that unregisters the hook.
 */
export function onBeforeExit(
  drain: (timeoutMs: number) => Promise<unknown>,
  timeoutMs: number,
): () => void {
  const proc = (globalThis as { process?: ProcessLike }).process;
  if (!proc || typeof proc.on !== 'function') return () => undefined;
  let running = false;
  const listener = (): void => {
    if (running) return;
    running = true;
    const hold = setTimeout(() => undefined, timeoutMs + 100); // ref'd: keeps the loop alive
    drain(timeoutMs)
      .catch(() => undefined)
      .finally(() => {
        clearTimeout(hold);
        running = false;
      });
  };
  proc.on('beforeExit', listener);
  return () => {
    proc.off?.('beforeExit', listener);
  };
}

/** Lets a timer not keep the process alive, where the runtime has that notion. */
export function unrefTimer(t: unknown): void {
  (t as TimerLike | undefined)?.unref?.();
}
