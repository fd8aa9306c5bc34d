/**
 * The database connection Edge Functions share: a postgres.js client on `SUPABASE_DB_URL`
 * (Supabase documents this variable for functions), created on first use and reused by every
 * later request of the same isolate. `prepare: false` because Supabase's pooler (Supavisor, in
 * transaction mode) cannot keep prepared statements.
 * @module
 */
import postgres from 'postgres';

/** The postgres.js client type used across functions. */
export type Sql = postgres.Sql;

const clients = new Map<string, Sql>();

/** Options for {@link getSql}. */
export interface SqlOptions {
  /** Pool size; small, since an Edge Function isolate serves few requests at a time. */
  max?: number;
  /** Seconds an idle connection is kept. */
  idleTimeout?: number;
}

/**
 * Returns the shared client for `url`, creating it on first call.
 * @param url a `postgres://` URL, normally `SUPABASE_DB_URL`.
 */
export function getSql(url: string, options: SqlOptions = {}): Sql {
  let sql = clients.get(url);
  if (!sql) {
    sql = postgres(url, {
      prepare: false,
      max: options.max ?? 3,
      idle_timeout: options.idleTimeout ?? 20,
      connect_timeout: 10,
      onnotice: () => {},
      connection: { application_name: 'queue-health-edge' },
    });
    clients.set(url, sql);
  }
  return sql;
}

/** Closes every shared client (tests, shutdown). */
export async function closeAllSql(): Promise<void> {
  const all = [...clients.values()];
  clients.clear();
  await Promise.all(all.map((sql) => sql.end({ timeout: 5 })));
}
