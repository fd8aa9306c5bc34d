/**
 * Scenario 9: what the signals (issue 22: rates, drain ETA, expected wait, flow status, last
 * enqueue/dequeue, objective seconds) add to a capture and to storage.
 *
 * The same database and queues, captured with the store step of release 0.1.0 (read from its
 * frozen migration, which writes no signal) and with today's (which computes and writes them),
 * swapped in with `create or replace` between blocks of captures: A-block, B-block, A, B, …. Each
 * block starts with one capture that is not counted (the swap drops the session's cached plans;
 * a pg_cron session keeps them for its minute), then `block` timed captures; a round's figure is
 * the block's median. Both modes: queues unchanged (the default, most captures of an idle
 * database) and every queue read.
 *
 * Storage: the average row size (pg_column_size of the whole row) of the metric rows each side
 * wrote in this run, and what that makes a day at a capture every 10 s.
 *
 * @module
 */
import {
  type Context,
  dropBenchPgmqQueues,
  ensureBenchProject,
  forgetBenchQueues,
  type Sql,
  timed,
} from '../lib/context.ts';
import { createFilledQueues, queueNames } from '../lib/pgmq_data.ts';
import { fmt, median, range, summarize } from '../lib/stats.ts';
import { processCpuMs } from './overhead.ts';
import { currentDefinition, releasedDefinition } from '../lib/definitions.ts';

const S = '9 signals cost';

/** One capture: its wall-clock ms and, when the database runs here, its backend's CPU ms. */
async function captureMs(sql: Sql, pid: number): Promise<{ wall: number; cpu: number | null }> {
  const before = await processCpuMs(pid);
  const { ms, value } = await timed(() => sql`select queue_health.capture() ->> 'status' as s`);
  const after = await processCpuMs(pid);
  if (value[0].s === 'skipped') throw new Error('a capture was skipped: another one is running');
  return { wall: ms, cpu: before === null || after === null ? null : after - before };
}

/**
 * Blocks of captures with each store, alternated; a round's figure is its block's median backend
 * CPU time (wall clock when the database is elsewhere): CPU time is what the signals add, and it
 * does not move with the machine's load the way wall clock does.
 */
async function blocks(
  sql: Sql,
  pid: number,
  defs: [string, string],
  rounds: number,
  block: number,
) {
  const sides: number[][] = [[], []];
  const walls: number[][] = [[], []];
  let cpu = true;
  for (let r = 0; r < rounds; r++) {
    for (let side = 0; side < 2; side++) {
      await sql.unsafe(defs[side]);
      await captureMs(sql, pid); // replans after the swap: not counted
      const times: { wall: number; cpu: number | null }[] = [];
      for (let i = 0; i < block; i++) times.push(await captureMs(sql, pid));
      if (times.some((t) => t.cpu === null)) cpu = false;
      sides[side].push(median(times.map((t) => t.cpu ?? t.wall)));
      walls[side].push(median(times.map((t) => t.wall)));
    }
  }
  return { sides: cpu ? sides : walls, walls, cpu };
}

/** Scenario 9. */
export async function signalsCost(ctx: Context): Promise<void> {
  const sql = ctx.connect(1, 'qhbench-signals');
  const queues = ctx.quick ? 10 : 100;
  const messages = ctx.quick ? 100 : 1000;
  const rounds = ctx.quick ? 2 : 11;
  const block = ctx.quick ? 2 : 5;
  const label = `pgmq ${queues} × ${messages}`;
  const now = await currentDefinition(
    sql,
    'queue_health._capture_store(timestamptz, queue_health.sample[])',
  );
  const [{ pid }] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
  const [{ reread }] = await sql<{ reread: string }[]>`
    select unchanged_reread_interval::text as reread from queue_health.settings where id`;
  try {
    if (!(await ensureBenchProject(ctx))) throw new Error('queue_health is not installed');
    await dropBenchPgmqQueues(sql);
    await forgetBenchQueues(ctx);
    await createFilledQueues(sql, queueNames('qhbench_sig', queues), messages);
    await sql`analyze`;
    const old = await releasedDefinition(
      '20261126100400_queue_health_capture.sql',
      '_capture_store',
    );
    const started = new Date();
    for (const mode of ['unchanged', 'read'] as const) {
      await sql`update queue_health.settings
        set unchanged_reread_interval = ${mode === 'read' ? '0' : '1 minute'}::interval`;
      // History first, so the flow window's probe finds a row (as it does in production).
      for (let i = 0; i < 3; i++) await captureMs(sql, pid);
      const { sides: [a, b], walls, cpu } = await blocks(sql, pid, [old, now], rounds, block);
      const ratios = b.map((x, i) => x / a[i]);
      const s = summarize(ratios);
      ctx.report.add({
        scenario: S,
        case: `${label}, ${mode === 'read' ? 'every queue read' : 'queues unchanged (default)'}`,
        metric: `capture ${
          cpu ? 'CPU' : 'time'
        } with signals ÷ without (0.1.0 store), median of per-round ratios`,
        value: s.median,
        unit: '×',
        spread: `${range(s)}, n=${rounds}`,
        goal: queues >= 100 ? '≤ 1.10× at 100 queues' : undefined,
        verdict: queues >= 100 ? (s.median <= 1.1 ? 'met' : 'missed') : 'info',
        note: `${cpu ? 'backend CPU' : 'wall clock'} without ${fmt(median(a))} ms, with ${
          fmt(median(b))
        } ms (medians of ${block}-capture blocks); wall clock ${fmt(median(walls[0]))} vs ${
          fmt(median(walls[1]))
        } ms`,
      });
    }
    await sql.unsafe(now);
    const [size] = await sql<
      { with_b: number; without_b: number; n_with: number; n_without: number }[]
    >`
      select avg(pg_column_size(m.*)) filter (where m.cum_ready_zero is not null)::float8 as with_b,
             avg(pg_column_size(m.*)) filter (where m.cum_ready_zero is null)::float8 as without_b,
             count(*) filter (where m.cum_ready_zero is not null)::int as n_with,
             count(*) filter (where m.cum_ready_zero is null)::int as n_without
        from queue_health.metric m
       where m.queue_name like 'qhbench_sig%' and m.captured_at >= ${started}`;
    const perDay = (bytes: number) => (bytes * queues * 8640) / 2 ** 20;
    ctx.report.add({
      scenario: S,
      case: label,
      metric: 'metric row bytes with signals ÷ without',
      value: size.with_b / size.without_b,
      unit: '×',
      verdict: 'info',
      note: `${fmt(size.with_b)} B vs ${
        fmt(size.without_b)
      } B a row (pg_column_size, ${size.n_with} and ${size.n_without} rows): ${
        fmt(perDay(size.with_b))
      } vs ${fmt(perDay(size.without_b))} MiB a day of raw rows for ${queues} queues every 10 s`,
    });
  } finally {
    await sql.unsafe(now).catch(() => {});
    await sql`update queue_health.settings set unchanged_reread_interval = ${reread}::interval`
      .catch(() => {});
    await dropBenchPgmqQueues(sql);
    await forgetBenchQueues(ctx);
    await sql.end({ timeout: 2 });
  }
}
