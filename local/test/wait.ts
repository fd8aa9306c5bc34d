/**
 * Waiting in tests: a pause, and polling until something shows up, with a time limit.
 *
 * @module
 */

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise<void>((r) => setTimeout(r, ms));
}

/**
 * Calls `probe` every 50 ms until it returns something other than null, and returns that.
 *
 * @throws Error naming `what` once `ms` milliseconds have passed without it.
 * @example
 * ```ts
 * const got = await waitFor('the Slack message', 10_000, () => receivers.slack()[0] ?? null);
 * ```
 */
export async function waitFor<T>(
  what: string,
  ms: number,
  probe: () => T | null | Promise<T | null>,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}
