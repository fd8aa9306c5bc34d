/**
 * Verifying (and, for tests and the local stack, minting) Supabase JWTs with `jose`.
 *
 * Supabase signs access tokens with the project's HS256 secret (`SUPABASE_JWT_SECRET`, what the
 * local stack uses) or, with asymmetric signing keys, publishes the public keys at
 * `<SUPABASE_URL>/auth/v1/.well-known/jwks.json`. The verifier accepts HS256 tokens against the
 * secret and ES256/RS256/EdDSA tokens against the JWKS, and nothing else (`alg: none` included).
 * @module
 */
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
  SignJWT,
} from 'jose';

/** Claims of a verified token. `role` is what Postgres role the caller acts as. */
export interface JwtClaims extends JWTPayload {
  /** `anon`, `authenticated`, `service_role`, ... */
  role?: string;
  /** The user's id for `authenticated` tokens. */
  sub?: string;
  [claim: string]: unknown;
}

/** How to verify tokens. At least one of `secret`, `jwksUrl` or `jwks` must be given. */
export interface JwtVerifierOptions {
  /** The HS256 secret (`SUPABASE_JWT_SECRET`). */
  secret?: string;
  /** Where the public keys are published, e.g. `<SUPABASE_URL>/auth/v1/.well-known/jwks.json`. */
  jwksUrl?: string | URL;
  /** A key resolver to use instead of `jwksUrl` (tests pass `createLocalJWKSet(...)`). */
  jwks?: JWTVerifyGetKey;
  /** Seconds of clock skew tolerated on `exp`/`nbf`; default 5. */
  clockToleranceSeconds?: number;
}

/** Verifies a compact JWT; resolves to its claims, or `null` for any invalid token. */
export type JwtVerifier = (token: string) => Promise<JwtClaims | null>;

const ASYMMETRIC = ['ES256', 'RS256', 'EdDSA'];

/** The JWKS URL Supabase Auth publishes for a project URL. */
export function jwksUrlFor(supabaseUrl: string): URL {
  return new URL('/auth/v1/.well-known/jwks.json', supabaseUrl);
}

/**
 * Creates a verifier. It never throws: a forged, expired, malformed or wrongly signed token, or
 * an unreachable JWKS, all resolve to `null`, so callers answer one generic 401.
 */
export function createJwtVerifier(options: JwtVerifierOptions): JwtVerifier {
  const secret = options.secret ? new TextEncoder().encode(options.secret) : undefined;
  const jwks = options.jwks ??
    (options.jwksUrl ? createRemoteJWKSet(new URL(options.jwksUrl)) : undefined);
  if (!secret && !jwks) {
    throw new Error("createJwtVerifier needs 'secret' or 'jwksUrl'");
  }
  const clockTolerance = options.clockToleranceSeconds ?? 5;
  return async (token: string) => {
    try {
      const { alg } = decodeProtectedHeader(token);
      if (alg === 'HS256' && secret) {
        const { payload } = await jwtVerify(token, secret, {
          algorithms: ['HS256'],
          clockTolerance,
        });
        return payload as JwtClaims;
      }
      if (alg && ASYMMETRIC.includes(alg) && jwks) {
        const { payload } = await jwtVerify(token, jwks, {
          algorithms: ASYMMETRIC,
          clockTolerance,
        });
        return payload as JwtClaims;
      }
      return null;
    } catch {
      return null;
    }
  };
}

/**
 * Signs an HS256 token, as Supabase does for its anon/service keys and user sessions. For tests
 * and the local stack; production tokens come from Supabase Auth.
 * @param claims e.g. `{role: 'authenticated', sub: '…'}`.
 * @param secret the HS256 secret.
 * @param expiresIn seconds from now, or a jose time span ('1h'); default one hour.
 */
export function signJwt(
  claims: JwtClaims,
  secret: string,
  expiresIn: number | string = 3600,
): Promise<string> {
  const exp = typeof expiresIn === 'number' ? Math.floor(Date.now() / 1000) + expiresIn : expiresIn;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(secret));
}
