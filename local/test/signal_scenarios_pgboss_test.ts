/**
 * Scenario tests of the queue signals (issue 22, "Done when") on real pg-boss (v12 and v10, side
 * by side in their own schemas), driven by real producers and workers: `send`, `fetch`,
 * `complete`, `fail`, never by writing metric rows. Each tick is what the producer and the worker
 * of each queue do, then `queue_health.capture()`; the assertions read what a user sees:
 * `queue_health.metric` (history), `queue_health.queue` (the registry's newest row) and the alerts
 * of the default rules.
 *
 * Time: real, scaled down. pg-boss stamps its jobs with the real clock (`created_on`,
 * `started_on`, `completed_on`, `start_after`), and the pg-boss sampler compares those with
 * `p_now` to count what happened since the previous snapshot, so `p_now` cannot run ahead of (or
 * behind) the clock here the way the pgmq scenarios do. Instead the test scales the windows down
 * to their minimum: `settings.flow_window` and `settings.rate_smoothing` 10 s, a capture about
 * every second (`capture()` at `now()`), 54 ticks in all. The drain ETA and expected wait are
 * known once a queue has been watched for a minute: the first capture runs at `now() - 61 s`,
 * before any job is sent, as a monitor that was already running would have. Every other setting
 * keeps its default (the unchanged-queue shortcut included).
 *
 * It runs in a private database built as a hosted project, so no other capture runs between the
 * test's.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { connect, type Sql } from './db.ts';
import { applyMigrations } from '../stack/migrate.ts';
import { createHostedDatabase, type PrivateDatabase } from './private_db.ts';
import {
  commonApi,
  type PgBossCommon,
  type PgBossVersion,
  type StartedPgBoss,
  startPgBoss,
} from './pgboss.ts';

const VERSIONS = [12, 10] as const satisfies readonly PgBossVersion[];
const TICKS = 54;
const TICK_MS = 1000;
/** The tick at which the stopped queue's worker stops. */
const STOP_AT = 8;
const WINDOW_S = 10;
/**
 * The draining backlog: jobs sent before the first tick; from the first tick on a steady worker
 * takes DRAIN_RATE jobs a second of real time (however long a tick takes).
 */
const BACKLOG = 150;
const DRAIN_RATE = 3;

interface Row {
  k: number;
  at: number;
  ready: number;
  in_flight: number;
  enqueued: number;
  completed: number;
  failed: number;
  retried: number;
  drain_eta_s: number | null;
  expected_wait_s: number | null;
  flow_status: string | null;
  last_dequeue: number | null;
  poison: number | null;
  oldest_poison_age_s: number | null;
}

/** A queue's metric rows after the warm-up capture, oldest first, numbered by tick from 0. */
async function history(sql: Sql, schema: string, queue: string): Promise<Row[]> {
  const rows = await sql<Row[]>`
    select extract(epoch from captured_at)::float8 * 1000 as at, ready::int, in_flight::int,
           enqueued::int, completed::int, failed::int, retried::int, drain_eta_s,
           expected_wait_s, flow_status::text,
           extract(epoch from last_dequeue_at)::float8 * 1000 as last_dequeue, poison::int,
           oldest_poison_age_s
      from queue_health.metric
     where source = 'pgboss' and source_schema = ${schema} and queue_name = ${queue}
     order by captured_at
    offset 1`;
  return rows.map((r, k) => ({ ...r, k }));
}

async function registry(sql: Sql, schema: string, queue: string) {
  const [q] = await sql<{ flow_status: string | null; ready: number; poison: number }[]>`
    select flow_status::text, ready::int, poison::int from queue_health.queue
     where source = 'pgboss' and source_schema = ${schema} and queue_name = ${queue}`;
  return q;
}

function statusRuns(rows: Row[]): (string | null)[] {
  return rows.map((r) => r.flow_status).filter((s, i, a) => i === 0 || a[i - 1] !== s);
}

/**
 * A worker: fetches up to `n` jobs and completes (or fails) each; returns how many. `takes`, when
 * given, counts how many times each job id was taken.
 */
async function work(
  boss: PgBossCommon,
  queue: string,
  n: number,
  outcome: 'complete' | 'fail',
  takes?: Map<string, number>,
) {
  if (n <= 0) return 0;
  const jobs = await boss.fetch(queue, { batchSize: n });
  for (const job of jobs) {
    takes?.set(job.id, (takes.get(job.id) ?? 0) + 1);
    if (outcome === 'complete') await boss.complete(queue, job.id);
    else await boss.fail(queue, job.id, { why: 'always fails' });
  }
  return jobs.length;
}

async function sendN(boss: PgBossCommon, queue: string, n: number) {
  for (let i = 0; i < n; i++) await boss.send(queue, { i });
}

Deno.test('signal scenarios on real pg-boss 12 and 10: stopped, falling behind, redelivering, healthy', async (t) => {
  const wall = performance.now();
  let db: PrivateDatabase | undefined;
  let sql: Sql | undefined;
  const started: StartedPgBoss<PgBossVersion>[] = [];
  try {
    db = await createHostedDatabase('qh_scen_pgboss');
    await applyMigrations(db.url, { stamp: false });
    sql = connect({ url: db.url, max: 1 });
    const s = sql;
    await s`update queue_health.settings set flow_window = ${`${WINDOW_S} seconds`}::interval,
              rate_smoothing = '10 seconds'`;
    const bosses = new Map<PgBossVersion, PgBossCommon>();
    for (const v of VERSIONS) {
      const pb = await startPgBoss(v, {
        schema: `qh_test_scen_v${v}`,
        databaseUrl: db.url,
        fresh: true,
      });
      started.push(pb);
      const boss = commonApi(pb);
      bosses.set(v, boss);
      for (const q of ['healthy', 'stopped', 'slow', 'drain']) await boss.createQueue(q);
      await boss.createQueue('failing', { retryLimit: 1000, retryDelay: 0 });
    }
    // The monitor was already watching a minute before the work started (see the module comment).
    await s`select queue_health.capture(now() - interval '61 seconds')`;
    for (const boss of bosses.values()) await sendN(boss, 'drain', BACKLOG);

    const drainStart = performance.now();
    const drained = new Map<PgBossVersion, number>();
    // The failing worker's takes per job, and so the poison each tick's capture must count (jobs
    // taken poison_read_count = 3 times or more): a retry is not always due again a tick later on
    // a loaded machine, so the expectation follows what the worker really took.
    const failingTakes = new Map<PgBossVersion, Map<string, number>>();
    const poisonDue = new Map<PgBossVersion, number[]>();
    for (let k = 0; k < TICKS; k++) {
      const tick = performance.now();
      const drainDue = Math.min(BACKLOG, Math.floor((tick - drainStart) / 1000 * DRAIN_RATE));
      for (const [v, boss] of bosses) {
        await sendN(boss, 'healthy', 2);
        await work(boss, 'healthy', 10, 'complete');
        await sendN(boss, 'stopped', 1);
        if (k < STOP_AT) await work(boss, 'stopped', 10, 'complete');
        await sendN(boss, 'slow', 3);
        await work(boss, 'slow', 2, 'complete');
        if (k === 0) await sendN(boss, 'failing', 3);
        if (!failingTakes.has(v)) failingTakes.set(v, new Map());
        await work(boss, 'failing', 10, 'fail', failingTakes.get(v));
        poisonDue.set(v, [
          ...(poisonDue.get(v) ?? []),
          [...failingTakes.get(v)!.values()].filter((n) => n >= 3).length,
        ]);
        const taken = drained.get(v) ?? 0;
        drained.set(v, taken + await work(boss, 'drain', drainDue - taken, 'complete'));
      }
      const [{ r }] = await s<{ r: { status: string } }[]>`select queue_health.capture() as r`;
      assert.notEqual(r.status, 'failed', JSON.stringify(r));
      await new Promise((resolve) =>
        setTimeout(resolve, Math.max(0, TICK_MS - (performance.now() - tick)))
      );
    }
    console.log(JSON.stringify({
      event: 'signal_scenarios_pgboss_ticks',
      ticks: TICKS,
      wall_s: Math.round((performance.now() - wall) / 100) / 10,
    }));

    for (const v of VERSIONS) {
      const schema = `qh_test_scen_v${v}`;
      const runs: Record<string, (string | null)[]> = {};
      for (const q of ['healthy', 'stopped', 'slow', 'failing', 'drain']) {
        runs[q] = statusRuns(await history(s, schema, q));
      }
      console.log(JSON.stringify({ event: 'signal_scenarios_pgboss_statuses', version: v, runs }));
      await t.step(`v${v}: a stopped worker: stopped within the flow window`, async () => {
        const rows = await history(s, schema, 'stopped');
        const stop = rows[STOP_AT - 1].at;
        const first = rows.find((r) => r.flow_status === 'stopped');
        assert.ok(first, JSON.stringify(statusRuns(rows)));
        assert.ok(first.at > stop, `stopped before the worker stopped`);
        // within one window (and a tick) of the stop
        assert.ok(first.at - stop <= (WINDOW_S + 2) * 1000, `${(first.at - stop) / 1000} s after`);
        for (const r of rows.slice(first.k)) {
          assert.equal(r.flow_status, 'stopped', `capture ${r.k}`);
        }
        assert.equal(rows.at(-1)!.last_dequeue, stop);
        assert.equal(rows.at(-1)!.drain_eta_s, Infinity);
        assert.equal((await registry(s, schema, 'stopped')).flow_status, 'stopped');
      });

      await t.step(
        `v${v}: a slow worker: falling_behind, expected wait finite and rising`,
        async () => {
          const rows = await history(s, schema, 'slow');
          const judged = rows.filter((r) => r.flow_status !== null);
          assert.ok(judged.length >= 8, JSON.stringify(statusRuns(rows)));
          for (const r of judged) {
            assert.equal(r.flow_status, 'falling_behind', `capture ${r.k}: ${JSON.stringify(r)}`);
            assert.equal(r.drain_eta_s, Infinity, `capture ${r.k}`);
            assert.ok(
              Number.isFinite(r.expected_wait_s) && r.expected_wait_s! > 0,
              `capture ${r.k}`,
            );
          }
          // Ready grows by one job a tick; the expected wait with it.
          assert.ok(judged.at(-1)!.expected_wait_s! > judged[0].expected_wait_s!);
          assert.equal(judged.at(-1)!.ready, TICKS);
          assert.equal((await registry(s, schema, 'slow')).flow_status, 'falling_behind');
        },
      );

      await t.step(`v${v}: a worker that always fails: redelivering, its jobs poison`, async () => {
        const rows = await history(s, schema, 'failing');
        // Taken once a tick while each retry is due (usually ticks 0, 1, 2, ...): poison once a
        // job has been taken three times (poison_read_count), as the worker counted its takes.
        const due = poisonDue.get(v)!;
        assert.deepEqual(rows.map((r) => r.poison), rows.map((r) => due[r.k]));
        assert.equal(due.at(-1), 3, `every job ends poison: ${JSON.stringify(due)}`);
        for (const r of rows.filter((r) => due[r.k] === 0)) {
          assert.equal(r.oldest_poison_age_s, null, `capture ${r.k}`);
        }
        // The oldest poison job's age runs from its creation, just before tick 0's capture.
        const last = rows.at(-1)!;
        const sinceTick0 = (last.at - rows[0].at) / 1000;
        assert.ok(
          last.oldest_poison_age_s! >= sinceTick0 && last.oldest_poison_age_s! <= sinceTick0 + 2,
          `oldest poison ${last.oldest_poison_age_s} s, tick 0 ${sinceTick0} s ago`,
        );
        assert.ok(rows.reduce((n, r) => n + r.retried, 0) > 0, 'retries seen');
        assert.equal(rows.reduce((n, r) => n + r.completed + r.failed, 0), 0);
        const judged = rows.filter((r) => r.flow_status !== null);
        assert.ok(judged.length >= 8, JSON.stringify(statusRuns(rows)));
        for (const r of judged) assert.equal(r.flow_status, 'redelivering', `capture ${r.k}`);
        const q = await registry(s, schema, 'failing');
        assert.equal(q.flow_status, 'redelivering');
        assert.equal(q.poison, 3);
      });

      await t.step(
        `v${v}: a draining backlog: drain ETA and expected wait within 20 %`,
        async () => {
          const rows = await history(s, schema, 'drain');
          const empty = rows.find((r) => r.ready === 0);
          assert.ok(empty, 'the backlog drained');
          assert.equal(empty.drain_eta_s, 0);
          let checked = 0;
          // The warm-up interval (61 s, the whole backlog enqueued in it) starts the smoothed
          // rates at in ~2.5/s, out 0 (the true rates are 0 and 3/s): from 3 time constants of the
          // rate smoothing (30 s) on, that start has faded to 5 %; up to the last 5 s before
          // empty (where one tick is a large part of what is left).
          for (
            const r of rows.filter((r) => r.at - rows[0].at >= 30_000 && empty.at - r.at >= 5_000)
          ) {
            const actual = (empty.at - r.at) / 1000;
            const near = (x: number | null) => Math.abs(x! - actual) <= 0.2 * actual;
            assert.ok(near(r.drain_eta_s), `capture ${r.k}: eta ${r.drain_eta_s} vs ${actual}`);
            // no producer: a job sent now waits for the whole backlog ahead of it
            assert.ok(
              near(r.expected_wait_s),
              `capture ${r.k}: wait ${r.expected_wait_s} vs ${actual}`,
            );
            checked++;
          }
          assert.ok(checked >= 10, `checked ${checked}`);
        },
      );

      await t.step(`v${v}: no poison where every job is taken once`, async () => {
        for (const q of ['healthy', 'stopped', 'slow', 'drain']) {
          for (const r of await history(s, schema, q)) {
            assert.equal(r.poison, 0, `${q} capture ${r.k}`);
            assert.equal(r.oldest_poison_age_s, null, `${q} capture ${r.k}`);
          }
        }
      });

      await t.step(`v${v}: a healthy queue stays ok, and raises no alert`, async () => {
        const rows = await history(s, schema, 'healthy');
        const judged = rows.filter((r) => r.flow_status !== null);
        assert.ok(judged.length >= 8, JSON.stringify(statusRuns(rows)));
        for (const r of judged) assert.equal(r.flow_status, 'ok', `capture ${r.k}`);
        const [{ n }] = await s<{ n: number }[]>`
          select count(*)::int as n from queue_health.alert_event
           where source_schema = ${schema} and queue_name = 'healthy'`;
        assert.equal(n, 0);
      });
    }
    console.log(JSON.stringify({
      event: 'signal_scenarios_pgboss_done',
      wall_s: Math.round((performance.now() - wall) / 100) / 10,
    }));
  } finally {
    for (const pb of started) await pb.stop();
    await sql?.end();
    await db?.drop();
  }
});
