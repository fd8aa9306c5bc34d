/**
 * `queue_health.run_captures_command()`: the block the `queue-health-capture` pg_cron job runs
 * every minute for intervals under a minute. One session captures every interval, each capture its own
 * committed transaction; a capture that fails outright is counted and the next tick goes on; and
 * under the real pg_cron (1.4 here: no seconds schedules) `schedule('10 seconds')` captures every
 * 10 s, and the runner stops when the job changes. Runs against the real database (env
 * `DATABASE_URL`); pgTAP cannot run it, since it commits.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { connect, type Sql } from './db.ts';
import { sleep } from './wait.ts';

interface Run {
  id: number;
  started_at: Date;
  status: string;
}

/** capture_run rows started at or after `since`, oldest first. */
async function runsSince(sql: Sql, since: Date): Promise<Run[]> {
  return await sql<Run[]>`
    select id::int, started_at, status::text from queue_health.capture_run
    where started_at >= ${since} and status <> 'skipped' order by started_at`;
}

/**
 * Runs the capture loop as the pg_cron job does (the block run_captures_command() returns) for
 * `seconds` at `interval`, on `sql`, whose notices go to `notices`; returns the counts its last
 * notice reports.
 */
async function runCaptures(
  sql: Sql,
  notices: string[],
  seconds: number,
  interval = '1 second',
): Promise<{ captures: number; failed: number }> {
  const [{ cmd }] = await sql<{ cmd: string }[]>`
    select queue_health.run_captures_command(
      p_until => clock_timestamp() + make_interval(secs => ${seconds}),
      p_interval => ${interval}::interval) as cmd`;
  await sql.unsafe(cmd);
  const last = notices.findLast((n) => /queue_health\.run_captures: \d+ capture/.test(n));
  const m = /(\d+) capture\(s\), (\d+) failed/.exec(last ?? '');
  if (!m) throw new Error(`no final notice from the capture loop: ${JSON.stringify(notices)}`);
  return { captures: Number(m[1]), failed: Number(m[2]) };
}

Deno.test('run_captures() captures every interval on whole seconds, committing each capture as it goes', async () => {
  const notices: string[] = [];
  const runner = connect({
    max: 1,
    applicationName: 'qh-run-captures',
    onNotice: (m) => notices.push(m),
  });
  const observer = connect({ max: 1 });
  try {
    const [{ t0 }] = await observer<{ t0: Date }[]>`select clock_timestamp() as t0`;
    const call = runCaptures(runner, notices, 3.6);
    // Seen from another session while the procedure still runs: each capture is committed.
    let seenWhileRunning = 0;
    for (let i = 0; i < 40 && seenWhileRunning < 2; i++) {
      await sleep(100);
      seenWhileRunning = (await runsSince(observer, t0)).length;
    }
    const { captures, failed } = await call;
    assert.ok(
      seenWhileRunning >= 2,
      `2 captures visible before the call returned, saw ${seenWhileRunning}`,
    );
    const runs = await runsSince(observer, t0);
    assert.equal(failed, 0);
    assert.ok(captures >= 3 && captures <= 5, `3 to 5 captures in 3.6 s at 1 s, got ${captures}`);
    assert.equal(runs.length, captures, 'one capture_run row per capture');
    assert.ok(runs.every((r) => r.status === 'ok'), JSON.stringify(runs));
    // Each capture starts at its tick: now() of a capture is its own transaction's start. The
    // first tick may be up to a second old (pg_cron starts a job a little after the minute), so
    // the first capture may come at once and the second at the next whole second.
    const starts = runs.map((r) => r.started_at.getTime());
    assert.ok(starts[0] - t0.getTime() < 1_000, `the first capture at once: ${starts.join(', ')}`);
    for (let i = 2; i < starts.length; i++) {
      const gap = starts[i] - starts[i - 1];
      // One capture per tick: a capture that started late on a busy machine (up to the 500 ms
      // checked below) shortens the gap to the next tick, never to less than half a second.
      assert.ok(gap >= 500 && gap <= 1_500, `captures about 1 s apart: ${starts.join(', ')}`);
      assert.ok(
        starts[i] % 1000 < 500,
        `a tick is a whole second: ${runs[i].started_at.toISOString()}`,
      );
    }
  } finally {
    await runner.end();
    await observer.end();
  }
});

Deno.test('run_captures() stops starting captures before statement_timeout would cancel one, and says so', async () => {
  const warnings: string[] = [];
  const sql = connect({
    max: 1,
    applicationName: 'qh-run-captures-timeout',
    onNotice: (m) => warnings.push(m),
  });
  try {
    const [{ t0 }] = await sql<{ t0: Date }[]>`select clock_timestamp() as t0`;
    const started = performance.now();
    // Asked for 10 s of captures under a 3 s statement_timeout: it must end on its own, in time.
    // (One connection: the SET holds for the call.)
    await sql`set statement_timeout = '3s'`;
    const { captures, failed } = await runCaptures(sql, warnings, 10);
    await sql`reset statement_timeout`;
    const ms = performance.now() - started;
    assert.ok(ms < 3_000, `returned before the timeout: ${Math.round(ms)} ms`);
    assert.equal(failed, 0);
    assert.ok(captures >= 1, `captured until then: ${captures}`);
    assert.equal((await runsSince(sql, t0)).length, captures);
    assert.ok(
      warnings.some((w) =>
        /statement_timeout \(3s\) ends this run before .*capture\(s\) short/.test(w)
      ),
      `a warning names statement_timeout: ${JSON.stringify(warnings)}`,
    );
  } finally {
    await sql.end();
  }
});

Deno.test('run_captures() counts a capture that fails outright, warns, and captures again at the next tick', async () => {
  const sql = connect({ max: 1, applicationName: 'qh-run-captures-fail' });
  const warnings: string[] = [];
  // A failure capture() cannot record itself: recording the run fails, once (a sequence, whose
  // nextval is not rolled back with the failed capture).
  await sql.unsafe(`
    create sequence public.qh_run_captures_fail;
    create function public.qh_run_captures_fail() returns trigger language plpgsql as $$
    begin
      if nextval('public.qh_run_captures_fail') = 1 then
        raise exception 'injected: capture_run insert failed';
      end if;
      return new;
    end $$;
    create trigger qh_run_captures_fail before insert on queue_health.capture_run
      for each row execute function public.qh_run_captures_fail();`);
  try {
    const listen = connect({
      max: 1,
      applicationName: 'qh-run-captures',
      onNotice: (m) => warnings.push(m),
    });
    try {
      const [{ t0 }] = await sql<{ t0: Date }[]>`select clock_timestamp() as t0`;
      const { captures, failed } = await runCaptures(listen, warnings, 2.6);
      assert.equal(failed, 1, 'the injected failure is counted');
      assert.ok(captures >= 1, `the next ticks captured: ${captures}`);
      assert.equal(
        (await runsSince(sql, t0)).length,
        captures,
        'only the good captures left a run',
      );
      assert.ok(
        warnings.some((w) =>
          /run_captures: capture at .* failed: injected: capture_run insert failed/.test(w)
        ),
        `a warning names the failure: ${JSON.stringify(warnings)}`,
      );
    } finally {
      await listen.end();
    }
  } finally {
    await sql.unsafe(`
      drop trigger if exists qh_run_captures_fail on queue_health.capture_run;
      drop function if exists public.qh_run_captures_fail();
      drop sequence if exists public.qh_run_captures_fail;`);
    await sql.end();
  }
});

Deno.test("under the real pg_cron, schedule('10 seconds') captures every 10 s from one job run, which stops when the job changes", async () => {
  const sql = connect({ max: 1, applicationName: 'qh-run-captures-cron' });
  try {
    const [{ cron }] = await sql<{ cron: boolean }[]>`
      select exists (select from pg_extension where extname = 'pg_cron') as cron`;
    if (!cron) {
      console.warn('pg_cron is not installed in this database: skipped');
      return;
    }
    const [{ t0 }] = await sql<{ t0: Date }[]>`select clock_timestamp() as t0`;
    const [{ r }] = await sql<{ r: { mode: string; capture_interval: string } }[]>`
      select queue_health.schedule('10 seconds') as r`;
    assert.equal(r.mode, 'runner');
    assert.equal(r.capture_interval, '00:00:10');
    // pg_cron starts the job at the next minute; two captures 10 s apart follow within ~75 s.
    let runs: Run[] = [];
    for (let i = 0; i < 85 && runs.length < 2; i++) {
      await sleep(1_000);
      runs = await runsSince(sql, t0);
    }
    assert.ok(runs.length >= 2, `two captures from the job within 85 s, got ${runs.length}`);
    const gap = runs[1].started_at.getTime() - runs[0].started_at.getTime();
    assert.ok(gap >= 9_000 && gap <= 11_000, `10 s apart: ${gap} ms`);
    assert.ok(runs.every((x) => x.status === 'ok'), JSON.stringify(runs));
    const [job] = await sql<{ status: string; n: number }[]>`
      select d.status, count(*) over ()::int as n
      from cron.job_run_details d join cron.job j using (jobid)
      where j.jobname = 'queue-health-capture' and d.start_time >= ${t0}`;
    assert.equal(job.n, 1, 'both captures came from one run of the job');
    assert.equal(job.status, 'running');

    // Switching to a minute or more: the job now calls capture(), and the running session sees
    // that at its next tick and ends its run as succeeded.
    await sql`select queue_health.schedule('1 minute')`;
    let status = 'running';
    for (let i = 0; i < 15 && status === 'running'; i++) {
      await sleep(1_000);
      [{ status }] = await sql<{ status: string }[]>`
        select d.status from cron.job_run_details d join cron.job j using (jobid)
        where j.jobname = 'queue-health-capture' and d.start_time >= ${t0}
        order by d.start_time limit 1`;
    }
    assert.equal(status, 'succeeded', 'the runner ended its run when the job changed');
    const [{ left }] = await sql<{ left: number }[]>`
      select count(*)::int as left from pg_stat_activity
      where application_name = 'queue_health.run_captures'`;
    assert.equal(left, 0, 'no runner session is left');
  } finally {
    await sql`select queue_health.unschedule()`.catch(() => {});
    await sql.end();
  }
});
