import { it } from 'vitest';
import { SERVICES_REQUIRED, TEST_NATS_URL, TEST_PG_URL } from './services.js';

/**
 * Registers the suite when the services are up; otherwise one skipped test that says why, or,
 * under TOKENWATCH_REQUIRE_SERVICES=1, one failing test.
 */
export function whenServices(
  available: Record<string, boolean>,
  register: () => void,
  label = 'scale-out',
): void {
  const missing = Object.entries(available)
    .filter(([, up]) => !up)
    .map(([name]) => name);
  if (missing.length === 0) {
    register();
    return;
  }
  const why = `${label}: ${missing.join(' and ')} unreachable (${TEST_PG_URL}, ${TEST_NATS_URL})`;
  if (SERVICES_REQUIRED) {
    it(`${why} — required by TOKENWATCH_REQUIRE_SERVICES=1`, () => {
      throw new Error(`${why}; start them (see DEVELOPERS.md)`);
    });
  } else {
    it.skip(`${why}; skipped (set TOKENWATCH_REQUIRE_SERVICES=1 to fail instead)`, () => {});
  }
}
