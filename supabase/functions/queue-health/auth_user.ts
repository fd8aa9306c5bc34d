/**
 * Verifying HS256 user tokens without the HS256 secret, by asking Supabase Auth.
 *
 * Hosted projects that still sign user sessions with the legacy HS256 secret do not give Edge
 * Functions that secret (and the JWKS never holds HMAC keys). Supabase Auth can tell:
 * `GET <SUPABASE_URL>/auth/v1/user` with `Authorization: Bearer <token>` (and an `apikey` for the
 * API gateway) answers 200 with the user when the token is valid, its signature, expiry, user and
 * session included, and 4xx otherwise. Only after a 200 whose user `id` is the token's `sub` are
 * the token's own claims (role, sub, …) used, decoded with jose's `decodeJwt`.
 *
 * Positive answers are cached until the token's `exp` (never past it), refusals for a few seconds
 * only, in a bounded map; an expired token is refused without a call.
 * @module
 */
import { decodeJwt } from 'jose';
import { z } from 'zod';
import type { JwtClaims, JwtVerifier } from '../_shared/jwt.ts';
import type { Logger } from '../_shared/log.ts';

/** How to reach Supabase Auth and how long to remember its answers. */
export interface AuthUserVerifierOptions {
  /** The project URL (`SUPABASE_URL`); Auth is at `<url>/auth/v1/user`. */
  supabaseUrl: string;
  /** A publishable or anon key, sent as `apikey` (the hosted API gateway requires one). */
  apikey?: string;
  /** HTTP; defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Clock in ms; defaults to `Date.now`. */
  now?: () => number;
  /** Most tokens remembered at once (answers of either kind); default 10 000. */
  maxEntries?: number;
  /** How long a refusal or an unreachable Auth is remembered; default 5 000 ms. */
  failureTtlMs?: number;
  /** How long to wait for Auth; default 5 000 ms. */
  timeoutMs?: number;
  /** Where to say that Auth could not be asked. */
  logger?: Logger;
}

const userSchema = z.object({ id: z.string().min(1) }).loose();

interface Entry {
  claims: JwtClaims | null;
  /** ms since the epoch after which the entry is no longer used. */
  until: number;
}

/**
 * Creates a {@link JwtVerifier} that asks Supabase Auth about each token it has not seen (or whose
 * refusal is older than `failureTtlMs`). Concurrent requests with the same token share one call.
 * It never throws; anything but a confirmed, unexpired token resolves to null.
 */
export function createAuthUserVerifier(options: AuthUserVerifierOptions): JwtVerifier {
  const endpoint = new URL('/auth/v1/user', options.supabaseUrl).href;
  const fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
  const now = options.now ?? Date.now;
  const maxEntries = options.maxEntries ?? 10_000;
  const failureTtlMs = options.failureTtlMs ?? 5_000;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const cache = new Map<string, Entry>();
  const inFlight = new Map<string, Promise<JwtClaims | null>>();

  const remember = (token: string, entry: Entry) => {
    cache.delete(token);
    while (cache.size >= maxEntries) {
      // Maps iterate in insertion order: the first key is the oldest answer.
      cache.delete(cache.keys().next().value!);
    }
    cache.set(token, entry);
  };

  const ask = async (token: string, claims: JwtClaims, expMs: number) => {
    let confirmed = false;
    try {
      const headers: Record<string, string> = { authorization: `Bearer ${token}` };
      if (options.apikey) headers.apikey = options.apikey;
      const res = await fetchFn(endpoint, {
        headers,
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (res.status === 200) {
        const user = userSchema.safeParse(await res.json().catch(() => null));
        confirmed = user.success && user.data.id === claims.sub;
      } else {
        await res.body?.cancel();
        if (res.status >= 500) {
          options.logger?.warn('auth_user_unavailable', { http_status: res.status });
        }
      }
    } catch (error) {
      options.logger?.warn('auth_user_unavailable', {
        error: error instanceof Error ? error.name : typeof error,
      });
    }
    const until = confirmed ? expMs : Math.min(now() + failureTtlMs, expMs);
    remember(token, { claims: confirmed ? claims : null, until });
    return confirmed ? claims : null;
  };

  return async (token: string) => {
    let claims: JwtClaims;
    try {
      claims = decodeJwt(token) as JwtClaims;
    } catch {
      return null;
    }
    if (typeof claims.exp !== 'number') return null;
    const expMs = claims.exp * 1000;
    const t = now();
    if (expMs <= t) {
      cache.delete(token);
      return null;
    }
    const hit = cache.get(token);
    if (hit && hit.until > t) return hit.claims;
    if (hit) cache.delete(token);
    let pending = inFlight.get(token);
    if (!pending) {
      pending = ask(token, claims, expMs).finally(() => inFlight.delete(token));
      inFlight.set(token, pending);
    }
    return await pending;
  };
}
