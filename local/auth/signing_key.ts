/**
 * The local Auth stand-in's signing key: one ES256 (P-256) key pair with a `kid`, as a Supabase
 * project with asymmetric JWT signing keys has. It is made once per state folder and kept in a
 * file (mode 0600), so access tokens stay valid when the functions server restarts; its public half
 * is what `/auth/v1/.well-known/jwks.json` publishes and what the local functions get as
 * `SUPABASE_JWKS`.
 *
 * The published key has the members Supabase Auth's JWKS gives an EC key: `kty`, `crv`, `x`, `y`,
 * `kid`, `alg`, `use: 'sig'`, `key_ops: ['verify']`, `ext: true` (supabase/auth
 * internal/api/jwks.go publishes each key's public part; HMAC keys are never published).
 * @module
 */
import { dirname } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, type JSONWebKeySet, type JWK } from 'jose';

/** A loaded signing key. */
export interface SigningKey {
  /** The key id, a UUID (as Supabase Auth's are); in every token's header. */
  kid: string;
  /** The private key, for jose's `SignJWT#sign`. */
  privateKey: CryptoKey;
  /** The public key as a JWK, with kid, alg, use, key_ops. */
  publicJwk: JWK;
  /** `{keys: [publicJwk]}`, the JWKS document. */
  jwks: JSONWebKeySet;
}

interface StoredKey {
  kid: string;
  private: JWK;
}

function publicOf(stored: StoredKey): JWK {
  const { kty, crv, x, y } = stored.private;
  return {
    kty,
    crv,
    x,
    y,
    kid: stored.kid,
    alg: 'ES256',
    use: 'sig',
    key_ops: ['verify'],
    ext: true,
  };
}

async function fromStored(stored: StoredKey, file: string): Promise<SigningKey> {
  const d = stored.private;
  if (
    typeof stored.kid !== 'string' || d?.kty !== 'EC' || d.crv !== 'P-256' ||
    typeof d.d !== 'string'
  ) {
    throw new Error(
      `${file} is not an ES256 (P-256) private key with a kid: delete it to make a new one`,
    );
  }
  const privateKey = await importJWK({ ...d, alg: 'ES256' }, 'ES256') as CryptoKey;
  const publicJwk = publicOf(stored);
  return { kid: stored.kid, privateKey, publicJwk, jwks: { keys: [publicJwk] } };
}

/**
 * Loads the signing key kept in `file`, making (and saving) a new one when there is none. Two
 * processes that start at once end up with the same key: the file appears whole and only once, and
 * the loser of the race reads the winner's.
 */
export async function loadSigningKey(file: string): Promise<SigningKey> {
  try {
    return await fromStored(JSON.parse(await Deno.readTextFile(file)) as StoredKey, file);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const stored: StoredKey = { kid: crypto.randomUUID(), private: await exportJWK(privateKey) };
  await Deno.mkdir(dirname(file), { recursive: true });
  // Written whole under a name of its own, then linked into place: a reader never sees half a
  // file, and link() fails when another process got there first.
  const tmp = `${file}.${Deno.pid}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(stored, null, 2) + '\n', { mode: 0o600 });
  try {
    await Deno.link(tmp, file);
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    return await loadSigningKey(file);
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
  return await fromStored(stored, file);
}
