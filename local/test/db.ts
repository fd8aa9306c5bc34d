/**
 * Database access for Deno tests: which database to use and a small postgres.js client for it.
 *
 * The test runner sets `DATABASE_URL` to the local stack's database; when you run tests yourself,
 * point it at your own scratch database.
 *
 * @module
 */
import postgres from 'postgres';
import { z } from 'zod';

/** The local stack's database, as Supabase's local stack names it. */
export const DEFAULT_DATABASE_URL = 'postgres://postgres:postgres@127.0.0.1:54322/postgres';

const databaseUrlSchema = z
  .string()
  .regex(/^postgres(ql)?:\/\/\S+$/, {
    message: 'DATABASE_URL must be a postgres:// or postgresql:// URL',
  });

/**
 * The database tests run against: env `DATABASE_URL`, else {@link DEFAULT_DATABASE_URL}.
 *
 * @throws Error naming `DATABASE_URL` when it is set but not a postgres URL.
 */
export function databaseUrl(): string {
  const value = Deno.env.get('DATABASE_URL');
  if (value === undefined || value.trim() === '') return DEFAULT_DATABASE_URL;
  const parsed = databaseUrlSchema.safeParse(value.trim());
  if (!parsed.success) {
    throw new Error(`${parsed.error.issues[0].message}: got ${JSON.stringify(value)}`);
  }
  return parsed.data;
}

/**
 * The platform superuser's URL for the test database (`QH_SUPERUSER_URL`, set by the test runner
 * to the local stack's supabase_admin). Tests use it only to do what the platform does on hosted
 * Supabase — install an extension, inject a fault into Realtime's own function — and act as
 * `postgres` for everything else.
 *
 * @throws Error when QH_SUPERUSER_URL is not set.
 */
export function superuserUrl(): string {
  const value = Deno.env.get('QH_SUPERUSER_URL');
  if (!value) {
    throw new Error(
      'QH_SUPERUSER_URL is not set: this test needs the platform superuser (npm test sets it)',
    );
  }
  return value;
}

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** Connection URL; defaults to {@link databaseUrl}(). */
  url?: string;
  /** Pool size; defaults to 2 (tests should not hog the database's connections). */
  max?: number;
  /** `application_name` of the connections, to find them in pg_stat_activity. */
  applicationName?: string;
  /** Called with the message of each NOTICE or WARNING the server sends (default: ignored). */
  onNotice?: (message: string) => void;
  /**
   * Whether postgres.js prepares its statements (default true). `false` as the Edge Functions
   * connect (through the transaction pooler), for clients handed to a function's handler.
   */
  prepare?: boolean;
}

/** A postgres.js client as returned by {@link connect}. */
export type Sql = postgres.Sql;

/**
 * A postgres.js client for tests: a small pool, NOTICEs silenced. Close it with `await sql.end()`
 * at the end of the test, or Deno's resource sanitizer fails the test.
 *
 * @example
 * ```ts
 * const sql = connect();
 * try {
 *   const [{ n }] = await sql`select 1 as n`;
 * } finally {
 *   await sql.end();
 * }
 * ```
 */
export function connect(options: ConnectOptions = {}): Sql {
  return postgres(options.url ?? databaseUrl(), {
    max: options.max ?? 2,
    prepare: options.prepare ?? true,
    onnotice: (notice) => options.onNotice?.(String(notice.message)),
    connection: { application_name: options.applicationName ?? 'queue-health-test' },
  });
}
