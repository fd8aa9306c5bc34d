/**
 * A database of a test's own on the test cluster, for tests that need what the shared database
 * must not have running (a pg_net worker of their own, no listener of anybody else's): created
 * next to DATABASE_URL's database and dropped at the end.
 *
 * Creating the database and installing extensions into it is what the platform does on hosted
 * Supabase, so that setup connects as the superuser: `QH_SUPERUSER_DATABASE_URL` when set, else
 * DATABASE_URL (the local stack's `postgres`).
 * @module
 */
import postgres from 'postgres';
import { applyMigrations, bootstrapSupabaseCompat } from '../stack/migrate.ts';
import { installPgNetStandIn } from '../stack/pg_net.ts';
import { databaseUrl } from './db.ts';

/** A private database; `drop()` it in a `finally`. */
export interface PrivateDatabase {
  name: string;
  /** URL of the database as DATABASE_URL's user. */
  url: string;
  /** URL of the database as the superuser (platform setup only). */
  superuserUrl: string;
  drop(): Promise<void>;
}

/** `url` with its database replaced by `name`. */
export function urlFor(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** The superuser's URL (platform setup). */
export function superuserUrl(): string {
  return Deno.env.get('QH_SUPERUSER_DATABASE_URL') || databaseUrl();
}

/** Creates an empty database named `<prefix>_<random>`. */
export async function createPrivateDatabase(prefix: string): Promise<PrivateDatabase> {
  const name = `${prefix}_${crypto.randomUUID().replaceAll('-', '').slice(0, 8)}`;
  const admin = postgres(superuserUrl(), { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end({ timeout: 1 });
  }
  return {
    name,
    url: urlFor(databaseUrl(), name),
    superuserUrl: urlFor(superuserUrl(), name),
    async drop() {
      const sql = postgres(superuserUrl(), { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`drop database if exists ${name} with (force)`);
      } finally {
        await sql.end({ timeout: 1 });
      }
    },
  };
}

/** Installs the pg_net stand-in into `db` as the superuser (what enabling pg_net does). */
export async function installPgNet(db: PrivateDatabase): Promise<void> {
  const sql = postgres(db.superuserUrl, { max: 1, onnotice: () => {} });
  try {
    await installPgNetStandIn(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** The Supabase stand-ins and the project's migrations, as `supabase db push` would apply them. */
export async function applyProject(db: PrivateDatabase): Promise<void> {
  await bootstrapSupabaseCompat(db.superuserUrl);
  await applyMigrations(db.url, { stamp: false });
}
