/**
 * Scenario 2: what monitoring costs the queues themselves. A fixed pg-boss workload and a pgmq
 * send/read/delete loop run in equal windows with monitoring off, capturing every 10 s, and every
 * 1 s (stress), alternating off / 10 s / 1 s; throughput and per-job latency are compared round
 * by round.
 *
 * @module
 */
import {
  connectTo,
  type Context,
  dropBenchPgmqQueues,
  ensureBenchProject,
  forgetBenchQueues,
  PGBOSS_SCHEMA,
  sleep,
  type Sql,
} from '../lib/context.ts';
import { createFilledQueues, queueNames } from '../lib/pgmq_data.ts';
import { compare, fmt, range, summarize } from '../lib/stats.ts';

const S = '2 overhead';
const CONCURRENCY = 4;
const BATCH = 10;

/** One measured window. */
interface Window {
  mode: string;
  seconds: number;
  jobs: number;
  throughput: number;
  latencies: number[];
  captures: number;
  capture_ms: number[];
  /** Captures that found another session's capture running (shared database). */
  skipped: number;
}

/** A workload: one cycle processes some jobs and returns how many. */
interface Workload {
  name: string;
  /** Per-job latency: what one cycle's time means. */
  latency: string;
  cycle(worker: number): Promise<number>;
}

/**
 * CPU time (ms) a local process has spent on a CPU, from /proc/<pid>/schedstat (nanoseconds; the
 * clock ticks of /proc/<pid>/stat are 10 ms, too coarse for one capture); null when the database
 * is not on this machine (or not Linux) or the process is gone.
 */
export async function processCpuMs(pid: number): Promise<number | null> {
  try {
    return Number((await Deno.readTextFile(`/proc/${pid}/schedstat`)).split(' ')[0]) / 1e6;
  } catch {
    return null;
  }
}

/** The parent of a local process (for a server backend: the postmaster). */
async function parentPid(pid: number): Promise<number | null> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const m = status.match(/^PPid:\s+(\d+)/m);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * CPU time (ms) of every process of a local PostgreSQL server (the postmaster's children:
 * backends, autovacuum, WAL writer, checkpointer, ...), by pid.
 */
async function serverCpuMs(postmaster: number): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for await (const e of Deno.readDir('/proc')) {
    if (!/^\d+$/.test(e.name)) continue;
    const pid = Number(e.name);
    if ((await parentPid(pid)) !== postmaster) continue;
    const ms = await processCpuMs(pid);
    if (ms !== null) out.set(pid, ms);
  }
  return out;
}

async function runWindow(
  ctx: Context,
  workload: Workload,
  mode: 'off' | '10 s' | '1 s',
  seconds: number,
  intervalMs?: number,
): Promise<Window> {
  const interval = intervalMs ?? (mode === 'off' ? 0 : mode === '10 s' ? 10_000 : 1_000);
  const windowMs = seconds * 1000;
  const t0 = performance.now();
  const end = t0 + windowMs;
  const latencies: number[] = [];
  let jobs = 0;
  const captureMs: number[] = [];
  let skipped = 0;
  let stop = false;
  // Captures at interval/2, 3·interval/2, …: the same number per window in every round.
  const capturing = (async () => {
    if (!interval) return;
    let next = t0 + interval / 2;
    while (!stop) {
      const wait = next - performance.now();
      if (next >= end) break;
      if (wait > 0) await sleep(Math.min(wait, 200));
      if (performance.now() < next) continue;
      const c0 = performance.now();
      const [{ status }] = await ctx.sql`select queue_health.capture() ->> 'status' as status`;
      if (status === 'skipped') skipped++;
      else captureMs.push(performance.now() - c0);
      next += interval;
    }
  })();
  const worker = async (w: number) => {
    while (performance.now() < end) {
      const c0 = performance.now();
      const n = await workload.cycle(w);
      const ms = performance.now() - c0;
      if (performance.now() <= end) {
        jobs += n;
        for (let i = 0; i < n; i++) latencies.push(ms);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
  stop = true;
  await capturing;
  const elapsed = (performance.now() - t0) / 1000;
  return {
    mode,
    seconds: elapsed,
    jobs,
    throughput: jobs / seconds,
    latencies,
    captures: captureMs.length,
    capture_ms: captureMs,
    skipped,
  };
}

/**
 * The captures of the queue-health-capture pg_cron job, as pg_cron runs them: `sessions` new
 * sessions one after another, each calling run_captures() for `sessionMs` at `intervalMs`
 * (started half-way between two ticks). Returns the captures' wall-clock times (capture_run) and,
 * when `measure` (the server is local), the runner's CPU per slot between two captures: each slot
 * holds one capture, the first of a session its start too.
 */
async function runnerSessions(
  ctx: Context,
  sessions: number,
  sessionMs: number,
  intervalMs: number,
  measure: boolean,
): Promise<Pick<Window, 'captures' | 'capture_ms' | 'skipped'> & { capture_cpu_ms: number[] }> {
  const captureMs: number[] = [];
  const captureCpuMs: number[] = [];
  let skipped = 0;
  let cpuOk = measure;
  const slots = Math.round(sessionMs / intervalMs);
  const first = Date.now();
  for (let i = 0; i < sessions; i++) {
    // Back to back, a minute each, as pg_cron starts them (a session ends after its last capture).
    const start = first + i * sessionMs;
    await sleep(Math.max(0, start - Date.now()));
    const notices: string[] = [];
    const conn = connectTo(ctx.url, 1, 'qhbench-runner', (m) => notices.push(m));
    try {
      const [{ pid, t0, cmd }] = await conn<{ pid: number; t0: Date; cmd: string }[]>`
        select pg_backend_pid() as pid, clock_timestamp() as t0,
               queue_health.run_captures_command(
                 p_until => to_timestamp(${(start + sessionMs) / 1000}),
                 p_interval => ${`${intervalMs / 1000} seconds`}::interval) as cmd`;
      // The block the pg_cron job runs; its last notice counts the captures that failed outright.
      const call = conn.unsafe(cmd).execute();
      let prev = 0;
      const cpus: number[] = [];
      for (let k = 1; k < slots; k++) {
        await sleep(Math.max(0, start + k * intervalMs - Date.now()));
        const cpu = cpuOk ? await processCpuMs(pid) : null;
        if (cpu === null) cpuOk = false;
        else {
          cpus.push(cpu - prev);
          prev = cpu;
        }
      }
      await call;
      const counts = /(\d+) capture\(s\), (\d+) failed/.exec(notices.at(-1) ?? '');
      if (!counts) throw new Error(`the capture loop ended without its counts: ${notices.at(-1)}`);
      const failed = Number(counts[2]);
      const cpu = cpuOk ? await processCpuMs(pid) : null;
      if (cpu === null) cpuOk = false;
      else cpus.push(cpu - prev);
      const rows = await ctx.sql<{ duration_ms: number; status: string }[]>`
        select duration_ms, status::text from queue_health.capture_run
        where started_at >= ${t0} and started_at < to_timestamp(${(start + sessionMs) / 1000})
        order by started_at`;
      for (const r of rows) {
        if (r.status === 'skipped') skipped++;
        else captureMs.push(r.duration_ms);
      }
      skipped += failed;
      if (cpuOk) captureCpuMs.push(...cpus);
    } finally {
      await conn.end();
    }
  }
  return {
    captures: captureMs.length,
    capture_ms: captureMs,
    capture_cpu_ms: cpuOk ? captureCpuMs : [],
    skipped,
  };
}

async function measure(ctx: Context, workload: Workload) {
  const { overheadWindowS: seconds, overheadRounds: rounds } = ctx.sizes;
  // Warm-up window (connections, plans, caches), not reported.
  await runWindow(ctx, workload, 'off', Math.min(2, seconds));
  const windows: Record<string, Window[]> = { off: [], '10 s': [], '1 s': [] };
  for (let r = 0; r < rounds && Date.now() < ctx.deadline; r++) {
    for (const mode of ['off', '10 s', '1 s'] as const) {
      windows[mode].push(await runWindow(ctx, workload, mode, seconds));
    }
  }
  const n = windows.off.length;
  if (n === 0) {
    ctx.report.skip(S, workload.name, 'time budget of the run used up');
    return null;
  }
  // The steady window: the workload running for minutes while captures run the way the
  // queue-health-capture pg_cron job runs them (queue_health.schedule() under a minute): every
  // minute a new session calls run_captures(), which captures every interval until the minute
  // ends, so one capture in six pays a session's start (relation and plan caches built again).
  // A capture of unchanged queues is cheap and they are read again now and then
  // (unchanged_reread_interval, see docs/metrics.md), so only a window this long holds the real
  // mix. When the database runs on this machine, /proc tells the CPU each runner session used
  // (sampled half-way between two captures, so each slot holds one capture; the first one its
  // session's start too) and the CPU every other server process used over the window (the
  // workload's backends, WAL writer, autovacuum, ...): the captures' CPU over the server's is the
  // processing the monitor adds to what the database does for the queues, which unlike the
  // throughput rounds does not drown in the machine's noise.
  const steadyInterval = ctx.sizes.overheadSteadyIntervalS * 1000;
  let steady: (Window & { capture_cpu_ms: number[] }) | null = null;
  let serverMs: number | null = null;
  if (Date.now() < ctx.deadline) {
    const [{ pid }] = await ctx.sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
    const postmaster = await parentPid(pid);
    const sessionMs = Math.min(60_000, ctx.sizes.overheadSteadyS * 1000);
    const sessions = Math.max(1, Math.round((ctx.sizes.overheadSteadyS * 1000) / sessionMs));
    // Start half-way between two ticks (ticks are whole multiples of the interval).
    await sleep((steadyInterval * 1.5 - (Date.now() % steadyInterval)) % steadyInterval);
    const before = postmaster !== null ? await serverCpuMs(postmaster) : null;
    const [window, runs] = await Promise.all([
      runWindow(ctx, workload, '10 s', (sessions * sessionMs) / 1000, 0),
      runnerSessions(ctx, sessions, sessionMs, steadyInterval, before !== null && before.size > 0),
    ]);
    steady = { ...window, ...runs };
    if (runs.capture_cpu_ms.length && postmaster !== null) {
      const after = await serverCpuMs(postmaster);
      // Processes that ended during the window (the runner sessions) are in neither sample.
      serverMs = [...after].reduce((sum, [p, ms]) => sum + ms - (before!.get(p) ?? 0), 0);
    }
  }
  const pooled = (ws: Window[]) => summarize(ws.flatMap((w) => w.latencies));
  const off = pooled(windows.off);
  ctx.report.add({
    scenario: S,
    case: `${workload.name}, monitoring off`,
    metric: 'throughput jobs/s (median)',
    value: summarize(windows.off.map((w) => w.throughput)).median,
    unit: 'jobs/s',
    spread: `${range(summarize(windows.off.map((w) => w.throughput)))}, n=${n}`,
    verdict: 'info',
    note: `${workload.latency}: p50 ${fmt(off.median)} ms, p99 ${fmt(off.p99)} ms`,
  });
  for (const mode of ['10 s', '1 s'] as const) {
    const on = windows[mode].slice(0, n);
    // Overhead per round: how much longer the same work takes with monitoring on.
    const cmp = compare(on.map((w) => w.throughput), windows.off.map((w) => w.throughput));
    const overheads = cmp.ratios.map((r) => (r - 1) * 100);
    const s = summarize(overheads);
    const lat = pooled(on);
    const caps = on.flatMap((w) => w.capture_ms);
    const capMedian = caps.length ? summarize(caps).median : 0;
    const is10 = mode === '10 s';
    // What the monitor itself takes, from the steady window at 10 s (the stress windows at 1 s):
    // its share of one core (CPU when measurable, else wall-clock time per interval), and, at
    // 10 s when /proc can be read, its CPU over the database server's.
    const steadyCaps = is10 && steady?.capture_ms.length ? steady.capture_ms : null;
    const dutyCaps = steadyCaps ?? caps;
    const dutyMean = dutyCaps.length ? dutyCaps.reduce((a, b) => a + b, 0) / dutyCaps.length : 0;
    const wallDuty = steadyCaps
      ? (dutyMean / steadyInterval) * 100
      : (capMedian / (is10 ? 10_000 : 1_000)) * 100;
    // Per slot between two captures (each slot one capture; see runnerSessions()).
    const cpuCaps = steadyCaps && steady!.capture_cpu_ms.length ? steady!.capture_cpu_ms : null;
    const captureCpuMs = cpuCaps ? cpuCaps.reduce((a, b) => a + b, 0) : null;
    const cpuDuty = captureCpuMs !== null ? (captureCpuMs / (steady!.seconds * 1000)) * 100 : null;
    const duty = cpuDuty ?? wallDuty;
    const added = captureCpuMs !== null && serverMs ? (captureCpuMs / serverMs) * 100 : null;
    // How precise that share is: the captures' CPU varies from one to the next (cold caches,
    // the machine's noise), so the mean per capture has a standard error; ~95 % of such windows
    // would give a share within ±1.96 of it (the server's CPU over the window varies far less).
    const addedCi = added !== null && cpuCaps && cpuCaps.length > 1
      ? (() => {
        const mean = captureCpuMs! / cpuCaps.length;
        const sd = Math.sqrt(
          cpuCaps.reduce((a, x) => a + (x - mean) ** 2, 0) / (cpuCaps.length - 1),
        );
        const half = (1.96 * sd / Math.sqrt(cpuCaps.length)) / mean * added;
        return [added - half, added + half] as const;
      })()
      : null;
    // A 1 % effect can only be called from the rounds when all of them agree: met when every
    // round is under 1 %, missed when every round is over it (a sign test: with 5 rounds and no
    // effect, each happens by chance 1 time in 32). Otherwise the CPU accounting decides: the
    // captures' CPU (their sessions' start included) under 1 % of the server's over the steady
    // window. Without it (a database on another machine) the verdict stays open.
    const verdict = s.max < 1
      ? 'met'
      : s.min > 1
      ? 'missed'
      : added !== null
      ? (added < 1 ? 'met' : 'missed')
      : 'info';
    const byCpu = added !== null && s.max >= 1 && s.min <= 1;
    ctx.report.add({
      scenario: S,
      case: `${workload.name}, capture every ${mode}${is10 ? '' : ' (stress)'}`,
      metric: 'added processing time (median)',
      value: s.median,
      unit: '%',
      spread: `${range(s)}, n=${n}`,
      goal: is10 && !ctx.quick ? '< 1 %' : undefined,
      verdict: is10 && !ctx.quick ? verdict : 'info',
      note: `${
        is10 && !ctx.quick && byCpu
          ? `decided by the CPU accounting (${fmt(added!)} % of the server's CPU${
            addedCi ? `, 95 % interval ${fmt(addedCi[0])}–${fmt(addedCi[1])} %` : ''
          }, next row): the rounds range ${range(s)} %, wider than the 1 % asked. `
          : is10 && !ctx.quick && verdict === 'info'
          ? `inconclusive: rounds range ${range(s)} %, wider than the 1 % asked; see the duty row. `
          : ''
      }throughput ${fmt(summarize(on.map((w) => w.throughput)).median)} jobs/s; p50 ${
        fmt(lat.median)
      } ms (off ${fmt(off.median)}), p99 ${fmt(lat.p99)} ms (off ${
        fmt(off.p99)
      }); ${caps.length} captures of ${fmt(capMedian)} ms (median) in these windows${
        is10 ? '' : `; duty ${fmt(duty)} % of one core`
      }`,
    });
    if (is10 && steadyCaps && added !== null) {
      ctx.report.add({
        scenario: S,
        case: `${workload.name}, capture every ${
          steadyInterval / 1000
        } s, steady, as the pg_cron job runs it`,
        metric: "capture CPU ÷ the server's CPU",
        value: added,
        unit: '%',
        spread: `${
          addedCi ? `95 % interval ${fmt(addedCi[0])}–${fmt(addedCi[1])} %; ` : ''
        }captures ${fmt(captureCpuMs!)} ms CPU, server ${fmt(serverMs!)} ms CPU in ${
          steady!.seconds.toFixed(0)
        } s; n=${steadyCaps.length}`,
        verdict: 'info',
        note: `what the monitor adds to the database's processing while the queues run ${
          fmt(steady!.throughput)
        } jobs/s; captures by run_captures() in a new session every minute (as the pg_cron job), the sessions' start included`,
      });
    }
    if (is10 && dutyCaps.length) {
      ctx.report.add({
        scenario: S,
        case: `${workload.name}, capture every ${
          steadyCaps ? `${steadyInterval / 1000} s, steady, as the pg_cron job runs it` : '10 s'
        }`,
        metric: cpuDuty !== null
          ? 'capture CPU per second (duty)'
          : 'capture time per interval (duty)',
        value: duty,
        unit: '% of one core',
        spread: `capture mean ${fmt(dutyMean)} ms wall-clock (${range(summarize(dutyCaps))})${
          cpuCaps
            ? `, ${fmt(captureCpuMs! / cpuCaps.length)} ms CPU (${range(summarize(cpuCaps))})`
            : ''
        }, n=${dutyCaps.length}${cpuDuty !== null ? `; wall-clock duty ${fmt(wallDuty)} %` : ''}`,
        verdict: 'info',
        note: `${ctx.sizes.overheadBackgroundQueues} idle queues + the workload's are captured${
          steadyCaps
            ? `; ${steady!.seconds.toFixed(0)} s of the workload with a capture every ${
              steadyInterval / 1000
            } s (unchanged queues repeated, each re-read once a minute); throughput ${
              fmt(steady!.throughput)
            } jobs/s`
            : ''
        }`,
      });
    }
  }
  const all: Record<string, (Window & { capture_cpu_ms?: number[] })[]> = {
    ...windows,
    steady: steady ? [steady] : [],
  };
  return {
    ...Object.fromEntries(
      Object.entries(all).map(([k, ws]) => [
        k,
        ws.map((w) => ({
          seconds: w.seconds,
          jobs: w.jobs,
          throughput: w.throughput,
          latency: w.latencies.length ? summarize(w.latencies) : null,
          captures: w.captures,
          capture_ms: w.capture_ms,
          ...(w.capture_cpu_ms?.length ? { capture_cpu_ms: w.capture_cpu_ms } : {}),
          skipped: w.skipped,
        })),
      ]),
    ),
    steady_server_cpu_ms: serverMs,
  };
}

/** Runs scenario 2. */
export async function overhead(ctx: Context): Promise<void> {
  if (!(await ctx.hasFunction('queue_health.capture(timestamptz)'))) {
    ctx.report.skip(S, 'all', 'queue_health.capture() is not installed (CORE migration 100200)');
    return;
  }
  await ensureBenchProject(ctx);
  const details: Record<string, unknown> = {};
  const bg = ctx.sizes.overheadBackgroundQueues;
  const hasPgmq = await ctx.hasRelation('pgmq.meta');
  try {
    if (hasPgmq) {
      // Idle queues so that each capture does the work of a real installation.
      const fill = ctx.connect(2, 'qhbench-fill');
      try {
        await createFilledQueues(fill, queueNames('qhbench_ovh_bg', bg), 1_000);
      } finally {
        await fill.end();
      }
      details.background_queues = `${bg} pgmq queues × 1k messages`;
    }

    // pgmq: send → read → delete, one message per cycle per worker.
    if (!hasPgmq) {
      ctx.report.skip(S, 'pgmq loop', 'no pgmq (extension or fixture) in the database');
    } else {
      await ctx.sql`select pgmq.create('qhbench_ovh_work')`;
      const work = ctx.connect(CONCURRENCY, 'qhbench-pgmq-work');
      try {
        ctx.log('2: pgmq send/read/delete loop');
        details.pgmq = await measure(ctx, {
          name: 'pgmq send/read/delete',
          latency: 'send→read→delete cycle',
          async cycle() {
            await work`select pgmq.send('qhbench_ovh_work', '{"job": "bench"}'::jsonb)`;
            const got = await work<{ msg_id: string }[]>`
              select msg_id from pgmq.read('qhbench_ovh_work', 30, 1)`;
            if (got.length) {
              await work`select pgmq.delete('qhbench_ovh_work', ${got[0].msg_id}::bigint)`;
            }
            return got.length;
          },
        });
      } finally {
        await work.end();
      }
    }

    // pg-boss v12: producers insert batches, workers fetch and complete them.
    let started: Awaited<ReturnType<typeof import('../../local/test/pgboss.ts').startPgBoss<12>>>;
    try {
      const { startPgBoss } = await import('../../local/test/pgboss.ts');
      await ctx.sql`drop schema if exists ${ctx.sql(PGBOSS_SCHEMA)} cascade`;
      started = await startPgBoss(12, {
        schema: PGBOSS_SCHEMA,
        databaseUrl: ctx.url,
        max: CONCURRENCY + 2,
      });
    } catch (e) {
      ctx.report.skip(
        S,
        'pg-boss workload',
        `could not start pg-boss v12: ${(e as Error).message}`,
      );
      return;
    }
    try {
      const boss = started.boss;
      await boss.createQueue('qhbench_ovh_jobs');
      ctx.log('2: pg-boss workload');
      details.pgboss = await measure(ctx, {
        name: `pg-boss v12 insert ${BATCH}/fetch/complete`,
        latency: 'job send→complete (batch cycle)',
        async cycle() {
          await boss.insert(
            'qhbench_ovh_jobs',
            Array.from({ length: BATCH }, (_, i) => ({ data: { job: 'bench', i } })),
          );
          const jobs = await boss.fetch('qhbench_ovh_jobs', { batchSize: BATCH });
          if (jobs.length) await boss.complete('qhbench_ovh_jobs', jobs.map((j) => j.id));
          return jobs.length;
        },
      });
    } finally {
      await started.stop();
    }
  } finally {
    ctx.report.details['2_overhead'] = details;
    await dropBenchPgmqQueues(ctx.sql, 'qhbench_ovh%');
    await ctx.sql`drop schema if exists ${ctx.sql(PGBOSS_SCHEMA)} cascade`;
    await forgetBenchQueues(ctx);
  }
}

/** Keeps the type import used when pg-boss is absent. */
export type { Sql };
