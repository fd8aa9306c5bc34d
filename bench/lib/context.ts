/**
 * What every scenario gets: the database, the sizes for this run (quick or full), the report, and
 * helpers to detect what is installed and to keep the bench's own data apart (everything it
 * creates is named `qhbench_*` and dropped at the end).
 *
 * @module
 */
import postgres from 'postgres';
import { Report } from './report.ts';

/** A postgres.js client. */
export type Sql = postgres.Sql;

/** The stack's database, as Supabase's local stack names it. */
export const DEFAULT_DATABASE_URL = 'postgres://postgres:postgres@127.0.0.1:54322/postgres';

/** Prefix of every object the bench creates (queues, schemas, project, databases). */
export const PREFIX = 'qhbench';

/** The bench's project: every `qhbench%` queue is mapped to it, so alerts stay in it. */
export const PROJECT = 'qhbench';

/** The pg-boss schema the bench uses. */
export const PGBOSS_SCHEMA = 'qhbench_pgboss';

/** Sizes of one run. */
export interface Sizes {
  /** pgmq grid for scenario 1: [queues, messages per queue]. */
  pgmqGrid: [number, number][];
  /** pg-boss grid for scenario 1. */
  pgbossGrid: [number, number][];
  /** Alternating rounds of A/B comparisons in scenario 1 and 6. */
  rounds: number;
  /** Scenario 2: seconds per measured window, and off/10 s/1 s rounds. */
  overheadWindowS: number;
  overheadRounds: number;
  /** Scenario 2: idle pgmq queues present while measuring, so capture does real work. */
  overheadBackgroundQueues: number;
  /**
   * Scenario 2: the duty window, seconds of the workload with captures every
   * `overheadSteadyIntervalS` as the pg_cron job runs them (a run_captures() session a minute, so
   * whole minutes; the re-reads of unchanged queues included).
   */
  overheadSteadyS: number;
  overheadSteadyIntervalS: number;
  /** Scenario 3: trials. */
  alertTrials: number;
  /** Scenario 4: captures observed by the LISTEN subscriber, and by the dashboard page. */
  liveSamples: number;
  liveBrowserSamples: number;
  /** Scenario 5: simulated days, queues. */
  storageDays: number;
  storageQueues: number;
  /** Scenario 6: queues present, requests and concurrency of the HTTP load. */
  readQueues: number;
  httpRequests: number;
  httpConcurrency: number;
  /** Scenario 7: notifications delivered, Slack webhooks, email and webhook channels. */
  deliveryNotifications: number;
  deliverySlackChannels: number;
}

/** Full run: a grid that fits a 2-core machine in minutes (not the billion-row cross product). */
export const FULL: Sizes = {
  pgmqGrid: [[10, 1_000], [10, 100_000], [10, 1_000_000], [100, 1_000], [100, 10_000], [
    100,
    100_000,
  ], [1000, 1_000]],
  pgbossGrid: [[10, 1_000], [10, 100_000], [100, 10_000], [1000, 1_000]],
  rounds: 5,
  overheadWindowS: 10,
  overheadRounds: 5,
  overheadBackgroundQueues: 100,
  overheadSteadyS: 180,
  overheadSteadyIntervalS: 10,
  alertTrials: 5,
  liveSamples: 30,
  liveBrowserSamples: 20,
  storageDays: 21,
  storageQueues: 10,
  readQueues: 1000,
  httpRequests: 400,
  httpConcurrency: 8,
  deliveryNotifications: 60,
  deliverySlackChannels: 3,
};

/** Quick run (`--quick`): tiny sizes, well under a minute; only checks that everything runs. */
export const QUICK: Sizes = {
  pgmqGrid: [[3, 100], [10, 1_000]],
  pgbossGrid: [[3, 100]],
  rounds: 2,
  overheadWindowS: 1.5,
  overheadRounds: 1,
  overheadBackgroundQueues: 5,
  overheadSteadyS: 2,
  overheadSteadyIntervalS: 1,
  alertTrials: 1,
  liveSamples: 3,
  liveBrowserSamples: 2,
  storageDays: 3,
  storageQueues: 2,
  readQueues: 20,
  httpRequests: 40,
  httpConcurrency: 4,
  deliveryNotifications: 4,
  deliverySlackChannels: 2,
};

/** What a scenario gets. */
export interface Context {
  url: string;
  sql: Sql;
  quick: boolean;
  sizes: Sizes;
  report: Report;
  /** Wall-clock deadline (ms since epoch) for the whole run; loops stop when it passes. */
  deadline: number;
  /** Opens another client on the same database (close it yourself). */
  connect(max?: number, name?: string): Sql;
  /** True when a function with this signature exists, e.g. `queue_health.capture(timestamptz)`. */
  hasFunction(signature: string): Promise<boolean>;
  /** True when a table or view exists. */
  hasRelation(name: string): Promise<boolean>;
  /** Progress line on stderr. */
  log(message: string): void;
}

/** A postgres.js client for the bench: NOTICEs silenced, named so it shows in pg_stat_activity. */
export function connectTo(
  url: string,
  max = 2,
  name = 'qhbench',
  onNotice: (message: string) => void = () => {},
): Sql {
  return postgres(url, {
    max,
    onnotice: (n) => onNotice(String(n.message)),
    connection: { application_name: name },
    idle_timeout: 30,
    connect_timeout: 10,
  });
}

/** Builds the context. */
export function createContext(url: string, quick: boolean, report: Report, deadline: number) {
  const sql = connectTo(url, 4);
  const ctx: Context = {
    url,
    sql,
    quick,
    sizes: quick ? QUICK : FULL,
    report,
    deadline,
    connect: (max = 2, name = 'qhbench') => connectTo(url, max, name),
    async hasFunction(signature) {
      const [{ ok }] = await sql`select to_regprocedure(${signature}) is not null as ok`;
      return ok;
    },
    async hasRelation(name) {
      const [{ ok }] = await sql`select to_regclass(${name}) is not null as ok`;
      return ok;
    },
    log: (m) => console.error(`${new Date().toISOString().slice(11, 19)} ${m}`),
  };
  return ctx;
}

/** Milliseconds an async function takes (wall clock). */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

/** Sleeps. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Creates the bench project and maps every `qhbench%` queue to it (so the default rules of other
 * projects, and their channels, never see the bench's queues). Idempotent.
 */
export async function ensureBenchProject(ctx: Context): Promise<boolean> {
  if (!(await ctx.hasRelation('queue_health.project'))) return false;
  await ctx
    .sql`insert into queue_health.project (id, name) values (${PROJECT}, 'Queue Health benchmark')
    on conflict (id) do nothing`;
  if (await ctx.hasRelation('queue_health.project_queue_map')) {
    const [{ n }] = await ctx.sql`select count(*)::int as n from queue_health.project_queue_map
      where project_id = ${PROJECT}`;
    if (n === 0) {
      await ctx
        .sql`insert into queue_health.project_queue_map (project_id, source, queue_pattern, priority)
        values (${PROJECT}, null, 'qhbench%', -1000000)`;
    }
  }
  return true;
}

/** Drops every pgmq queue named `qhbench%` (fixture or real pgmq). */
export async function dropBenchPgmqQueues(sql: Sql, like = 'qhbench%'): Promise<number> {
  const [{ ok }] = await sql`select to_regclass('pgmq.meta') is not null as ok`;
  if (!ok) return 0;
  const names = await sql<{ queue_name: string }[]>`
    select queue_name::text from pgmq.meta where queue_name like ${like}`;
  for (const { queue_name } of names) await sql`select pgmq.drop_queue(${queue_name})`;
  return names.length;
}

/** Removes the bench's rows from the shared queue_health tables (metrics, registry, alerts). */
export async function forgetBenchQueues(ctx: Context): Promise<void> {
  const sql = ctx.sql;
  for (const table of ['queue_health.metric', 'queue_health.metric_1m', 'queue_health.metric_1h']) {
    if (await ctx.hasRelation(table)) {
      await sql`delete from ${sql(table.split('.')[0])}.${sql(table.split('.')[1])}
        where queue_name like 'qhbench%' or source_schema like 'qhbench%'`;
    }
  }
  if (await ctx.hasRelation('queue_health.alert')) {
    await sql`delete from queue_health.alert where queue_name like 'qhbench%' or project_id = ${PROJECT}`;
  }
  if (await ctx.hasRelation('queue_health.queue')) {
    await sql`delete from queue_health.queue where queue_name like 'qhbench%' or source_schema like 'qhbench%'`;
  }
}

/** Removes everything the bench created in the shared database. */
export async function cleanupAll(ctx: Context): Promise<void> {
  await dropBenchPgmqQueues(ctx.sql);
  await ctx.sql`drop schema if exists ${ctx.sql(PGBOSS_SCHEMA)} cascade`;
  await forgetBenchQueues(ctx);
  if (await ctx.hasRelation('queue_health.project')) {
    await ctx.sql`delete from queue_health.project where id = ${PROJECT}`;
  }
}

/**
 * Loads the pgmq test fixture when neither pgmq nor the fixture is installed (the test runner
 * loads it too). Returns true when it did, so the caller can remove it again.
 */
export async function ensurePgmqFixture(ctx: Context): Promise<boolean> {
  if (await ctx.hasRelation('pgmq.meta')) return false;
  const { loadPgmqFixture } = await import('../../local/test/fixture.ts');
  await loadPgmqFixture(ctx.sql);
  ctx.log('loaded the pgmq test fixture (supabase/tests/fixtures/pgmq.sql)');
  return true;
}

/** Drops the fixture again if the bench loaded it and nothing but the bench's queues used it. */
export async function removePgmqFixture(ctx: Context): Promise<void> {
  const [{ n }] = await ctx.sql<{ n: number }[]>`
    select count(*)::int as n from pgmq.meta where queue_name not like 'qhbench%'`;
  if (n === 0) await ctx.sql`drop schema pgmq cascade`;
}
