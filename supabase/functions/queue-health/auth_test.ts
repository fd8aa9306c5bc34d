import assert from 'node:assert/strict';
import { createJwtVerifier, signJwt } from '../_shared/jwt.ts';
import { type AuthDeps, resolveCaller, sha256Hex } from './auth.ts';

const SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';
const TOKEN = 'qhst_' + 'ab'.repeat(32);
const USER = '6f1c1a3e-8f0a-4c41-9d0e-0b7d1b0c2a11';

async function deps(): Promise<AuthDeps & { lookups: string[] }> {
  const valid = await sha256Hex(TOKEN);
  const lookups: string[] = [];
  return {
    lookups,
    verifyJwt: createJwtVerifier({ secret: SECRET }),
    lookupScrapeToken: (hash) => {
      lookups.push(hash);
      return Promise.resolve(hash === valid ? 'acme' : null);
    },
  };
}

function req(headers: Record<string, string>, query = ''): [Request, URL] {
  const url = new URL(`http://localhost/functions/v1/queue-health${query}`);
  return [new Request(url, { headers }), url];
}

Deno.test('resolveCaller() maps a JWT role claim to the Postgres role', async () => {
  const d = await deps();
  for (const role of ['anon', 'authenticated', 'service_role']) {
    const jwt = await signJwt({ role, sub: USER }, SECRET);
    const caller = await resolveCaller(...req({ authorization: `Bearer ${jwt}` }), d);
    assert.equal(caller?.kind === 'jwt' && caller.role, role);
  }
});

Deno.test('resolveCaller() refuses unknown roles, user tokens without a uuid sub, other schemes', async () => {
  const d = await deps();
  const admin = await signJwt({ role: 'postgres' }, SECRET);
  const noSub = await signJwt({ role: 'authenticated' }, SECRET);
  const good = await signJwt({ role: 'service_role' }, SECRET);
  assert.equal(await resolveCaller(...req({ authorization: `Bearer ${admin}` }), d), null);
  assert.equal(await resolveCaller(...req({ authorization: `Bearer ${noSub}` }), d), null);
  assert.equal(await resolveCaller(...req({ authorization: `Basic ${good}` }), d), null);
  assert.equal(await resolveCaller(...req({}), d), null);
});

Deno.test('resolveCaller() uses the apikey header as the bearer only without Authorization', async () => {
  const d = await deps();
  const anon = await signJwt({ role: 'anon' }, SECRET);
  const service = await signJwt({ role: 'service_role' }, SECRET);
  const caller = await resolveCaller(...req({ apikey: anon }), d);
  assert.equal(caller?.role, 'anon');
  const both = await resolveCaller(...req({ apikey: anon, authorization: `Bearer ${service}` }), d);
  assert.equal(both?.role, 'service_role');
  const publishable = await resolveCaller(
    ...req({ apikey: 'sb_publishable_x', authorization: `Bearer ${service}` }),
    d,
  );
  assert.equal(publishable?.role, 'service_role');
  assert.equal(await resolveCaller(...req({ apikey: 'garbage' }), d), null);
});

Deno.test('resolveCaller() accepts a scrape token in the header or ?token=, looked up by hash', async () => {
  const d = await deps();
  const header = await resolveCaller(...req({ authorization: `Bearer ${TOKEN}` }), d);
  assert.deepEqual(header, { kind: 'scrape_token', role: 'service_role', projectId: 'acme' });
  const query = await resolveCaller(...req({}, `?token=${TOKEN}`), d);
  assert.equal(query?.kind, 'scrape_token');
  assert.ok(d.lookups.every((h) => /^[0-9a-f]{64}$/.test(h)), 'only hashes are looked up');
  const unknown = 'qhst_' + 'cd'.repeat(32);
  assert.equal(await resolveCaller(...req({ authorization: `Bearer ${unknown}` }), d), null);
  assert.equal(await resolveCaller(...req({}, '?token=qhst_short'), d), null);
  const jwt = await signJwt({ role: 'service_role' }, SECRET);
  assert.equal(
    await resolveCaller(...req({ authorization: `Bearer ${jwt}` }, `?token=${TOKEN}`), d),
    null,
    'two different credentials are refused',
  );
});

Deno.test('resolveCaller() accepts configured API keys as they are, and nothing close to them', async () => {
  const d = await deps();
  d.staticKeys = new Map([['sb_secret_xyz', 'service_role'], ['sb_publishable_abc', 'anon']]);
  const secret = await resolveCaller(...req({ authorization: 'Bearer sb_secret_xyz' }), d);
  assert.equal(secret?.role, 'service_role');
  const publishable = await resolveCaller(...req({ apikey: 'sb_publishable_abc' }), d);
  assert.equal(publishable?.role, 'anon');
  assert.equal(await resolveCaller(...req({ authorization: 'Bearer sb_secret_xy' }), d), null);
});
