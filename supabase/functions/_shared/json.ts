/**
 * The JSON responses both functions answer with.
 * @module
 */

/**
 * A response with `body` as JSON, `content-type: application/json; charset=utf-8`, and `headers`
 * (which come after the content type, so they may replace it).
 *
 * @example
 * ```ts
 * return json(405, { error: 'method_not_allowed' }, { allow: 'POST, GET' });
 * ```
 */
export function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });
}
