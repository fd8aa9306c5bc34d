/**
 * The SQL queue-health runs, and the transaction it runs in. Every request's queries run in one
 * transaction as the caller's Postgres role with the JWT claims set, exactly as PostgREST does
 * (`set local role …; select set_config('request.jwt.claims', …, true)`), so row-level security
 * decides what comes back. Rows are read as `to_jsonb(...)`, so bigint counts arrive as numbers.
 * @module
 */
import type postgres from 'postgres';
import type { Sql } from '../_shared/db.ts';
import type { DbRole } from './auth.ts';

/** A transaction handle. */
export type Tx = postgres.TransactionSql;

/** A JSON object as read from the database. */
export type Row = Record<string, unknown>;

/** The role and claims a transaction runs with. */
export interface DbSession {
  /** Postgres role to `set local role` to. */
  role: DbRole;
  /** JWT claims for `request.jwt.claims` (what auth.uid(), auth.role(), auth.jwt() read). */
  claims: Record<string, unknown>;
}

const ROLES: readonly DbRole[] = ['anon', 'authenticated', 'service_role'];

/** SQLSTATEs that mean "this part is not installed, or not yours to read": the part is empty. */
const OPTIONAL_CODES = new Set([
  '42P01', // undefined_table
  '42883', // undefined_function
  '42703', // undefined_column
  '3F000', // invalid_schema_name
  '42501', // insufficient_privilege
]);

const NOT_ALLOWED: ReadonlySet<string> = new Set(['42501']);

/** Error code of a postgres.js error, if any. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Runs `fn` in a transaction as `session.role` with its claims, a statement timeout and nothing
 * else: the transaction is read-only unless `write` is set.
 */
export function inSession<T>(
  sql: Sql,
  session: DbSession,
  fn: (tx: Tx) => Promise<T>,
  options: { statementTimeoutMs?: number } = {},
): Promise<T> {
  if (!ROLES.includes(session.role)) throw new Error(`unknown role ${session.role}`);
  return sql.begin(async (tx) => {
    // The role is one of three fixed names (checked above): `set role` takes no parameters.
    await tx.unsafe(`set local role ${session.role}`);
    // The pre-PostgREST-9 per-claim settings win in some auth.uid()/auth.role() versions: clear.
    await tx`
      select set_config('request.jwt.claims', ${JSON.stringify(session.claims)}, true),
             set_config('request.jwt.claim.sub', '', true),
             set_config('request.jwt.claim.role', '', true),
             set_config('statement_timeout', ${String(options.statementTimeoutMs ?? 5000)}, true)
    `;
    return await fn(tx);
  }) as Promise<T>;
}

/**
 * Runs one optional part of a response in a savepoint: when its view or function is missing
 * (that migration is not installed) or the caller may not read it, the part is `fallback`
 * instead of failing the request. `onSkip` hears which part and why.
 */
export async function optionalPart<T>(
  tx: Tx,
  part: string,
  run: (sp: Tx) => Promise<T>,
  fallback: T,
  onSkip: (part: string, code: string) => void,
  codes: ReadonlySet<string> = OPTIONAL_CODES,
): Promise<T> {
  try {
    return await tx.savepoint((sp) => run(sp as unknown as Tx)) as T;
  } catch (error) {
    const code = errorCode(error);
    if (code && codes.has(code)) {
      onSkip(part, code);
      return fallback;
    }
    throw error;
  }
}

/** Row filters of the health and Prometheus endpoints. */
export interface HealthFilters {
  /** The project asked for. */
  project?: string;
  /** The only project the caller may read at all (scrape tokens). */
  forcedProject?: string;
  /** pgmq or pgboss. */
  source?: string;
  /** A SQL LIKE pattern (escape `\`) on the queue name. */
  queueLike?: string;
  /** Queue statuses to keep. */
  statuses?: string[];
}

/** What the health endpoint reads, row by row. */
export interface HealthRows {
  /** Projects visible to the caller: `{id, name}`. */
  projects: Row[];
  /** queue_health.queue_status rows (plus `slo_burn_rates` where the queue has an objective). */
  queues: Row[];
  /** Firing alerts. */
  alerts: Row[];
  /**
   * Whitelisted fields of queue_health.capture_status (no error text) plus
   * `alerting_failing_projects`; null when not readable by the caller.
   */
  monitor: Row | null;
  /** queue_health.channel_health rows; null when alerting is not installed. */
  channels: Row[] | null;
}

const jsonRows = (rows: { row: Row }[]) => rows.map((r) => r.row);

/** Reads everything `GET /queue-health` reports, within the caller's session. */
export async function readHealth(
  tx: Tx,
  f: HealthFilters,
  onSkip: (part: string, code: string) => void,
): Promise<HealthRows> {
  const project = f.project ?? null;
  const forced = f.forcedProject ?? null;
  const source = f.source ?? null;
  const like = f.queueLike ?? null;
  const statuses = f.statuses?.join(',') ?? null;

  const projects = await optionalPart(
    tx,
    'projects',
    async (sp) =>
      jsonRows(
        await sp<{ row: Row }[]>`
        select jsonb_build_object('id', p.id, 'name', p.name) as row
        from queue_health.project p
        where (${project}::text is null or p.id = ${project})
          and (${forced}::text is null or p.id = ${forced})
        order by p.id`,
      ),
    [],
    onSkip,
  );

  // The queues are the report's core: a missing view is an error (503), but a role that may not
  // read them at all (anon) simply sees none.
  const queues = await optionalPart(
    tx,
    'queues',
    async (sp) =>
      jsonRows(
        await sp<{ row: Row }[]>`
      select to_jsonb(s) as row
      from queue_health.queue_status s
      where (${project}::text is null or s.project_id = ${project})
        and (${forced}::text is null or s.project_id = ${forced})
        and (${source}::text is null or s.source = ${source})
        and (${like}::text is null or s.queue_name like ${like})
        and (${statuses}::text is null or s.status::text = any (string_to_array(${statuses}, ',')))
      order by s.project_id, s.source, s.source_schema, s.queue_name
      limit 10000`,
      ),
    [],
    onSkip,
    NOT_ALLOWED,
  );

  await addBurnRates(tx, queues, onSkip);

  const alerts = await optionalPart(
    tx,
    'alerts',
    async (sp) =>
      jsonRows(
        await sp<{ row: Row }[]>`
        select to_jsonb(a) as row
        from queue_health.firing_alert a
        where (${project}::text is null or a.project_id = ${project})
          and (${forced}::text is null or a.project_id = ${forced})
          and (${source}::text is null or a.source is null or a.source = ${source})
          and (${like}::text is null or a.queue_name is null or a.queue_name like ${like})
        order by a.project_id, a.fired_at`,
      ),
    [],
    onSkip,
  );

  // Only the monitor's freshness fields: capture_status also carries error text, which is the
  // operator's (and a scrape token runs as the service role).
  const monitor = await optionalPart(
    tx,
    'monitor',
    async (sp) => {
      const rows = await sp<{ row: Row }[]>`
      select jsonb_build_object(
               'last_run_at', c.last_run_at, 'last_run_status', c.last_run_status,
               'last_success_at', c.last_success_at, 'lag_s', c.lag_s,
               'last_run_duration_ms', c.last_run_duration_ms, 'errors_last_hour', c.errors_last_hour,
               'healthy', coalesce(to_jsonb(c) -> 'captures_healthy', to_jsonb(c) -> 'healthy')) as row
      from queue_health.capture_status c limit 1`;
      return rows[0]?.row ?? null;
    },
    null,
    onSkip,
  );
  // Projects (within the filters, and the caller's RLS) whose alert evaluation is failing.
  const alerting = await optionalPart<number | null>(
    tx,
    'alerting',
    async (sp) => {
      const [row] = await sp<{ failing: number }[]>`
      select count(*)::int as failing
      from queue_health.alert_evaluation e
      where e.failing
        and (${project}::text is null or e.project_id = ${project})
        and (${forced}::text is null or e.project_id = ${forced})`;
      return row?.failing ?? 0;
    },
    null,
    onSkip,
  );
  if (monitor) monitor.alerting_failing_projects = alerting;

  const channels = await optionalPart<Row[] | null>(
    tx,
    'channels',
    async (sp) =>
      jsonRows(
        await sp<{ row: Row }[]>`
        select to_jsonb(h) as row
        from queue_health.channel_health h
        where (${project}::text is null or h.project_id = ${project})
          and (${forced}::text is null or h.project_id = ${forced})
        order by h.project_id, h.name`,
      ),
    null,
    onSkip,
  );

  return { projects, queues, alerts, monitor, channels };
}

/**
 * Adds `slo_burn_rates` ({"5m", "30m", "1h", "6h", "3d"}) to the queue rows that have a latency
 * objective, in one query for all of them (none when no queue has one). The 1-hour rate comes
 * with the row (queue_status.slo_burn_rate_1h). A database without the burn-rate function leaves
 * the rows as they are.
 */
export async function addBurnRates(
  tx: Tx,
  queues: Row[],
  onSkip: (part: string, code: string) => void,
): Promise<void> {
  const keyOf = (r: Row) => JSON.stringify([r.source, r.source_schema, r.queue_name]);
  const withObjective = queues.filter((q) =>
    q.slo_objective !== null && q.slo_objective !== undefined
  );
  if (withObjective.length === 0) return;
  const keys = withObjective.map((q) => ({
    source: q.source,
    source_schema: q.source_schema,
    queue_name: q.queue_name,
  }));
  type BurnRow = { source: string; source_schema: string; queue_name: string; rates: Row };
  const rows = await optionalPart<BurnRow[]>(
    tx,
    'slo',
    async (sp) => [
      ...await sp<BurnRow[]>`
      select k.source, k.source_schema, k.queue_name,
             jsonb_build_object(
               '5m', queue_health.slo_burn_rate(k.source, k.source_schema, k.queue_name, interval '5 minutes'),
               '30m', queue_health.slo_burn_rate(k.source, k.source_schema, k.queue_name, interval '30 minutes'),
               '6h', queue_health.slo_burn_rate(k.source, k.source_schema, k.queue_name, interval '6 hours'),
               '3d', queue_health.slo_burn_rate(k.source, k.source_schema, k.queue_name, interval '3 days')
             ) as rates
      from jsonb_to_recordset(${JSON.stringify(keys)}::text::jsonb)
        as k(source text, source_schema text, queue_name text)`,
    ],
    [],
    onSkip,
  );
  const byKey = new Map(rows.map((r) => [keyOf(r as unknown as Row), r.rates]));
  for (const q of withObjective) {
    const rates = byKey.get(keyOf(q));
    if (rates) q.slo_burn_rates = { ...rates, '1h': q.slo_burn_rate_1h ?? null };
  }
}

/** Parameters of a history read. */
export interface HistoryQuery {
  /** Exact queue name. */
  queue: string;
  /** Range start. */
  from: Date;
  /** Range end. */
  to: Date;
  /** pgmq or pgboss. */
  source?: string;
  /** Only this project. */
  project?: string;
}

/**
 * Reads `queue_health.queue_history(...)` rows within the caller's session; a role that may not
 * call it (anon) gets no rows.
 */
export async function readHistory(
  tx: Tx,
  q: HistoryQuery,
  onSkip: (part: string, code: string) => void,
): Promise<Row[]> {
  const project = q.project ?? null;
  return await optionalPart(
    tx,
    'history',
    async (sp) =>
      jsonRows(
        await sp<{ row: Row }[]>`
        select to_jsonb(h) as row
        from queue_health.queue_history(${q.queue}, ${q.from.toISOString()}::timestamptz,
                                        ${q.to.toISOString()}::timestamptz, ${
          q.source ?? null
        }::text) h
        where (${project}::text is null or h.project_id = ${project})
        order by h.project_id, h.source, h.source_schema, h.queue_name, h.bucket`,
      ),
    [],
    onSkip,
    NOT_ALLOWED,
  );
}

/**
 * Runs the monitor's dead man's switch, `queue_health.evaluate_monitor_stale()`, so a stalled
 * capture is noticed even when pg_cron stopped. Its own short transaction, as the service role,
 * with tight statement and lock timeouts: it serialises with other evaluations on an advisory
 * lock. Returns true once it ran.
 */
export async function evaluateMonitorStale(sql: Sql, timeoutMs = 2000): Promise<boolean> {
  return await inSession(
    sql,
    { role: 'service_role', claims: { role: 'service_role' } },
    async (tx) => {
      await tx`select set_config('lock_timeout', '500', true)`;
      await tx`select queue_health.evaluate_monitor_stale()`;
      return true;
    },
    { statementTimeoutMs: timeoutMs },
  );
}

/** The project of a valid scrape token, looked up as the service role. */
export async function lookupScrapeToken(sql: Sql, tokenHashHex: string): Promise<string | null> {
  return await inSession(
    sql,
    { role: 'service_role', claims: { role: 'service_role' } },
    async (tx) => {
      const [row] = await tx<{ project_id: string | null }[]>`
      select queue_health.scrape_token_project(${tokenHashHex}) as project_id`;
      return row?.project_id ?? null;
    },
  );
}
