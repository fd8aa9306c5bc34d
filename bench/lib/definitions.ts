/**
 * Function definitions for A/B benchmarks: one as a frozen release migration wrote it, one as the
 * catalog holds it today, each a `create or replace` to swap in with `sql.unsafe`.
 * @module
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Sql } from './context.ts';

const MIGRATIONS = join(fileURLToPath(new URL('../..', import.meta.url)), 'supabase', 'migrations');

/**
 * The `create or replace` of `queue_health.<name>` as `migration` (a file name in
 * supabase/migrations) created it: from `create function queue_health.<name>(` to its body's end.
 */
export async function releasedDefinition(migration: string, name: string): Promise<string> {
  const file = join(MIGRATIONS, migration);
  const text = await Deno.readTextFile(file);
  const start = text.indexOf(`create function queue_health.${name}(`);
  const end = text.indexOf('$$;', text.indexOf('as $$', start) + 5);
  if (start < 0 || end < 0) throw new Error(`no ${name} in ${file}`);
  return 'create or replace function' + text.slice(start + 'create function'.length, end + 3);
}

/** Today's definition of a function (`signature` as regprocedure reads it), from the catalog. */
export async function currentDefinition(sql: Sql, signature: string): Promise<string> {
  const [{ def }] = await sql<{ def: string }[]>`
    select pg_get_functiondef(${signature}::regprocedure) as def`;
  return def;
}
