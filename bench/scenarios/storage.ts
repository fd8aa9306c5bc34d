/**
 * Scenario 5: storage. Bytes per queue per day at a 10 s capture interval, raw and rolled up, and
 * proof that retention keeps the total flat over simulated weeks.
 *
 * Moving time forward (p_now in the future) would plant future rows, partitions and rollup
 * watermarks in a shared database, and retention with a future p_now would drop today's
 * partitions there. So this scenario runs in a database of its own, `qhbench_storage`, created on
 * the same server with the project's compat SQL and migrations, and dropped at the end.
 *
 * Each simulated day gets one raw row per queue every 10 s (inserted set-wise: 8 640 captures a
 * day through capture() would take minutes per day), one real capture(p_now) at the end of the
 * day, then maintain(p_now) — partitions, rollups, retention — and a VACUUM of the rollup tables
 * (what autovacuum does).
 *
 * @module
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { superuserUrl } from '../../local/stack/config.ts';
import { connectTo, type Context, type Sql } from '../lib/context.ts';
import { fmt } from '../lib/stats.ts';

const S = '5 storage';
const DB = 'qhbench_storage';
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function urlFor(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * Builds the scratch database as hosted Supabase has it: the platform (roles, Realtime, Auth,
 * Vault) by the superuser, our migrations as postgres, pgmq installed by the superuser and handed
 * to postgres.
 */
async function setUp(sql: Sql, adminUrl: string) {
  const platform = join(ROOT, 'local', 'stack', 'sql');
  const admin = connectTo(urlFor(adminUrl, DB), 1, 'qhbench-storage-admin');
  try {
    await admin.unsafe(await Deno.readTextFile(join(platform, 'hosted_platform.sql')));
    const dir = join(ROOT, 'supabase', 'migrations');
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()) {
      await sql.unsafe(await Deno.readTextFile(join(dir, f)));
    }
    await admin.unsafe(
      await Deno.readTextFile(join(ROOT, 'supabase', 'tests', 'fixtures', 'pgmq.sql')),
    );
    await admin.unsafe(await Deno.readTextFile(join(platform, 'pgmq_after_create.sql')));
  } finally {
    await admin.end();
  }
}

interface Sizes {
  day: number;
  raw: number;
  raw_partitions: number;
  m1: number;
  h1: number;
  runs: number;
  realtime: number;
  total: number;
}

async function sizes(sql: Sql, day: number): Promise<Sizes> {
  const [r] = await sql<Omit<Sizes, 'day' | 'total'>[]>`
    select
      coalesce((select sum(pg_total_relation_size(i.inhrelid)) from pg_inherits i
        where i.inhparent = 'queue_health.metric'::regclass), 0)::float8 as raw,
      (select count(*) from pg_inherits i where i.inhparent = 'queue_health.metric'::regclass)::int
        as raw_partitions,
      pg_total_relation_size('queue_health.metric_1m')::float8 as m1,
      pg_total_relation_size('queue_health.metric_1h')::float8 as h1,
      pg_total_relation_size('queue_health.capture_run')::float8 as runs,
      pg_total_relation_size('realtime.messages')::float8 as realtime`;
  return { day, ...r, total: r.raw + r.m1 + r.h1 + r.runs };
}

/** Runs scenario 5. */
export async function storage(ctx: Context): Promise<void> {
  if (!(await ctx.hasFunction('queue_health.maintain(timestamptz)'))) {
    ctx.report.skip(S, 'all', 'queue_health.maintain() is not installed (CORE migration 100200)');
    return;
  }
  const adminUrl = superuserUrl(ctx.url);
  if (!adminUrl) {
    ctx.report.skip(
      S,
      'all',
      'needs the platform superuser for its scratch database (QH_SUPERUSER_URL)',
    );
    return;
  }
  const { storageDays: days, storageQueues: queues } = ctx.sizes;
  await ctx.sql.unsafe(`drop database if exists ${DB} with (force)`);
  await ctx.sql.unsafe(`create database ${DB}`);
  const sql = connectTo(urlFor(ctx.url, DB), 2, 'qhbench-storage');
  try {
    ctx.log(`5: setting up database ${DB}`);
    await setUp(sql, adminUrl);
    const names = Array.from({ length: queues }, (_, i) => `qhbench_store_${i}`);
    for (const n of names) {
      await sql`select pgmq.create(${n})`;
      await sql`select pgmq.send_batch(${n}, array_fill('{"job": "bench"}'::jsonb, array[50]))`;
    }
    const [{ base }] = await sql<{ base: Date }[]>`
      select date_trunc('day', now() at time zone 'UTC') at time zone 'UTC' + interval '1 day' as base`;
    const series: Sizes[] = [];
    let rawDayBytes: number | null = null;
    let realtimePerCapture: number | null = null;
    ctx.log(`5: simulating ${days} days of ${queues} queues at 10 s`);
    for (let d = 0; d < days; d++) {
      if (Date.now() > ctx.deadline) break;
      const dayStart = new Date(base.getTime() + d * 86_400_000);
      const dayEnd = new Date(dayStart.getTime() + 86_400_000 - 10_000);
      await sql`select queue_health.ensure_partitions(${dayStart}::timestamptz)`;
      await sql.begin(async (tx) => {
        // Triggers off for the set-wise rows only (one Realtime message per day would be wrong),
        // so the running totals (cum_*) that capture() writes are computed here, as it would.
        await tx`set local session_replication_role = replica`;
        await tx`
          insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name,
            ready, in_flight, delayed, depth, depth_estimated, oldest_ready_age_s, enqueued, completed,
            failed, retried, dead_lettered, wait_p50_ms, wait_p95_ms, run_p50_ms, run_p95_ms,
            sample_ms, interval_s, cum_enqueued, cum_completed, cum_failed, cum_retried,
            cum_dead_lettered, cum_interval_s, cum_idle)
          select t, 'default', 'pgmq', 'pgmq', q,
            40 + (s % 17), 5 + (s % 3), s % 2, 45 + (s % 17) + (s % 3) + (s % 2), false,
            (s % 30)::float8, 10 + (s % 5), 10 + (s % 7), s % 2, s % 3, 0,
            null, null, null, null, 0.3 + (s % 10) / 10.0, 10,
            ${d * 8639} * 12 + sum(10 + (s % 5)) over w, ${
          d * 8639
        } * 13 + sum(10 + (s % 7)) over w,
            ${d * 8639} / 2 + sum(s % 2) over w, ${d * 8639} + sum(s % 3) over w, 0,
            ${d * 8639} * 10 + 10.0 * count(*) over w, 0
          from unnest(${names}::text[]) q,
            generate_series(0, 8638) s,
            lateral (select ${dayStart}::timestamptz + s * interval '10 seconds' as t) x
          window w as (partition by q order by s)`;
      });
      // One real capture per day, so capture's own rows and runs are part of the total.
      const [{ r }] = await sql`select queue_health.capture(${dayEnd}::timestamptz) as r`;
      if (r.status === 'error') {
        throw new Error(`capture(p_now) failed: ${JSON.stringify(r.errors)}`);
      }
      if (realtimePerCapture === null) {
        const [{ b }] = await sql<{ b: number }[]>`
          select coalesce(avg(pg_column_size(m.*)), 0)::float8 as b from realtime.messages m`;
        realtimePerCapture = b;
      }
      await sql`select queue_health.maintain(${new Date(
        dayEnd.getTime() + 10 * 60_000,
      )}::timestamptz)`;
      await sql`vacuum queue_health.metric_1m, queue_health.metric_1h, queue_health.capture_run`;
      if (d === 0) {
        const part = `metric_p${dayStart.toISOString().slice(0, 10).replaceAll('-', '')}`;
        const [{ b }] = await sql<{ b: number }[]>`
          select pg_total_relation_size(${`queue_health.${part}`}::regclass)::float8 as b`;
        rawDayBytes = b;
      }
      series.push(await sizes(sql, d + 1));
    }
    if (series.length === 0) {
      ctx.report.skip(S, 'all', 'time budget of the run used up');
      return;
    }
    const [rows] = await sql<{ m1: number; h1: number; m1_b: number; h1_b: number }[]>`
      select (select count(*) from queue_health.metric_1m)::int as m1,
             (select count(*) from queue_health.metric_1h)::int as h1,
             pg_total_relation_size('queue_health.metric_1m')::float8 as m1_b,
             pg_total_relation_size('queue_health.metric_1h')::float8 as h1_b`;
    const perQueueRawDay = (rawDayBytes ?? 0) / queues;
    const m1PerRow = rows.m1 ? rows.m1_b / rows.m1 : 0;
    const h1PerRow = rows.h1 ? rows.h1_b / rows.h1 : 0;
    ctx.report.add({
      scenario: S,
      case: '10 s interval, raw (metric partition incl. indexes)',
      metric: 'bytes per queue per day',
      value: perQueueRawDay,
      unit: 'B',
      verdict: 'info',
      note: `${fmt(perQueueRawDay / 8640)} B per row, 8 640 rows; kept ${'raw_retention'} (48 h)`,
    });
    ctx.report.add({
      scenario: S,
      case: '1-minute rollup',
      metric: 'bytes per queue per day',
      value: m1PerRow * 1440,
      unit: 'B',
      verdict: 'info',
      note: `${fmt(m1PerRow)} B per row incl. indexes, 1 440 rows a day; kept 14 d`,
    });
    ctx.report.add({
      scenario: S,
      case: '1-hour rollup',
      metric: 'bytes per queue per day',
      value: h1PerRow * 24,
      unit: 'B',
      verdict: 'info',
      note: `${fmt(h1PerRow)} B per row incl. indexes, 24 rows a day; kept 400 d`,
    });
    if (realtimePerCapture !== null) {
      ctx.report.add({
        scenario: S,
        case: 'realtime.messages (local stand-in)',
        metric: 'bytes per queue per day',
        value: (realtimePerCapture / (queues + 0)) * 8640,
        unit: 'B',
        verdict: 'info',
        note:
          'one broadcast row per capture; hosted Realtime drops its message partitions after a few days, the local stand-in never does',
      });
    }
    const last = series[series.length - 1];
    // Steady state starts once the oldest 1-minute rollups expire (14 d) and raw partitions are
    // dropped after 48 h: compare the last days with the day the 1m retention started to bite.
    const steadyFrom = series.find((s) => s.day === 16);
    if (steadyFrom && last.day > steadyFrom.day) {
      const growth = last.total / steadyFrom.total;
      const perDay = (last.total - steadyFrom.total) / (last.day - steadyFrom.day);
      ctx.report.add({
        scenario: S,
        case: `${queues} queues, day ${steadyFrom.day} → day ${last.day} (simulated)`,
        metric: 'total size growth',
        value: growth,
        unit: '×',
        goal: '≈ 1× (flat)',
        verdict: growth <= 1.1 ? 'met' : 'missed',
        note: `total ${fmt(steadyFrom.total / 1e6)} → ${fmt(last.total / 1e6)} MB; ${
          fmt(perDay / 1e3)
        } kB/day left (the 1-hour rollups, kept 400 d); raw partitions ${last.raw_partitions}`,
      });
    } else {
      ctx.report.add({
        scenario: S,
        case: `${queues} queues, ${last.day} simulated days`,
        metric: 'total size',
        value: last.total,
        unit: 'B',
        verdict: 'info',
        note: 'too few days simulated to reach the steady state (needs ≥ 17)',
      });
    }
    ctx.report.details['5_storage'] = {
      queues,
      series,
      raw_day_bytes: rawDayBytes,
      rollup_rows: rows,
      realtime_bytes_per_capture: realtimePerCapture,
    };
  } finally {
    await sql.end({ timeout: 2 });
    await ctx.sql.unsafe(`drop database if exists ${DB} with (force)`);
  }
}
