/**
 * Request bodies read with a size limit: neither function needs more than a few hundred bytes, so
 * anything past {@link MAX_BODY_BYTES} is refused (HTTP 413) without being held in memory. The
 * limit is enforced on the bytes as they stream in; `Content-Length` only lets an honest oversized
 * request be refused before reading.
 * @module
 */

/** The largest request body either function reads: 64 KiB. */
export const MAX_BODY_BYTES = 64 * 1024;

/** A body larger than the limit; answered 413. */
export class BodyTooLarge extends Error {
  /** @param limit the limit in bytes. */
  constructor(readonly limit: number) {
    super(`request body must be at most ${limit} bytes`);
    this.name = 'BodyTooLarge';
  }
}

/**
 * Reads `req`'s body as UTF-8 text, at most `limit` bytes; '' when there is none.
 * @throws {BodyTooLarge} as soon as the declared or streamed size passes `limit` (the rest of the
 * stream is cancelled, not read).
 */
export async function readBodyLimited(req: Request, limit = MAX_BODY_BYTES): Promise<string> {
  const declared = req.headers.get('content-length');
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > limit) {
    await req.body?.cancel().catch(() => {});
    throw new BodyTooLarge(limit);
  }
  if (!req.body) return '';
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw new BodyTooLarge(limit);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all);
}
