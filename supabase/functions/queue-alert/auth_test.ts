import assert from 'node:assert/strict';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createJwtVerifier } from '../_shared/jwt.ts';
import { authorize, constantTimeEqual } from './auth.ts';

const jwtSecret = 'super-secret-jwt-token-with-at-least-32-characters-long';
const verifyJwt = createJwtVerifier({ secret: jwtSecret });
const key = new TextEncoder().encode(jwtSecret);
const sign = (role: string, secret = key) =>
  new SignJWT({ role }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('1h')
    .sign(secret);

const req = (headers: Record<string, string>) =>
  new Request('http://x/functions/v1/queue-alert', { method: 'POST', headers });

Deno.test('the service role key, a service_role JWT and the dedicated secret are accepted', async () => {
  const serviceRoleKey = await sign('service_role');
  const config = { serviceRoleKey, verifyJwt, alertSecret: 'a-dedicated-secret-123' };
  assert.equal(
    await authorize(req({ authorization: `Bearer ${serviceRoleKey}` }), config),
    'service_role_key',
  );
  const other = await sign('service_role');
  assert.equal(
    await authorize(req({ authorization: `Bearer ${other}x` }), config),
    null,
    'tampered token',
  );
  const fresh = await new SignJWT({ role: 'service_role', sub: 'x' })
    .setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(key);
  assert.equal(
    await authorize(req({ authorization: `Bearer ${fresh}` }), config),
    'service_role_jwt',
  );
  const forever = await new SignJWT({ role: 'service_role', sub: 'x' })
    .setProtectedHeader({ alg: 'HS256' }).sign(key);
  assert.equal(
    await authorize(req({ authorization: `Bearer ${forever}` }), config),
    null,
    'a service_role JWT without exp is refused',
  );
  assert.equal(
    await authorize(req({ 'x-queue-health-secret': 'a-dedicated-secret-123' }), config),
    'secret',
  );
  assert.equal(
    await authorize(req({ authorization: 'Bearer a-dedicated-secret-123' }), config),
    'secret',
    'the database dispatch sends its key as a Bearer token',
  );
});

Deno.test('anon, authenticated, foreign-signed tokens, wrong secrets and no header are refused', async () => {
  const config = {
    serviceRoleKey: await sign('service_role'),
    verifyJwt,
    alertSecret: 'a-dedicated-secret-123',
  };
  assert.equal(
    await authorize(req({ authorization: `Bearer ${await sign('anon')}` }), config),
    null,
  );
  assert.equal(
    await authorize(req({ authorization: `Bearer ${await sign('authenticated')}` }), config),
    null,
  );
  const foreign = await sign('service_role', new TextEncoder().encode('x'.repeat(40)));
  assert.equal(await authorize(req({ authorization: `Bearer ${foreign}` }), config), null);
  assert.equal(await authorize(req({ 'x-queue-health-secret': 'wrong' }), config), null);
  assert.equal(await authorize(req({}), config), null);
  assert.equal(await authorize(req({ 'x-queue-health-secret': '' }), { verifyJwt }), null);
});

Deno.test('constantTimeEqual() compares strings of any length', async () => {
  assert.equal(await constantTimeEqual('abc', 'abc'), true);
  assert.equal(await constantTimeEqual('abc', 'abd'), false);
  assert.equal(await constantTimeEqual('abc', 'abcd'), false);
});

Deno.test('any key of SUPABASE_SECRET_KEYS is the service role; a near miss is not', async () => {
  const config = { secretKeys: ['sb_secret_aaaaaaaaaaaa', 'sb_secret_bbbbbbbbbbbb'] };
  assert.equal(
    await authorize(req({ authorization: 'Bearer sb_secret_bbbbbbbbbbbb' }), config),
    'secret_key',
  );
  assert.equal(
    await authorize(req({ authorization: 'Bearer sb_secret_aaaaaaaaaaaa' }), config),
    'secret_key',
  );
  assert.equal(
    await authorize(req({ authorization: 'Bearer sb_secret_aaaaaaaaaaa' }), config),
    null,
  );
  assert.equal(
    await authorize(req({ 'x-queue-health-secret': 'sb_secret_aaaaaaaaaaaa' }), config),
    null,
  );
  assert.equal(await authorize(req({ authorization: 'Bearer ' }), config), null);
});

Deno.test('without an Authorization header the apikey header is the credential', async () => {
  const config = { secretKeys: ['sb_secret_aaaaaaaaaaaa'], alertSecret: 'the-alert-secret-1234' };
  assert.equal(await authorize(req({ apikey: 'sb_secret_aaaaaaaaaaaa' }), config), 'secret_key');
  assert.equal(await authorize(req({ apikey: 'sb_secret_aaaaaaaaaaa' }), config), null);
  assert.equal(await authorize(req({ apikey: '' }), config), null);
  // With an Authorization header, it decides (as on Supabase): a good apikey does not rescue it.
  assert.equal(
    await authorize(
      req({ apikey: 'sb_secret_aaaaaaaaaaaa', authorization: 'Bearer sb_publishable_x' }),
      config,
    ),
    null,
  );
  assert.equal(
    await authorize(req({ apikey: 'sb_secret_aaaaaaaaaaaa', authorization: 'Basic eDp5' }), config),
    null,
  );
});

Deno.test('a service_role JWT signed with an asymmetric key of the JWKS is accepted, others not', async () => {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'es', alg: 'ES256' };
  const config = { verifyJwt: createJwtVerifier({ jwks: createLocalJWKSet({ keys: [jwk] }) }) };
  const es256 = (role: string) =>
    new SignJWT({ role }).setProtectedHeader({ alg: 'ES256', kid: 'es' }).setExpirationTime('5m')
      .sign(privateKey);
  assert.equal(
    await authorize(req({ authorization: `Bearer ${await es256('service_role')}` }), config),
    'service_role_jwt',
  );
  assert.equal(
    await authorize(req({ authorization: `Bearer ${await es256('authenticated')}` }), config),
    null,
  );
  // No HS256 secret configured: an HS256 service_role token is not accepted.
  assert.equal(
    await authorize(req({ authorization: `Bearer ${await sign('service_role')}` }), config),
    null,
  );
});
