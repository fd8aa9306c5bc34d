/**
 * Who is calling: a Supabase JWT (user, anon or service role), or a per-project Prometheus scrape
 * token. Everything that is not one of those resolves to `null`, answered with one generic 401.
 * @module
 */
import type { JwtClaims, JwtVerifier } from '../_shared/jwt.ts';
import { sha256Hex } from '../_shared/hash.ts';

/** Postgres roles a request can run as. */
export type DbRole = 'anon' | 'authenticated' | 'service_role';

/** A verified caller. */
export type Caller =
  | { kind: 'jwt'; role: DbRole; claims: JwtClaims }
  | { kind: 'scrape_token'; role: 'service_role'; projectId: string };

/** What {@link resolveCaller} needs. */
export interface AuthDeps {
  /** Verifies a JWT; null when invalid. */
  verifyJwt: JwtVerifier;
  /** The project of a valid scrape token, by the token's hex SHA-256; null when invalid. */
  lookupScrapeToken: (tokenHashHex: string) => Promise<string | null>;
  /** API keys accepted as they are, with the role each stands for. */
  staticKeys?: Map<string, DbRole>;
}

/** Scrape tokens look like `qhst_` + 64 hex digits. */
export const SCRAPE_TOKEN = /^qhst_[0-9a-f]{64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ROLES: readonly string[] = ['anon', 'authenticated', 'service_role'];

/** Hex SHA-256 of a token, as `queue_health.scrape_token.token_hash` stores it. */
export { sha256Hex };

function bearer(header: string | null): string | null | undefined {
  if (header === null) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1] : null;
}

async function sameKey(a: string, b: string): Promise<boolean> {
  // Compare digests, so the time taken says nothing about how much of a key matched.
  const [x, y] = await Promise.all([sha256Hex(a), sha256Hex(b)]);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x.charCodeAt(i) ^ y.charCodeAt(i);
  return diff === 0;
}

async function fromJwt(token: string, deps: AuthDeps): Promise<Caller | null> {
  for (const [key, role] of deps.staticKeys ?? []) {
    if (await sameKey(token, key)) return { kind: 'jwt', role, claims: { role } };
  }
  const claims = await deps.verifyJwt(token);
  if (!claims || typeof claims.role !== 'string' || !ROLES.includes(claims.role)) return null;
  // auth.uid() casts `sub` to uuid: a user token without one would only fail later, in SQL.
  if (
    claims.role === 'authenticated' && !(typeof claims.sub === 'string' && UUID.test(claims.sub))
  ) {
    return null;
  }
  return { kind: 'jwt', role: claims.role as DbRole, claims };
}

/**
 * Resolves the caller of `req`, as Supabase's gateway would:
 * - `Authorization: Bearer <jwt>` — the JWT's `role` claim decides the Postgres role;
 * - `Authorization: Bearer qhst_…` or `?token=qhst_…` — a scrape token for one project;
 * - only an `apikey` header (a JWT such as the anon key) — acts as the bearer.
 * Returns null for anything else.
 */
export async function resolveCaller(
  req: Request,
  url: URL,
  deps: AuthDeps,
): Promise<Caller | null> {
  const fromHeader = bearer(req.headers.get('authorization'));
  if (fromHeader === null) return null; // an Authorization header that is not "Bearer <token>"
  const apikey = req.headers.get('apikey');
  const queryToken = url.searchParams.get('token');

  if (queryToken !== null || (fromHeader !== undefined && SCRAPE_TOKEN.test(fromHeader))) {
    // Two different credentials in one request: refuse rather than guess which one counts.
    if (queryToken !== null && fromHeader !== undefined && fromHeader !== queryToken) return null;
    const token = queryToken ?? fromHeader!;
    if (!SCRAPE_TOKEN.test(token)) return null;
    const projectId = await deps.lookupScrapeToken(await sha256Hex(token));
    return projectId ? { kind: 'scrape_token', role: 'service_role', projectId } : null;
  }

  // As Supabase does for requests without a user session: the apikey (e.g. the anon key) is the
  // bearer when there is no Authorization header. With one, Authorization decides; an apikey that
  // is not a JWT (the newer sb_publishable_… keys) is then simply not used.
  const token = fromHeader ?? apikey;
  if (!token) return null;
  return await fromJwt(token, deps);
}

/** A short description for logs: the role, never a token or claim. */
export function describeCaller(caller: Caller | null): string {
  if (!caller) return 'none';
  return caller.kind === 'scrape_token' ? 'scrape_token' : caller.role;
}
