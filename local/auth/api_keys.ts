/**
 * The API gateway's check of a project's API keys, shared by the local Auth and Realtime
 * stand-ins (local/auth/auth_local.ts, local/dashboard/realtime_local.ts).
 *
 * A hosted project has up to four kinds of key (Supabase docs, "Understanding API keys",
 * supabase/supabase `apps/docs/content/guides/api/api-keys.mdx`):
 * - the publishable key `sb_publishable_…` and the legacy `anon` JWT: the `anon` Postgres role;
 * - secret keys `sb_secret_…` and the legacy `service_role` JWT: the `service_role` role.
 *
 * The new keys are not JWTs. The gateway takes them in the `apikey` header (or `?apikey=`), and it
 * refuses a secret key sent by a browser — it tells one by its `User-Agent` — with 401 whatever
 * the request (the legacy `service_role` JWT has no such check).
 * @module
 */

/** What a key is: the new opaque keys, or the legacy JWT-based ones. */
export type ApiKeyKind = 'publishable' | 'secret' | 'legacy_anon' | 'legacy_service_role';

/** One of the project's API keys. */
export interface ApiKey {
  /** The key as the client sends it. */
  value: string;
  kind: ApiKeyKind;
}

/** The Postgres role a key stands for. */
export function roleOfKey(kind: ApiKeyKind): 'anon' | 'service_role' {
  return kind === 'publishable' || kind === 'legacy_anon' ? 'anon' : 'service_role';
}

/** Whether a key is one of the new opaque ones (not a JWT). */
export function isOpaqueKey(kind: ApiKeyKind): boolean {
  return kind === 'publishable' || kind === 'secret';
}

/**
 * Whether the request comes from a web browser, judged by its `User-Agent` as the gateway does:
 * every browser's starts with `Mozilla/`; curl, Deno, Node, pg_net and server SDKs' do not.
 * (Supabase does not publish its exact rule; this is the common denominator.)
 */
export function isBrowser(req: Request): boolean {
  return /^Mozilla\//.test(req.headers.get('user-agent') ?? '');
}

/** The gateway's answer to a request's `apikey`: the key it matched, or a 401 body. */
export type KeyCheck =
  | { key: ApiKey; refusal?: undefined }
  | { key?: undefined; refusal: { message: string; hint?: string } };

/**
 * Checks the `apikey` a request presents against the project's keys, as the API gateway does
 * before a request reaches Auth or Realtime.
 * @param presented the `apikey` header or query parameter (null when neither is there).
 */
export function checkApiKey(
  req: Request,
  presented: string | null,
  keys: readonly ApiKey[],
): KeyCheck {
  if (!presented) {
    return {
      refusal: {
        message: 'No API key found in request',
        hint: 'No `apikey` request header or url param was found.',
      },
    };
  }
  const key = keys.find((k) => k.value === presented);
  if (!key) {
    return {
      refusal: {
        message: 'Invalid API key',
        hint: 'Double check your Supabase `anon` or `service_role` API key.',
      },
    };
  }
  if (key.kind === 'secret' && isBrowser(req)) {
    return { refusal: { message: 'Forbidden use of secret API key in browser' } };
  }
  return { key };
}
