/**
 * The database's clock, for tests that pass a sampler or capture its `p_now`.
 *
 * @module
 */
import type { Sql } from './db.ts';

/** The database clock as text (microseconds kept), to pass as `p_now`. */
export async function dbNow(sql: Sql): Promise<string> {
  const [{ now }] = await sql<{ now: string }[]>`select clock_timestamp()::text as now`;
  return now;
}

/** `t` plus `seconds`, computed by the database (microseconds kept). */
export async function later(sql: Sql, t: string, seconds: number): Promise<string> {
  const [{ at }] = await sql<{ at: string }[]>`
    select (${t}::text::timestamptz + make_interval(secs => ${seconds}))::text as at`;
  return at;
}
