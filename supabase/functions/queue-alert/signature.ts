/**
 * Webhook signatures, Standard Webhooks style: the signed content is
 * `"{webhook-id}.{webhook-timestamp}.{body}"`, signed with HMAC-SHA256, and sent as
 * `webhook-signature: v1,<base64 signature>`.
 *
 * The key is the UTF-8 bytes of the channel's `signing_secret`; a secret of the form
 * `whsec_<base64>` is base64-decoded first, as Standard Webhooks libraries do, so either kind of
 * secret verifies with those libraries and with the snippet in docs.
 * @module
 */

const encoder = new TextEncoder();

/** Returns the HMAC key bytes for a signing secret. */
export function signingKeyBytes(secret: string): Uint8Array {
  if (secret.startsWith('whsec_')) {
    const bin = atob(secret.slice('whsec_'.length));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }
  return encoder.encode(secret);
}

function toBase64(bytes: ArrayBuffer): string {
  let bin = '';
  for (const b of new Uint8Array(bytes)) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** The three headers of a signed webhook request. */
export interface SignatureHeaders {
  /** The notification id: stable across retries, so receivers can deduplicate. */
  'webhook-id': string;
  /** Unix seconds when this attempt was signed. */
  'webhook-timestamp': string;
  /** `v1,<base64 HMAC-SHA256>`. */
  'webhook-signature': string;
}

/**
 * Signs one delivery attempt.
 * @param secret the channel's signing secret.
 * @param id the notification id.
 * @param timestampS unix seconds.
 * @param body the exact request body.
 */
export async function signWebhook(
  secret: string,
  id: string,
  timestampS: number,
  body: string,
): Promise<SignatureHeaders> {
  const key = await crypto.subtle.importKey(
    'raw',
    signingKeyBytes(secret) as BufferSource,
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  const ts = String(Math.floor(timestampS));
  const mac = await crypto.subtle.sign('HMAC', key, encoder.encode(`${id}.${ts}.${body}`));
  return {
    'webhook-id': id,
    'webhook-timestamp': ts,
    'webhook-signature': `v1,${toBase64(mac)}`,
  };
}
