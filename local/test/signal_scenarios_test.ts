/**
 * Scenario tests of the queue signals (issue 22, "Done when") on the pgmq fixture, driven by real
 * producers and consumers: `pgmq.send_batch`, `pgmq.read`, `pgmq.delete`, never by writing metric
 * rows. Each step is what the producer and the consumer of each queue do, then
 * `queue_health.capture(p_now)`; the assertions read what a user sees: `queue_health.metric`
 * (history), `queue_health.queue` (the registry's newest row), `slo_burn_rate()` and the alerts
 * the default rules raise (`queue_health.alert`, `alert_event`).
 *
 * It runs in a private database built as a hosted project (the fixture as the platform installs
 * pgmq, then the project's migrations), so no pg_cron capture of the shared test database runs
 * between the simulated ones.
 *
 * Simulated time. pgmq decides visibility with the real clock (`vt <= clock_timestamp()` in
 * `read()`, `vt = clock_timestamp() + n` in `send()` and `read()`), while the sampler compares
 * `vt` with `p_now`. The test keeps the two consistent this way:
 *
 * - Phase A (6 h in ~260 captures: 5.5 h every 5 minutes, then 31 minutes every 10 s) runs
 *   simulated time BEHIND the real clock (it starts `SIM_TOTAL_S` + a margin in the past and
 *   ends just before the real now). Producers send with the delay `p − 5 s − clock` (negative),
 *   so a message's `vt` is its simulated send time and `oldest_ready_age_s` is exactly its
 *   simulated age; consumers read and delete (or read nothing) within the step, so nothing is in
 *   flight across a capture, and a `read()` at the real clock only ever sees messages already
 *   visible at simulated time. Every queue of phase A is of this kind: stopped, falling behind,
 *   healthy, the latency objective and the draining backlog.
 * - Phase B (redelivery) needs messages that stay in flight and come back, which only the real
 *   clock can do: it runs in real time (`p_now = now()`, a capture about every second) with
 *   `settings.flow_window` scaled down to its minimum, 10 s, after phase A's assertions.
 *
 * Everything is in one private database and one timeline: every capture covers every queue, and
 * every capture evaluates the alert rules (the default ones, the objective's burn-rate pair and an
 * anomaly rule the test adds), so the alerts asserted are the ones a user would have got.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { connect, type Sql } from './db.ts';
import { applyMigrations } from '../stack/migrate.ts';
import { createHostedDatabase, type PrivateDatabase } from './private_db.ts';

/** Coarse part of phase A: captures every 5 minutes for 5.5 hours. */
const COARSE_STEP_S = 300;
const COARSE_STEPS = 66;
/** Fine part of phase A: captures every 10 s for 31 minutes (the issue's "30 minutes"). */
const FINE_STEP_S = 10;
const FINE_STEPS = 186;
const SIM_TOTAL_S = COARSE_STEPS * COARSE_STEP_S + FINE_STEPS * FINE_STEP_S;
/** Real seconds the simulated clock ends before the real one (phase A's steps take real time). */
const MARGIN_S = 120;
/** The default flow window, in fine steps. */
const WINDOW_STEPS = 600 / FINE_STEP_S;
/** The fine step at which the stopped queue's consumer stops. */
const STOP_AT = 70;
/** The latency objective: oldest ready message at most 30 s, 99 % of the time. */
const TARGET_WAIT_S = 30;
const OBJECTIVE = 0.99;
/** The draining backlog: messages sent before the fine part; the consumer takes 2, 4, 2, 4, … */
const BACKLOG = 300;

const Q = {
  healthy: 'scen_healthy',
  slo: 'scen_slo',
  stopped: 'scen_stopped',
  slow: 'scen_slow',
  drain: 'scen_drain',
  failing: 'scen_failing',
} as const;

interface Row {
  k: number;
  /** captured_at, ms since the epoch */
  at: number;
  ready: number;
  in_flight: number;
  enqueued: number;
  completed: number;
  retried: number;
  interval_s: number | null;
  oldest_ready_age_s: number;
  in_rate: number | null;
  out_rate: number | null;
  drain_eta_s: number | null;
  expected_wait_s: number | null;
  flow_status: string | null;
  /** last_dequeue_at, ms since the epoch */
  last_dequeue: number | null;
  slo_total_s: number | null;
  slo_bad_s: number | null;
  poison: number | null;
  oldest_poison_age_s: number | null;
}

/** The simulated instant `s` seconds after t0, as text Postgres reads back exactly. */
function simAt(t0Ms: number, s: number): string {
  return new Date(t0Ms + s * 1000).toISOString();
}

/** Sends `n` messages whose vt (and so their age) is the simulated instant `at`. */
async function sendAt(sql: Sql, queue: string, n: number, at: string) {
  if (n <= 0) return;
  await sql`
    select count(*) from pgmq.send_batch(${queue},
      array(select jsonb_build_object('i', g) from generate_series(1, ${n}::int) g),
      round(extract(epoch from ${at}::timestamptz - clock_timestamp()))::int)`;
}

/** A consumer that takes up to `n` messages and finishes (deletes) them; returns how many. */
async function consume(sql: Sql, queue: string, n: number): Promise<number> {
  if (n <= 0) return 0;
  const [{ done }] = await sql<{ done: number }[]>`
    with taken as (select msg_id from pgmq.read(${queue}, 30, ${n}::int))
    select count(*)::int as done from pgmq.delete(${queue}, array(select msg_id from taken))`;
  return done;
}

async function capture(sql: Sql, at: string) {
  const [{ r }] = await sql<{ r: { status: string; errors: unknown } }[]>`
    select queue_health.capture(${at}::timestamptz) as r`;
  assert.notEqual(r.status, 'failed', `capture at ${at}: ${JSON.stringify(r)}`);
}

/** A queue's metric rows from `since` on, oldest first, numbered from 0. */
async function history(sql: Sql, queue: string, since: string): Promise<Row[]> {
  const rows = await sql<Row[]>`
    select extract(epoch from captured_at)::float8 * 1000 as at, ready::int, in_flight::int,
           enqueued::int, completed::int, retried::int, interval_s, oldest_ready_age_s, in_rate,
           out_rate, drain_eta_s, expected_wait_s, flow_status::text,
           extract(epoch from last_dequeue_at)::float8 * 1000 as last_dequeue, slo_total_s,
           slo_bad_s, poison::int, oldest_poison_age_s
      from queue_health.metric
     where source = 'pgmq' and queue_name = ${queue} and captured_at >= ${since}::timestamptz
     order by captured_at`;
  return rows.map((r, k) => ({ ...r, k }));
}

/** The alert state changes of a queue, with the rule's name, in order. */
async function alertEvents(sql: Sql, queue: string) {
  return await sql<{ rule: string; to_state: string; at: number }[]>`
    select r.name as rule, e.to_state::text, extract(epoch from e.at)::float8 * 1000 as at
      from queue_health.alert_event e join queue_health.alert_rule r on r.id = e.rule_id
     where e.source = 'pgmq' and e.queue_name = ${queue}
     order by e.at, e.id`;
}

/** When `rule` first fired on the queue (ms since the epoch), or undefined. */
function firedAt(events: { rule: string; to_state: string; at: number }[], rule: string) {
  return events.find((e) => e.rule === rule && e.to_state === 'firing')?.at;
}

/** The statuses a queue's history went through, in order, without repeats. */
function statusRuns(rows: Row[]): (string | null)[] {
  return rows.map((r) => r.flow_status).filter((s, i, a) => i === 0 || a[i - 1] !== s);
}

Deno.test('signal scenarios on the pgmq fixture: stopped, falling behind, healthy, burn, drain, redelivering', async (t) => {
  const wall = performance.now();
  let db: PrivateDatabase | undefined;
  let sql: Sql | undefined;
  try {
    db = await createHostedDatabase('qh_scen');
    await applyMigrations(db.url, { stamp: false });
    // One connection for producers, consumers and captures: the sampler's "unchanged queue"
    // shortcut reads this session's own not yet published table statistics exactly.
    sql = connect({ url: db.url, max: 1 });
    const s = sql;
    // The healthy and the objective's queues live through all of phase A; the others are
    // created when their scenario starts, so their history (and flow window) starts there too.
    for (const q of [Q.healthy, Q.slo]) await s`select pgmq.create(${q})`;

    const [{ real0 }] = await s<{ real0: string }[]>`
      select date_trunc('second', clock_timestamp())::text as real0`;
    const t0Ms = new Date(real0).getTime() - (SIM_TOTAL_S + MARGIN_S) * 1000;
    const fineStart = COARSE_STEPS * COARSE_STEP_S;
    await s`
      insert into queue_health.queue_objective
        (project_id, source, source_schema, queue_name, target_wait_s, objective, created_at)
      values ('default', 'pgmq', 'pgmq', ${Q.slo}, ${TARGET_WAIT_S}, ${OBJECTIVE},
              ${simAt(t0Ms, 0)}::timestamptz)`;

    // An anomaly rule on every queue (not a default rule): with hours of history, not the two
    // weeks a baseline needs, it must stay quiet whatever the queues do.
    await s`
      insert into queue_health.alert_rule (project_id, name, condition, metric, threshold)
      values ('default', 'scenario depth anomaly', 'anomaly', 'depth', 3)`;

    // The objective's queue as the test sees it: simulated send times of what is waiting, and
    // per capture whether its oldest message had waited longer than the target.
    const sloWaiting: number[] = [];
    const sloBad = new Map<number, boolean>();

    // ---- Phase A, coarse part: the healthy and the objective's queues, every 5 minutes.
    for (let c = 0; c < COARSE_STEPS; c++) {
      const p = c * COARSE_STEP_S;
      await sendAt(s, Q.healthy, 3, simAt(t0Ms, p - 5));
      await consume(s, Q.healthy, 100);
      await sendAt(s, Q.slo, 1, simAt(t0Ms, p - 5));
      sloWaiting.push(p - 5);
      await consume(s, Q.slo, 100);
      sloWaiting.length = 0;
      sloBad.set(t0Ms + p * 1000, false);
      await capture(s, simAt(t0Ms, p));
    }

    // ---- Phase A, fine part: every queue, every 10 s.
    for (const q of [Q.stopped, Q.slow, Q.drain]) await s`select pgmq.create(${q})`;
    await sendAt(s, Q.drain, BACKLOG, simAt(t0Ms, fineStart - 5));
    let drainLeft = BACKLOG;
    let drainEmptyAt = -1;
    for (let k = 0; k < FINE_STEPS; k++) {
      const p = fineStart + k * FINE_STEP_S;
      const sendTime = simAt(t0Ms, p - 5);
      // healthy: bursts of 0-4 messages, all taken at once
      await sendAt(s, Q.healthy, k % 5, sendTime);
      await consume(s, Q.healthy, 100);
      // the objective's queue: one message a step; the consumer drains once a minute
      await sendAt(s, Q.slo, 1, sendTime);
      sloWaiting.push(p - 5);
      if (k % 6 === 0) {
        await consume(s, Q.slo, 100);
        sloWaiting.length = 0;
      }
      sloBad.set(t0Ms + p * 1000, sloWaiting.length > 0 && p - sloWaiting[0] > TARGET_WAIT_S);
      // stopped: one message a step; the consumer keeps up until STOP_AT, then takes nothing
      await sendAt(s, Q.stopped, 1, sendTime);
      if (k < STOP_AT) await consume(s, Q.stopped, 100);
      // slow: 3 in, 2 out each step
      await sendAt(s, Q.slow, 3, sendTime);
      await consume(s, Q.slow, 2);
      // draining backlog: no producer, the consumer takes 2 and 4 in turn from step 1 on
      if (k > 0) drainLeft -= await consume(s, Q.drain, k % 2 === 1 ? 2 : 4);
      if (drainLeft === 0 && drainEmptyAt < 0) drainEmptyAt = k;
      await capture(s, simAt(t0Ms, p));
    }
    const fineSince = simAt(t0Ms, fineStart);
    const phaseAEnd = simAt(t0Ms, fineStart + (FINE_STEPS - 1) * FINE_STEP_S);
    console.log(JSON.stringify({
      event: 'signal_scenarios_phase_a',
      captures: COARSE_STEPS + FINE_STEPS,
      simulated_s: SIM_TOTAL_S,
      wall_s: Math.round((performance.now() - wall) / 100) / 10,
    }));

    await t.step(
      'a stopped consumer: stopped within the flow window, in metric and registry',
      async () => {
        const rows = await history(s, Q.stopped, fineSince);
        assert.equal(rows.length, FINE_STEPS);
        // While the consumer works, the status is ok once the window is known (null before).
        for (const r of rows.slice(0, WINDOW_STEPS)) {
          assert.equal(r.flow_status, null, `step ${r.k}`);
        }
        for (const r of rows.slice(WINDOW_STEPS, STOP_AT + 1)) {
          assert.equal(r.flow_status, 'ok', `step ${r.k}`);
        }
        const first = rows.find((r) => r.flow_status === 'stopped');
        assert.ok(first, `never stopped: ${JSON.stringify(statusRuns(rows))}`);
        // Stopped at step STOP_AT; the last finish leaves the window one window later.
        assert.ok(
          first.k > STOP_AT && first.k <= STOP_AT + WINDOW_STEPS + 1,
          `first at ${first.k}`,
        );
        for (const r of rows.slice(first.k)) assert.equal(r.flow_status, 'stopped', `step ${r.k}`);
        // The last dequeue is the consumer's last step, and nothing moves after it.
        assert.equal(rows.at(-1)!.last_dequeue, rows[STOP_AT - 1].at);
        assert.ok(rows.at(-1)!.ready >= FINE_STEPS - STOP_AT);
        // Nothing completes any more: the drain ETA is "never" and the expected wait rises (the
        // smoothed completion rate decays towards 0 while ready grows; it reads "never" once the
        // rate is below 0.5 / rate_smoothing, ~20 minutes after the stop here).
        for (const r of rows.slice(STOP_AT + 1)) {
          assert.equal(r.drain_eta_s, Infinity, `step ${r.k}`);
          assert.ok(r.expected_wait_s! > rows[r.k - 1].expected_wait_s!, `step ${r.k}`);
        }
        const [q] = await s<{ flow_status: string; ready: number }[]>`
        select flow_status::text, ready::int from queue_health.queue
         where source = 'pgmq' and queue_name = ${Q.stopped}`;
        assert.equal(q.flow_status, 'stopped');
        assert.equal(q.ready, rows.at(-1)!.ready);
        // The default rules: consumer_silent (no dequeue for more than max(60 s, 3 x the usual
        // gap) = 180 s without a baseline, for 5 minutes) and flow_stopped (stopped for 5 minutes).
        const events = await alertEvents(s, Q.stopped);
        const lastDequeue = rows[STOP_AT - 1].at;
        const silent = firedAt(events, 'consumer_silent');
        assert.ok(silent, JSON.stringify(events));
        assert.ok(
          silent - lastDequeue > 480_000 && silent - lastDequeue <= 500_000,
          `consumer_silent fired ${(silent - lastDequeue) / 1000} s after the last dequeue`,
        );
        const stoppedFired = firedAt(events, 'flow_stopped');
        assert.equal(stoppedFired, first.at + 300_000, JSON.stringify(events));
        const [{ firing }] = await s<{ firing: string[] }[]>`
          select coalesce(array_agg(r.name order by r.name), '{}') as firing
            from queue_health.alert a join queue_health.alert_rule r on r.id = a.rule_id
           where a.queue_name = ${Q.stopped} and a.state = 'firing'`;
        assert.ok(
          firing.includes('consumer_silent') && firing.includes('flow_stopped'),
          `${firing}`,
        );
      },
    );

    await t.step(
      'a slow consumer: falling_behind, expected wait finite and rising, drain ETA never',
      async () => {
        const rows = await history(s, Q.slow, fineSince);
        const judged = rows.slice(WINDOW_STEPS);
        for (const r of judged) {
          assert.equal(r.flow_status, 'falling_behind', `step ${r.k}: ${JSON.stringify(r)}`);
          // in 0.3/s > out 0.2/s: the backlog never drains at these rates
          assert.equal(r.drain_eta_s, Infinity, `step ${r.k}`);
          assert.ok(Number.isFinite(r.expected_wait_s), `step ${r.k}: ${r.expected_wait_s}`);
          assert.ok(Math.abs(r.out_rate! - 0.2) < 1e-9, `out_rate ${r.out_rate}`);
          assert.ok(Math.abs(r.in_rate! - 0.3) < 1e-9, `in_rate ${r.in_rate}`);
        }
        // Ready grows by one a step, so the expected wait (ready / out rate) rises by 5 s a step.
        for (let i = 1; i < judged.length; i++) {
          assert.ok(
            judged[i].expected_wait_s! > judged[i - 1].expected_wait_s!,
            `step ${judged[i].k}`,
          );
        }
        const last = judged.at(-1)!;
        assert.equal(last.ready, FINE_STEPS);
        assert.ok(Math.abs(last.expected_wait_s! - last.ready / 0.2) < 1e-6);
        const [q] = await s<{ flow_status: string; expected_wait_s: number }[]>`
        select flow_status::text, expected_wait_s from queue_health.queue
         where source = 'pgmq' and queue_name = ${Q.slow}`;
        assert.equal(q.flow_status, 'falling_behind');
        assert.equal(q.expected_wait_s, last.expected_wait_s);
      },
    );

    await t.step('no poison where every message is taken once', async () => {
      for (const q of [Q.healthy, Q.slo, Q.stopped, Q.slow, Q.drain]) {
        const rows = await history(s, q, simAt(t0Ms, 0));
        assert.ok(rows.length > 0);
        for (const r of rows) {
          assert.equal(r.poison, 0, `${q} capture ${r.k}`);
          assert.equal(r.oldest_poison_age_s, null, `${q} capture ${r.k}`);
        }
      }
    });

    await t.step('a healthy queue stays ok for 30 minutes, and raises no alert', async () => {
      const rows = await history(s, Q.healthy, fineSince);
      assert.equal(rows.length, FINE_STEPS);
      assert.ok(FINE_STEPS * FINE_STEP_S >= 1800);
      for (const r of rows) assert.equal(r.flow_status, 'ok', `step ${r.k}`);
      const [{ active }] = await s<{ active: number }[]>`
        select count(*)::int as active from queue_health.alert
         where queue_name = ${Q.healthy} and state in ('pending', 'firing')`;
      assert.equal(active, 0);
      const [{ n }] = await s<{ n: number }[]>`
        select count(*)::int as n from queue_health.alert_event where queue_name = ${Q.healthy}`;
      assert.equal(n, 0);
      // The default rules are there and evaluated (the stopped queue's waiting message fires).
      const [{ fired }] = await s<{ fired: number }[]>`
        select count(*)::int as fired from queue_health.alert_event
         where queue_name = ${Q.stopped} and to_state = 'firing'`;
      assert.ok(fired > 0, 'the default oldest_ready_age rule fires on the stopped queue');
    });

    const burn = async (w: string) => {
      const [{ b }] = await s<{ b: number }[]>`
        select queue_health.slo_burn_rate('pgmq', 'pgmq', ${Q.slo}, ${w}::interval,
          ${phaseAEnd}::timestamptz) as b`;
      return b;
    };
    /** The burn rates the test expects over 5 min, 1 h, 6 h (set by the objective's step). */
    const expectedBurn = new Map<string, number>();

    await t.step(
      'an objective breached at a steady rate: fast burn (1 h, 5 min) ≥ 14.4, slow (6 h) < 6',
      async () => {
        const rows = await history(s, Q.slo, simAt(t0Ms, 0));
        assert.equal(rows.length, COARSE_STEPS + FINE_STEPS);
        // Each capture's indicator is what the test's own ledger of waiting messages says.
        for (const r of rows) {
          const bad = sloBad.get(r.at);
          assert.notEqual(bad, undefined, `capture ${r.k}`);
          assert.equal(
            r.slo_bad_s,
            bad ? r.interval_s ?? 0 : 0,
            `capture ${r.k}: ${r.oldest_ready_age_s}`,
          );
          assert.equal(r.slo_total_s, r.interval_s ?? 0);
        }
        // The expected burn rates, from the ledger: bad seconds / the window's seconds / budget.
        const expected = (windowS: number) => {
          const end = new Date(phaseAEnd).getTime();
          let bad = 0;
          for (const r of rows) {
            if (r.at <= end - windowS * 1000) continue;
            if (sloBad.get(r.at)) bad += r.interval_s ?? 0;
          }
          return bad / windowS / (1 - OBJECTIVE);
        };
        const b5m = await burn('5 minutes');
        const b1h = await burn('1 hour');
        const b6h = await burn('6 hours');
        console.log(JSON.stringify({ event: 'signal_scenarios_burn', b5m, b1h, b6h }));
        expectedBurn.set('5 minutes', expected(300));
        expectedBurn.set('1 hour', expected(3600));
        expectedBurn.set('6 hours', expected(21600));
        for (const [got, w] of [[b5m, 300], [b1h, 3600], [b6h, 21600]] as const) {
          assert.ok(
            Math.abs(got - expected(w)) < 1e-6,
            `burn over ${w} s: ${got} vs ${expected(w)}`,
          );
        }
        assert.ok(b5m > 14.4 && b1h > 14.4, `fast burn: 5 min ${b5m}, 1 h ${b1h}`);
        assert.ok(b6h < 6, `slow burn: 6 h ${b6h}`);
        // The objective's rules (named with the objective's schema): the fast burn (14.4 over 1 h
        // and 5 min) fires during the breach, the slow one (6 over 6 h and 30 min) does not; no
        // other rule moves (the default oldest_ready_age is at 60 s, the breach is of the 30 s
        // objective). The fast burn may flap once while the 1 h rate crosses 14.4 (each bad
        // capture lifts it, each good one lowers it): it has no keep_firing_for.
        const events = await alertEvents(s, Q.slo);
        const fast = firedAt(events, `slo_fast_burn pgmq/pgmq.${Q.slo}`);
        assert.ok(fast && fast > t0Ms + fineStart * 1000, JSON.stringify(events));
        assert.deepEqual(
          [...new Set(events.map((e) => e.rule))],
          [`slo_fast_burn pgmq/pgmq.${Q.slo}`],
          JSON.stringify(events),
        );
        // The slow rule exists and is on: it was evaluated and stayed quiet.
        const [{ slow }] = await s<{ slow: number }[]>`
          select count(*)::int as slow from queue_health.alert_rule
           where name = ${`slo_slow_burn pgmq/pgmq.${Q.slo}`} and enabled`;
        assert.equal(slow, 1);
        const [{ state }] = await s<{ state: string }[]>`
          select a.state::text from queue_health.alert a
            join queue_health.alert_rule r on r.id = a.rule_id
           where a.queue_name = ${Q.slo} and r.name = ${`slo_fast_burn pgmq/pgmq.${Q.slo}`}`;
        assert.equal(state, 'firing');
      },
    );

    await t.step(
      'after maintenance: the same burn rates; baselines too young for anomaly',
      async () => {
        // maintain() as the hourly job runs it: rollups to the last whole hour, then baselines.
        await s`select queue_health.maintain(${phaseAEnd}::timestamptz)`;
        const [{ rolled }] = await s<{ rolled: string }[]>`
        select rolled_up_to::text as rolled from queue_health.rollup_watermark
         where resolution = '1h'`;
        assert.ok(rolled, 'the hourly rollup ran');
        // Burn rates are defined over the window; rolling the raw rows up must not change them.
        for (const [w, want] of expectedBurn) {
          const got = await burn(w);
          assert.ok(
            Math.abs(got - want) < 1e-6,
            `burn over ${w} after rollup: ${got}, want ${want}`,
          );
        }
        // The baselines exist but have 6 hours of history, not the 14 days anomaly needs.
        const base = await s<{ queue_name: string; history_days: number; min_days: number }[]>`
        select b.queue_name, max(b.history_days) as history_days,
               (select baseline_min_days from queue_health.settings) as min_days
          from queue_health.queue_baseline b
         where b.source = 'pgmq' group by b.queue_name`;
        assert.ok(base.some((b) => b.queue_name === Q.slo), JSON.stringify(base));
        for (const b of base) assert.ok(b.history_days < b.min_days, JSON.stringify(b));
        // A capture with the baselines in place: the anomaly rule still raises nothing.
        await capture(s, simAt(t0Ms, fineStart + FINE_STEPS * FINE_STEP_S));
        const [{ n }] = await s<{ n: number }[]>`
          select count(*)::int as n from queue_health.alert_event e
            join queue_health.alert_rule r on r.id = e.rule_id
           where r.name = 'scenario depth anomaly'`;
        assert.equal(n, 0);
      },
    );

    await t.step(
      'a draining backlog: drain ETA and expected wait within 20 % of the real time to empty',
      async () => {
        const rows = await history(s, Q.drain, fineSince);
        assert.ok(drainEmptyAt > 0, 'the backlog drained within the scenario');
        assert.equal(rows[drainEmptyAt].ready, 0);
        assert.equal(rows[drainEmptyAt].drain_eta_s, 0);
        // Null until the queue has been watched for a minute (6 intervals of 10 s).
        for (const r of rows.slice(0, 6)) assert.equal(r.drain_eta_s, null, `step ${r.k}`);
        // From 1.5 time constants of the rate smoothing (the first interval's 0.2/s has faded) to
        // the last 2 minutes (where the 2-4 alternation is a large part of what is left).
        let checked = 0;
        for (const r of rows.slice(45, drainEmptyAt - 12)) {
          const actual = (drainEmptyAt - r.k) * FINE_STEP_S;
          assert.ok(Number.isFinite(r.drain_eta_s), `step ${r.k}`);
          assert.ok(
            Math.abs(r.drain_eta_s! - actual) <= 0.2 * actual,
            `step ${r.k}: eta ${r.drain_eta_s} vs ${actual}`,
          );
          // No producer: a message sent now waits for the whole backlog ahead of it.
          assert.ok(
            Math.abs(r.expected_wait_s! - actual) <= 0.2 * actual,
            `step ${r.k}: wait ${r.expected_wait_s} vs ${actual}`,
          );
          assert.equal(r.in_rate, 0);
          checked++;
        }
        assert.ok(checked >= 30, `checked ${checked}`);
        for (const r of rows.slice(WINDOW_STEPS, drainEmptyAt)) {
          assert.equal(r.flow_status, 'ok', `step ${r.k}`);
        }
      },
    );

    // ---- Phase B: redelivery, in real time with a 10 s flow window.
    await s`update queue_health.settings set flow_window = '10 seconds'`;
    await s`select pgmq.create(${Q.failing})`;
    await s`select count(*) from pgmq.send_batch(${Q.failing},
              array(select jsonb_build_object('i', g) from generate_series(1, 4) g))`;
    const [{ phase_b: phaseB }] = await s<{ phase_b: string }[]>`select now()::text as phase_b`;
    const sentAt = performance.now();
    for (let i = 0; i < 16; i++) {
      // A consumer that always fails: takes what is visible (1 s visibility) and never deletes.
      await s`select count(*) from pgmq.read(${Q.failing}, 1, 10)`;
      await s`select queue_health.capture()`;
      await new Promise((resolve) => setTimeout(resolve, 900));
    }

    const failedFor = (performance.now() - sentAt) / 1000;

    await t.step(
      'a consumer that always fails: redelivering, and its messages counted as poison',
      async () => {
        const rows = await history(s, Q.failing, phaseB);
        // Read once at the first capture: not poison yet (poison_read_count 3).
        assert.equal(rows[0].poison, 0);
        assert.equal(rows[0].oldest_poison_age_s, null);
        // Every message has been read 3 times or more by the end (one read a second or two).
        const last = rows.at(-1)!;
        assert.equal(last.poison, 4, JSON.stringify(rows.map((r) => r.poison)));
        assert.ok(
          last.oldest_poison_age_s! > 0 && last.oldest_poison_age_s! <= failedFor + 1,
          `oldest poison ${last.oldest_poison_age_s} s, sent ${failedFor} s ago`,
        );
        assert.ok(
          last.oldest_poison_age_s! >= failedFor - 3,
          `${last.oldest_poison_age_s} vs ${failedFor}`,
        );
        assert.ok(rows.reduce((n, r) => n + r.retried, 0) > 0, 'redeliveries seen');
        assert.equal(rows.reduce((n, r) => n + r.completed, 0), 0);
        const judged = rows.filter((r) => r.flow_status !== null);
        assert.ok(judged.length >= 3, JSON.stringify(statusRuns(rows)));
        for (const r of judged) assert.equal(r.flow_status, 'redelivering', `capture ${r.k}`);
        const [q] = await s<{ flow_status: string; poison: number }[]>`
        select flow_status::text, poison::int from queue_health.queue
         where source = 'pgmq' and queue_name = ${Q.failing}`;
        assert.equal(q.flow_status, 'redelivering');
        assert.equal(q.poison, 4);
      },
    );
    console.log(JSON.stringify({
      event: 'signal_scenarios_done',
      wall_s: Math.round((performance.now() - wall) / 100) / 10,
    }));
  } finally {
    await sql?.end();
    await db?.drop();
  }
});
