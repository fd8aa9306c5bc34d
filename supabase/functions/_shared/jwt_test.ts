import assert from 'node:assert/strict';
import {
  createLocalJWKSet,
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  type JWK,
  SignJWT,
  UnsecuredJWT,
} from 'jose';
import { createJwtVerifier, jwksUrlFor, signJwt } from './jwt.ts';

const SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';

Deno.test('createJwtVerifier() accepts an HS256 token signed with the secret', async () => {
  const verify = createJwtVerifier({ secret: SECRET });
  const claims = await verify(await signJwt({ role: 'authenticated', sub: 'u1' }, SECRET));
  assert.equal(claims?.role, 'authenticated');
  assert.equal(claims?.sub, 'u1');
});

Deno.test('createJwtVerifier() refuses expired, wrong-secret, forged and unsigned tokens', async () => {
  const verify = createJwtVerifier({ secret: SECRET });
  const expired = await signJwt({ role: 'service_role' }, SECRET, -60);
  const wrongSecret = await signJwt({ role: 'service_role' }, SECRET + '-other');
  const good = await signJwt({ role: 'anon' }, SECRET);
  const [h, , s] = good.split('.');
  const forgedBody = btoa(JSON.stringify({ role: 'service_role' })).replace(/=+$/, '')
    .replace(/\+/g, '-').replace(/\//g, '_');
  const forged = `${h}.${forgedBody}.${s}`;
  const unsigned = new UnsecuredJWT({ role: 'service_role' }).encode();
  for (const token of [expired, wrongSecret, forged, unsigned, 'not-a-jwt', '']) {
    assert.equal(await verify(token), null, token);
  }
});

Deno.test('createJwtVerifier() verifies asymmetric tokens against a JWKS, not the secret', async () => {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
  const verify = createJwtVerifier({ secret: SECRET, jwks: createLocalJWKSet({ keys: [jwk] }) });
  const token = await new SignJWT({ role: 'authenticated', sub: 'u2' })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setExpirationTime('1h')
    .sign(privateKey);
  assert.equal((await verify(token))?.sub, 'u2');
  const other = await generateKeyPair('ES256');
  const foreign = await new SignJWT({ role: 'authenticated', sub: 'u2' })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setExpirationTime('1h')
    .sign(other.privateKey);
  assert.equal(await verify(foreign), null);
  // Without a JWKS, an asymmetric token is refused rather than checked against the secret.
  assert.equal(await createJwtVerifier({ secret: SECRET })(token), null);
});

Deno.test("jwksUrlFor() points at Supabase Auth's well-known JWKS", () => {
  assert.equal(
    jwksUrlFor('https://abc.supabase.co').href,
    'https://abc.supabase.co/auth/v1/.well-known/jwks.json',
  );
});

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function signingKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256' } };
}

function es256(key: SigningKey, claims: Record<string, unknown> = { role: 'authenticated' }) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: key.kid })
    .setExpirationTime('5m')
    .sign(key.privateKey);
}

/** A JWKS endpoint on 127.0.0.1 (Supabase Auth's, in production) whose keys a test can rotate. */
function jwksServer(keys: JWK[]) {
  const state = { keys, fetches: 0 };
  const server = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen: () => {} }, () => {
    state.fetches++;
    return Response.json({ keys: state.keys });
  });
  return {
    state,
    url: `http://127.0.0.1:${server.addr.port}/auth/v1/.well-known/jwks.json`,
    stop: () => server.shutdown(),
  };
}

Deno.test('a key rotated in at the JWKS URL verifies once the cooldown since the last fetch passed', async () => {
  const [k1, k2] = await Promise.all([signingKey('k1'), signingKey('k2')]);
  const jwks = jwksServer([k1.jwk]);
  try {
    const verify = createJwtVerifier({ jwksUrl: jwks.url, jwksCooldownMs: 1_500 });
    assert.equal((await verify(await es256(k1)))?.role, 'authenticated');
    assert.equal(jwks.state.fetches, 1);

    jwks.state.keys = [k1.jwk, k2.jwk]; // Auth publishes the new key and signs with it
    // Within the cooldown an unknown kid is refused without hammering the endpoint …
    assert.equal(await verify(await es256(k2)), null);
    assert.equal(jwks.state.fetches, 1);
    // … after it, the unknown kid makes the verifier fetch the set again, and the token verifies.
    await new Promise((r) => setTimeout(r, 1_600));
    assert.equal((await verify(await es256(k2)))?.role, 'authenticated');
    assert.equal(jwks.state.fetches, 2);
    // Known kids are served from the refreshed cache.
    assert.equal((await verify(await es256(k1)))?.role, 'authenticated');
    assert.equal(jwks.state.fetches, 2);
  } finally {
    await jwks.stop();
  }
});

Deno.test('an inline JWKS is tried first and an unknown kid falls through to the JWKS URL', async () => {
  const [inline, published, unknown] = await Promise.all([
    signingKey('inline'),
    signingKey('published'),
    signingKey('unknown'),
  ]);
  const jwks = jwksServer([published.jwk]);
  try {
    const verify = createJwtVerifier({
      jwks: createLocalJWKSet({ keys: [inline.jwk] }),
      jwksUrl: jwks.url,
      jwksCooldownMs: 0,
    });
    assert.equal((await verify(await es256(inline)))?.role, 'authenticated');
    assert.equal(jwks.state.fetches, 0, 'a key known inline needs no fetch');
    assert.equal((await verify(await es256(published)))?.role, 'authenticated');
    assert.equal(jwks.state.fetches, 1);
    assert.equal(await verify(await es256(unknown)), null);
    // A token naming the inline kid but signed by another key does not fall through.
    const forged = await new SignJWT({ role: 'service_role' })
      .setProtectedHeader({ alg: 'ES256', kid: 'inline' })
      .setExpirationTime('5m')
      .sign(unknown.privateKey);
    assert.equal(await verify(forged), null);
  } finally {
    await jwks.stop();
  }
});

Deno.test('without a secret, HS256 tokens go to the fallback; with one, never', async () => {
  const seen: string[] = [];
  const hs256Fallback = (token: string) => {
    seen.push(token);
    return Promise.resolve({ role: 'authenticated', sub: 'via-fallback' });
  };
  const token = await signJwt({ role: 'authenticated', sub: 'u1' }, SECRET);
  const viaFallback = createJwtVerifier({ hs256Fallback });
  assert.equal((await viaFallback(token))?.sub, 'via-fallback');
  assert.deepEqual(seen, [token]);
  const withSecret = createJwtVerifier({ secret: SECRET, hs256Fallback });
  assert.equal((await withSecret(token))?.sub, 'u1');
  assert.equal(await withSecret(await signJwt({ role: 'anon' }, SECRET + '-other')), null);
  assert.deepEqual(seen, [token], 'a configured secret decides alone');
});

Deno.test('a token without exp is refused: HS256, asymmetric, and never handed to the fallback', async () => {
  const noExp = (claims: Record<string, unknown>) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuedAt()
      .sign(new TextEncoder().encode(SECRET));
  const verify = createJwtVerifier({ secret: SECRET });
  assert.equal(await verify(await noExp({ role: 'service_role' })), null, 'HS256 without exp');
  assert.equal(
    await verify(
      await new SignJWT({ role: 'service_role', exp: 'never' as unknown as number })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new TextEncoder().encode(SECRET)),
    ),
    null,
    'a non-numeric exp',
  );
  assert.equal(
    (await verify(await signJwt({ role: 'service_role' }, SECRET)))?.role,
    'service_role',
  );

  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwks = createLocalJWKSet({
    keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }],
  });
  const viaJwks = createJwtVerifier({ jwks });
  const es = (exp?: number) => {
    const t = new SignJWT({ role: 'service_role' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' });
    return (exp ? t.setExpirationTime(exp) : t).sign(privateKey);
  };
  assert.equal(await viaJwks(await es()), null, 'ES256 without exp');
  assert.equal(
    (await viaJwks(await es(Math.floor(Date.now() / 1000) + 60)))?.role,
    'service_role',
  );

  const seen: string[] = [];
  const fallback = createJwtVerifier({
    hs256Fallback: (token) => {
      seen.push(token);
      return Promise.resolve({ role: 'authenticated', sub: 'x' });
    },
  });
  assert.equal(await fallback(await noExp({ role: 'authenticated', sub: 'x' })), null);
  assert.deepEqual(seen, [], 'the fallback never saw it');
});
