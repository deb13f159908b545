import { fileURLToPath } from 'node:url';

/** The build of `shifted-clock-preload.ts`, from the sources and from the build alike. */
const SHIFTED_CLOCK_PRELOAD = fileURLToPath(
  new URL('../../dist/testing/shifted-clock-preload.js', import.meta.url),
);

/**
 * The environment that starts a server process with its clock `shiftMs` away from the real one
 * (see shifted-clock-preload.ts): for behaviour only reachable at certain dates.
 */
export function shiftedClockEnv(shiftMs: number): Record<string, string> {
  const inherited = process.env.NODE_OPTIONS ?? '';
  return {
    NODE_OPTIONS: `${inherited} --import ${JSON.stringify(SHIFTED_CLOCK_PRELOAD)}`.trim(),
    TW_TEST_CLOCK_SHIFT_MS: String(Math.round(shiftMs)),
  };
}
