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
import { z } from 'zod';
import { apiKeysOf, inlineJwksOf, jsonText } from '../_shared/api_keys.ts';
import { getSql } from '../_shared/db.ts';
import { EnvError, type EnvSource, readEnv } from '../_shared/env.ts';
import { createJwtVerifier, jwksUrlFor } from '../_shared/jwt.ts';
import { createLogger, type Logger } from '../_shared/log.ts';
import type { DbRole } from './auth.ts';
import { createAuthUserVerifier } from './auth_user.ts';
import type { Deps } from './handler.ts';

const secret = z.string().min(32, 'must be at least 32 characters');

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

/**
 * The project's API keys, accepted as they are: the new `sb_secret_…` / `sb_publishable_…` keys
 * are not JWTs, and the legacy anon / service-role keys are accepted even when the JWT secret is
 * not configured.
 */
export function staticKeysFrom(env: z.infer<z.ZodObject<typeof envShape>>): Map<string, DbRole> {
  const keys = new Map<string, DbRole>();
  for (const key of apiKeysOf('SUPABASE_PUBLISHABLE_KEYS', env.SUPABASE_PUBLISHABLE_KEYS)) {
    keys.set(key, 'anon');
  }
  if (env.SUPABASE_ANON_KEY) keys.set(env.SUPABASE_ANON_KEY, 'anon');
  for (const key of apiKeysOf('SUPABASE_SECRET_KEYS', env.SUPABASE_SECRET_KEYS)) {
    keys.set(key, 'service_role');
  }
  if (env.SUPABASE_SERVICE_ROLE_KEY) keys.set(env.SUPABASE_SERVICE_ROLE_KEY, 'service_role');
  return keys;
}

/** Startup warnings already logged by this process (each at most once). */
const processWarnings = new Set<string>();

/** What {@link depsFromEnv} may be given besides the environment (tests). */
export interface DepsOptions {
  /** Log sink; defaults to stdout. */
  logger?: Logger;
  /** HTTP for Supabase Auth's `/auth/v1/user`; defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Startup warnings already given; defaults to this process's, so each is logged once. */
  warned?: Set<string>;
}

/**
 * Builds the handler's dependencies from the environment.
 *
 * HS256 tokens are verified locally with `QUEUE_HEALTH_JWT_SECRET` / `SUPABASE_JWT_SECRET`. Without
 * either, and with `SUPABASE_URL`, they are verified by Supabase Auth (`GET /auth/v1/user`, see
 * auth_user.ts), and a warning says so once per process; without `SUPABASE_URL` they are refused
 * (warned likewise).
 * @throws {EnvError} naming the first missing or malformed variable.
 */
export function depsFromEnv(source?: EnvSource, options: DepsOptions = {}): Deps {
  const env = readEnv(envShape, source);
  const logger = options.logger ?? createLogger({ fn: 'queue-health' });
  const warned = options.warned ?? processWarnings;
  const warnOnce = (event: string, fields: Record<string, unknown>) => {
    if (warned.has(event)) return;
    warned.add(event);
    logger.warn(event, fields);
  };
  const jwtSecret = env.QUEUE_HEALTH_JWT_SECRET ?? env.SUPABASE_JWT_SECRET;
  const jwks = inlineJwksOf('SUPABASE_JWKS', env.SUPABASE_JWKS);
  const jwksUrl = env.QUEUE_HEALTH_JWKS_URL ??
    (env.SUPABASE_URL ? jwksUrlFor(env.SUPABASE_URL).href : undefined);
  if (!jwtSecret && !jwks && !jwksUrl) {
    throw new EnvError(
      'SUPABASE_JWT_SECRET',
      'environment variable SUPABASE_JWT_SECRET (or QUEUE_HEALTH_JWT_SECRET, SUPABASE_JWKS, SUPABASE_URL) is required to verify tokens',
    );
  }
  const publishable = apiKeysOf('SUPABASE_PUBLISHABLE_KEYS', env.SUPABASE_PUBLISHABLE_KEYS);
  let hs256Fallback;
  if (!jwtSecret && env.SUPABASE_URL) {
    hs256Fallback = createAuthUserVerifier({
      supabaseUrl: env.SUPABASE_URL,
      apikey: publishable[0] ?? env.SUPABASE_ANON_KEY,
      fetch: options.fetch,
      logger,
    });
    warnOnce('hs256_tokens_verified_by_auth', {
      message:
        'QUEUE_HEALTH_JWT_SECRET and SUPABASE_JWT_SECRET are unset: HS256 user tokens are verified by calling Supabase Auth (GET /auth/v1/user) and cached until they expire; set QUEUE_HEALTH_JWT_SECRET to verify them locally',
    });
  } else if (!jwtSecret) {
    warnOnce('hs256_tokens_refused', {
      message:
        'QUEUE_HEALTH_JWT_SECRET, SUPABASE_JWT_SECRET and SUPABASE_URL are unset: HS256 user tokens cannot be verified and get 401',
    });
  }
  return {
    sql: getSql(env.SUPABASE_DB_URL),
    verifyJwt: createJwtVerifier({ secret: jwtSecret, jwks, jwksUrl, hs256Fallback }),
    staticKeys: staticKeysFrom(env),
    logger,
    now: () => new Date(),
    evaluateEveryMs: env.QUEUE_HEALTH_EVALUATE_EVERY_MS ?? 5_000,
  };
}
