import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { closeAllSql } from '../_shared/db.ts';
import { EnvError } from '../_shared/env.ts';
import { signJwt } from '../_shared/jwt.ts';
import { createLogger } from '../_shared/log.ts';
import { depsFromEnv } from './config.ts';

const SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';
const DB = 'postgresql://postgres:postgres@127.0.0.1:1/postgres';

function variableOf(env: Record<string, string>): string {
  try {
    depsFromEnv(env);
  } catch (error) {
    assert.ok(error instanceof EnvError, String(error));
    assert.ok(error.message.includes(error.variable));
    return error.variable;
  }
  throw new Error('expected an EnvError');
}

Deno.test('depsFromEnv() names the missing or malformed variable', async () => {
  try {
    assert.equal(variableOf({}), 'SUPABASE_DB_URL');
    assert.equal(variableOf({ SUPABASE_DB_URL: 'mysql://x' }), 'SUPABASE_DB_URL');
    assert.equal(variableOf({ SUPABASE_DB_URL: DB }), 'SUPABASE_JWT_SECRET');
    assert.equal(
      variableOf({ SUPABASE_DB_URL: DB, SUPABASE_JWT_SECRET: 'short' }),
      'SUPABASE_JWT_SECRET',
    );
    assert.equal(
      variableOf({ SUPABASE_DB_URL: DB, SUPABASE_URL: 'http://x', SUPABASE_SECRET_KEYS: '{' }),
      'SUPABASE_SECRET_KEYS',
    );
    assert.equal(
      variableOf({ SUPABASE_DB_URL: DB, SUPABASE_JWKS: '{"nokeys":1}' }),
      'SUPABASE_JWKS',
    );
    assert.equal(
      variableOf({
        SUPABASE_DB_URL: DB,
        SUPABASE_JWT_SECRET: SECRET,
        QUEUE_HEALTH_EVALUATE_EVERY_MS: 'soon',
      }),
      'QUEUE_HEALTH_EVALUATE_EVERY_MS',
    );
  } finally {
    await closeAllSql();
  }
});

Deno.test('depsFromEnv() verifies HS256 with either secret variable and ES256 with SUPABASE_JWKS', async () => {
  try {
    const local = depsFromEnv({ SUPABASE_DB_URL: DB, SUPABASE_JWT_SECRET: SECRET });
    assert.equal((await local.verifyJwt(await signJwt({ role: 'anon' }, SECRET)))?.role, 'anon');
    const hosted = depsFromEnv({ SUPABASE_DB_URL: DB, QUEUE_HEALTH_JWT_SECRET: SECRET });
    assert.equal((await hosted.verifyJwt(await signJwt({ role: 'anon' }, SECRET)))?.role, 'anon');

    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256' };
    const deps = depsFromEnv({
      SUPABASE_DB_URL: DB,
      SUPABASE_URL: 'https://example.supabase.co',
      SUPABASE_JWKS: JSON.stringify({ keys: [jwk] }),
    });
    const token = await new SignJWT({ role: 'service_role' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k' })
      .setExpirationTime('5m')
      .sign(privateKey);
    assert.equal((await deps.verifyJwt(token))?.role, 'service_role');
  } finally {
    await closeAllSql();
  }
});

Deno.test('depsFromEnv() accepts the project API keys as they are', async () => {
  try {
    const deps = depsFromEnv({
      SUPABASE_DB_URL: DB,
      SUPABASE_URL: 'https://example.supabase.co',
      SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: 'sb_publishable_abc' }),
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: 'sb_secret_xyz' }),
      SUPABASE_SERVICE_ROLE_KEY: 'legacy.service.key',
    });
    assert.equal(deps.staticKeys.get('sb_publishable_abc'), 'anon');
    assert.equal(deps.staticKeys.get('sb_secret_xyz'), 'service_role');
    assert.equal(deps.staticKeys.get('legacy.service.key'), 'service_role');
  } finally {
    await closeAllSql();
  }
});

Deno.test('depsFromEnv() warns once when HS256 tokens will be verified by Auth, or cannot be', async () => {
  try {
    const lines: string[] = [];
    const logger = createLogger({ fn: 'queue-health' }, (line) => lines.push(line));
    const warned = new Set<string>();
    const viaAuth = { SUPABASE_DB_URL: DB, SUPABASE_URL: 'https://example.supabase.co' };
    depsFromEnv(viaAuth, { logger, warned });
    depsFromEnv(viaAuth, { logger, warned });
    const events = () => lines.map((l) => JSON.parse(l)).map((l) => `${l.level} ${l.event}`);
    assert.deepEqual(events(), ['warn hs256_tokens_verified_by_auth']);
    assert.match(JSON.parse(lines[0]).message, /QUEUE_HEALTH_JWT_SECRET/);

    lines.length = 0;
    depsFromEnv({ ...viaAuth, QUEUE_HEALTH_JWT_SECRET: SECRET }, { logger, warned: new Set() });
    assert.deepEqual(events(), [], 'nothing to say with a secret');

    depsFromEnv({
      SUPABASE_DB_URL: DB,
      SUPABASE_JWKS: '{"keys": []}',
      QUEUE_HEALTH_JWKS_URL: 'https://x.example/jwks',
    }, {
      logger,
      warned,
    });
    assert.deepEqual(events(), ['warn hs256_tokens_refused']);
  } finally {
    await closeAllSql();
  }
});
