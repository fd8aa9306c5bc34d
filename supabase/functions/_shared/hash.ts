/**
 * Hex SHA-256 of a string: how scrape tokens are stored (`queue_health.scrape_token.token_hash`)
 * and how queue-alert keys its pacing turns without storing a webhook URL.
 *
 * @module
 */

/** Hex SHA-256 of `text` (UTF-8). */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}
