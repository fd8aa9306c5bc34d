/**
 * Scenario 6: read paths. queue_status with many queues (as the service role and as a project
 * member under RLS), queue_history over 7 days (1-minute rollups), and the queue-health JSON and
 * Prometheus endpoints under bounded concurrent load from a second process (bench/load.ts).
 *
 * @module
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type Context,
  dropBenchPgmqQueues,
  ensureBenchProject,
  forgetBenchQueues,
  PROJECT,
  type Sql,
  timed,
} from '../lib/context.ts';
import { hasFunctionHandler, serveFunctions } from '../lib/functions.ts';
import { createFilledQueues, queueNames } from '../lib/pgmq_data.ts';
import { fmt, range, summarize, type Summary } from '../lib/stats.ts';

const S = '6 read paths';
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const USER_ID = '00000000-0000-4000-8000-0000000b0e4c';

async function asMember<T>(sql: Sql, fn: (tx: Sql) => Promise<T>): Promise<T> {
  return await sql.begin(async (tx) => {
    const claims = JSON.stringify({ sub: USER_ID, role: 'authenticated' });
    await tx`select set_config('request.jwt.claims', ${claims}, true)`;
    await tx`set local role authenticated`;
    return await fn(tx as unknown as Sql);
  }) as T;
}

async function repeat(n: number, fn: () => Promise<unknown>): Promise<Summary> {
  await fn(); // warm-up
  const ms: number[] = [];
  for (let i = 0; i < n; i++) ms.push((await timed(fn)).ms);
  return summarize(ms);
}

interface LoadResult {
  requests: number;
  concurrency: number;
  seconds: number;
  rps: number;
  statuses: Record<string, number>;
  bytes_per_response: number;
  latency_ms: Summary | null;
}

async function load(url: string, n: number, c: number, headers: string[]): Promise<LoadResult> {
  const deno = Deno.execPath();
  const out = await new Deno.Command(deno, {
    args: [
      'run',
      '-A',
      '--quiet',
      join(ROOT, 'bench', 'load.ts'),
      url,
      String(n),
      String(c),
      ...headers,
    ],
    cwd: ROOT,
    stdout: 'piped',
    stderr: 'piped',
  }).output();
  if (!out.success) {
    throw new Error(`load.ts failed: ${new TextDecoder().decode(out.stderr).slice(0, 300)}`);
  }
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split('\n').pop()!);
}

/** Runs scenario 6. */
export async function readPaths(ctx: Context): Promise<void> {
  if (!(await ctx.hasRelation('queue_health.queue_status'))) {
    ctx.report.skip(S, 'all', 'queue_health.queue_status is not installed (CORE migration 100200)');
    return;
  }
  if (!(await ctx.hasRelation('pgmq.meta'))) {
    ctx.report.skip(S, 'all', 'no pgmq (extension or fixture) to create queues with');
    return;
  }
  await ensureBenchProject(ctx);
  const sql = ctx.sql;
  const queues = ctx.sizes.readQueues;
  const names = queueNames('qhbench_read', queues);
  const details: Record<string, unknown> = {};
  try {
    ctx.log(`6: creating ${queues} queues`);
    const fill = ctx.connect(2, 'qhbench-fill');
    try {
      await createFilledQueues(fill, names, 100);
    } finally {
      await fill.end();
    }
    await sql`select queue_health.capture()`;
    await sql`select queue_health.capture()`;
    await sql`insert into auth.users (id, email) values (${USER_ID}, 'bench@queue-health.local')
      on conflict (id) do nothing`;
    await sql`insert into queue_health.project_member (project_id, user_id, role)
      values (${PROJECT}, ${USER_ID}, 'viewer') on conflict do nothing`;
    const rounds = ctx.quick ? 3 : 20;
    const [{ total }] = await sql<{ total: number }[]>`
      select count(*)::int as total from queue_health.queue_status`;

    const svc = await repeat(rounds, () => sql`select * from queue_health.queue_status`);
    ctx.report.add({
      scenario: S,
      case: `queue_status, ${total} queues, superuser/service role`,
      metric: 'query ms (median)',
      value: svc.median,
      unit: 'ms',
      spread: `${range(svc)}, p95 ${fmt(svc.p95)}, n=${svc.n}`,
      verdict: 'info',
    });
    const member = await repeat(
      rounds,
      () => asMember(sql, (tx) => tx`select * from queue_health.queue_status`),
    );
    ctx.report.add({
      scenario: S,
      case: `queue_status, ${queues} queues visible, project member (RLS)`,
      metric: 'query ms (median)',
      value: member.median,
      unit: 'ms',
      spread: `${range(member)}, p95 ${fmt(member.p95)}, n=${member.n}`,
      verdict: 'info',
    });
    details.queue_status = { total, service: svc, member };

    if (await ctx.hasFunction('queue_health.queue_history(text,timestamptz,timestamptz,text)')) {
      // Seven days of 1-minute rollups for one queue, below the rollup watermark. rollup() is the
      // maintenance job's own step; running it here only moves the watermark to the present.
      await sql`select queue_health.rollup()`;
      const q = names[0];
      await sql`
        insert into queue_health.metric_1m (bucket, project_id, source, source_schema, queue_name,
          depth_min, depth_avg, depth_max, depth_last, ready_min, ready_avg, ready_max, ready_last,
          in_flight_min, in_flight_avg, in_flight_max, in_flight_last,
          delayed_min, delayed_avg, delayed_max, delayed_last,
          oldest_ready_age_s_max, oldest_ready_age_s_last,
          enqueued, completed, failed, retried, dead_lettered, samples)
        select b, ${PROJECT}, 'pgmq', 'pgmq', ${q},
          10, 12.5, 15, 12, 8, 9.5, 11, 9, 1, 2.0, 3, 2, 0, 0.5, 1, 0, 3.0, 2.0, 60, 60, 1, 0, 0, 6
        from generate_series(
          date_trunc('minute', now()) - interval '7 days',
          (select rolled_up_to from queue_health.rollup_watermark where resolution = '1m')
            - interval '1 minute',
          interval '1 minute') b
        on conflict do nothing`;
      const hist = await repeat(
        rounds,
        () => sql`select * from queue_health.queue_history(${q}, now() - interval '7 days', now())`,
      );
      const [{ n }] = await sql<{ n: number }[]>`
        select count(*)::int as n
        from queue_health.queue_history(${q}, now() - interval '7 days', now())`;
      ctx.report.add({
        scenario: S,
        case: `queue_history, 7 days (${fmt(n)} 1-minute points)`,
        metric: 'query ms (median)',
        value: hist.median,
        unit: 'ms',
        spread: `${range(hist)}, p95 ${fmt(hist.p95)}, n=${hist.n}`,
        verdict: 'info',
      });
      details.queue_history = { points: n, ms: hist };
    } else {
      ctx.report.skip(S, 'queue_history', 'queue_health.queue_history() is not installed');
    }

    if (!hasFunctionHandler('queue-health')) {
      ctx.report.skip(S, 'HTTP', 'supabase/functions/queue-health/handler.ts is missing (API)');
    } else {
      const fns = await serveFunctions(ctx);
      try {
        const base = `${fns.url}/functions/v1/queue-health`;
        const auth = `authorization: Bearer ${fns.serviceRoleKey}`;
        const userAuth = `authorization: Bearer ${await fns.userToken(USER_ID)}`;
        const n = ctx.sizes.httpRequests;
        const c = ctx.sizes.httpConcurrency;
        const http: Record<string, LoadResult> = {};
        for (
          const [label, url, header] of [
            ['JSON, service role', base, auth],
            ['Prometheus, service role', `${base}?format=prometheus`, auth],
            ['JSON, project member (RLS)', base, userAuth],
          ] as const
        ) {
          if (Date.now() > ctx.deadline) break;
          await load(url, Math.min(20, n), 2, [header]); // warm-up
          const r = await load(url, n, c, [header]);
          http[label] = r;
          const okCount = (r.statuses['200'] ?? 0) + (r.statuses['503'] ?? 0);
          ctx.report.add({
            scenario: S,
            case: `queue-health ${label}, ${c} concurrent`,
            metric: 'requests/s',
            value: r.rps,
            unit: 'rps',
            spread: r.latency_ms
              ? `p50 ${fmt(r.latency_ms.median)} ms, p99 ${
                fmt(r.latency_ms.p99)
              } ms, n=${r.requests}`
              : undefined,
            verdict: okCount === r.requests ? 'info' : 'missed',
            note: `${fmt(r.bytes_per_response / 1024)} KiB per response; statuses ${
              JSON.stringify(r.statuses)
            }`,
          });
        }
        details.http = http;
      } finally {
        await fns.stop();
      }
    }
  } finally {
    ctx.report.details['6_read_paths'] = details;
    await sql`delete from queue_health.project_member where user_id = ${USER_ID}`.catch(() => {});
    await sql`delete from auth.users where id = ${USER_ID}`.catch(() => {});
    await dropBenchPgmqQueues(sql, 'qhbench_read%');
    await forgetBenchQueues(ctx);
  }
}
