/**
 * The dashboard's pure modules: formatting with units, relative times, sparkline paths, rates
 * from Realtime counts, and configuration from config.json / URL parameters.
 */
import assert from 'node:assert/strict';
import { loadConfig, mergeConfig } from '../../dashboard/config.js';
import {
  bucketBurn,
  downsampleMax,
  FLOW_WORDS,
  flowWords,
  formatBudget,
  formatBurn,
  formatCount,
  formatDuration,
  formatEta,
  formatJobs,
  formatMs,
  formatObjective,
  formatPercent,
  formatPoison,
  formatRate,
  formatRelative,
  jwtSecondsLeft,
  nextReportDelay,
  ratesOf,
  rateTicks,
  rejectedTokenReason,
  REPORT_EVERY_MS,
  secondsOrNever,
  SLIM_QUEUE_FIELDS,
  snapshotQueues,
  sparklinePath,
  statusRank,
} from '../../dashboard/format.js';
import { SLIM_QUEUE_FIELDS as PAYLOAD_SLIM_FIELDS } from '../../supabase/functions/_shared/realtime_payload.ts';
import { BURN_PAGE, BURN_TICKET, burnColumns, historyColumns } from '../../dashboard/charts.js';

Deno.test('counts are exact below 10 000 and compact above, with units for jobs', () => {
  assert.equal(formatCount(0), '0');
  assert.equal(formatCount(1234), '1,234');
  assert.equal(formatCount(12_345), '12.3k');
  assert.equal(formatCount(4_500_000), '4.5M');
  assert.equal(formatCount(null), '–');
  assert.equal(formatJobs(1), '1 job');
  assert.equal(formatJobs(405), '405 jobs');
  assert.equal(formatJobs(undefined), '–');
});

Deno.test('rates, percentages and durations carry their units', () => {
  assert.equal(formatRate(0), '0/s');
  assert.equal(formatRate(0.5), '0.5/s');
  assert.equal(formatRate(3.999), '4/s');
  assert.equal(formatRate(0.004), '<0.01/s');
  assert.equal(formatRate(173.4), '173/s');
  assert.equal(formatPercent(0), '0 %');
  assert.equal(formatPercent(0.025), '2.5 %');
  assert.equal(formatPercent(1), '100 %');
  assert.equal(formatPercent(null), '–', 'no finished jobs: no error rate');
  assert.equal(formatDuration(0.35), '350 ms');
  assert.equal(formatDuration(42), '42 s');
  assert.equal(formatDuration(600), '10 min');
  assert.equal(formatDuration(7500), '2 h 5 min');
  assert.equal(formatDuration(3 * 86_400), '3 d');
  assert.equal(formatMs(45.2), '45 ms');
  assert.equal(formatMs(1500), '1.5 s');
});

Deno.test('times are shown relative to now', () => {
  const now = Date.parse('2026-11-26T12:00:00Z');
  assert.equal(formatRelative('2026-11-26T12:00:00Z', now), 'just now');
  assert.equal(formatRelative('2026-11-26T11:59:48Z', now), '12 s ago');
  assert.equal(formatRelative('2026-11-26T11:57:00Z', now), '3 min ago');
  assert.equal(formatRelative('2026-11-26T10:00:00Z', now), '2 h ago');
  assert.equal(formatRelative('2026-11-21T12:00:00Z', now), '5 d ago');
  assert.equal(formatRelative('2026-11-26T12:00:10Z', now), 'in 10 s');
  assert.equal(formatRelative(null, now), 'never');
});

Deno.test('queues sort worst status first', () => {
  const statuses = ['ok', 'warning', 'critical', 'stale', 'weird'];
  assert.deepEqual(
    statuses.sort((a, b) => statusRank(a) - statusRank(b)),
    ['critical', 'stale', 'warning', 'ok', 'weird'],
  );
});

Deno.test('rates from a Realtime snapshot divide its counts by the time since the previous one', () => {
  assert.deepEqual(ratesOf({ enqueued: 20, completed: 18, failed: 2 }, 5), {
    enqueue_rate: 4,
    complete_rate: 3.6,
    fail_rate: 0.4,
    error_rate: 0.1,
  });
  assert.deepEqual(ratesOf({ enqueued: 3, completed: 0, failed: 0 }, null), {
    enqueue_rate: null,
    complete_rate: null,
    fail_rate: null,
    error_rate: null,
  });
});

Deno.test('a sparkline keeps spikes when downsampled and scales from zero', () => {
  const values = Array.from({ length: 300 }, (_, i) => (i === 150 ? 1000 : 1));
  const down = downsampleMax(values, 60);
  assert.equal(down.length, 60);
  assert.ok(down.includes(1000), 'the spike survives');
  assert.equal(sparklinePath([], 120, 28), '');
  assert.equal(sparklinePath([0, 0], 120, 28), 'M0.0 27.0L120.0 27.0');
  assert.equal(sparklinePath([0, 10], 120, 28), 'M0.0 27.0L120.0 1.0');
});

Deno.test('history points become chart columns with rates per second', () => {
  const { t, c } = historyColumns([
    { t: '2026-11-26T12:00:00Z', depth: 5, enqueued: 0, completed: 0, failed: 0 },
    { t: '2026-11-26T12:00:10Z', depth: 15, enqueued: 20, completed: 10, failed: 0 },
  ], 'raw');
  assert.deepEqual(t, [
    Date.parse('2026-11-26T12:00:00Z') / 1000,
    Date.parse('2026-11-26T12:00:10Z') / 1000,
  ]);
  assert.deepEqual(c[0], [5, 15]);
  assert.deepEqual(c[5], [null, 2], 'enqueued per second over the 10 s since the previous point');
  const minute = historyColumns([{ t: '2026-11-26T12:00:00Z', enqueued: 120 }], '1m');
  assert.deepEqual(minute.c[5], [2], 'a 1-minute bucket divides by 60 s');
});

Deno.test('the access token’s expiry is read without verifying it', () => {
  const enc = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, '');
  const token = `${enc({ alg: 'HS256' })}.${enc({ exp: 1_000 })}.sig`;
  assert.equal(jwtSecondsLeft(token, 900_000), 100);
  assert.equal(jwtSecondsLeft('not-a-jwt'), null);
});

Deno.test('a refused access token is explained: not a JWT, expired how long ago, or not valid', () => {
  const enc = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, '');
  const refused = 'queue-health refused the access token (HTTP 401)';
  const now = 10_000_000;
  assert.equal(rejectedTokenReason('not-a-token', now), `${refused}: it is not a JWT.`);
  assert.equal(rejectedTokenReason(null, now), `${refused}: it is not a JWT.`);
  const expired = `${enc({ alg: 'HS256' })}.${enc({ exp: now / 1000 - 3600 })}.sig`;
  assert.equal(rejectedTokenReason(expired, now), `${refused}: it expired 1 h ago.`);
  const valid = `${enc({ alg: 'HS256' })}.${enc({ exp: now / 1000 + 3600 })}.sig`;
  assert.equal(
    rejectedTokenReason(valid, now),
    `${refused}: it is not valid for this project (signed with another key, or revoked).`,
  );
});

Deno.test('config: URL parameters override config.json, which overrides the local stack', () => {
  const cfg = mergeConfig([
    {
      _source: 'stack',
      supabaseUrl: 'http://127.0.0.1:54321',
      anonKey: 'local',
      functionsUrl: 'http://127.0.0.1:54321/functions/v1',
      realtime: false,
    },
    { _source: 'file' },
    { _source: 'url', realtime: 'true', pollSeconds: '3' },
  ]);
  assert.equal(cfg.supabaseUrl, 'http://127.0.0.1:54321');
  assert.equal(cfg.realtime, true);
  assert.equal(cfg.auth, null, 'auth unset: probed at sign-in');
  assert.equal(cfg.pollSeconds, 3);
  assert.deepEqual(cfg.sources, ['stack', 'url']);

  const hosted = mergeConfig([{
    _source: 'file',
    supabaseUrl: 'https://abc.supabase.co/',
    anonKey: 'k',
  }]);
  assert.equal(hosted.functionsUrl, 'https://abc.supabase.co/functions/v1');
  assert.equal(hosted.realtime, null);
});

Deno.test('config: a missing or malformed setting is named', () => {
  assert.throws(() => mergeConfig([{ _source: 'x' }]), /'supabaseUrl' is not configured/);
  assert.throws(
    () => mergeConfig([{ _source: 'x', supabaseUrl: 'ftp://nope' }]),
    /'supabaseUrl' must be an http\(s\) URL/,
  );
  assert.throws(
    () => mergeConfig([{ _source: 'x', supabaseUrl: 'http://a', realtime: 'maybe' }]),
    /'realtime' and 'auth' must be true, false or auto/,
  );
  assert.throws(
    () => mergeConfig([{ _source: 'x', supabaseUrl: 'http://a', pollSeconds: '0.5' }]),
    /'pollSeconds' must be a number from 2 to 60/,
  );
});

Deno.test('config: config.json next to the page wins over the local stack’s', async () => {
  const served: Record<string, unknown> = {
    'https://dash.example/qh/config.json': { supabaseUrl: 'https://abc.supabase.co', anonKey: 'k' },
    'https://dash.example/_stack/config.json': { supabaseUrl: 'http://127.0.0.1:54321' },
  };
  const fakeFetch = ((input: string | URL | Request) => {
    const body = served[String(input)];
    return Promise.resolve(
      body ? Response.json(body) : new Response('not found', { status: 404 }),
    );
  }) as typeof fetch;
  const cfg = await loadConfig(
    { href: 'https://dash.example/qh/index.html?anonKey=override', search: '?anonKey=override' },
    fakeFetch,
  );
  assert.equal(cfg.supabaseUrl, 'https://abc.supabase.co');
  assert.equal(cfg.anonKey, 'override');
  assert.deepEqual(cfg.sources, ['config.json', 'URL parameters']);
});

Deno.test('the page reads slim (v2) and full (v1) snapshots, and ignores other versions', () => {
  assert.deepEqual(
    [...SLIM_QUEUE_FIELDS],
    [...PAYLOAD_SLIM_FIELDS],
    'the same field order as the payload contract',
  );
  const envelope = { project_id: 'acme', captured_at: '2026-11-26T12:00:00Z', part: 1, parts: 1 };
  assert.deepEqual(
    snapshotQueues({
      v: 2,
      ...envelope,
      queues: [['pgmq', 'pgmq', 'emails', 7, 12.5, 10, 8, 1, false]],
    }),
    [{
      source: 'pgmq',
      source_schema: 'pgmq',
      queue: 'emails',
      depth: 7,
      oldest_ready_age_s: 12.5,
      enqueued: 10,
      completed: 8,
      failed: 1,
      depth_estimated: false,
    }],
  );
  const full = { source: 'pgmq', source_schema: 'pgmq', queue: 'emails', depth: 7, ready: 4 };
  assert.deepEqual(snapshotQueues({ v: 1, ...envelope, queues: [full] }), [full]);
  assert.equal(snapshotQueues({ v: 3, ...envelope, queues: [] }), null);
  assert.equal(snapshotQueues(null), null);
});

Deno.test('over Realtime the report is re-read once a minute, polling every pollSeconds, never while hidden', () => {
  const s = { mode: 'realtime', hidden: false, pollSeconds: 2.5, failures: 0, sinceLastMs: 0 };
  assert.equal(REPORT_EVERY_MS, 60_000);
  assert.equal(nextReportDelay(s), 60_000);
  assert.equal(nextReportDelay({ ...s, sinceLastMs: 45_000 }), 15_000, 'timed from the last read');
  assert.equal(nextReportDelay({ ...s, sinceLastMs: 600_000 }), 0, 'overdue: now');
  assert.equal(nextReportDelay({ ...s, hidden: true }), null, 'hidden: no read at all');
  assert.equal(nextReportDelay({ ...s, failures: 2 }), 60_000, 'a failure never reads sooner');
  const polling = { ...s, mode: 'polling' };
  assert.equal(nextReportDelay(polling), 2500);
  assert.equal(nextReportDelay({ ...polling, failures: 1 }), 5000, 'backs off after a failure');
  assert.equal(nextReportDelay({ ...polling, failures: 5 }), 15_000, 'up to 15 s');
  assert.equal(nextReportDelay({ ...polling, hidden: true }), null);
  assert.equal(nextReportDelay({ ...s, mode: 'connecting' }), 60_000, 'joining: no extra reads');
  assert.equal(
    nextReportDelay({ ...s, mode: 'connecting', failures: 1 }),
    5000,
    'joining after a failed read: polls',
  );
});

Deno.test('"clears in" reads seconds, "never" and null as the health JSON sends them', () => {
  assert.equal(formatEta(840), '14 min');
  assert.equal(formatEta(42.4), '42 s');
  assert.equal(formatEta(7500), '2 h 5 min');
  assert.equal(formatEta('never'), 'never');
  assert.equal(formatEta(null), '–', 'not enough data yet');
  assert.equal(formatEta(undefined), '–', 'a report without signals');
  assert.equal(formatEta(0), 'now', 'nothing ready');
  assert.equal(formatEta('never', 840), 'never · waits 14 min', 'falling behind: the finite wait');
  assert.equal(formatEta('never', 'never'), 'never', 'nothing completes: no wait to give');
  assert.equal(formatEta('never', null), 'never');
  assert.equal(formatEta(840, 60), '14 min', 'a shrinking backlog: its ETA alone');
  assert.equal(secondsOrNever('never'), Infinity);
  assert.equal(secondsOrNever('Infinity'), Infinity);
  assert.equal(secondsOrNever('12.5'), 12.5);
  assert.equal(secondsOrNever('soon'), null);
  assert.equal(secondsOrNever(NaN), null);
});

Deno.test('every flow status has words; a missing one shows nothing and an unknown one as is', () => {
  for (const s of ['idle', 'ok', 'falling_behind', 'stalled', 'stopped', 'redelivering']) {
    assert.match(flowWords(s), new RegExp(`^${s.replace('_', ' ')} — `), s);
  }
  assert.equal(flowWords('stalled'), 'stalled — taken, none complete');
  assert.equal(Object.keys(FLOW_WORDS).length, 6);
  assert.equal(flowWords(null), '', 'history shorter than the window');
  assert.equal(flowWords('rewinding'), 'rewinding');
  assert.equal(flowWords('toString'), 'toString', 'not a property of the object');
});

Deno.test('poison, budget and burn rate carry their units', () => {
  assert.equal(formatPoison(null), '–', 'not probed');
  assert.equal(formatPoison(0), '0');
  assert.equal(formatPoison(3), '3');
  assert.equal(formatPoison(12_345, true), '≈12.3k');
  assert.equal(formatBudget(1), '100 % left');
  assert.equal(formatBudget(0.725), '72.5 % left');
  assert.equal(formatBudget(0.9996), '99.9 % left', 'never rounded up to untouched');
  assert.equal(formatBudget(0.0512), '5.1 % left');
  assert.equal(formatBudget(0.0004), '<0.1 % left');
  assert.equal(formatBudget(0), 'spent');
  assert.equal(formatBudget(-0.35), 'overspent by 35 %');
  assert.equal(formatBudget(null), '–');
  assert.equal(
    formatObjective({ target_wait_s: 60, objective: 0.999, period_s: 86_400 }),
    'oldest ready ≤ 1 min for 99.9 % of the time over a day',
  );
  assert.equal(
    formatObjective({ target_wait_s: 30, objective: 0.99, period_s: 30 * 86_400 }),
    'oldest ready ≤ 30 s for 99 % of the time over 30 days',
  );
  assert.equal(formatObjective(null), '');
  assert.equal(formatBurn(0), '0×');
  assert.equal(formatBurn(0.354), '0.35×');
  assert.equal(formatBurn(2.44), '2.4×');
  assert.equal(formatBurn(14.4), '14×');
  assert.equal(formatBurn(null), '–');
});

Deno.test('a history bucket’s burn rate is its bad share over the error budget', () => {
  // 30 of 60 s bad under a 99 % objective: half the time bad, 50 times the budget's pace.
  assert.equal(bucketBurn(30, 60, 0.99)?.toFixed(6), (50).toFixed(6));
  assert.equal(bucketBurn(0, 60, 0.99), 0);
  assert.equal(
    bucketBurn(6, 600, 0.99)?.toFixed(6),
    (1).toFixed(6),
    '1× spends it over the period',
  );
  assert.equal(bucketBurn(null, 60, 0.99), null, 'no objective then');
  assert.equal(bucketBurn(0, 0, 0.99), null, 'no seconds under the objective');
  assert.equal(bucketBurn(5, 60, 1), null, 'not a fraction');
  const { t, burn } = burnColumns([
    { t: '2026-11-26T12:00:00Z', slo_total_s: 60, slo_bad_s: 0 },
    { t: '2026-11-26T12:01:00Z', slo_total_s: 60, slo_bad_s: 60 },
    { t: '2026-11-26T12:02:00Z', slo_total_s: null, slo_bad_s: null },
  ], 0.9);
  assert.deepEqual(t, [1795694400, 1795694460, 1795694520]);
  assert.equal(burn[0], 0);
  assert.equal(burn[1]?.toFixed(6), (10).toFixed(6));
  assert.equal(burn[2], null);
  assert.deepEqual([BURN_PAGE, BURN_TICKET], [14.4, 6], 'the default rules of docs/alerts.md');
});

Deno.test('rate axis ticks below 1/s keep their decimals, or turn per minute, never all "0/s"', () => {
  assert.deepEqual(rateTicks([0, 0.05, 0.1, 0.15, 0.2]), [
    '0/s',
    '0.05/s',
    '0.1/s',
    '0.15/s',
    '0.2/s',
  ]);
  assert.deepEqual(rateTicks([0, 0.25, 0.5, 0.75]), ['0/s', '0.25/s', '0.5/s', '0.75/s']);
  assert.deepEqual(rateTicks([0, 0.01, 0.02, 0.03]), ['0/min', '0.6/min', '1.2/min', '1.8/min']);
  assert.deepEqual(rateTicks([0, 0.1, 0.2, 0.30000000000000004]), [
    '0/s',
    '0.1/s',
    '0.2/s',
    '0.3/s',
  ]);
  assert.deepEqual(rateTicks([0, 1, 2, 3]), ['0/s', '1/s', '2/s', '3/s']);
  assert.deepEqual(rateTicks([0, 5000, 10000]), ['0/s', '5,000/s', '10k/s']);
  for (const ticks of [[0, 0.2, 0.4], [0, 0.002, 0.004, 0.006], [0.5, 0.6, 0.7]]) {
    const labels = rateTicks(ticks);
    assert.equal(new Set(labels).size, ticks.length, `distinct labels for ${ticks}: ${labels}`);
  }
});
