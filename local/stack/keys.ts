/**
 * The local API keys: HS256 JWTs for the anon and service roles, minted from the local JWT
 * secret with fixed claims (so they are the same on every machine, like `supabase start`'s).
 */
import { SignJWT } from 'jose';
import { JWT_SECRET } from './config.ts';

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

/** The anon and service-role keys of the local stack. */
export async function localKeys(): Promise<{ anon: string; serviceRole: string }> {
  return {
    anon: await mintJwt({ role: 'anon' }),
    serviceRole: await mintJwt({ role: 'service_role' }),
  };
}

/** An access token for a user, as GoTrue would issue it (sub, role authenticated, email). */
export async function userAccessToken(userId: string, email: string, ttlSeconds = 86_400 * 30) {
  const now = Math.floor(Date.now() / 1000);
  return await mintJwt(
    { sub: userId, role: 'authenticated', email, aud: 'authenticated' },
    { issuedAt: now, expiresAt: now + ttlSeconds },
  );
}
