/**
 * The local Auth stand-in over HTTP against the test database (DATABASE_URL, with the platform
 * superuser of QH_SUPERUSER_URL as its role, as the stack runs it): GoTrue's request and response
 * shapes, its error bodies in both API versions, refresh-token rotation and reuse, logout scopes,
 * and the gateway's apikey check. Each test works on a user of its own, removed afterwards.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import { connect, superuserUrl } from '../test/db.ts';
import { createLocalAuth, type LocalAuthOptions } from './auth_local.ts';
import { loadSigningKey, type SigningKey } from './signing_key.ts';

const API_KEY = 'test-anon-key';
const PUBLISHABLE_KEY = 'sb_publishable_testAuthStandInKey000_abcdefgh';
const SECRET_KEY = 'sb_secret_testAuthStandInKey00000_abcdefgh';
const BROWSER_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome';
const PASSWORD = 'correct horse battery staple';

interface Harness {
  url: string;
  key: SigningKey;
  email: string;
  userId: string;
  call(path: string, init?: RequestInit & { json?: unknown; apiVersion?: string }): Promise<{
    status: number;
    body: Record<string, unknown>;
    headers: Headers;
  }>;
  signIn(password?: string): Promise<Record<string, unknown>>;
  refresh(token: string): Promise<{ status: number; body: Record<string, unknown> }>;
  sql: ReturnType<typeof connect>;
}

/** Starts the stand-in on a free port with a fresh key and user; runs `fn`; cleans up. */
async function withAuth(
  fn: (h: Harness) => Promise<void>,
  opts: Partial<LocalAuthOptions> & { confirmed?: boolean } = {},
) {
  const dir = await Deno.makeTempDir({ prefix: 'qh-auth-' });
  const key = await loadSigningKey(join(dir, 'signing_key.json'));
  const sql = connect({ max: 1, applicationName: 'qh-auth-local-test' });
  const userId = crypto.randomUUID();
  const email = `auth-${userId.slice(0, 8)}@example.test`;
  await sql`
    insert into auth.users (instance_id, id, aud, role, email, encrypted_password,
                            email_confirmed_at, raw_app_meta_data, created_at, updated_at)
    values ('00000000-0000-0000-0000-000000000000', ${userId}, 'authenticated', 'authenticated',
            ${email}, extensions.crypt(${PASSWORD}, extensions.gen_salt('bf', 4)),
            ${opts.confirmed === false ? null : new Date()},
            ${sql.json({ provider: 'email', providers: ['email'] })}, now(), now())`;
  const auth = createLocalAuth({
    databaseUrl: superuserUrl(),
    projectUrl: 'http://auth.test',
    apiKeys: [
      { value: API_KEY, kind: 'legacy_anon' },
      { value: PUBLISHABLE_KEY, kind: 'publishable' },
      { value: SECRET_KEY, kind: 'secret' },
    ],
    signingKey: key,
    ...opts,
  });
  const server = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen: () => {} }, auth.handle);
  const url = `http://127.0.0.1:${server.addr.port}`;
  const call: Harness['call'] = async (path, init = {}) => {
    const headers = new Headers(init.headers);
    if (!headers.has('apikey') && init.headers === undefined) headers.set('apikey', API_KEY);
    if (init.apiVersion) headers.set('x-supabase-api-version', init.apiVersion);
    let body = init.body;
    if (init.json !== undefined) {
      headers.set('content-type', 'application/json');
      body = JSON.stringify(init.json);
    }
    const res = await fetch(`${url}/auth/v1${path}`, { ...init, headers, body });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : {}, headers: res.headers };
  };
  const h: Harness = {
    url,
    key,
    email,
    userId,
    call,
    sql,
    async signIn(password = PASSWORD) {
      const r = await call('/token?grant_type=password', {
        method: 'POST',
        json: { email, password },
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body;
    },
    refresh: (token) =>
      call('/token?grant_type=refresh_token', { method: 'POST', json: { refresh_token: token } }),
  };
  try {
    await fn(h);
  } finally {
    await server.shutdown();
    await auth.close();
    await sql`delete from auth.users where id = ${userId}`;
    await sql.end({ timeout: 2 });
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test('a password sign-in returns a GoTrue session with an ES256 token the JWKS verifies', async () => {
  await withAuth(async (h) => {
    const before = Math.floor(Date.now() / 1000);
    const s = await h.signIn();
    assert.equal(s.token_type, 'bearer');
    assert.equal(s.expires_in, 3600);
    assert.ok(Math.abs((s.expires_at as number) - (before + 3600)) <= 2);
    assert.match(String(s.refresh_token), /^[a-z0-9]{12}$/);
    const user = s.user as Record<string, unknown>;
    assert.equal(user.id, h.userId);
    assert.equal(user.email, h.email);
    assert.equal(user.aud, 'authenticated');
    assert.deepEqual(user.app_metadata, { provider: 'email', providers: ['email'] });
    assert.ok(user.last_sign_in_at, 'last_sign_in_at is set');
    assert.equal('encrypted_password' in user, false);

    const token = String(s.access_token);
    assert.deepEqual(decodeProtectedHeader(token), { alg: 'ES256', kid: h.key.kid, typ: 'JWT' });
    const jwks = createRemoteJWKSet(new URL(`${h.url}/auth/v1/.well-known/jwks.json`));
    const { payload } = await jwtVerify(token, jwks, {
      issuer: 'http://auth.test/auth/v1',
      audience: 'authenticated',
    });
    assert.equal(payload.sub, h.userId);
    assert.equal(payload.role, 'authenticated');
    assert.equal(payload.email, h.email);
    assert.equal(payload.aal, 'aal1');
    assert.equal(payload.is_anonymous, false);
    assert.equal((payload.exp as number) - (payload.iat as number), 3600);
    const amr = payload.amr as { method: string; timestamp: number }[];
    assert.equal(amr[0].method, 'password');
    const [row] = await h.sql`
      select user_id from auth.sessions where id = ${String(payload.session_id)}`;
    assert.equal(row?.user_id, h.userId, 'session_id names the session row');
  });
});

Deno.test('wrong credentials get GoTrue’s 400 invalid_credentials in both error formats', async () => {
  await withAuth(async (h) => {
    for (
      const json of [{ email: h.email, password: 'nope' }, { email: 'x@y.test', password: 'a' }]
    ) {
      const legacy = await h.call('/token?grant_type=password', { method: 'POST', json });
      assert.equal(legacy.status, 400);
      assert.deepEqual(legacy.body, {
        code: 400,
        error_code: 'invalid_credentials',
        msg: 'Invalid login credentials',
      });
      assert.equal(legacy.headers.get('x-sb-error-code'), 'invalid_credentials');
      const v2024 = await h.call('/token?grant_type=password', {
        method: 'POST',
        json,
        apiVersion: '2024-01-01',
      });
      assert.equal(v2024.status, 400);
      assert.deepEqual(v2024.body, {
        code: 'invalid_credentials',
        message: 'Invalid login credentials',
      });
      assert.equal(v2024.headers.get('x-supabase-api-version'), '2024-01-01');
    }
    const missing = await h.call('/token?grant_type=password', {
      method: 'POST',
      json: { password: 'x' },
    });
    assert.deepEqual(missing.body, {
      code: 400,
      error_code: 'validation_failed',
      msg: 'missing email or phone',
    });
    const grant = await h.call('/token?grant_type=magic', { method: 'POST', json: {} });
    assert.equal(grant.status, 400);
    assert.equal(grant.body.msg, 'unsupported_grant_type');
  });
});

Deno.test('an unconfirmed email cannot sign in, even with the right password', async () => {
  await withAuth(async (h) => {
    const r = await h.call('/token?grant_type=password', {
      method: 'POST',
      json: { email: h.email, password: PASSWORD },
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.error_code, 'email_not_confirmed');
  }, { confirmed: false });
});

Deno.test('the gateway wants a project key as apikey; the JWKS is public and holds no private part', async () => {
  await withAuth(async (h) => {
    const none = await h.call('/health', { headers: {} });
    assert.equal(none.status, 401);
    assert.equal(none.body.message, 'No API key found in request');
    const wrong = await h.call('/health', { headers: { apikey: 'not-a-key' } });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.message, 'Invalid API key');
    const health = await h.call('/health');
    assert.equal(health.status, 200);
    assert.equal(health.body.name, 'GoTrue');
    // The new keys as hosted has them: both as apikey, but a secret key never from a browser.
    for (const apikey of [PUBLISHABLE_KEY, SECRET_KEY]) {
      const ok = await h.call('/health', { headers: { apikey } });
      assert.equal(ok.status, 200, apikey.slice(0, 14));
    }
    const fromPage = await h.call('/health', {
      headers: { apikey: PUBLISHABLE_KEY, 'user-agent': BROWSER_UA },
    });
    assert.equal(fromPage.status, 200, 'a browser may use the publishable key');
    const secretFromPage = await h.call('/health', {
      headers: { apikey: SECRET_KEY, 'user-agent': BROWSER_UA },
    });
    assert.equal(secretFromPage.status, 401);
    assert.equal(secretFromPage.body.message, 'Forbidden use of secret API key in browser');
    const madeUp = await h.call('/health', { headers: { apikey: `${SECRET_KEY.slice(0, -1)}x` } });
    assert.equal(madeUp.status, 401);
    assert.equal(madeUp.body.message, 'Invalid API key');
    const jwks = await h.call('/.well-known/jwks.json', { headers: {} });
    assert.equal(jwks.status, 200);
    const keys = jwks.body.keys as Record<string, unknown>[];
    assert.equal(keys.length, 1);
    assert.equal(keys[0].kid, h.key.kid);
    assert.equal(keys[0].alg, 'ES256');
    assert.equal('d' in keys[0], false, 'no private key material');
    // A page of another origin may call it, as the hosted gateway allows.
    const cors = await fetch(`${h.url}/auth/v1/token?grant_type=password`, {
      method: 'OPTIONS',
      headers: { origin: 'http://app.test', 'access-control-request-headers': 'apikey' },
    });
    await cors.body?.cancel();
    assert.equal(cors.status, 204);
    assert.equal(cors.headers.get('access-control-allow-origin'), 'http://app.test');
  });
});

Deno.test('refresh tokens rotate; a lost answer is forgiven, a replay later revokes the session', async () => {
  await withAuth(async (h) => {
    const s1 = await h.signIn();
    const t1 = String(s1.refresh_token);
    const r2 = await h.refresh(t1);
    assert.equal(r2.status, 200, JSON.stringify(r2.body));
    const t2 = String(r2.body.refresh_token);
    assert.notEqual(t2, t1, 'a new refresh token');
    const c1 = decodeJwt(String(s1.access_token));
    const c2 = decodeJwt(String(r2.body.access_token));
    assert.equal(c2.session_id, c1.session_id, 'the same session');
    // t1 again: its child t2 is the active token, so the client lost the answer: t2 again.
    const again = await h.refresh(t1);
    assert.equal(again.status, 200);
    assert.equal(again.body.refresh_token, t2);
    // t2 → t3; then t1 is two generations back: a replay, fine only within the reuse interval.
    const t3 = String((await h.refresh(t2)).body.refresh_token);
    await h.sql`update auth.refresh_tokens set updated_at = now() - interval '11 seconds'
                 where token = ${t1}`;
    const replay = await h.refresh(t1);
    assert.equal(replay.status, 400);
    assert.equal(replay.body.error_code, 'refresh_token_already_used');
    assert.equal(replay.body.msg, 'Invalid Refresh Token: Already Used');
    const [{ live }] = await h.sql`
      select count(*)::int as live from auth.refresh_tokens
       where session_id = ${String(c1.session_id)} and not revoked`;
    assert.equal(live, 0, 'the replay revoked every token of the session');
    await h.sql`update auth.refresh_tokens set updated_at = now() - interval '11 seconds'
                 where token = ${t3}`;
    assert.equal((await h.refresh(t3)).body.error_code, 'refresh_token_already_used');

    assert.equal((await h.refresh('abcdefghijkl')).body.error_code, 'refresh_token_not_found');
    assert.equal((await h.refresh('short')).body.msg, 'Refresh token is not valid');
  });
});

Deno.test('/user answers the bearer’s user; forged, expired and signed-out tokens get 401/403', async () => {
  await withAuth(async (h) => {
    const s = await h.signIn();
    const token = String(s.access_token);
    const bearer = (t: string) => ({ headers: { apikey: API_KEY, authorization: `Bearer ${t}` } });
    const me = await h.call('/user', bearer(token));
    assert.equal(me.status, 200);
    assert.equal(me.body.id, h.userId);
    assert.equal(me.body.email, h.email);

    const none = await h.call('/user');
    assert.equal(none.status, 401);
    assert.equal(none.body.error_code, 'no_authorization');

    const claims = decodeJwt(token);
    // Same kid, another key: a forgery.
    const other = await loadSigningKey(join(await Deno.makeTempDir(), 'k.json'));
    const forged = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: h.key.kid, typ: 'JWT' })
      .sign(other.privateKey);
    const f = await h.call('/user', bearer(forged));
    assert.equal(f.status, 403);
    assert.equal(f.body.error_code, 'bad_jwt');
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ ...claims, iat: now - 7200, exp: now - 3600 })
      .setProtectedHeader({ alg: 'ES256', kid: h.key.kid, typ: 'JWT' })
      .sign(h.key.privateKey);
    const e = await h.call('/user', bearer(expired));
    assert.equal(e.status, 403);
    assert.equal(e.body.error_code, 'bad_jwt');

    const out = await h.call('/logout', { method: 'POST', ...bearer(token) });
    assert.equal(out.status, 204);
    const gone = await h.call('/user', bearer(token));
    assert.equal(gone.status, 403);
    assert.equal(gone.body.error_code, 'session_not_found');
    assert.equal(
      (await h.refresh(String(s.refresh_token))).body.error_code,
      'refresh_token_not_found',
    );
  });
});

Deno.test('logout scope=local ends only the caller’s session; global ends them all', async () => {
  await withAuth(async (h) => {
    const a = await h.signIn();
    const b = await h.signIn();
    const bearer = (s: Record<string, unknown>) => ({
      method: 'POST',
      headers: { apikey: API_KEY, authorization: `Bearer ${s.access_token}` },
    });
    assert.equal((await h.call('/logout?scope=local', bearer(a))).status, 204);
    assert.equal((await h.refresh(String(a.refresh_token))).status, 400);
    const b2 = await h.refresh(String(b.refresh_token));
    assert.equal(b2.status, 200, 'the other session lives on');
    const c = await h.signIn();
    assert.equal((await h.call('/logout', bearer(c))).status, 204);
    assert.equal((await h.refresh(String(b2.body.refresh_token))).status, 400);
    const [{ n }] = await h.sql`
      select count(*)::int as n from auth.sessions where user_id = ${h.userId}`;
    assert.equal(n, 0);
    assert.equal((await h.call('/logout?scope=nope', bearer(c))).status, 400);
  });
});

Deno.test('access tokens live accessTokenSeconds (QH_AUTH_JWT_EXP in the stack) seconds', async () => {
  await withAuth(async (h) => {
    const s = await h.signIn();
    const c = decodeJwt(String(s.access_token));
    assert.equal((c.exp as number) - (c.iat as number), 60);
    assert.equal(s.expires_in, 60);
  }, { accessTokenSeconds: 60 });
});
