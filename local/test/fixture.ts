/**
 * Loads the pgmq test fixture (`supabase/tests/fixtures/pgmq.sql`) into a database, for Deno
 * integration tests that need pgmq queues. The test runner loads it into the stack's database
 * already; loading it again is harmless (the SQL is idempotent).
 *
 * @module
 */
import type { Sql } from './db.ts';

/** Where the fixture's SQL lives. */
export const PGMQ_FIXTURE_URL = new URL('../../supabase/tests/fixtures/pgmq.sql', import.meta.url);

/** Options of {@link loadPgmqFixture}. */
export interface LoadPgmqFixtureOptions {
  /**
   * Drop schema `pgmq` (every fixture queue and its messages) before loading. Refused when the
   * real pgmq extension is installed. Default false.
   */
  recreate?: boolean;
}

/**
 * Installs the pgmq fixture into the database `sql` points at (schema `pgmq`).
 *
 * @throws Error when the real pgmq extension is installed there: the fixture never replaces it.
 */
export async function loadPgmqFixture(
  sql: Sql,
  options: LoadPgmqFixtureOptions = {},
): Promise<void> {
  const [{ installed }] = await sql<{ installed: boolean }[]>`
    select exists (select 1 from pg_extension where extname = 'pgmq') as installed`;
  if (installed) {
    throw new Error(
      'the pgmq extension is installed in this database: refusing to load the pgmq test fixture',
    );
  }
  const text = await Deno.readTextFile(PGMQ_FIXTURE_URL);
  await sql.begin(async (tx) => {
    // Serialise concurrent loaders (parallel test files): DDL races otherwise.
    await tx`select pg_advisory_xact_lock(hashtext('queue_health.pgmq_fixture'))`;
    if (options.recreate) await tx`drop schema if exists pgmq cascade`;
    await tx.unsafe(text);
  });
}

/** The two pgmq table layouts the fixture can build. */
export type PgmqLayout = '1.4.4' | '1.5.1';

/** Options of {@link createPgmqQueue}. */
export interface CreatePgmqQueueOptions {
  /** Table layout: '1.5.1' (default) adds the `headers` column, '1.4.4' does not. */
  layout?: PgmqLayout;
  /** 'standard' (default), 'unlogged', or 'partitioned' (shaped like a pg_partman queue). */
  kind?: 'standard' | 'unlogged' | 'partitioned';
}

/**
 * Creates a fixture queue in the given layout. The layout is a transaction-local setting
 * (`pgmq_fixture.version`), so this is safe on a pooled client.
 */
export async function createPgmqQueue(
  sql: Sql,
  name: string,
  options: CreatePgmqQueueOptions = {},
): Promise<void> {
  const layout = options.layout ?? '1.5.1';
  const kind = options.kind ?? 'standard';
  await sql.begin(async (tx) => {
    await tx`select set_config('pgmq_fixture.version', ${layout}, true)`;
    if (kind === 'unlogged') await tx`select pgmq.create_unlogged(${name})`;
    else if (kind === 'partitioned') {
      await tx`select pgmq._fixture_create_partitioned_like(${name})`;
    } else await tx`select pgmq.create(${name})`;
  });
}
