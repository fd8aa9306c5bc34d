/**
 * When to try a failed delivery again: `Retry-After` when the receiver said, otherwise exponential
 * backoff with full jitter.
 * @module
 */

/** Backoff parameters. */
export interface BackoffOptions {
  /** Delay ceiling of the first retry, in ms. Default 30 s. */
  baseMs?: number;
  /** Largest delay, in ms. Default 1 h. */
  capMs?: number;
  /** Smallest delay, in ms, so a retry never fires in the same instant. Default 1 s. */
  minMs?: number;
}

/**
 * Full-jitter exponential backoff: a uniform delay in `[minMs, min(capMs, baseMs·2^(attempt−1))]`.
 * @param attempt the attempt that just failed, 1-based.
 * @param random a `[0, 1)` source (injected in tests).
 */
export function backoffMs(
  attempt: number,
  random: () => number,
  { baseMs = 30_000, capMs = 3_600_000, minMs = 1_000 }: BackoffOptions = {},
): number {
  const n = Math.max(1, Math.floor(attempt));
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(n - 1, 40));
  return Math.max(minMs, Math.floor(random() * ceiling));
}

/** Longest Retry-After honoured: one day (Resend's daily quota resets within that). */
export const RETRY_AFTER_MAX_MS = 86_400_000;

/**
 * Parses a `Retry-After` header: delay-seconds (RFC 9110 says an integer; decimals are accepted)
 * or an HTTP date. Returns the delay in ms from `now`, clamped to `[0, RETRY_AFTER_MAX_MS]`, or
 * null when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now: Date): number | null {
  if (value === null || value === undefined) return null;
  const v = value.trim();
  if (v === '') return null;
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(v)) {
    ms = Number(v) * 1000;
  } else if (/^[a-z]{3},? /i.test(v)) {
    const at = Date.parse(v);
    if (Number.isNaN(at)) return null;
    ms = at - now.getTime();
  } else {
    return null;
  }
  return Math.min(RETRY_AFTER_MAX_MS, Math.max(0, Math.round(ms)));
}
