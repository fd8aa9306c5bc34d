import assert from 'node:assert/strict';
import { EnvError } from './env.ts';
import { apiKeysOf, inlineJwksOf } from './api_keys.ts';

Deno.test('apiKeysOf() reads every key of the JSON object Supabase injects', () => {
  const text = JSON.stringify({ default: 'sb_secret_a', ci: 'sb_secret_b', empty: '', n: 1 });
  assert.deepEqual(apiKeysOf('SUPABASE_SECRET_KEYS', text), ['sb_secret_a', 'sb_secret_b']);
  assert.deepEqual(apiKeysOf('SUPABASE_SECRET_KEYS', '"sb_secret_c"'), ['sb_secret_c']);
  assert.deepEqual(apiKeysOf('SUPABASE_SECRET_KEYS', undefined), []);
});

Deno.test('apiKeysOf() and inlineJwksOf() name the variable when the JSON has the wrong shape', () => {
  assert.throws(
    () => apiKeysOf('SUPABASE_PUBLISHABLE_KEYS', '["sb_publishable_x"]'),
    (e: unknown) =>
      e instanceof EnvError && e.variable === 'SUPABASE_PUBLISHABLE_KEYS' &&
      e.message.includes('SUPABASE_PUBLISHABLE_KEYS'),
  );
  assert.throws(
    () => inlineJwksOf('SUPABASE_JWKS', '{"nokeys": 1}'),
    (e: unknown) => e instanceof EnvError && e.variable === 'SUPABASE_JWKS',
  );
  assert.equal(inlineJwksOf('SUPABASE_JWKS', '{"keys": []}'), undefined);
});
