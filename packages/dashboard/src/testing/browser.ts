import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';

/**
 * Shared pieces of the dashboard's browser tests: Debian's Chromium, the built dashboard, and a
 * wait for "everything shown is up to date". Not a test file itself (test files import it).
 */

export const CHROMIUM = '/usr/bin/chromium';
export const REQUIRED = process.env.TOKENWATCH_REQUIRE_SERVICES === '1';
export const HAVE_CHROMIUM = existsSync(CHROMIUM);
export const DIST = fileURLToPath(new URL('../../dist/index.html', import.meta.url));
export const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export function warnIfSkipped(what: string): void {
  if (!HAVE_CHROMIUM && !REQUIRED) {
    console.warn(
      `${what} SKIPPED: ${CHROMIUM} not found (apt-get install -y chromium); set TOKENWATCH_REQUIRE_SERVICES=1 to fail instead`,
    );
  }
}

export async function launchChromium(): Promise<Browser> {
  if (!HAVE_CHROMIUM) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  if (!existsSync(DIST)) throw new Error(`${DIST} is missing: build first (npm run build)`);
  return chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
}

/** Waits until no refresh is running or due (live notices coalesce into one trailing refresh). */
export async function settle(page: Page): Promise<void> {
  await page.waitForTimeout(150);
  await page.waitForSelector('body[data-idle="true"]', { timeout: 15_000 });
}

/** In-app navigation (the app routes on popstate): no reload. */
export async function goInApp(page: Page, path: string): Promise<void> {
  await page.evaluate((to) => {
    history.pushState(null, '', to);
    dispatchEvent(new PopStateEvent('popstate'));
  }, path);
}
