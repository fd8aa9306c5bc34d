/**
 * Installs the local pg_net stand-in (local/stack/sql/pg_net.sql) and the grants hosted Supabase
 * gives when pg_net is created (local/stack/sql/pg_net_grants.sql). What the platform does on a
 * hosted project, so it runs as the superuser. Its worker is local/stack/pg_net_worker.ts.
 * @module
 */
import { join } from 'node:path';
import type postgres from 'postgres';
import { ROOT } from './config.ts';

const SQL_DIR = join(ROOT, 'local', 'stack', 'sql');

/** What installPgNetStandIn() did. */
export type PgNetInstall = 'installed' | 'present';

/**
 * Creates schema `net` with pg_net's interface in the database `superuserSql` is connected to,
 * unless a `net` schema (the real pg_net or this stand-in) is there already.
 * @param superuserSql a connection as a superuser (the platform installs extensions, not users).
 */
export async function installPgNetStandIn(superuserSql: postgres.Sql): Promise<PgNetInstall> {
  const [{ present }] = await superuserSql<{ present: boolean }[]>`
    select to_regnamespace('net') is not null as present`;
  if (present) return 'present';
  const script = await Deno.readTextFile(join(SQL_DIR, 'pg_net.sql'));
  const grants = await Deno.readTextFile(join(SQL_DIR, 'pg_net_grants.sql'));
  await superuserSql.begin(async (tx) => {
    await tx.unsafe(script);
    await tx.unsafe(grants);
  });
  return 'installed';
}
