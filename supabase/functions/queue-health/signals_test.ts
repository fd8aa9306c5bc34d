/**
 * The signals in the health JSON, /history and the Prometheus text, and in the Realtime snapshot,
 * against the real database (env DATABASE_URL): snapshots with signals and a latency objective are
 * written for a project of this run, and read back as its member, a stranger and the service role.
 */
import assert from 'node:assert/strict';
import { connect } from '../../../local/test/db.ts';
import { closeAllSql } from '../_shared/db.ts';
import { createJwtVerifier, signJwt } from '../_shared/jwt.ts';
import { createLogger } from '../_shared/log.ts';
import {
  parseRealtimeSnapshot,
  snapshotQueues,
  snapshotTopic,
} from '../_shared/realtime_payload.ts';
import { parseExposition } from './exposition_parser.ts';
import { createHandler } from './handler.ts';
import type { QueueSignals } from './health.ts';

const SECRET = Deno.env.get('SUPABASE_JWT_SECRET') ||
  'super-secret-jwt-token-with-at-least-32-characters-long';
const sfx = crypto.randomUUID().replace(/-/g, '').slice(0, 8);
const PROJECT = `sig_${sfx}`;
const MEMBER = crypto.randomUUID();
const STRANGER = crypto.randomUUID();
const SLOW = `slow_${sfx}`; // stopped, never drains, misses its objective every minute
const FINE = `fine_${sfx}`; // draining, no objective

const user = (sub: string) => signJwt({ role: 'authenticated', sub, aud: 'authenticated' }, SECRET);

Deno.test('queue signals in the health JSON, /history, Prometheus and Realtime', async (t) => {
  const admin = connect({ max: 2, prepare: false });
  const sql = connect({ max: 2, prepare: false });
  const handler = createHandler({
    sql,
    verifyJwt: createJwtVerifier({ secret: SECRET }),
    logger: createLogger({ fn: 'queue-health' }, () => {}),
    evaluateEveryMs: 0,
  });
  const call = async (path: string, sub: string) => {
    const res = await handler(
      new Request(`http://127.0.0.1/functions/v1/queue-health${path}`, {
        headers: { authorization: `Bearer ${await user(sub)}` },
      }),
    );
    const text = await res.text();
    return {
      res,
      text,
      body: res.headers.get('content-type')?.startsWith('application/json')
        ? JSON.parse(text)
        : null,
    };
  };
  // Hold capture()'s lock: a background capture would mark these hand-made queues dropped.
  const lock = await admin.reserve();
  await lock`select pg_advisory_lock(hashtextextended('queue_health.capture', 0))`;
  // And rollup()'s, with the hourly watermark set aside: the objective's seconds before the
  // watermark are read from metric_1h, which never sees these hand-written rows; when the test
  // runs in the first minutes of an hour, some of its 13 minutes lie before the watermark.
  await lock`select pg_advisory_lock(hashtextextended('queue_health.rollup', 0))`;
  const watermark = await admin<{ rolled_up_to: Date }[]>`
    delete from queue_health.rollup_watermark where resolution = '1h' returning rolled_up_to`;
  try {
    await admin`select queue_health.ensure_partitions(now() - interval '1 hour', 1)`;
    await admin`insert into auth.users (id, email) values
      (${MEMBER}, ${`member-${sfx}@example.test`}), (${STRANGER}, ${`stranger-${sfx}@example.test`})`;
    await admin`insert into queue_health.project (id, name) values (${PROJECT}, 'Signals')`;
    await admin`update queue_health.alert_rule set enabled = false where project_id = ${PROJECT}`;
    await admin`insert into queue_health.project_member (project_id, user_id, role)
      values (${PROJECT}, ${MEMBER}, 'viewer')`;
    await admin`insert into queue_health.queue (source, source_schema, queue_name, project_id)
      values ('pgmq', 'pgmq', ${SLOW}, ${PROJECT}), ('pgmq', 'pgmq', ${FINE}, ${PROJECT})`;
    // The oldest message may wait 60 s for 99 % of 30 days; SLOW's waits 300 s at every snapshot.
    await admin`insert into queue_health.queue_objective (project_id, source, queue_name,
        target_wait_s, objective, period, created_at)
      values (${PROJECT}, 'pgmq', ${SLOW}, 60, 0.99, '30 days', now() - interval '1 day')`;
    // Thirteen snapshots a minute apart, oldest first (the trigger carries the running totals).
    await admin`
      insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name,
        ready, in_flight, delayed, depth, oldest_ready_age_s, enqueued, completed, failed, retried,
        dead_lettered, interval_s, in_rate, out_rate, drain_eta_s, expected_wait_s, flow_status,
        poison, oldest_poison_age_s, last_enqueue_at, last_dequeue_at, slo_total_s, slo_bad_s)
      select now() - make_interval(mins => i), ${PROJECT}, 'pgmq', 'pgmq', q,
        case when q = ${SLOW} then 5 else 20 + i end, 0, 0, case when q = ${SLOW} then 5 else 20 + i end,
        case when q = ${SLOW} then 300 else 10 end,
        case when q = ${SLOW} then 0 else 1 end, case when q = ${SLOW} then 0 else 2 end, 0, 0, 0, 60,
        case when q = ${SLOW} then 0 else 1 / 60.0 end, case when q = ${SLOW} then 0 else 2 / 60.0 end,
        case when q = ${SLOW} then 'Infinity'::float8 else (20 + i) * 60.4 end,
        case when q = ${SLOW} then 'Infinity'::float8 else (20 + i) * 30 end,
        (case when i > 9 then null when q = ${SLOW} then 'stopped' else 'ok' end)::queue_health.flow_status,
        case when q = ${SLOW} then 3 else 0 end, case when q = ${SLOW} then 250.5 end,
        case when q = ${FINE} then now() - make_interval(mins => i) end,
        case when q = ${FINE} then now() - make_interval(mins => i) end,
        case when q = ${SLOW} then 60 end, case when q = ${SLOW} then 60 end
      from generate_series(12, 0, -1) i, unnest(array[${SLOW}, ${FINE}]) q
      order by i desc, q`;
    await admin`insert into queue_health.capture_run (started_at, finished_at, duration_ms, status)
      values (now(), now(), 5, 'ok')`;

    await t.step('each queue has its signals; the objective only where one is set', async () => {
      const { res, body } = await call(`?project=${PROJECT}`, MEMBER);
      assert.equal(res.status, 200, 'no critical alert fires: healthy as an HTTP answer');
      assert.equal(body.status, 'critical', 'but a stopped queue makes the report critical');
      const byName = new Map(
        (body.queues as { queue: string; status: string; signals: QueueSignals }[]).map((
          q,
        ) => [q.queue, q]),
      );
      const slow = byName.get(SLOW)!;
      assert.equal(slow.status, 'critical');
      assert.deepEqual({ ...slow.signals, slo: null }, {
        flow_status: 'stopped',
        drain_eta_s: 'never',
        expected_wait_s: 'never',
        in_rate: 0,
        out_rate: 0,
        poison: 3,
        poison_estimated: false,
        oldest_poison_age_s: 250.5,
        last_enqueue_at: null,
        last_dequeue_at: null,
        slo: null,
      });
      // Every snapshot is bad, and the 13 of them cover 780 s: a window's burn rate is its bad
      // seconds over its whole length (the time before the first snapshot counts as good) / 0.01:
      // 100 over 5 min, 780 / 1 800 / 0.01 = 43.3 over 30 min, down to 0.3 over 3 days. The
      // budget: 13 minutes of 30 days' 1 %: 1 - 780 / 25 920.
      const slo = slow.signals.slo!;
      assert.equal(slo.target_wait_s, 60);
      assert.equal(slo.objective, 0.99);
      assert.equal(slo.period_s, 30 * 86400);
      assert.deepEqual(Object.keys(slo.burn_rates), ['5m', '30m', '1h', '6h', '3d']);
      const windowS: Record<string, number> = {
        '5m': 300,
        '30m': 1800,
        '1h': 3600,
        '6h': 21600,
        '3d': 259200,
      };
      for (const [window, rate] of Object.entries(slo.burn_rates)) {
        const expected = Math.min(780, windowS[window]) / windowS[window] / 0.01;
        assert.ok(
          Math.abs(rate! - expected) < 1e-9,
          `burn rate over ${window}: ${rate} vs ${expected}`,
        );
      }
      assert.ok(Math.abs(slo.budget_remaining! - (1 - 780 / 25920)) < 1e-9);
      const fine = byName.get(FINE)!;
      assert.equal(fine.status, 'ok');
      assert.equal(fine.signals.flow_status, 'ok');
      assert.equal(fine.signals.drain_eta_s, 20 * 60.4);
      assert.equal(fine.signals.expected_wait_s, 600);
      assert.equal(fine.signals.slo, null);
      assert.equal(fine.signals.last_dequeue_at, fine.signals.last_enqueue_at);
      assert.ok(fine.signals.last_enqueue_at !== null);
    });

    await t.step('a stranger sees no queue and no signal', async () => {
      const { res, body } = await call(`?project=${PROJECT}`, STRANGER);
      assert.equal(res.status, 200);
      assert.deepEqual(body.queues, []);
      const prom = await call(`?project=${PROJECT}&format=prometheus`, STRANGER);
      assert.ok(!prom.text.includes(SLOW));
      const history = await call(`/history?queue=${SLOW}`, STRANGER);
      assert.deepEqual(history.body.series, []);
    });

    await t.step('/history points carry the signals, Infinity as "never"', async () => {
      const { res, body } = await call(`/history?queue=${SLOW}&range=1h`, MEMBER);
      assert.equal(res.status, 200);
      const points = body.series[0].points as Record<string, unknown>[];
      assert.equal(points.length, 13);
      const last = points.at(-1)!;
      assert.equal(last.drain_eta_s, 'never');
      assert.equal(last.expected_wait_s, 'never');
      assert.equal(last.flow_status, 'stopped');
      assert.equal(last.poison, 3);
      assert.equal(last.slo_bad_s, 60);
      assert.equal(points[0].flow_status, null);
    });

    await t.step(
      'Prometheus: drain ETA (+Inf), the flow status state set, burn rates',
      async () => {
        const { res, text } = await call(`?project=${PROJECT}&format=prometheus`, MEMBER);
        assert.equal(res.status, 200);
        const parsed = parseExposition(text);
        const value = (name: string, labels: Record<string, string>) =>
          parsed.samples.filter((s) =>
            s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
          ).map((s) => s.value);
        assert.deepEqual(value('queue_health_drain_eta_seconds', { queue: SLOW }), [Infinity]);
        assert.deepEqual(value('queue_health_drain_eta_seconds', { queue: FINE }), [20 * 60.4]);
        assert.deepEqual(value('queue_health_expected_wait_seconds', { queue: FINE }), [600]);
        const states = parsed.samples.filter((s) =>
          s.name === 'queue_health_flow_status' && s.labels.queue === SLOW
        );
        assert.deepEqual(
          states.map((s) => [s.labels.status, s.value]),
          [['idle', 0], ['ok', 0], ['falling_behind', 0], ['stalled', 0], ['stopped', 1], [
            'redelivering',
            0,
          ]],
        );
        assert.deepEqual(value('queue_health_poison', { queue: SLOW }), [3]);
        assert.deepEqual(value('queue_health_oldest_poison_age_seconds', { queue: SLOW }), [250.5]);
        assert.deepEqual(
          parsed.samples.filter((s) => s.name === 'queue_health_slo_burn_rate').map((s) =>
            s.labels.window
          ),
          ['5m', '30m', '1h', '6h', '3d'],
          'burn rates only for the queue with an objective',
        );
        assert.equal(value('queue_health_slo_budget_remaining', { queue: FINE }).length, 0);
        for (const name of ['queue_health_drain_eta_seconds', 'queue_health_flow_status']) {
          assert.equal(parsed.type.get(name), 'gauge');
          assert.ok(parsed.help.get(name));
        }
      },
    );

    await t.step('the Realtime snapshot carries flow_status, drain_eta_s and poison', async () => {
      const rows = await admin<{ payload: unknown }[]>`
        select payload from realtime.messages where topic = ${snapshotTopic(PROJECT)}`;
      const latest = rows.map((r) => parseRealtimeSnapshot(r.payload))
        .sort((a, b) => Date.parse(a.captured_at) - Date.parse(b.captured_at)).at(-1)!;
      const queues = snapshotQueues(latest);
      assert.deepEqual(
        queues.map((q) => [q.queue, q.flow_status, q.drain_eta_s, q.poison]),
        [[FINE, 'ok', 1208, 0], [SLOW, 'stopped', 'never', 3]].sort((a, b) =>
          String(a[0]).localeCompare(String(b[0]))
        ),
      );
    });
  } finally {
    await admin`delete from queue_health.metric where project_id = ${PROJECT}`;
    await admin`delete from queue_health.queue where project_id = ${PROJECT}`;
    await admin`delete from queue_health.project where id = ${PROJECT}`;
    await admin`delete from auth.users where id in (${MEMBER}, ${STRANGER})`;
    for (const w of watermark) {
      await admin`insert into queue_health.rollup_watermark (resolution, rolled_up_to)
        values ('1h', ${w.rolled_up_to}) on conflict (resolution) do nothing`;
    }
    await lock`select pg_advisory_unlock(hashtextextended('queue_health.rollup', 0))`;
    await lock`select pg_advisory_unlock(hashtextextended('queue_health.capture', 0))`;
    lock.release();
    await admin.end({ timeout: 1 });
    await sql.end({ timeout: 1 });
    await closeAllSql();
  }
});
