/**
 * `npm run bench` (full) and `npm run bench -- --quick` (tiny sizes; what `npm test` runs).
 *
 * Runs the benchmark scenarios against DATABASE_URL (default: the local stack's database), prints
 * one Markdown table on stdout and writes the same results as JSON (bench/results/latest.json for
 * a full run; .test-artifacts/bench-quick.json for --quick unless --out is given). Every object
 * the bench creates is named `qhbench*` and removed at the end.
 *
 * Options: `--quick`, `--only=1,3,6` (scenario numbers), `--out=<file>`, `--budget-min=<n>` (stop
 * starting new measurements after n minutes; default 45, quick 2).
 *
 * Exit status: 0 when every scenario ran (goals missed or skipped are reported, not failed);
 * 1 when a scenario raised an error or the database could not be reached.
 *
 * @module
 */
import { paths, redactUrl } from '../local/stack/config.ts';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  cleanupAll,
  type Context,
  createContext,
  DEFAULT_DATABASE_URL,
  ensurePgmqFixture,
  removePgmqFixture,
} from './lib/context.ts';
import { Report } from './lib/report.ts';
import { captureCost } from './scenarios/capture_cost.ts';
import { overhead } from './scenarios/overhead.ts';
import { alertLatency } from './scenarios/alert_latency.ts';
import { liveLatency } from './scenarios/live_latency.ts';
import { storage } from './scenarios/storage.ts';
import { readPaths } from './scenarios/read_paths.ts';
import { delivery } from './scenarios/delivery.ts';
import { realtimeCost } from './scenarios/realtime_cost.ts';
import { signalsCost } from './scenarios/signals_cost.ts';
import { evaluationQuota } from './scenarios/evaluation_quota.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

const SCENARIOS: [number, string, (ctx: Context) => Promise<void>][] = [
  [1, 'capture cost', captureCost],
  [2, 'overhead on the queues', overhead],
  [3, 'alert latency', alertLatency],
  [4, 'live latency', liveLatency],
  [5, 'storage', storage],
  [6, 'read paths', readPaths],
  [7, 'delivery throughput', delivery],
  [8, 'realtime cost', realtimeCost],
  [9, 'signals cost', signalsCost],
  [10, 'evaluation at quota', evaluationQuota],
];

function arg(name: string): string | undefined {
  const hit = Deno.args.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (!hit) return undefined;
  return hit.includes('=') ? hit.slice(hit.indexOf('=') + 1) : '';
}

async function machine(ctx: Context) {
  const [{ version }] = await ctx.sql`select version()`;
  const settings = await ctx.sql<{ name: string; setting: string; unit: string | null }[]>`
    select name, setting, unit from pg_settings
    where name in ('shared_buffers', 'work_mem', 'max_connections', 'synchronous_commit',
      'max_locks_per_transaction')`;
  const mem = Deno.systemMemoryInfo();
  // Which migrations were measured: the stack records the hashes of what it applied.
  let migrations: unknown = null;
  try {
    migrations = JSON.parse(
      await Deno.readTextFile(paths.migrationsStamp),
    );
  } catch { /* another database, or a stack that does not record them */ }
  let commit: string | null = null;
  try {
    const out = await new Deno.Command('git', { args: ['rev-parse', 'HEAD'], cwd: ROOT }).output();
    commit = new TextDecoder().decode(out.stdout).trim() || null;
  } catch { /* no git */ }
  return {
    nproc: navigator.hardwareConcurrency,
    memory_gb: Math.round((mem.total / 2 ** 30) * 10) / 10,
    os: `${Deno.build.os} ${Deno.build.arch}`,
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    postgres: version,
    git_commit: commit,
    applied_migrations_sha256: migrations,
    postgres_settings: Object.fromEntries(
      settings.map((s) => [s.name, `${s.setting}${s.unit ? ` ${s.unit}` : ''}`]),
    ),
  };
}

/**
 * While the bench runs, a scheduled pg_cron capture would disturb the measurements ("monitoring
 * off" must mean off): pause the job and put it back afterwards.
 */
async function pauseCronCapture(ctx: Context): Promise<() => Promise<void>> {
  if (!(await ctx.hasRelation('cron.job'))) return async () => {};
  const jobs = await ctx.sql<{ jobid: number }[]>`
    select jobid from cron.job where jobname = 'queue-health-capture' and active`;
  if (jobs.length === 0) return async () => {};
  const ids = jobs.map((j) => j.jobid);
  await ctx.sql`update cron.job set active = false where jobid = any(${ids})`;
  ctx.log(`paused the pg_cron capture job (${ids.join(', ')}) for the run`);
  return async () => {
    await ctx.sql`update cron.job set active = true where jobid = any(${ids})`;
  };
}

/**
 * An installation that has captured for two days has raw metric partitions for the past two days
 * (raw_retention 48 h); a freshly reset stack has only today's and the days ahead. Each partition
 * a statement cannot prune when it is planned is opened and planned again in every new session,
 * as pg_cron runs each capture, so the bench measures with the steady state's: it creates the two
 * past partitions when missing and drops them afterwards if they are still empty.
 */
async function ensurePastPartitions(ctx: Context): Promise<() => Promise<void>> {
  if (!(await ctx.hasFunction('queue_health.ensure_partitions(timestamptz,integer)'))) {
    return async () => {};
  }
  const names = (day: number) =>
    ctx.sql<{ name: string; exists: boolean }[]>`
    select n.name, pg_catalog.to_regclass('queue_health.' || n.name) is not null as exists
      from (select queue_health._metric_partition_name(
              ((now() at time zone 'UTC')::date - ${day}::int)) as name) n`;
  const missing: string[] = [];
  for (const day of [1, 2]) {
    const [p] = await names(day);
    if (!p.exists) missing.push(p.name);
  }
  if (missing.length === 0) return async () => {};
  await ctx.sql`select queue_health.ensure_partitions(now() - interval '2 days', 1)`;
  ctx.log(`created the past raw partitions ${missing.join(', ')} (the steady state's) for the run`);
  return async () => {
    for (const name of missing) {
      const [{ empty }] = await ctx.sql<{ empty: boolean }[]>`
        select not exists (select from ${ctx.sql('queue_health')}.${ctx.sql(name)}) as empty`;
      if (empty) await ctx.sql`drop table if exists ${ctx.sql('queue_health')}.${ctx.sql(name)}`;
    }
  };
}

async function main(): Promise<number> {
  const quick = arg('quick') !== undefined;
  const only = arg('only')?.split(',').map(Number).filter((n) => n > 0);
  const budgetMin = Number(arg('budget-min') ?? (quick ? 2 : 45));
  const url = Deno.env.get('DATABASE_URL')?.trim() || DEFAULT_DATABASE_URL;
  const out = arg('out') ||
    (quick
      ? join(ROOT, '.test-artifacts', 'bench-quick.json')
      : join(ROOT, 'bench', 'results', 'latest.json'));
  const report = new Report();
  const started = new Date();
  const ctx = createContext(url, quick, report, Date.now() + budgetMin * 60_000);
  ctx.log(`queue-health bench (${quick ? 'quick' : 'full'}) against ${redactUrl(url)}`);
  let info: Record<string, unknown>;
  try {
    info = await machine(ctx);
  } catch (e) {
    console.error(`cannot reach the database ${redactUrl(url)}: ${(e as Error).message}`);
    console.error('Start the local stack (npm run stack -- up) or set DATABASE_URL.');
    await ctx.sql.end({ timeout: 1 });
    return 1;
  }
  let restoreCron = async () => {};
  let restorePartitions = async () => {};
  let loadedFixture = false;
  const timings: Record<string, number> = {};
  try {
    restoreCron = await pauseCronCapture(ctx);
    restorePartitions = await ensurePastPartitions(ctx);
    loadedFixture = await ensurePgmqFixture(ctx).catch((e) => {
      ctx.log(`could not load the pgmq fixture: ${e.message}`);
      return false;
    });
    await cleanupAll(ctx);
    for (const [n, name, fn] of SCENARIOS) {
      if (only && !only.includes(n)) continue;
      ctx.log(`── scenario ${n}: ${name}`);
      const t0 = performance.now();
      try {
        await fn(ctx);
      } catch (e) {
        console.error(e);
        report.error(`${n} ${name}`, 'all', e);
      }
      timings[`${n} ${name}`] = Math.round(performance.now() - t0) / 1000;
    }
  } finally {
    try {
      await cleanupAll(ctx);
      if (loadedFixture) await removePgmqFixture(ctx);
      await restorePartitions();
    } catch (e) {
      console.error(`cleanup failed: ${(e as Error).message}`);
    }
    await restoreCron().catch((e) => console.error(`could not resume pg_cron: ${e.message}`));
  }
  await ctx.sql.end({ timeout: 2 });

  const table = report.table();
  console.log(table);
  const result = {
    v: 1,
    mode: quick ? 'quick' : 'full',
    command: `npm run bench${quick ? ' -- --quick' : ''}${
      only ? ` -- --only=${only.join(',')}` : ''
    }`,
    started_at: started.toISOString(),
    finished_at: new Date().toISOString(),
    database: redactUrl(url),
    machine: info,
    scenario_seconds: timings,
    rows: report.rows,
    details: report.details,
  };
  await Deno.mkdir(dirname(out), { recursive: true });
  const tmp = `${out}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(result, null, 2) + '\n');
  await Deno.rename(tmp, out);
  await Deno.writeTextFile(out.replace(/\.json$/, '.md'), table + '\n');
  console.error(`results: ${out}`);
  return report.rows.some((r) => r.verdict === 'error') ? 1 : 0;
}

Deno.exit(await main());
