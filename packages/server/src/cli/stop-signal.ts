/**
 * SIGINT/SIGTERM as a promise, listened for from the moment a long-running command starts.
 *
 * Until a process listens for SIGTERM, the signal's default action ends it at once (no flush, no
 * cleanup, killed by a signal instead of exit code 0). A supervisor that stops a server right
 * after it reported ready used to hit that window: the handlers were installed only after the
 * startup banner. Listening first, a signal during startup is kept and acted on once the server
 * is up. The listeners go after the first signal, so a second one ends the process at once (a
 * stuck startup or shutdown can still be interrupted).
 */
export interface StopSignal {
  /** Resolves with the signal's name when the first one arrives. */
  readonly received: Promise<NodeJS.Signals>;
  /** Stops listening (the command ended another way, e.g. its startup failed). */
  dispose(): void;
}

export function listenForStop(
  signals: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'],
): StopSignal {
  let handler: ((signal: NodeJS.Signals) => void) | undefined;
  const received = new Promise<NodeJS.Signals>((resolve) => {
    handler = (signal) => {
      dispose();
      resolve(signal);
    };
  });
  const dispose = () => {
    for (const s of signals) if (handler) process.removeListener(s, handler);
  };
  for (const s of signals) if (handler) process.on(s, handler);
  return { received, dispose };
}
