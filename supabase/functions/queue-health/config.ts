/**
 * queue-health's environment: which variables it reads and how they become its dependencies.
 *
 * Hosted Supabase injects `SUPABASE_URL`, `SUPABASE_DB_URL`, the legacy `SUPABASE_ANON_KEY` /
 * `SUPABASE_SERVICE_ROLE_KEY`, and on newer projects `SUPABASE_JWKS`, `SUPABASE_PUBLISHABLE_KEYS`
 * and `SUPABASE_SECRET_KEYS`. Custom secrets may not start with `SUPABASE_`, so a project that
 * still signs user tokens with the legacy HS256 secret sets `QUEUE_HEALTH_JWT_SECRET`; the local
 * stack sets `SUPABASE_JWT_SECRET`.
 * @module
 */
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import { getSql } from '../_shared/db.ts';
import { EnvError, type EnvSource, readEnv } from '../_shared/env.ts';
import { createJwtVerifier, jwksUrlFor } from '../_shared/jwt.ts';
import { createLogger } from '../_shared/log.ts';
import type { DbRole } from './auth.ts';
import type { Deps } from './handler.ts';

const secret = z.string().min(32, 'must be at least 32 characters');
const jsonText = z.string().refine((s) => {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}, 'must be JSON');

/** The variables queue-health reads. */
export const envShape = {
  SUPABASE_DB_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL'),
  SUPABASE_URL: z.url().optional(),
  SUPABASE_JWT_SECRET: secret.optional(),
  QUEUE_HEALTH_JWT_SECRET: secret.optional(),
  SUPABASE_JWKS: jsonText.optional(),
  QUEUE_HEALTH_JWKS_URL: z.url().optional(),
  SUPABASE_ANON_KEY: z.string().optional(),
  SUPABASE_SERVICE_ROLE_KEY: z.string().optional(),
  SUPABASE_PUBLISHABLE_KEYS: jsonText.optional(),
  SUPABASE_SECRET_KEYS: jsonText.optional(),
  QUEUE_HEALTH_EVALUATE_EVERY_MS: z.coerce.number().int().min(0).optional(),
};

function keysOf(variable: string, text: string | undefined): string[] {
  if (!text) return [];
  const value = JSON.parse(text) as unknown;
  if (typeof value === 'string') return [value];
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    return Object.values(value).filter((v): v is string => typeof v === 'string' && v !== '');
  }
  throw new EnvError(variable, `environment variable ${variable} must be a JSON object of keys`);
}

/**
 * The project's API keys, accepted as they are: the new `sb_secret_…` / `sb_publishable_…` keys
 * are not JWTs, and the legacy anon / service-role keys are accepted even when the JWT secret is
 * not configured.
 */
export function staticKeysFrom(env: z.infer<z.ZodObject<typeof envShape>>): Map<string, DbRole> {
  const keys = new Map<string, DbRole>();
  for (const key of keysOf('SUPABASE_PUBLISHABLE_KEYS', env.SUPABASE_PUBLISHABLE_KEYS)) {
    keys.set(key, 'anon');
  }
  if (env.SUPABASE_ANON_KEY) keys.set(env.SUPABASE_ANON_KEY, 'anon');
  for (const key of keysOf('SUPABASE_SECRET_KEYS', env.SUPABASE_SECRET_KEYS)) {
    keys.set(key, 'service_role');
  }
  if (env.SUPABASE_SERVICE_ROLE_KEY) keys.set(env.SUPABASE_SERVICE_ROLE_KEY, 'service_role');
  return keys;
}

function jwksOf(text: string | undefined): JWTVerifyGetKey | undefined {
  if (!text) return undefined;
  const set = JSON.parse(text) as JSONWebKeySet;
  if (!set || !Array.isArray(set.keys)) {
    throw new EnvError(
      'SUPABASE_JWKS',
      'environment variable SUPABASE_JWKS must be {"keys": [...]}',
    );
  }
  return set.keys.length ? createLocalJWKSet(set) : undefined;
}

/**
 * Builds the handler's dependencies from the environment.
 * @throws {EnvError} naming the first missing or malformed variable.
 */
export function depsFromEnv(source?: EnvSource): Deps {
  const env = readEnv(envShape, source);
  const jwtSecret = env.QUEUE_HEALTH_JWT_SECRET ?? env.SUPABASE_JWT_SECRET;
  const jwks = jwksOf(env.SUPABASE_JWKS);
  const jwksUrl = env.QUEUE_HEALTH_JWKS_URL ??
    (env.SUPABASE_URL ? jwksUrlFor(env.SUPABASE_URL).href : undefined);
  if (!jwtSecret && !jwks && !jwksUrl) {
    throw new EnvError(
      'SUPABASE_JWT_SECRET',
      'environment variable SUPABASE_JWT_SECRET (or QUEUE_HEALTH_JWT_SECRET, SUPABASE_JWKS, SUPABASE_URL) is required to verify tokens',
    );
  }
  return {
    sql: getSql(env.SUPABASE_DB_URL),
    verifyJwt: createJwtVerifier({ secret: jwtSecret, jwks, jwksUrl }),
    staticKeys: staticKeysFrom(env),
    logger: createLogger({ fn: 'queue-health' }),
    now: () => new Date(),
    evaluateEveryMs: env.QUEUE_HEALTH_EVALUATE_EVERY_MS ?? 5_000,
  };
}
