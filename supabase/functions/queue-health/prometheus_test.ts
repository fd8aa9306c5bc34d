import assert from 'node:assert/strict';
import { buildReport } from './health.ts';
import { parseExposition, parseOpenMetrics } from './exposition_parser.ts';
import {
  escapeHelp,
  escapeLabelValue,
  FAMILIES,
  formatValue,
  renderPrometheus,
  sampleName,
} from './prometheus.ts';
import { ODD_NAMES, promtoolCheckMetrics } from './test_promtool.ts';

const NASTY = ODD_NAMES[0];

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
        cum_enqueued: 1005,
        cum_completed: 990,
        cum_failed: 7,
        cum_retried: 12,
        cum_dead_lettered: 0,
        last_enqueue_at: '2026-11-26T09:59:50+00:00',
        last_dequeue_at: '2026-11-26T09:58:00+00:00',
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
      ...ODD_NAMES.slice(1).map((queue_name, i) => ({
        project_id: 'acme',
        source: 'pgboss',
        source_schema: 'pgboss',
        queue_name,
        status: 'ok',
        depth: i,
        cum_enqueued: i * 10,
        cum_completed: i * 9,
        cum_failed: i,
        cum_retried: 0,
        cum_dead_lettered: 0,
      })),
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
  assert.deepEqual(depth.map((s) => s.labels.queue).sort(), ['emails', ...ODD_NAMES].sort());
  const nasty = depth.find((s) => s.labels.queue === NASTY)!;
  assert.deepEqual(nasty.labels, {
    project: 'acme',
    source: 'pgmq',
    schema: 'pgmq',
    queue: NASTY,
  });
  assert.equal(nasty.value, 13);
  // Every family that has samples has HELP and TYPE; counters are named _total.
  for (const s of parsed.samples) {
    assert.ok(parsed.help.has(s.name), `HELP for ${s.name}`);
    const type = parsed.type.get(s.name);
    assert.equal(type, s.name.endsWith('_total') ? 'counter' : 'gauge', s.name);
  }
});

Deno.test('renderPrometheus() converts milliseconds to seconds and skips unknown values', () => {
  const parsed = parseExposition(renderPrometheus(report()));
  const wait = parsed.samples.find((s) => s.name === 'queue_health_wait_p95_seconds')!;
  assert.equal(wait.value, 1.5);
  const ages = parsed.samples.filter((s) => s.name === 'queue_health_oldest_ready_age_seconds');
  assert.deepEqual(ages.map((s) => s.labels.queue), [NASTY], 'null ages are absent');
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

Deno.test('renderPrometheus() exports the running totals as counters named _total', () => {
  const text = renderPrometheus(report());
  const parsed = parseExposition(text);
  for (const k of ['enqueued', 'completed', 'failed', 'retried', 'dead_lettered']) {
    assert.equal(parsed.type.get(`queue_health_${k}_total`), 'counter', k);
  }
  const total = (name: string, queue: string) =>
    parsed.samples.find((s) => s.name === name && s.labels.queue === queue)?.value;
  assert.equal(total('queue_health_enqueued_total', NASTY), 1005);
  assert.equal(total('queue_health_completed_total', NASTY), 990);
  assert.equal(total('queue_health_failed_total', NASTY), 7);
  assert.equal(total('queue_health_retried_total', NASTY), 12);
  assert.equal(total('queue_health_dead_lettered_total', NASTY), 0);
  assert.equal(total('queue_health_enqueued_total', 'emails'), undefined, 'no totals: no sample');
  assert.equal(
    total('queue_health_last_dequeue_timestamp_seconds', NASTY),
    Date.parse('2026-11-26T09:58:00Z') / 1000,
  );
  // The 0.1.0 per-interval gauges are still served, and say they are deprecated.
  assert.equal(total('queue_health_completed_last_interval', NASTY), 4);
  assert.equal(total('queue_health_completed_per_second', NASTY), 0.4);
  assert.match(parsed.help.get('queue_health_completed_per_second')!, /^Deprecated: use rate\(/);
  assert.match(parsed.help.get('queue_health_failed_last_interval')!, /^Deprecated: use increase/);
});

Deno.test('renderPrometheus() writes each state set as one 0/1 series per state, exactly one 1', () => {
  const parsed = parseExposition(renderPrometheus(report()));
  for (
    const [name, states] of [
      ['queue_health_queue_status', ['ok', 'warning', 'critical', 'stale']],
      [
        'queue_health_flow_status',
        ['idle', 'ok', 'falling_behind', 'stalled', 'stopped', 'redelivering'],
      ],
    ] as const
  ) {
    const series = parsed.samples.filter((s) => s.name === name && s.labels.queue === NASTY);
    assert.deepEqual(series.map((s) => s.labels.status).sort(), [...states].sort(), name);
    assert.deepEqual(series.filter((s) => s.value === 1).length, 1, name);
    assert.ok(series.every((s) => s.value === 0 || s.value === 1), name);
  }
});

Deno.test('renderPrometheus() in OpenMetrics: same series, # UNIT, counters by family, # EOF', () => {
  const om = renderPrometheus(report(), 'openmetrics');
  assert.ok(om.endsWith('\n# EOF\n'));
  const parsed = parseOpenMetrics(om);
  assert.equal(parsed.families.get('queue_health_completed')?.type, 'counter');
  assert.ok(!parsed.families.has('queue_health_completed_total'));
  assert.equal(parsed.families.get('queue_health_oldest_ready_age_seconds')?.unit, 'seconds');
  assert.equal(parsed.families.get('queue_health_drain_eta_seconds')?.unit, 'seconds');
  assert.equal(parsed.families.get('queue_health_depth')?.unit, undefined);
  // HELP is an escaped string in OpenMetrics: quotes escaped and read back intact.
  for (const f of FAMILIES) {
    const family = parsed.families.get(f.name);
    if (family) assert.ok(family.help?.endsWith(f.help), f.name);
  }
  // The same samples as the classic text, name for name and value for value.
  const text = parseExposition(renderPrometheus(report()));
  const key = (s: { name: string; labels: Record<string, string>; value: number }) =>
    `${s.name}${JSON.stringify(Object.entries(s.labels).sort())} ${s.value}`;
  assert.deepEqual(parsed.samples.map(key), text.samples.map(key));
});

Deno.test('the OpenMetrics parser refuses what OpenMetrics forbids', () => {
  const bad: [string, RegExp][] = [
    ['# TYPE a gauge\na 1\n', /# EOF/],
    ['# TYPE a_total counter\na_total_total 1\n# EOF\n', /without _total/],
    ['# TYPE a counter\na 1\n# EOF\n', /not a sample of family|a is not/],
    ['# TYPE a gauge\n# UNIT a seconds\na 1\n# EOF\n', /suffix/],
    ['# TYPE a gauge\n# HELP a say "hi"\na 1\n# EOF\n', /double quote/],
    ['# a comment\n# EOF\n', /metadata/],
    ['# TYPE a gauge\na 1\n\n# EOF\n', /blank/],
    ['# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n# EOF\n', /a is not a sample|interleaved/],
  ];
  for (const [text, error] of bad) assert.throws(() => parseOpenMetrics(text), error, text);
  assert.equal(escapeHelp('say "hi"\\', 'openmetrics'), 'say \\"hi\\"\\\\');
  assert.equal(escapeHelp('say "hi"\\'), 'say "hi"\\\\');
});

Deno.test('every family is declared once, counters without _total, units as name suffixes', () => {
  const names = FAMILIES.map(sampleName);
  assert.equal(new Set(names).size, names.length);
  for (const f of FAMILIES) {
    assert.match(f.name, /^queue_health_[a-z0-9_]+$/);
    if (f.type === 'counter') assert.ok(!f.name.endsWith('_total'), f.name);
    if (f.name.endsWith('_seconds')) assert.equal(f.unit, 'seconds', f.name);
  }
});

Deno.test('promtool check metrics finds no problem in the text exposition, odd queue names included', async () => {
  const text = renderPrometheus(report());
  const { code, out } = await promtoolCheckMetrics(text);
  assert.equal(out.trim(), '', 'promtool reports nothing');
  assert.equal(code, 0);
  // And it is not a check that passes anything: promtool fails a broken exposition.
  const broken = await promtoolCheckMetrics(
    text.replace('queue_health_depth{', 'queue_health_depth{{'),
  );
  assert.notEqual(broken.code, 0);
});
