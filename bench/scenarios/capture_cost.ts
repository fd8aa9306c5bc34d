/**
 * Scenario 1: what one capture() costs as queues and messages grow, compared with
 * pgmq.metrics_all() (pgmq) and a full count (pg-boss) on the same data, measured alternately.
 *
 * @module
 */
import {
  type Context,
  dropBenchPgmqQueues,
  ensureBenchProject,
  forgetBenchQueues,
  PGBOSS_SCHEMA,
  type Sql,
  timed,
} from '../lib/context.ts';
import { createFilledQueues, queueNames } from '../lib/pgmq_data.ts';
import { alternate, fmt, range, summarize } from '../lib/stats.ts';

const S = '1 capture cost';

/** 1000 → "1k", 1000000 → "1M". */
export function sizeLabel(n: number): string {
  if (n >= 1_000_000 && n % 1_000_000 === 0) return `${n / 1_000_000}M`;
  if (n >= 1000 && n % 1000 === 0) return `${n / 1000}k`;
  return String(n);
}

interface CaptureResult {
  queues: number;
  rows: number;
  unchanged?: number;
  duration_ms: number;
  status: string;
  alerts?: { duration_ms?: number } | null;
}

/** Captures skipped because another session's capture held the lock (the database is shared). */
let skippedByOthers = 0;

/**
 * One timed capture. A capture that finds another one running records a skipped run and returns
 * at once; that is not a measurement, so wait and try again (bounded).
 */
async function capture(sql: Sql): Promise<{ ms: number; r: CaptureResult }> {
  for (let attempt = 0;; attempt++) {
    const { ms, value } = await timed(() => sql`select queue_health.capture() as r`);
    const r = value[0].r as CaptureResult;
    if (r.status !== 'skipped' || attempt >= 50) return { ms, r };
    skippedByOthers++;
    await new Promise((res) => setTimeout(res, 100 + Math.random() * 100));
  }
}

interface PointResult {
  source: 'pgmq' | 'pgboss';
  queues: number;
  messages: number;
  fill_s: number;
  captured_queues: number;
  /** Default settings: queues unchanged since the previous capture are not read. */
  capture_ms: number[];
  /** Default settings, each capture in a new session (as the pg_cron job's first of a minute). */
  cold_ms: number[];
  unchanged_queues: number | null;
  /** unchanged_reread_interval = 0: every queue's table read on every capture. */
  read_all_ms: number[];
  baseline_ms: number[];
  ratio_median: number;
  ratio_min: number;
  ratio_max: number;
  per_queue_ms: number;
  read_all_per_queue_ms: number;
  sample_ms_sum: number | null;
  alerts_ms: number | null;
  estimated_queues: number | null;
}

/** Sum of sample_ms and number of estimated depths of the bench's rows in the last capture. */
async function lastCaptureBreakdown(sql: Sql) {
  const [row] = await sql<{ sample_ms: number | null; estimated: number }[]>`
    select sum(sample_ms)::float8 as sample_ms, count(*) filter (where depth_estimated)::int as estimated
    from queue_health.metric
    where captured_at = (select max(captured_at) from queue_health.metric)
      and (queue_name like 'qhbench%' or source_schema like 'qhbench%')`;
  return row;
}

async function measurePoint(
  ctx: Context,
  source: 'pgmq' | 'pgboss',
  queues: number,
  messages: number,
  fillS: number,
  baseline: () => Promise<unknown>,
): Promise<PointResult> {
  // The warm captures run in one session of their own, as the pg_cron job's runner takes its
  // captures of a minute: what a session has cached and prepared (the statements that would
  // otherwise be planned on every capture, docs/metrics.md) serves its next capture. The pool's
  // connections would each start cold once and hold their own copies.
  const session = ctx.connect(1, 'qhbench-capture');
  try {
    return await measurePointIn(ctx, session, source, queues, messages, fillS, baseline);
  } finally {
    await session.end();
  }
}

async function measurePointIn(
  ctx: Context,
  session: Sql,
  source: 'pgmq' | 'pgboss',
  queues: number,
  messages: number,
  fillS: number,
  baseline: () => Promise<unknown>,
): Promise<PointResult> {
  const sql = ctx.sql;
  // Warm up: the first capture registers the queues; the second has a previous cursor.
  await capture(session);
  await capture(session);
  await baseline();
  // 1. Default settings: the data does not change between captures, so pgmq queues are repeated
  //    without reading their tables (docs/metrics.md), as idle queues are in production.
  let last: CaptureResult | null = null;
  const cmp = await alternate(
    ctx.sizes.rounds,
    async () => {
      const c = await capture(session);
      last = c.r;
      return c.ms;
    },
    async () => (await timed(baseline)).ms,
  );
  const unchanged = (last as CaptureResult | null)?.unchanged ?? null;
  // 1b. The same in a new session each time, as the pg_cron job's first capture of every minute
  //     runs (the runner's other five at 10 s are warm, as in 1): nothing cached yet (catalog
  //     entries, relation descriptors, plans).
  const coldMs: number[] = [];
  for (let i = 0; i < ctx.sizes.rounds; i++) {
    const fresh = ctx.connect(1, 'qhbench-cold');
    try {
      await fresh`select 1`;
      coldMs.push((await capture(fresh)).ms);
    } finally {
      await fresh.end();
    }
  }
  // 2. Every queue read on every capture (unchanged_reread_interval 0): what a capture costs
  //    when every queue changed since the previous one. The goals on sampling cost use this.
  const alertsMs: number[] = [];
  const [{ reread }] = await sql<{ reread: string }[]>`
    select unchanged_reread_interval::text as reread from queue_health.settings`;
  let readAll;
  try {
    await sql`update queue_health.settings set unchanged_reread_interval = '0'`;
    readAll = await alternate(
      ctx.sizes.rounds,
      async () => {
        const c = await capture(session);
        if (c.r.alerts?.duration_ms !== undefined) alertsMs.push(c.r.alerts.duration_ms);
        return c.ms;
      },
      async () => (await timed(baseline)).ms,
    );
  } finally {
    await sql`update queue_health.settings set unchanged_reread_interval = ${reread}::interval`;
  }
  const breakdown = await lastCaptureBreakdown(sql);
  const cap = summarize(cmp.a);
  const all = summarize(readAll.a);
  const capturedQueues = (last as CaptureResult | null)?.queues ?? queues;
  return {
    source,
    queues,
    messages,
    fill_s: fillS,
    captured_queues: capturedQueues,
    capture_ms: cmp.a,
    cold_ms: coldMs,
    unchanged_queues: unchanged,
    read_all_ms: readAll.a,
    baseline_ms: [...cmp.b, ...readAll.b],
    ratio_median: readAll.ratio.median,
    ratio_min: readAll.ratio.min,
    ratio_max: readAll.ratio.max,
    per_queue_ms: cap.median / Math.max(1, capturedQueues),
    read_all_per_queue_ms: all.median / Math.max(1, capturedQueues),
    sample_ms_sum: breakdown?.sample_ms ?? null,
    alerts_ms: alertsMs.length ? summarize(alertsMs).median : null,
    estimated_queues: breakdown?.estimated ?? null,
  };
}

function reportPoint(ctx: Context, p: PointResult, baselineName: string) {
  const kase = `${p.source} ${p.queues} × ${sizeLabel(p.messages)}`;
  const goal250 = p.queues >= 1000 && !ctx.quick;
  // One row per way of capturing; at 1 000 queues each is held to the 250 ms goal.
  const timeRow = (metric: string, ms: number[], note = '') => {
    const t = summarize(ms);
    const over = goal250 && t.median >= 250;
    ctx.report.add({
      scenario: S,
      case: kase,
      metric: `capture ms per run, ${metric}`,
      value: t.median,
      unit: 'ms',
      spread: `${range(t)}, n=${t.n}`,
      goal: goal250 ? '< 250 ms' : undefined,
      verdict: goal250 ? (over ? 'missed' : 'met') : 'info',
      note: [over ? `${fmt(t.median / 250)}× over` : '', note].filter(Boolean).join('; ') ||
        undefined,
    });
  };
  timeRow(
    'data unchanged (default settings)',
    p.capture_ms,
    `${p.unchanged_queues ?? '?'} of ${p.captured_queues} queues repeated unchanged`,
  );
  timeRow('data unchanged, new session each (the first of a pg_cron minute)', p.cold_ms);
  timeRow(
    'every queue read',
    p.read_all_ms,
    `${p.captured_queues} queues captured (all sources in the database); sampling ${
      fmt(p.sample_ms_sum)
    } ms, alerts ${fmt(p.alerts_ms)} ms; ${p.estimated_queues ?? '?'} depths estimated`,
  );
  ctx.report.add({
    scenario: S,
    case: kase,
    metric: 'capture ms per queue, every queue read',
    value: p.read_all_per_queue_ms,
    unit: 'ms',
    verdict: 'info',
  });
  const goal20 = p.source === 'pgmq' && p.queues === 100 && p.messages === 100_000;
  ctx.report.add({
    scenario: S,
    case: kase,
    metric: `${baselineName} ÷ capture, every queue read (median ratio)`,
    value: p.ratio_median,
    unit: '×',
    spread: `${fmt(p.ratio_min)}–${fmt(p.ratio_max)}, n=${p.read_all_ms.length}`,
    goal: goal20 ? '≥ 20×' : undefined,
    verdict: goal20 ? (p.ratio_median >= 20 ? 'met' : 'missed') : 'info',
    note: goal20 && p.ratio_median < 20
      ? `${fmt(20 / p.ratio_median)}× short`
      : `${baselineName} median ${fmt(summarize(p.baseline_ms).median)} ms`,
  });
}

/** pg-boss jobs straight into its job table: states spread like a busy queue. */
async function fillPgBossQueue(sql: Sql, name: string, n: number) {
  const st = `${PGBOSS_SCHEMA}.job_state`;
  await sql.begin(async (tx) => {
    await tx`set local synchronous_commit = off`;
    await tx.unsafe(
      `insert into ${PGBOSS_SCHEMA}.job (name, data, state, start_after, created_on, started_on,
         completed_on, retry_count)
       select $1, '{"job": "bench"}'::jsonb,
         (case when g % 20 = 0 then 'active' when g % 10 = 2 then 'completed'
               when g % 50 = 3 then 'failed' else 'created' end)::${st},
         case when g % 20 = 1 then now() + interval '1 hour'
              else now() - interval '2 hours' + g * (interval '7000 seconds' / $2) end,
         now() - interval '2 hours' + g * (interval '7000 seconds' / $2),
         case when g % 20 = 0 or g % 10 = 2 or g % 50 = 3
              then now() - interval '2 hours' + g * (interval '7000 seconds' / $2) + interval '1 second' end,
         case when g % 10 = 2 or g % 50 = 3
              then now() - interval '2 hours' + g * (interval '7000 seconds' / $2) + interval '2 seconds' end,
         case when g % 50 = 3 then 2 else 0 end
       from generate_series(1, $2::int) g`,
      [name, n],
    );
  });
}

async function pgbossPoint(ctx: Context, queues: number, messages: number) {
  const { startPgBoss } = await import('../../local/test/pgboss.ts');
  const sql = ctx.sql;
  await sql`drop schema if exists ${sql(PGBOSS_SCHEMA)} cascade`;
  const t0 = performance.now();
  const pb = await startPgBoss(12, { schema: PGBOSS_SCHEMA, databaseUrl: ctx.url, max: 2 });
  const names = queueNames(`qhbench_b${queues}x${sizeLabel(messages).toLowerCase()}`, queues);
  try {
    for (const name of names) await pb.boss.createQueue(name);
    if (messages <= 1000 && queues <= 100) {
      // Small sizes through pg-boss's own API.
      for (const name of names) {
        const jobs = Array.from({ length: messages }, (_, i) => ({
          data: { job: 'bench', i },
          ...(i % 20 === 1 ? { startAfter: new Date(Date.now() + 3_600_000) } : {}),
        }));
        await pb.boss.insert(name, jobs);
      }
      // Some in flight and finished, as a running system has.
      for (const name of names) {
        const got = await pb.boss.fetch(name, { batchSize: Math.ceil(messages / 5) });
        const done = got.slice(0, Math.ceil(got.length / 2)).map((j) => j.id);
        if (done.length) await pb.boss.complete(name, done);
      }
    } else {
      let next = 0;
      const fill = ctx.connect(1, 'qhbench-fill');
      const fill2 = ctx.connect(1, 'qhbench-fill');
      try {
        const worker = async (c: Sql) => {
          while (next < names.length) await fillPgBossQueue(c, names[next++], messages);
        };
        await Promise.all([worker(fill), worker(fill2)]);
      } finally {
        await fill.end();
        await fill2.end();
      }
    }
  } finally {
    await pb.stop();
  }
  // As autovacuum does after a load this size: statistics, and the visibility map that keeps the
  // index-only probes off the heap (for the capture and the full count alike).
  await sql.unsafe(`vacuum analyze ${PGBOSS_SCHEMA}.job`);
  const fillS = (performance.now() - t0) / 1000;
  const p = await measurePoint(
    ctx,
    'pgboss',
    queues,
    messages,
    fillS,
    () => sql.unsafe(`select name, state, count(*) from ${PGBOSS_SCHEMA}.job group by 1, 2`),
  );
  reportPoint(ctx, p, 'full count(*)');
  await sql`drop schema if exists ${sql(PGBOSS_SCHEMA)} cascade`;
  await forgetBenchQueues(ctx);
  return p;
}

/** Runs scenario 1. */
export async function captureCost(ctx: Context): Promise<void> {
  if (!(await ctx.hasFunction('queue_health.capture(timestamptz)'))) {
    ctx.report.skip(S, 'all', 'queue_health.capture() is not installed (CORE migration 100200)');
    return;
  }
  await ensureBenchProject(ctx);
  const points: PointResult[] = [];
  const sql = ctx.sql;
  const [{ others }] = await sql<{ others: number }[]>`
    select count(*)::int as others from queue_health.queue
    where dropped_at is null and queue_name not like 'qhbench%'`;
  ctx.report.details['1_other_queues'] = others;

  const hasPgmq = await ctx.hasRelation('pgmq.meta');
  if (!hasPgmq) {
    ctx.report.skip(
      S,
      'pgmq',
      'no pgmq (extension or supabase/tests/fixtures/pgmq.sql) in the database',
    );
  } else if (!(await ctx.hasFunction('queue_health._sample_pgmq(timestamptz)'))) {
    ctx.report.skip(S, 'pgmq', 'the pgmq sampler is not installed (SOURCES migration 100100)');
  } else {
    for (const [queues, messages] of ctx.sizes.pgmqGrid) {
      const kase = `pgmq ${queues} × ${sizeLabel(messages)}`;
      if (Date.now() > ctx.deadline) {
        ctx.report.skip(S, kase, 'time budget of the run used up');
        continue;
      }
      try {
        const names = queueNames(`qhbench_c${queues}x${sizeLabel(messages).toLowerCase()}`, queues);
        ctx.log(`1: filling ${kase} (${fmt(queues * messages)} messages)`);
        const t0 = performance.now();
        const fill = ctx.connect(2, 'qhbench-fill');
        try {
          await createFilledQueues(fill, names, messages, { parallel: 2 });
        } finally {
          await fill.end();
        }
        const fillS = (performance.now() - t0) / 1000;
        ctx.log(`1: filled in ${fmt(fillS)} s; measuring`);
        const p = await measurePoint(
          ctx,
          'pgmq',
          queues,
          messages,
          fillS,
          () => sql`select count(*) from pgmq.metrics_all()`,
        );
        points.push(p);
        reportPoint(ctx, p, 'pgmq.metrics_all()');
      } catch (e) {
        ctx.report.error(S, kase, e);
      } finally {
        await dropBenchPgmqQueues(sql, 'qhbench_c%');
        await forgetBenchQueues(ctx);
      }
    }
  }

  const hasPgBoss12 = await import('../../local/test/pgboss.ts').then(() => true).catch(() =>
    false
  );
  if (!hasPgBoss12) {
    ctx.report.skip(S, 'pgboss', 'local/test/pgboss.ts (pg-boss start helpers) is missing');
  } else if (!(await ctx.hasFunction('queue_health._sample_pgboss(timestamptz)'))) {
    ctx.report.skip(
      S,
      'pgboss',
      'the pg-boss sampler is not installed (migration 100300_queue_health_source_pgboss)',
    );
  } else {
    for (const [queues, messages] of ctx.sizes.pgbossGrid) {
      const kase = `pgboss ${queues} × ${sizeLabel(messages)}`;
      if (Date.now() > ctx.deadline) {
        ctx.report.skip(S, kase, 'time budget of the run used up');
        continue;
      }
      try {
        ctx.log(`1: filling ${kase}`);
        points.push(await pgbossPoint(ctx, queues, messages));
      } catch (e) {
        ctx.report.error(S, kase, e);
        await sql`drop schema if exists ${sql(PGBOSS_SCHEMA)} cascade`;
        await forgetBenchQueues(ctx);
      }
    }
  }

  // Flatness: per-queue cost at the largest size over the smallest, for the same queue count.
  for (const source of ['pgmq', 'pgboss'] as const) {
    const byQueues = new Map<number, PointResult[]>();
    for (const p of points.filter((x) => x.source === source)) {
      byQueues.set(p.queues, [...(byQueues.get(p.queues) ?? []), p]);
    }
    for (const [queues, ps] of byQueues) {
      if (ps.length < 2) continue;
      ps.sort((a, b) => a.messages - b.messages);
      const small = ps[0];
      const large = ps[ps.length - 1];
      const growth = large.messages / small.messages;
      const ratio = large.read_all_per_queue_ms / small.read_all_per_queue_ms;
      ctx.report.add({
        scenario: S,
        case: `${source} ${queues} queues, ${sizeLabel(small.messages)} → ${
          sizeLabel(large.messages)
        }`,
        metric: 'per-queue cost growth',
        value: ratio,
        unit: '×',
        goal: ctx.quick ? undefined : `flat (≤ 2× while messages grow ${fmt(growth)}×)`,
        verdict: ctx.quick ? 'info' : ratio <= 2 ? 'met' : 'missed',
        note: `messages per queue grew ${fmt(growth)}×`,
      });
      // Above the exact-count bound (settings.exact_count_limit) the cost should not grow at all.
      if (ps.length >= 3) {
        const a = ps[ps.length - 2];
        const r = large.read_all_per_queue_ms / a.read_all_per_queue_ms;
        ctx.report.add({
          scenario: S,
          case: `${source} ${queues} queues, ${sizeLabel(a.messages)} → ${
            sizeLabel(large.messages)
          }`,
          metric: 'per-queue cost growth',
          value: r,
          unit: '×',
          goal: ctx.quick ? undefined : 'flat (≤ 1.5×)',
          verdict: ctx.quick ? 'info' : r <= 1.5 ? 'met' : 'missed',
          note: `messages per queue grew ${fmt(large.messages / a.messages)}×`,
        });
      }
    }
  }
  ctx.report.details['1_capture_cost'] = points;
  ctx.report.details['1_captures_retried_because_another_was_running'] = skippedByOthers;
}
