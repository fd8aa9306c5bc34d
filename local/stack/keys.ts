/**
 * The local API keys, the four a hosted project that has both kinds offers:
 * - the publishable key `sb_publishable_…` and the secret key `sb_secret_…` — opaque strings, not
 *   JWTs. They are the Supabase CLI's fixed local keys (supabase/cli `pkg/config/apikeys.go`, the
 *   same in the CLI 2.117.0 binary), so they are the same on every machine and every run, and
 *   equal to what `supabase start` / `supabase status` print;
 * - the legacy anon and service_role keys: HS256 JWTs minted from the local JWT secret with fixed
 *   claims (so they are the same on every machine, like `supabase start`'s).
 */
import { SignJWT } from 'jose';
import { JWT_SECRET } from './config.ts';
import type { ApiKey } from '../auth/api_keys.ts';

/** The local publishable key (anon role): the Supabase CLI's `defaultPublishableKey`. */
export const LOCAL_PUBLISHABLE_KEY = 'sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH';
/** The local secret key (service_role): the Supabase CLI's `defaultSecretKey`. */
export const LOCAL_SECRET_KEY = 'sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz';

const ISSUED_AT = 1641769200; // fixed: the keys stay stable between runs
const EXPIRES_AT = 1983812996;

/** Mints a JWT with the given role (and optional extra claims) signed with the local secret. */
export async function mintJwt(
  claims: Record<string, unknown>,
  opts: { secret?: string; expiresAt?: number; issuedAt?: number } = {},
): Promise<string> {
  const key = new TextEncoder().encode(opts.secret ?? JWT_SECRET);
  return await new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer('supabase-demo')
    .setIssuedAt(opts.issuedAt ?? ISSUED_AT)
    .setExpirationTime(opts.expiresAt ?? EXPIRES_AT)
    .sign(key);
}

/** The API keys of the local stack. */
export interface LocalKeys {
  /** `sb_publishable_…`: the anon role; what a browser uses. */
  publishable: string;
  /** `sb_secret_…`: the service role; never from a browser. */
  secret: string;
  /** Legacy: the anon JWT. */
  anon: string;
  /** Legacy: the service_role JWT. */
  serviceRole: string;
}

/** The publishable, secret, legacy anon and legacy service-role keys of the local stack. */
export async function localKeys(): Promise<LocalKeys> {
  return {
    publishable: LOCAL_PUBLISHABLE_KEY,
    secret: LOCAL_SECRET_KEY,
    anon: await mintJwt({ role: 'anon' }),
    serviceRole: await mintJwt({ role: 'service_role' }),
  };
}

/** The keys as the API gateway knows them (local/auth/api_keys.ts), for the stand-ins. */
export function gatewayKeys(keys: LocalKeys): ApiKey[] {
  return [
    { value: keys.publishable, kind: 'publishable' },
    { value: keys.secret, kind: 'secret' },
    { value: keys.anon, kind: 'legacy_anon' },
    { value: keys.serviceRole, kind: 'legacy_service_role' },
  ];
}

/** An access token for a user, as GoTrue would issue it (sub, role authenticated, email). */
export async function userAccessToken(userId: string, email: string, ttlSeconds = 86_400 * 30) {
  const now = Math.floor(Date.now() / 1000);
  return await mintJwt(
    { sub: userId, role: 'authenticated', email, aud: 'authenticated' },
    { issuedAt: now, expiresAt: now + ttlSeconds },
  );
}
