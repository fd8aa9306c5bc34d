/**
 * A local stand-in for the part of Supabase Auth (GoTrue) that the dashboard and supabase-js v2
 * use, served by the local stack at `/auth/v1/*` so a page signs in there exactly as on hosted
 * Supabase:
 *
 * | request | what it does |
 * | --- | --- |
 * | `GET /auth/v1/health` | `{version, name: 'GoTrue', description}` |
 * | `GET /auth/v1/.well-known/jwks.json` | the public signing key (no `apikey` needed) |
 * | `POST /auth/v1/token?grant_type=password` | `{email, password}` (or `{phone, password}`) → a session |
 * | `POST /auth/v1/token?grant_type=refresh_token` | `{refresh_token}` → a new session; the token rotates |
 * | `GET /auth/v1/user` | the bearer's user |
 * | `POST /auth/v1/logout?scope=global\|local\|others` | ends sessions; 204 |
 *
 * Faithful to supabase/auth (internal/api/token.go, token_refresh.go, auth.go, logout.go,
 * errors.go, internal/tokens/service.go):
 * - users are `auth.users` rows with a bcrypt `encrypted_password`, checked with pgcrypto's
 *   `crypt()` (the stand-in's database role must be allowed to read auth.*: the platform's
 *   superuser locally); sessions and refresh tokens are rows of `auth.sessions` and
 *   `auth.refresh_tokens`, so they outlive a restart of the server;
 * - access tokens are ES256 JWTs with the signing key's `kid`, claims as GoTrue issues them
 *   (`iss` `<url>/auth/v1`, `sub`, `aud` and `role` `authenticated`, `email`, `phone`,
 *   `app_metadata`, `user_metadata`, `aal`, `amr`, `session_id`, `is_anonymous`, `iat`, `exp`);
 * - refresh tokens are GoTrue's 12-character ones and rotate: a revoked token is accepted again
 *   only when it is the parent of the session's active token (the active one is returned) or within
 *   the reuse interval (10 s); later, its reuse revokes the session's tokens and fails with
 *   `refresh_token_already_used`; after a logout the tokens are gone (`refresh_token_not_found`);
 * - errors: HTTP 4xx with `{code: <status>, error_code, msg}`, or `{code: <error_code>, message}`
 *   when the request says `X-Supabase-Api-Version: 2024-01-01` (as supabase-js does), which the
 *   response then echoes; `x-sb-error-code` names the code either way;
 * - the API gateway's part (api_keys.ts): every request but the JWKS needs an `apikey` header (or
 *   `?apikey=`) that is one of the project's keys — publishable, secret, legacy anon or
 *   service_role — else 401 `{message, hint}`; a secret key from a browser is refused with 401 as
 *   well; CORS for browser pages.
 *
 * Not implemented (404): sign-up, OTP, magic links, OAuth providers, MFA, admin endpoints,
 * `PUT /user`. Users carry no `identities` (GoTrue lists the email identity there).
 * @module
 */
import { decodeProtectedHeader, importJWK, type JWTPayload, jwtVerify, SignJWT } from 'jose';
import postgres from 'postgres';
import type { SigningKey } from './signing_key.ts';
import { type ApiKey, checkApiKey } from './api_keys.ts';

/** Options of {@link createLocalAuth}. */
export interface LocalAuthOptions {
  /** A database URL whose role may read and write auth.users, auth.sessions, auth.refresh_tokens. */
  databaseUrl: string;
  /** The project URL (`SUPABASE_URL`); tokens are issued by `<url>/auth/v1`. */
  projectUrl: string;
  /** The keys the gateway accepts as `apikey` (publishable, secret, legacy anon / service_role). */
  apiKeys: readonly ApiKey[];
  /** The ES256 key access tokens are signed with (signing_key.ts). */
  signingKey: SigningKey;
  /**
   * The project's legacy HS256 secret: tokens without a `kid` signed with it are accepted on
   * `/user` and `/logout`, as GoTrue does for tokens from before asymmetric keys.
   */
  legacyJwtSecret?: string;
  /** Access-token lifetime in seconds (GoTrue's JWT_EXP); default 3600. */
  accessTokenSeconds?: number;
  /** How long a revoked refresh token may still be used, in seconds; default 10. */
  refreshTokenReuseSeconds?: number;
}

/** The stand-in as a request handler, to mount at `/auth/v1/` in a server of one's own. */
export interface LocalAuthHandler {
  /** Answers a request whose path starts with `/auth/v1/`. */
  handle(req: Request): Promise<Response>;
  /** Closes the database pool. */
  close(): Promise<void>;
}

/** A GoTrue error: status, error code, message. */
class AuthError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

const INVALID_LOGIN = 'Invalid login credentials';
const LEGACY_REFRESH_TOKEN = /^[a-z0-9]{12}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NIL_UUID = '00000000-0000-0000-0000-000000000000';
const API_VERSION_HEADER = 'X-Supabase-Api-Version';

/** An auth.users row, as the stand-in reads it. */
interface UserRow {
  id: string;
  aud: string | null;
  role: string | null;
  email: string | null;
  phone: string | null;
  email_confirmed_at: Date | null;
  last_sign_in_at: Date | null;
  raw_app_meta_data: Record<string, unknown> | null;
  raw_user_meta_data: Record<string, unknown> | null;
  created_at: Date | null;
  updated_at: Date | null;
  banned_until: Date | null;
  is_anonymous: boolean;
}

const USER_COLUMNS = [
  'id',
  'aud',
  'role',
  'email',
  'phone',
  'email_confirmed_at',
  'last_sign_in_at',
  'raw_app_meta_data',
  'raw_user_meta_data',
  'created_at',
  'updated_at',
  'banned_until',
  'is_anonymous',
];

/** The user as GoTrue's JSON shows it (models.User). */
export function userJson(u: UserRow): Record<string, unknown> {
  return {
    id: u.id,
    aud: u.aud ?? '',
    role: u.role ?? '',
    email: u.email ?? '',
    email_confirmed_at: u.email_confirmed_at?.toISOString(),
    phone: u.phone ?? '',
    confirmed_at: u.email_confirmed_at?.toISOString(),
    last_sign_in_at: u.last_sign_in_at?.toISOString(),
    app_metadata: u.raw_app_meta_data ?? {},
    user_metadata: u.raw_user_meta_data ?? {},
    identities: [],
    created_at: (u.created_at ?? new Date(0)).toISOString(),
    updated_at: (u.updated_at ?? u.created_at ?? new Date(0)).toISOString(),
    banned_until: u.banned_until?.toISOString(),
    is_anonymous: u.is_anonymous,
  };
}

function isBanned(u: UserRow): boolean {
  return u.banned_until !== null && u.banned_until.getTime() > Date.now();
}

/** GoTrue's legacy refresh token: 12 characters of [a-z0-9] from a secure random source. */
function newRefreshToken(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const out: string[] = [];
  while (out.length < 12) {
    for (const b of crypto.getRandomValues(new Uint8Array(16))) {
      // 252 = 7 × 36: bytes above it are dropped, so every character is equally likely.
      if (b < 252 && out.length < 12) out.push(alphabet[b % 36]);
    }
  }
  return out.join('');
}

/** True when the request asks for the 2024-01-01 error format (GoTrue's apiversions.go). */
function wantsApiVersion2024(req: Request): boolean {
  const v = req.headers.get(API_VERSION_HEADER);
  if (!v || !/^\d{4}-\d{2}-\d{2}$/.test(v)) return false;
  const t = Date.parse(`${v}T00:00:00Z`);
  return Number.isFinite(t) && t >= Date.parse('2024-01-01T00:00:00Z');
}

function errorResponse(req: Request, e: AuthError): Response {
  const headers = new Headers({ 'x-sb-error-code': e.code });
  if (wantsApiVersion2024(req)) {
    headers.set(API_VERSION_HEADER, '2024-01-01');
    return Response.json({ code: e.code, message: e.message }, { status: e.status, headers });
  }
  return Response.json(
    { code: e.status, error_code: e.code, msg: e.message },
    { status: e.status, headers },
  );
}

/** CORS as the hosted gateway answers it: any origin, with credentials. */
function withCors(req: Request, res: Response): Response {
  const origin = req.headers.get('origin');
  if (!origin) return res;
  const headers = new Headers(res.headers);
  headers.set('access-control-allow-origin', origin);
  headers.set('access-control-allow-credentials', 'true');
  headers.set('access-control-expose-headers', `X-Total-Count, Link, ${API_VERSION_HEADER}`);
  headers.append('vary', 'Origin');
  return new Response(res.body, { status: res.status, headers });
}

function preflight(req: Request): Response {
  return new Response(null, {
    status: 204,
    headers: {
      'access-control-allow-methods': 'GET, POST, PUT, PATCH, DELETE',
      'access-control-allow-headers': req.headers.get('access-control-request-headers') ??
        'authorization, apikey, content-type, x-client-info',
      'access-control-max-age': '3600',
    },
  });
}

/** The gateway's check of the `apikey` (401 bodies as the hosted API gateway sends them). */
function apiKeyRefusal(req: Request, url: URL, keys: readonly ApiKey[]): Response | null {
  const presented = req.headers.get('apikey') ?? url.searchParams.get('apikey');
  const { refusal } = checkApiKey(req, presented, keys);
  return refusal ? Response.json(refusal, { status: 401 }) : null;
}

async function jsonBody(req: Request): Promise<Record<string, unknown>> {
  const text = await req.text();
  if (text.trim() === '') return {};
  try {
    const body = JSON.parse(text);
    if (body && typeof body === 'object' && !Array.isArray(body)) return body;
    throw new Error('not a JSON object');
  } catch (e) {
    throw new AuthError(
      400,
      'bad_json',
      `Could not parse request body as JSON: ${(e as Error).message}`,
    );
  }
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/**
 * Creates the stand-in. Its database pool opens on first use; {@link LocalAuthHandler.close}
 * closes it.
 */
export function createLocalAuth(opts: LocalAuthOptions): LocalAuthHandler {
  const sql = postgres(opts.databaseUrl, {
    max: 3,
    onnotice: () => {},
    connect_timeout: 5,
    connection: { application_name: 'qh-local-auth' },
  });
  type Tx = postgres.TransactionSql;
  const issuer = `${opts.projectUrl.replace(/\/+$/, '')}/auth/v1`;
  const ttl = opts.accessTokenSeconds ?? 3600;
  const reuseSeconds = opts.refreshTokenReuseSeconds ?? 10;
  const apiKeys = opts.apiKeys;
  const legacyKey = opts.legacyJwtSecret
    ? new TextEncoder().encode(opts.legacyJwtSecret)
    : undefined;
  let publicKey: Promise<CryptoKey> | undefined;
  const cols = (tx: Tx | typeof sql) => tx(USER_COLUMNS.map((c) => `u.${c}`));

  /** GoTrue's access token for `user` in session `sessionId` (tokens/service.go). */
  async function accessToken(user: UserRow, sessionId: string, signedInAt: Date) {
    const iat = Math.floor(Date.now() / 1000);
    const exp = iat + ttl;
    const token = await new SignJWT({
      email: user.email ?? '',
      phone: user.phone ?? '',
      app_metadata: user.raw_app_meta_data ?? {},
      user_metadata: user.raw_user_meta_data ?? {},
      role: user.role || 'authenticated',
      aal: 'aal1',
      amr: [{ method: 'password', timestamp: Math.floor(signedInAt.getTime() / 1000) }],
      session_id: sessionId,
      is_anonymous: user.is_anonymous,
    })
      .setProtectedHeader({ alg: 'ES256', kid: opts.signingKey.kid, typ: 'JWT' })
      .setIssuer(issuer)
      .setSubject(user.id)
      .setAudience(user.aud || 'authenticated')
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(opts.signingKey.privateKey);
    return { token, exp };
  }

  async function session(user: UserRow, sessionId: string, signedInAt: Date, refresh: string) {
    const { token, exp } = await accessToken(user, sessionId, signedInAt);
    return {
      access_token: token,
      token_type: 'bearer',
      expires_in: exp - Math.floor(Date.now() / 1000),
      expires_at: exp,
      refresh_token: refresh,
      user: userJson(user),
    };
  }

  /** `grant_type=password` (token.go ResourceOwnerPasswordGrant). */
  async function passwordGrant(req: Request) {
    const body = await jsonBody(req);
    const email = str(body.email).trim();
    const phone = str(body.phone).trim();
    const password = str(body.password);
    if (email && phone) {
      throw new AuthError(
        400,
        'validation_failed',
        'Only an email address or phone number should be provided on login.',
      );
    }
    if (!email && !phone) throw new AuthError(400, 'validation_failed', 'missing email or phone');
    const [row] = await sql<(UserRow & { password_ok: boolean | null })[]>`
      select ${cols(sql)},
             case when u.encrypted_password like '$2%'
                  then u.encrypted_password = extensions.crypt(${password}, u.encrypted_password)
             end as password_ok
        from auth.users u
       where u.aud = 'authenticated'
         and ${email ? sql`lower(u.email) = lower(${email})` : sql`u.phone = ${phone}`}
       limit 1`;
    if (!row || row.password_ok === null) {
      throw new AuthError(400, 'invalid_credentials', INVALID_LOGIN);
    }
    if (isBanned(row)) throw new AuthError(400, 'user_banned', 'User is banned');
    if (!row.password_ok) throw new AuthError(400, 'invalid_credentials', INVALID_LOGIN);
    if (email && !row.email_confirmed_at) {
      throw new AuthError(400, 'email_not_confirmed', 'Email not confirmed');
    }
    const refresh = newRefreshToken();
    const sessionId = crypto.randomUUID();
    const { user, createdAt } = await sql.begin(async (tx) => {
      const [s] = await tx<{ created_at: Date }[]>`
        insert into auth.sessions (id, user_id, created_at, updated_at, aal, user_agent)
        values (${sessionId}, ${row.id}, now(), now(), 'aal1', ${req.headers.get('user-agent')})
        returning created_at`;
      await tx`
        insert into auth.refresh_tokens
          (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)
        values (${NIL_UUID}, ${refresh}, ${row.id}, false, now(), now(), null, ${sessionId})`;
      const [u] = await tx<UserRow[]>`
        update auth.users u set last_sign_in_at = now(), updated_at = now()
         where u.id = ${row.id} returning ${cols(tx)}`;
      return { user: u, createdAt: s.created_at };
    });
    return await session(user, sessionId, createdAt, refresh);
  }

  /** `grant_type=refresh_token` (token_refresh.go, tokens/service.go RefreshTokenGrant). */
  async function refreshGrant(req: Request) {
    const body = await jsonBody(req);
    const given = str(body.refresh_token);
    if (!given) throw new AuthError(400, 'validation_failed', 'Refresh token is not valid');
    if (!LEGACY_REFRESH_TOKEN.test(given)) {
      throw new AuthError(400, 'validation_failed', 'Refresh token is not valid');
    }
    const outcome = await sql.begin(async (tx) => {
      const [t] = await tx<
        {
          id: string;
          revoked: boolean;
          updated_at: Date;
          session_id: string | null;
          session_created: Date | null;
        }[]
      >`
        select rt.id, rt.revoked, rt.updated_at, s.id as session_id,
               s.created_at as session_created
          from auth.refresh_tokens rt
          left join auth.sessions s on s.id = rt.session_id
         where rt.token = ${given}
         for update of rt`;
      if (!t) {
        throw new AuthError(
          400,
          'refresh_token_not_found',
          'Invalid Refresh Token: Refresh Token Not Found',
        );
      }
      if (!t.session_id) {
        await tx`delete from auth.refresh_tokens where id = ${t.id}`;
        return new AuthError(
          400,
          'session_not_found',
          'Invalid Refresh Token: No Valid Session Found',
        );
      }
      const [user] = await tx<UserRow[]>`
        select ${cols(tx)} from auth.users u
          join auth.sessions s on s.user_id = u.id
         where s.id = ${t.session_id}`;
      if (isBanned(user)) {
        return new AuthError(400, 'user_banned', 'Invalid Refresh Token: User Banned');
      }
      let issued: string | null = null;
      if (t.revoked) {
        const [active] = await tx<{ token: string; parent: string | null }[]>`
          select token, parent from auth.refresh_tokens
           where session_id = ${t.session_id} and revoked = false
           order by id desc limit 1`;
        if (active && active.parent === given) {
          issued = active.token; // the client lost the answer to its last refresh
        } else if (Date.now() > t.updated_at.getTime() + reuseSeconds * 1000) {
          await tx`
            update auth.refresh_tokens set revoked = true, updated_at = now()
             where session_id = ${t.session_id} and revoked = false`;
          // Committed: the revocation stands although the request fails.
          return new AuthError(
            400,
            'refresh_token_already_used',
            'Invalid Refresh Token: Already Used',
          );
        }
      }
      if (issued === null) {
        issued = newRefreshToken();
        await tx`update auth.refresh_tokens set revoked = true, updated_at = now()
                  where id = ${t.id}`;
        await tx`
          insert into auth.refresh_tokens
            (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)
          values (${NIL_UUID}, ${issued}, ${user.id}, false, now(), now(), ${given},
                  ${t.session_id})`;
      }
      await tx`
        update auth.sessions
           set refreshed_at = now() at time zone 'utc', updated_at = now(),
               user_agent = ${req.headers.get('user-agent')}
         where id = ${t.session_id}`;
      return { user, sessionId: t.session_id, createdAt: t.session_created ?? new Date(), issued };
    });
    if (outcome instanceof AuthError) throw outcome;
    return await session(outcome.user, outcome.sessionId, outcome.createdAt, outcome.issued);
  }

  /** Verifies the bearer token as GoTrue's requireAuthentication does (auth.go). */
  async function authenticate(req: Request) {
    const m = /^Bearer (\S+)$/i.exec(req.headers.get('authorization') ?? '');
    if (!m) {
      throw new AuthError(401, 'no_authorization', 'This endpoint requires a valid Bearer token');
    }
    let claims: JWTPayload;
    try {
      const { kid, alg } = decodeProtectedHeader(m[1]);
      let key: CryptoKey | Uint8Array;
      if (kid !== undefined && kid === opts.signingKey.kid) {
        publicKey ??= importJWK(opts.signingKey.publicJwk, 'ES256') as Promise<CryptoKey>;
        key = await publicKey;
      } else if (kid === undefined && alg === 'HS256' && legacyKey) {
        key = legacyKey;
      } else {
        throw new Error(`unrecognized JWT kid ${kid} for algorithm ${alg}`);
      }
      ({ payload: claims } = await jwtVerify(m[1], key, { algorithms: ['ES256', 'HS256'] }));
    } catch (e) {
      throw new AuthError(
        403,
        'bad_jwt',
        `invalid JWT: unable to parse or verify signature, ${(e as Error).message}`,
      );
    }
    if (!claims.sub) throw new AuthError(403, 'bad_jwt', 'invalid claim: missing sub claim');
    if (!UUID.test(claims.sub)) {
      throw new AuthError(400, 'bad_jwt', 'invalid claim: sub claim must be a UUID');
    }
    const [user] = await sql<UserRow[]>`
      select ${cols(sql)} from auth.users u where u.id = ${claims.sub}`;
    if (!user) {
      throw new AuthError(403, 'user_not_found', 'User from sub claim in JWT does not exist');
    }
    const sid = typeof claims.session_id === 'string' ? claims.session_id : '';
    if (sid && sid !== NIL_UUID) {
      if (!UUID.test(sid)) {
        throw new AuthError(403, 'bad_jwt', 'invalid claim: session_id claim must be a UUID');
      }
      const [s] = await sql`select 1 from auth.sessions where id = ${sid}`;
      if (!s) {
        throw new AuthError(
          403,
          'session_not_found',
          'Session from session_id claim in JWT does not exist',
        );
      }
    }
    if (isBanned(user)) throw new AuthError(403, 'user_banned', 'User is banned');
    return { user, sessionId: sid && sid !== NIL_UUID ? sid : null };
  }

  /** `POST /logout?scope=…` (logout.go): global ends every session of the user. */
  async function logout(req: Request, url: URL) {
    const scope = url.searchParams.get('scope') ?? '';
    if (!['', 'global', 'local', 'others'].includes(scope)) {
      throw new AuthError(400, 'validation_failed', `Unsupported logout scope "${scope}"`);
    }
    const { user, sessionId } = await authenticate(req);
    if (scope === 'local' && sessionId) {
      await sql`delete from auth.sessions where id = ${sessionId}`;
    } else if (scope === 'others' && sessionId) {
      await sql`delete from auth.sessions where user_id = ${user.id} and id <> ${sessionId}`;
    } else {
      await sql`delete from auth.sessions where user_id = ${user.id}`;
    }
    return new Response(null, { status: 204 });
  }

  async function route(req: Request, url: URL, path: string): Promise<Response> {
    const is = (method: string, p: string) => req.method === method && path === p;
    if (is('GET', '/health')) {
      return Response.json({
        version: 'queue-health-local',
        name: 'GoTrue',
        description: 'GoTrue is a user registration and authentication API',
      });
    }
    if (is('POST', '/token')) {
      const grant = url.searchParams.get('grant_type');
      if (grant === 'password') return Response.json(await passwordGrant(req));
      if (grant === 'refresh_token') return Response.json(await refreshGrant(req));
      throw new AuthError(400, 'invalid_credentials', 'unsupported_grant_type');
    }
    if (is('GET', '/user')) return Response.json(userJson((await authenticate(req)).user));
    if (is('POST', '/logout')) return await logout(req, url);
    throw new AuthError(
      404,
      'not_found',
      `${req.method} /auth/v1${path} is not part of the local Auth stand-in`,
    );
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname.replace(/^\/auth\/v1/, '').replace(/\/+$/, '') || '/';
    if (req.method === 'OPTIONS') return withCors(req, preflight(req));
    if (req.method === 'GET' && path === '/.well-known/jwks.json') {
      return withCors(
        req,
        Response.json(opts.signingKey.jwks, {
          headers: { 'cache-control': 'public, max-age=600' },
        }),
      );
    }
    const refusal = apiKeyRefusal(req, url, apiKeys);
    if (refusal) return withCors(req, refusal);
    try {
      return withCors(req, await route(req, url, path));
    } catch (e) {
      if (e instanceof AuthError) return withCors(req, errorResponse(req, e));
      console.error(JSON.stringify({ src: 'local-auth', event: 'error', error: String(e) }));
      return withCors(
        req,
        errorResponse(
          req,
          new AuthError(
            500,
            'unexpected_failure',
            'Unexpected failure, please check server logs for more information',
          ),
        ),
      );
    }
  }

  return {
    handle,
    close: () => sql.end({ timeout: 2 }),
  };
}
