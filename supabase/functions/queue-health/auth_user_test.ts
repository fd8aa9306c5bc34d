import assert from 'node:assert/strict';
import { signJwt } from '../_shared/jwt.ts';
import { createLogger } from '../_shared/log.ts';
import { createAuthUserVerifier } from './auth_user.ts';
import { type AuthServer, startAuthServer } from './test_auth_server.ts';

const PROJECT_SECRET = 'the-projects-own-hs256-secret-that-functions-lack';
const USER = '6f1c1a3e-8f0a-4c41-9d0e-0b7d1b0c2a11';
const APIKEY = 'sb_publishable_test';

async function withAuth(fn: (auth: AuthServer) => Promise<void>): Promise<void> {
  const auth = startAuthServer(PROJECT_SECRET);
  try {
    await fn(auth);
  } finally {
    await auth.stop();
  }
}

const userToken = (expiresIn: number = 3600, secret = PROJECT_SECRET) =>
  signJwt({ role: 'authenticated', sub: USER, aud: 'authenticated' }, secret, expiresIn);

Deno.test('a token Auth answers 200 for is accepted, with the claims of the token', async () => {
  await withAuth(async (auth) => {
    const verify = createAuthUserVerifier({ supabaseUrl: auth.url, apikey: APIKEY });
    const token = await userToken();
    const claims = await verify(token);
    assert.equal(claims?.role, 'authenticated');
    assert.equal(claims?.sub, USER);
    assert.deepEqual(auth.calls, [{ authorization: `Bearer ${token}`, apikey: APIKEY }]);
  });
});

Deno.test('a token Auth answers 401 for is refused', async () => {
  await withAuth(async (auth) => {
    const verify = createAuthUserVerifier({ supabaseUrl: auth.url, apikey: APIKEY });
    const forged = await userToken(3600, 'another-secret-of-at-least-32-characters!!');
    assert.equal(await verify(forged), null);
    assert.equal(auth.calls.length, 1);
  });
});

Deno.test('a confirmed token is cached: the second request makes no call', async () => {
  await withAuth(async (auth) => {
    const verify = createAuthUserVerifier({ supabaseUrl: auth.url, apikey: APIKEY });
    const token = await userToken();
    assert.equal((await verify(token))?.sub, USER);
    assert.equal((await verify(token))?.sub, USER);
    const [a, b] = await Promise.all([verify(token), verify(token)]);
    assert.equal(a?.sub, USER);
    assert.equal(b?.sub, USER);
    assert.equal(auth.calls.length, 1);
    // Two requests at once with a new token share one call.
    const other = await userToken(600);
    await Promise.all([verify(other), verify(other), verify(other)]);
    assert.equal(auth.calls.length, 2);
  });
});

Deno.test('an expired token is refused without a call, cached or not', async () => {
  await withAuth(async (auth) => {
    let clock = Date.now();
    const verify = createAuthUserVerifier({ supabaseUrl: auth.url, now: () => clock });
    assert.equal(await verify(await userToken(-10)), null);
    assert.equal(auth.calls.length, 0);
    const token = await userToken(60);
    assert.equal((await verify(token))?.sub, USER);
    assert.equal(auth.calls.length, 1);
    clock += 61_000; // past exp: the cached answer is not used, and Auth is not asked
    assert.equal(await verify(token), null);
    assert.equal(auth.calls.length, 1);
  });
});

Deno.test('refusals and an unreachable Auth are remembered for a few seconds only', async () => {
  await withAuth(async (auth) => {
    let clock = Date.now();
    const lines: string[] = [];
    const verify = createAuthUserVerifier({
      supabaseUrl: auth.url,
      now: () => clock,
      logger: createLogger({}, (line) => lines.push(line)),
    });
    const token = await userToken();
    auth.forceStatus = 503;
    assert.equal(await verify(token), null);
    assert.equal(await verify(token), null);
    assert.equal(auth.calls.length, 1, 'refusal remembered');
    assert.ok(lines.some((l) => JSON.parse(l).event === 'auth_user_unavailable'));
    auth.forceStatus = null;
    clock += 5_001;
    assert.equal((await verify(token))?.sub, USER, 'asked again once the refusal expired');
    assert.equal(auth.calls.length, 2);
  });
});

Deno.test('a 200 for another user, or without a user, is not a confirmation', async () => {
  await withAuth(async (auth) => {
    const verify = createAuthUserVerifier({ supabaseUrl: auth.url, failureTtlMs: 0 });
    auth.userIdOverride = crypto.randomUUID();
    assert.equal(await verify(await userToken()), null);
    auth.userIdOverride = '';
    assert.equal(await verify(await userToken(1800)), null);
    assert.equal(auth.calls.length, 2);
  });
});

Deno.test('the cache is bounded: the oldest answer is forgotten first', async () => {
  await withAuth(async (auth) => {
    const verify = createAuthUserVerifier({ supabaseUrl: auth.url, maxEntries: 2 });
    const [t1, t2, t3] = await Promise.all([userToken(3600), userToken(3601), userToken(3602)]);
    for (const t of [t1, t2, t3]) assert.equal((await verify(t))?.sub, USER);
    assert.equal(auth.calls.length, 3);
    await verify(t3);
    await verify(t2);
    assert.equal(auth.calls.length, 3, 't2 and t3 are cached');
    await verify(t1);
    assert.equal(auth.calls.length, 4, 't1 was evicted');
  });
});

Deno.test('not a JWT, or a token without exp, is refused without a call', async () => {
  await withAuth(async (auth) => {
    const verify = createAuthUserVerifier({ supabaseUrl: auth.url });
    assert.equal(await verify('not-a-jwt'), null);
    const header = btoa(JSON.stringify({ alg: 'HS256' })).replace(/=+$/, '');
    const body = btoa(JSON.stringify({ sub: USER, role: 'authenticated' })).replace(/=+$/, '');
    assert.equal(await verify(`${header}.${body}.c2ln`), null);
    assert.equal(auth.calls.length, 0);
  });
});
