/**
 * Verifying (and, for tests and the local stack, minting) Supabase JWTs with `jose`.
 *
 * Supabase signs access tokens with the project's HS256 secret (`SUPABASE_JWT_SECRET`, what the
 * local stack uses) or, with asymmetric signing keys, publishes the public keys at
 * `<SUPABASE_URL>/auth/v1/.well-known/jwks.json`. The verifier accepts HS256 tokens against the
 * secret (or, without one, through a fallback such as Supabase Auth) and ES256/RS256/EdDSA tokens
 * against the JWKS, and nothing else (`alg: none` included). Every token must carry `exp`: one
 * without it would be valid forever, and Supabase issues none such (its API keys expire too).
 *
 * Key rotation: the remote JWKS is cached (10 min) and, when a token names a `kid` the cached set
 * lacks, fetched again at once unless it was fetched less than `jwksCooldownMs` (30 s) ago — that
 * is what jose's `createRemoteJWKSet` does, and `jwt_test.ts` proves it against a rotating server.
 * An inline JWKS (`SUPABASE_JWKS`) is tried first and an unknown `kid` falls through to the remote
 * set, so keys added after the function started still verify.
 * @module
 */
import {
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
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

/**
 * How to verify tokens. At least one of `secret`, `jwksUrl`, `jwks` or `hs256Fallback` must be
 * given.
 */
export interface JwtVerifierOptions {
  /** The HS256 secret (`SUPABASE_JWT_SECRET`). */
  secret?: string;
  /** Where the public keys are published, e.g. `<SUPABASE_URL>/auth/v1/.well-known/jwks.json`. */
  jwksUrl?: string | URL;
  /**
   * Keys known up front (`SUPABASE_JWKS`, or `createLocalJWKSet(...)` in tests). With `jwksUrl`
   * too, these are tried first and a token whose `kid` they lack is checked against the remote set.
   */
  jwks?: JWTVerifyGetKey;
  /**
   * Least time between two fetches of `jwksUrl` caused by an unknown `kid` (jose's
   * `cooldownDuration`); default 30 000 ms.
   */
  jwksCooldownMs?: number;
  /**
   * Verifies HS256 tokens when no `secret` is given (queue-health asks Supabase Auth). Without it,
   * HS256 tokens are refused when there is no secret.
   */
  hs256Fallback?: JwtVerifier;
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
 * Key resolution that tries `first` and, when it has no key for the token's `kid`, `then`.
 * Any other failure (a key that matches but does not verify, say) is final.
 */
export function fallThroughJwks(first: JWTVerifyGetKey, then: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (header, token) => {
    try {
      return await first(header, token);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey) return await then(header, token);
      throw error;
    }
  };
}

/**
 * Creates a verifier. It never throws: a forged, expired, malformed or wrongly signed token, one
 * without `exp`, or an unreachable JWKS, all resolve to `null`, so callers answer one generic 401.
 */
export function createJwtVerifier(options: JwtVerifierOptions): JwtVerifier {
  const secret = options.secret ? new TextEncoder().encode(options.secret) : undefined;
  const remote = options.jwksUrl
    ? createRemoteJWKSet(new URL(options.jwksUrl), {
      cooldownDuration: options.jwksCooldownMs ?? 30_000,
    })
    : undefined;
  const jwks = options.jwks && remote
    ? fallThroughJwks(options.jwks, remote)
    : options.jwks ?? remote;
  const hs256Fallback = secret ? undefined : options.hs256Fallback;
  if (!secret && !jwks && !hs256Fallback) {
    throw new Error("createJwtVerifier needs 'secret', 'jwksUrl', 'jwks' or 'hs256Fallback'");
  }
  const clockTolerance = options.clockToleranceSeconds ?? 5;
  return async (token: string) => {
    try {
      const { alg } = decodeProtectedHeader(token);
      // Checked before any key is used, so the fallback (Supabase Auth) never sees such a token.
      if (typeof decodeJwt(token).exp !== 'number') return null;
      if (alg === 'HS256' && secret) {
        const { payload } = await jwtVerify(token, secret, {
          algorithms: ['HS256'],
          clockTolerance,
          requiredClaims: ['exp'],
        });
        return payload as JwtClaims;
      }
      if (alg === 'HS256' && hs256Fallback) return await hs256Fallback(token);
      if (alg && ASYMMETRIC.includes(alg) && jwks) {
        const { payload } = await jwtVerify(token, jwks, {
          algorithms: ASYMMETRIC,
          clockTolerance,
          requiredClaims: ['exp'],
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
