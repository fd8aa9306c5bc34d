/**
 * The signing key is made once per file and then reused; processes racing to make it agree on
 * one key; what is published holds no private part.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify, SignJWT } from 'jose';
import { loadSigningKey } from './signing_key.ts';

Deno.test('loadSigningKey() makes an ES256 key once, keeps it private, and loads it again', async () => {
  const dir = await Deno.makeTempDir({ prefix: 'qh-key-' });
  try {
    const file = join(dir, 'auth', 'signing_key.json');
    const a = await loadSigningKey(file);
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
    const b = await loadSigningKey(file);
    assert.equal(b.kid, a.kid);
    assert.match(a.kid, /^[0-9a-f-]{36}$/);
    assert.deepEqual(a.jwks, { keys: [a.publicJwk] });
    assert.equal('d' in a.publicJwk, false);
    assert.equal(a.publicJwk.alg, 'ES256');
    // What one signs, the other's public key verifies.
    const token = await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'ES256' })
      .setExpirationTime('1m').sign(a.privateKey);
    await jwtVerify(token, createLocalJWKSet(b.jwks));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test('loadSigningKey() called at once from many places yields one key', async () => {
  const dir = await Deno.makeTempDir({ prefix: 'qh-key-' });
  try {
    const file = join(dir, 'signing_key.json');
    const keys = await Promise.all(Array.from({ length: 8 }, () => loadSigningKey(file)));
    assert.equal(new Set(keys.map((k) => k.kid)).size, 1);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ['signing_key.json']);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test('loadSigningKey() refuses a file that is not an ES256 private key, naming it', async () => {
  const dir = await Deno.makeTempDir({ prefix: 'qh-key-' });
  try {
    const file = join(dir, 'signing_key.json');
    await Deno.writeTextFile(file, JSON.stringify({ kid: 'k', private: { kty: 'oct', k: 'x' } }));
    await assert.rejects(loadSigningKey(file), new RegExp(`${file} is not an ES256`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
