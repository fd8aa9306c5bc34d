/**
 * Settings of the local stack: ports, paths, credentials. Everything can be overridden with
 * environment variables (QH_*) so two checkouts can run side by side.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultStateDir } from './state_dir.ts';

/** The repository root (two levels above this file). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function port(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new Error(`${name} must be a TCP port number (1-65535): got '${raw}'`);
  }
  return n;
}

/** Supabase's local default JWT secret (the same as `supabase start` uses). */
export const JWT_SECRET = Deno.env.get('QH_JWT_SECRET') ??
  'super-secret-jwt-token-with-at-least-32-characters-long';

export const DB_PORT = port('QH_DB_PORT', 54322);
export const API_PORT = port('QH_API_PORT', 54321);
export const RECEIVERS_PORT = port('QH_RECEIVERS_PORT', 54324);
/** Where the example tests (examples/sveltekit, examples/plain-html) serve them: API port + 4. */
export const EXAMPLE_PORT = port('QH_EXAMPLE_PORT', API_PORT + 4);

/**
 * Where the stack keeps its cluster, logs and pid files: `.stack/` in the checkout (git-ignored),
 * or /var/tmp/queue-health/… when the postgres OS user cannot reach the checkout (state_dir.ts).
 */
export const STATE_DIR = resolve(Deno.env.get('QH_STATE_DIR') || defaultStateDir(ROOT));
export const PG_BIN = Deno.env.get('QH_PG_BIN') ?? '/usr/lib/postgresql/15/bin';

export const paths = {
  pgData: join(STATE_DIR, 'postgres', 'data'),
  pgSocketDir: join(STATE_DIR, 'postgres', 'run'),
  pgLog: join(STATE_DIR, 'logs', 'postgres.log'),
  serverLog: join(STATE_DIR, 'logs', 'functions.log'),
  serverPid: join(STATE_DIR, 'run', 'functions.pid'),
  demoPid: join(STATE_DIR, 'run', 'demo.pid'),
  ownerFile: join(STATE_DIR, 'postgres', 'created-by-queue-health'),
  migrationsStamp: join(STATE_DIR, 'postgres', 'migrations.sha256'),
  logs: join(STATE_DIR, 'logs'),
  platformLib: join(STATE_DIR, 'postgres', 'lib'),
  /** The local Auth stand-in's ES256 signing key (local/auth/signing_key.ts). */
  authSigningKey: join(STATE_DIR, 'auth', 'signing_key.json'),
  run: join(STATE_DIR, 'run'),
};

/** The local cluster's URL (user postgres / password postgres, as Supabase's local stack). */
export const LOCAL_DB_URL = `postgresql://postgres:postgres@127.0.0.1:${DB_PORT}/postgres`;

/**
 * The platform's superuser, as on hosted Supabase: it owns the extensions and the Supabase
 * schemas; `postgres`, which runs our migrations and tests, is not a superuser.
 */
export const SUPERUSER = 'supabase_admin';

/**
 * The superuser's URL for the database everything uses: the local cluster's `supabase_admin`, or
 * `QH_SUPERUSER_URL` with DATABASE_URL (null when that is unset: the platform is then assumed to
 * be there already, as on a real Supabase database).
 */
export function superuserUrl(url = databaseUrl()): string | null {
  if (usesExternalDatabase()) return Deno.env.get('QH_SUPERUSER_URL') || null;
  const u = new URL(url);
  u.username = SUPERUSER;
  u.password = 'postgres';
  return u.toString();
}

/** The database everything uses: DATABASE_URL when set, else the local cluster. */
export function databaseUrl(): string {
  return Deno.env.get('DATABASE_URL') || LOCAL_DB_URL;
}

/** True when the user brought their own database (the stack then starts no cluster). */
export function usesExternalDatabase(): boolean {
  return Boolean(Deno.env.get('DATABASE_URL'));
}

/** The database URL with the password hidden, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable URL>';
  }
}

/** Adds sslmode=disable, which the Supabase CLI needs to talk to a plain local PostgreSQL. */
export function withSslDisabled(url: string): string {
  const u = new URL(url);
  if (!u.searchParams.has('sslmode')) u.searchParams.set('sslmode', 'disable');
  return u.toString();
}

export const API_URL = `http://127.0.0.1:${API_PORT}`;
export const RECEIVERS_URL = `http://127.0.0.1:${RECEIVERS_PORT}`;

/**
 * How the local stack's database wakes queue-alert (QH_DISPATCH): 'pg_net' (the default, as on
 * hosted Supabase: net.http_post, sent by the pg_net stand-in's worker) or 'notify' (the older
 * local-only path: NOTIFY queue_health_dispatch, which the functions server LISTENs to).
 */
export function dispatchMode(): 'pg_net' | 'notify' {
  const raw = Deno.env.get('QH_DISPATCH') ?? '';
  if (raw === '' || raw === 'pg_net') return 'pg_net';
  if (raw === 'notify') return 'notify';
  throw new Error(`QH_DISPATCH must be 'pg_net' or 'notify': got '${raw}'`);
}

/**
 * Lifetime of the access tokens the local Auth stand-in issues, in seconds (QH_AUTH_JWT_EXP, as
 * GoTrue's JWT_EXP): default 3600, as on hosted Supabase; 30 to 604800.
 */
export function authAccessTokenSeconds(): number {
  const raw = Deno.env.get('QH_AUTH_JWT_EXP') ?? '';
  if (raw === '') return 3600;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 30 || n > 604_800) {
    throw new Error(
      `QH_AUTH_JWT_EXP must be a whole number of seconds from 30 to 604800: got '${raw}'`,
    );
  }
  return n;
}

/** URL of queue-alert on the local functions server. */
export const QUEUE_ALERT_URL = `${API_URL}/functions/v1/queue-alert`;
