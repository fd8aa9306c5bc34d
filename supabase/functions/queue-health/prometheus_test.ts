import assert from 'node:assert/strict';
import { buildReport } from './health.ts';
import { parseExposition } from './exposition_parser.ts';
import { escapeLabelValue, formatValue, renderPrometheus } from './prometheus.ts';

const NASTY = 'we"ird\\queue\nname';

function report() {
  return buildReport({
    projects: [{ id: 'acme', name: 'Acme' }],
    queues: [
      {
        project_id: 'acme',
        source: 'pgmq',
        source_schema: 'pgmq',
        queue_name: NASTY,
        status: 'warning',
        captured_at: '2026-11-26T10:00:00+00:00',
        snapshot_age_s: 3.5,
        ready: 10,
        in_flight: 2,
        delayed: 1,
        depth: 13,
        depth_estimated: false,
        oldest_ready_age_s: 75.25,
        enqueued: 5,
        completed: 4,
        failed: 1,
        retried: 0,
        dead_lettered: 0,
        interval_s: 10,
        enqueue_rate: 0.5,
        complete_rate: 0.4,
        fail_rate: 0.1,
        error_rate: 0.2,
        wait_p95_ms: 1500,
        flow_status: 'falling_behind',
        drain_eta_s: 'Infinity',
        expected_wait_s: 42.5,
        poison: 2,
        oldest_poison_age_s: 600,
        slo_target_wait_s: 60,
        slo_objective: 0.99,
        slo_period_s: 2592000,
        slo_burn_rate_1h: 3,
        slo_budget_remaining: 0.75,
        slo_burn_rates: { '5m': 20, '30m': 6, '6h': null, '3d': 0.5 },
      },
      {
        project_id: 'acme',
        source: 'pgboss',
        source_schema: 'pgboss',
        queue_name: 'emails',
        status: 'ok',
        depth: 0,
        ready: 0,
        oldest_ready_age_s: null,
      },
    ],
    alerts: [{ project_id: 'acme', severity: 'warning', queue_name: NASTY, source: 'pgmq' }],
    monitor: { healthy: true, lag_s: 4, last_duration_ms: 12 },
    channels: null,
  }, new Date('2026-11-26T10:00:05Z'));
}

Deno.test('escapeLabelValue() escapes backslash, double quote and line feed', () => {
  assert.equal(escapeLabelValue(NASTY), 'we\\"ird\\\\queue\\nname');
  assert.equal(escapeLabelValue('plain'), 'plain');
});

Deno.test('formatValue() writes non-finite numbers the way the format spells them', () => {
  assert.equal(formatValue(NaN), 'NaN');
  assert.equal(formatValue(Infinity), '+Inf');
  assert.equal(formatValue(-Infinity), '-Inf');
  assert.equal(formatValue(0.25), '0.25');
});

Deno.test('renderPrometheus() output parses line by line with escaped queue names intact', () => {
  const text = renderPrometheus(report());
  const parsed = parseExposition(text);
  const depth = parsed.samples.filter((s) => s.name === 'queue_health_depth');
  assert.deepEqual(depth.map((s) => s.labels.queue).sort(), ['emails', NASTY].sort());
  const nasty = depth.find((s) => s.labels.queue === NASTY)!;
  assert.deepEqual(nasty.labels, {
    project: 'acme',
    source: 'pgmq',
    schema: 'pgmq',
    queue: NASTY,
  });
  assert.equal(nasty.value, 13);
  // Every family that has samples has HELP and TYPE.
  for (const s of parsed.samples) {
    assert.ok(parsed.help.has(s.name), `HELP for ${s.name}`);
    assert.equal(parsed.type.get(s.name), 'gauge');
  }
});

Deno.test('renderPrometheus() converts milliseconds to seconds and skips unknown values', () => {
  const parsed = parseExposition(renderPrometheus(report()));
  const wait = parsed.samples.find((s) => s.name === 'queue_health_wait_p95_seconds')!;
  assert.equal(wait.value, 1.5);
  const ages = parsed.samples.filter((s) => s.name === 'queue_health_oldest_ready_age_seconds');
  assert.deepEqual(ages.map((s) => s.labels.queue), [NASTY], 'null age of emails is absent');
});

Deno.test('renderPrometheus() exposes monitor health and firing alerts per severity', () => {
  const parsed = parseExposition(renderPrometheus(report()));
  const value = (name: string, labels: Record<string, string> = {}) =>
    parsed.samples.find((s) =>
      s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
    )?.value;
  assert.equal(value('queue_health_monitor_up'), 1);
  assert.equal(value('queue_health_last_capture_age_seconds'), 4);
  assert.equal(value('queue_health_capture_duration_seconds'), 0.012);
  assert.equal(value('queue_health_alerts_firing', { project: 'acme', severity: 'warning' }), 1);
  assert.equal(value('queue_health_alerts_firing', { project: 'acme', severity: 'critical' }), 0);
  assert.equal(value('queue_health_queue_status', { queue: NASTY, status: 'warning' }), 1);
  assert.equal(value('queue_health_queue_status', { queue: NASTY, status: 'ok' }), 0);
});

Deno.test('the exposition parser rejects what the format forbids', () => {
  const bad = [
    'queue_health_depth{queue="a"b"} 1\n', // unescaped quote
    'queue_health_depth{queue="a\\qb"} 1\n', // unknown escape
    '1bad_name 1\n',
    'queue_health_depth{queue="a"} one\n',
    'queue_health_depth 1', // no final line feed
    'a 1\nb 1\na 2\n', // family not grouped
  ];
  for (const text of bad) assert.throws(() => parseExposition(text), Error, text);
});

Deno.test('renderPrometheus() exposes the signals: +Inf for never, flow status as a state set', () => {
  const parsed = parseExposition(renderPrometheus(report()));
  const of = (name: string) =>
    parsed.samples.filter((s) => s.name === name).map((s): Record<string, string | number> => ({
      ...s.labels,
      value: s.value,
    }));
  const nasty = { project: 'acme', source: 'pgmq', schema: 'pgmq', queue: NASTY };
  assert.deepEqual(of('queue_health_drain_eta_seconds'), [{ ...nasty, value: Infinity }]);
  assert.deepEqual(of('queue_health_expected_wait_seconds'), [{ ...nasty, value: 42.5 }]);
  assert.deepEqual(
    of('queue_health_flow_status').map((s) => [s.status, s.value]),
    [['idle', 0], ['ok', 0], ['falling_behind', 1], ['stalled', 0], ['stopped', 0], [
      'redelivering',
      0,
    ]],
    'one series per status, only for the queue whose status is known',
  );
  assert.deepEqual(of('queue_health_poison'), [{ ...nasty, value: 2 }]);
  assert.deepEqual(of('queue_health_oldest_poison_age_seconds'), [{ ...nasty, value: 600 }]);
  assert.deepEqual(
    of('queue_health_slo_burn_rate').map((s) => [s.window, s.value]),
    [['5m', 20], ['30m', 6], ['1h', 3], ['3d', 0.5]],
    'the 1-hour rate from the row; a window without data has no sample',
  );
  assert.deepEqual(of('queue_health_slo_budget_remaining'), [{ ...nasty, value: 0.75 }]);
  for (const name of ['queue_health_flow_status', 'queue_health_slo_burn_rate']) {
    assert.equal(parsed.type.get(name), 'gauge');
    assert.ok((parsed.help.get(name) ?? '').length > 20, `HELP for ${name}`);
  }
});

Deno.test('buildReport() gives every queue its signals, the objective only where one is set', () => {
  const [nasty, emails] = report().queues;
  assert.equal(nasty.signals.drain_eta_s, 'never');
  assert.equal(nasty.signals.flow_status, 'falling_behind');
  assert.deepEqual(nasty.signals.slo, {
    target_wait_s: 60,
    objective: 0.99,
    period_s: 2592000,
    burn_rates: { '5m': 20, '30m': 6, '1h': 3, '6h': null, '3d': 0.5 },
    budget_remaining: 0.75,
  });
  assert.deepEqual(emails.signals, {
    flow_status: null,
    drain_eta_s: null,
    expected_wait_s: null,
    in_rate: null,
    out_rate: null,
    poison: null,
    oldest_poison_age_s: null,
    last_enqueue_at: null,
    last_dequeue_at: null,
    slo: null,
  });
});
