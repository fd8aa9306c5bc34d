/**
 * The project's API keys and signing keys as hosted Supabase injects them into Edge Functions:
 * `SUPABASE_SECRET_KEYS` and `SUPABASE_PUBLISHABLE_KEYS` are JSON objects of key name → key
 * (`{"default": "sb_secret_…"}`), `SUPABASE_JWKS` is the project's JSON Web Key Set. Both functions
 * read them through here, so they parse them alike.
 * @module
 */
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import { EnvError } from './env.ts';

/** A variable whose value must be JSON (checked by `readEnv`, parsed by the functions below). */
export const jsonText = z.string().refine((s) => {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}, 'must be JSON');

/**
 * The keys in `SUPABASE_SECRET_KEYS` / `SUPABASE_PUBLISHABLE_KEYS`: every non-empty string value
 * of the JSON object (a bare JSON string counts as one key). Unset → none.
 * @param variable the variable's name, for the error.
 * @param text its value, already checked to be JSON.
 * @throws {EnvError} naming `variable` when the JSON is neither an object nor a string.
 */
export function apiKeysOf(variable: string, text: string | undefined): string[] {
  if (!text) return [];
  const value = JSON.parse(text) as unknown;
  if (typeof value === 'string') return value === '' ? [] : [value];
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    return Object.values(value).filter((v): v is string => typeof v === 'string' && v !== '');
  }
  throw new EnvError(
    variable,
    `environment variable ${variable} must be a JSON object of keys, e.g. {"default": "sb_…"}`,
  );
}

/**
 * A key resolver for an inline JWKS (`SUPABASE_JWKS`); undefined when unset or empty.
 * @param variable the variable's name, for the error.
 * @param text its value, already checked to be JSON.
 * @throws {EnvError} naming `variable` when it is not `{"keys": [...]}`.
 */
export function inlineJwksOf(
  variable: string,
  text: string | undefined,
): JWTVerifyGetKey | undefined {
  if (!text) return undefined;
  const set = JSON.parse(text) as JSONWebKeySet | null;
  if (!set || typeof set !== 'object' || !Array.isArray(set.keys)) {
    throw new EnvError(variable, `environment variable ${variable} must be {"keys": [...]}`);
  }
  return set.keys.length ? createLocalJWKSet(set) : undefined;
}
