import assert from 'node:assert/strict';
import { z } from 'zod';
import { EnvError, readEnv } from './env.ts';

Deno.test('readEnv() returns the typed values of the declared variables', () => {
  const env = readEnv({ A: z.string(), N: z.coerce.number().default(5) }, { A: 'x', OTHER: 'y' });
  assert.deepEqual(env, { A: 'x', N: 5 });
});

Deno.test('readEnv() names a missing variable', () => {
  assert.throws(
    () => readEnv({ SUPABASE_DB_URL: z.string() }, {}),
    (e: unknown) =>
      e instanceof EnvError && e.variable === 'SUPABASE_DB_URL' &&
      /SUPABASE_DB_URL is required/.test(e.message),
  );
});

Deno.test('readEnv() names an invalid variable and treats empty as unset', () => {
  assert.throws(
    () => readEnv({ PORT: z.coerce.number().int() }, { PORT: 'abc' }),
    /environment variable PORT is invalid/,
  );
  assert.deepEqual(readEnv({ X: z.string().optional() }, { X: '' }), { X: undefined });
});
