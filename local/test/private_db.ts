/**
 * A database of a test's own on the test cluster, for tests that need what the shared database
 * must not have running (a pg_net worker of their own, no listener of anybody else's): created
 * next to DATABASE_URL's database and dropped at the end.
 *
 * Building the platform in it is what Supabase does for a hosted project, so that setup connects
 * as the platform superuser (`QH_SUPERUSER_URL`); everything else runs as `postgres`.
 * @module
 */
import { readFileSync } from 'node:fs';
import postgres from 'postgres';
import { applyMigrations, applyPlatformSql } from '../stack/migrate.ts';
import { databaseUrl, superuserUrl } from './db.ts';

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

/**
 * Builds the hosted platform in `db` (as the superuser) and enables pg_net as a user does on
 * hosted Supabase: `create extension pg_net` as postgres.
 */
export async function installPgNet(db: PrivateDatabase): Promise<void> {
  await applyPlatformSql(db.superuserUrl);
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    await sql`create extension if not exists pg_net`;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** The hosted platform and the project's migrations, as `supabase db push` would apply them. */
export async function applyProject(db: PrivateDatabase): Promise<void> {
  await applyPlatformSql(db.superuserUrl);
  await applyMigrations(db.url, { stamp: false });
}

/**
 * A private database built like a hosted project that has Supabase Queues enabled: the hosted
 * platform, then the pgmq test fixture handed to postgres as the extension is on hosted Supabase.
 * The project's migrations are not applied: the test applies them its own way.
 */
export async function createHostedDatabase(prefix: string): Promise<PrivateDatabase> {
  const db = await createPrivateDatabase(prefix);
  await applyPlatformSql(db.superuserUrl);
  const admin = postgres(db.superuserUrl, { max: 1, onnotice: () => {} });
  try {
    for (
      const file of ['supabase/tests/fixtures/pgmq.sql', 'local/stack/sql/pgmq_after_create.sql']
    ) {
      await admin.unsafe(readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8'));
    }
  } finally {
    await admin.end({ timeout: 1 });
  }
  return db;
}
