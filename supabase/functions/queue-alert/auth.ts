/**
 * Who may call queue-alert: the service role — its legacy key (`SUPABASE_SERVICE_ROLE_KEY`), any of
 * the project's secret keys (`SUPABASE_SECRET_KEYS`, `sb_secret_…`), or any JWT with
 * `role: service_role` that verifies against the project's HS256 secret or its signing keys (JWKS)
 * — or a caller presenting the dedicated secret (`QUEUE_ALERT_SECRET`) in `x-queue-health-secret`
 * or as the Bearer token. The credential is the Bearer token, or the `apikey` header when there is
 * no Authorization header. Everything else is refused.
 * @module
 */
import type { JwtVerifier } from '../_shared/jwt.ts';

/** The settings authorisation needs. Any of them may be unset; unset ones grant nothing. */
export interface AuthConfig {
  /** `SUPABASE_SERVICE_ROLE_KEY`: accepted as is. */
  serviceRoleKey?: string;
  /** The `sb_secret_…` keys of `SUPABASE_SECRET_KEYS`: each accepted as is. */
  secretKeys?: readonly string[];
  /** Verifies Supabase JWTs (`_shared/jwt.ts`); a valid one with `role: service_role` passes. */
  verifyJwt?: JwtVerifier;
  /** `QUEUE_ALERT_SECRET`. */
  alertSecret?: string;
}

/** The header carrying the dedicated secret. */
export const SECRET_HEADER = 'x-queue-health-secret';

const encoder = new TextEncoder();

/**
 * Compares two strings in time independent of where they differ and of their lengths (both are
 * hashed first, so only digests of equal length are compared).
 */
export async function constantTimeEqual(a: string, b: string): Promise<boolean> {
  const [da, db] = await Promise.all([
    crypto.subtle.digest('SHA-256', encoder.encode(a)),
    crypto.subtle.digest('SHA-256', encoder.encode(b)),
  ]);
  const x = new Uint8Array(da);
  const y = new Uint8Array(db);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

/** How the caller was recognised, or null. */
export type AuthResult =
  | 'service_role_key'
  | 'secret_key'
  | 'service_role_jwt'
  | 'secret'
  | null;

/** Decides whether `req` may run queue-alert. */
export async function authorize(req: Request, config: AuthConfig): Promise<AuthResult> {
  const presented = req.headers.get(SECRET_HEADER);
  if (presented && config.alertSecret && (await constantTimeEqual(presented, config.alertSecret))) {
    return 'secret';
  }
  // As queue-health (and Supabase's gateway) do: without an Authorization header, the `apikey`
  // header is the credential — where Supabase's docs tell callers to put an `sb_secret_…` key.
  const authorization = req.headers.get('authorization');
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  const apikey = authorization === null ? req.headers.get('apikey')?.trim() : undefined;
  const token = match?.[1] ?? (apikey || null);
  if (!token) return null;
  if (config.serviceRoleKey && (await constantTimeEqual(token, config.serviceRoleKey))) {
    return 'service_role_key';
  }
  // Every key is compared (no early exit), so the time taken does not tell which one matched.
  let secretKey = false;
  for (const key of config.secretKeys ?? []) {
    if (await constantTimeEqual(token, key)) secretKey = true;
  }
  if (secretKey) return 'secret_key';
  // The database's dispatch (pg_net) sends its configured key as a Bearer token, which may be
  // this secret rather than the service role key.
  if (config.alertSecret && (await constantTimeEqual(token, config.alertSecret))) return 'secret';
  if (config.verifyJwt) {
    const claims = await config.verifyJwt(token);
    if (claims?.role === 'service_role') return 'service_role_jwt';
  }
  return null;
}
