/**
 * Headless Chromium (the Debian package) through playwright-core, as the dashboard's browser test
 * and the benchmark's browser step drive it.
 *
 * @module
 */
import { chromium } from 'playwright-core';

/** Where Debian's chromium package puts the browser. */
export const CHROMIUM = '/usr/bin/chromium';

/** Headless, no sandbox (root in a VM), nothing that phones home. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Launches headless Chromium with a profile in `userDataDir` and one page of `viewport`. */
export function launchChromium(
  userDataDir: string,
  viewport: { width: number; height: number },
): ReturnType<typeof chromium.launchPersistentContext> {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS],
    viewport,
  });
}
