import assert from 'node:assert/strict';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
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
