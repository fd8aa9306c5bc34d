-- queue_status (latest snapshot, rates, error rate, status), capture_status (is the monitor
-- healthy) and queue_history (raw, 1-minute or 1-hour data by range).
begin;
select plan(21);
set local timezone = 'UTC';
select queue_health.ensure_partitions(now() - interval '2 minutes', 1);
select queue_health.ensure_partitions('2033-02-02 00:00:00+00', 0);
update queue_health.settings set capture_interval = '10 seconds', stale_after_intervals = 3,
  warning_oldest_ready_age_s = 60, critical_oldest_ready_age_s = 300, warning_error_rate = 0.05;

-- Section: queue_status
insert into queue_health.queue (source, source_schema, queue_name, project_id, first_seen_at, last_seen_at, dropped_at)
select 'pgmq', 'pgmq', n, 'default', now() - interval '1 hour', now(),
  case when n = 'vs_dropped' then now() end
from unnest(array['vs_ok', 'vs_warn', 'vs_crit', 'vs_err', 'vs_dead', 'vs_stale', 'vs_never',
  'vs_zero', 'vs_dropped']) n;

insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name,
  ready, in_flight, delayed, depth, oldest_ready_age_s, enqueued, completed, failed, retried,
  dead_lettered, interval_s, wait_p50_ms, run_p95_ms)
values
  (now() - interval '15 seconds', 'default', 'pgmq', 'pgmq', 'vs_ok', 9, 9, 9, 27, 500, 0, 0, 0, 0, 0, 10, null, null),
  (now() - interval '5 seconds', 'default', 'pgmq', 'pgmq', 'vs_ok', 3, 1, 2, 6, 1, 20, 10, 0, 1, 0, 10, 12.5, 40),
  (now() - interval '5 seconds', 'default', 'pgmq', 'pgmq', 'vs_warn', 1, 0, 0, 1, 90, 0, 0, 0, 0, 0, 10, null, null),
  (now() - interval '5 seconds', 'default', 'pgmq', 'pgmq', 'vs_crit', 1, 0, 0, 1, 400, 0, 0, 0, 0, 0, 10, null, null),
  (now() - interval '5 seconds', 'default', 'pgmq', 'pgmq', 'vs_err', 0, 0, 0, 0, null, 10, 9, 1, 0, 0, 10, null, null),
  (now() - interval '5 seconds', 'default', 'pgmq', 'pgmq', 'vs_dead', 0, 0, 0, 0, null, 0, 0, 0, 0, 1, 10, null, null),
  (now() - interval '60 seconds', 'default', 'pgmq', 'pgmq', 'vs_stale', 0, 0, 0, 0, null, 0, 0, 0, 0, 0, 10, null, null),
  (now() - interval '5 seconds', 'default', 'pgmq', 'pgmq', 'vs_zero', 0, 0, 0, 0, null, 0, 0, 0, 0, 0, 10, null, null),
  (now() - interval '5 seconds', 'default', 'pgmq', 'pgmq', 'vs_dropped', 0, 0, 0, 0, null, 0, 0, 0, 0, 0, 10, null, null);

select results_eq(
  $$ select queue_name, status from queue_health.queue_status where queue_name like 'vs\_%' order by queue_name $$,
  $$ values ('vs_crit'::text, 'critical'::text), ('vs_dead', 'warning'), ('vs_err', 'warning'),
            ('vs_never', 'stale'), ('vs_ok', 'ok'), ('vs_stale', 'stale'), ('vs_warn', 'warning'),
            ('vs_zero', 'ok') $$,
  'status: critical/warning by oldest ready age, warning on error rate or dead letters, stale without a recent snapshot; dropped queues are left out');
select results_eq(
  $$ select captured_at, ready, in_flight, delayed, depth, oldest_ready_age_s, snapshot_age_s,
       enqueue_rate, complete_rate, fail_rate, error_rate, wait_p50_ms, run_p95_ms
     from queue_health.queue_status where queue_name = 'vs_ok' $$,
  $$ values (now() - interval '5 seconds', 3::bigint, 1::bigint, 2::bigint, 6::bigint, 1::float8, 5::float8,
             2::float8, 1::float8, 0::float8, 0::float8, 12.5::float8, 40::float8) $$,
  'a queue''s row is its latest snapshot, with rates per second over the interval and the snapshot''s age');
select is((select error_rate from queue_health.queue_status where queue_name = 'vs_err'), 0.1::float8,
  'error_rate is failed / (completed + failed)');
select is((select error_rate from queue_health.queue_status where queue_name = 'vs_zero'), null::float8,
  'error_rate is null when nothing completed or failed');
select is((select captured_at from queue_health.queue_status where queue_name = 'vs_never'), null::timestamptz,
  'a queue never captured shows no snapshot');

-- Section: capture_status
delete from queue_health.capture_run;
insert into queue_health.capture_run (started_at, duration_ms, queues, rows, status)
values (now() - interval '5 seconds', 12, 8, 8, 'ok'), (now() - interval '1 second', 0, 0, 0, 'skipped');
select results_eq(
  $$ select last_run_status::text, last_run_queues, last_success_at, lag_s, errors_last_hour, skipped_last_hour, healthy
     from queue_health.capture_status $$,
  $$ values ('ok'::text, 8, now() - interval '5 seconds', 5::float8, 0::bigint, 1::bigint, true) $$,
  'capture_status reports the last run (skips aside), the last success, the lag and healthy');
insert into queue_health.capture_run (started_at, status, error) values (now(), 'error', 'boom');
select results_eq(
  $$ select last_run_status::text, last_run_error, errors_last_hour, healthy from queue_health.capture_status $$,
  $$ values ('error'::text, 'boom'::text, 1::bigint, false) $$,
  'a failed last run makes the monitor unhealthy and is counted');
delete from queue_health.capture_run;
insert into queue_health.capture_run (started_at, status) values (now() - interval '31 seconds', 'ok');
select is((select healthy from queue_health.capture_status), false,
  'no successful capture within stale_after_intervals intervals is unhealthy');
delete from queue_health.capture_run;
select is((select healthy from queue_health.capture_status), false, 'no capture ever is unhealthy');

-- Section: queue_history
delete from queue_health.rollup_watermark;
insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name, depth, ready, in_flight, delayed, oldest_ready_age_s, enqueued, completed, failed, retried, dead_lettered)
select '2033-02-02 10:00:00+00'::timestamptz + i * interval '20 seconds', 'default', 'pgmq', 'pgmq', 'hist_q',
  i % 7, i % 5, i % 3, i % 2, i * 1.5, i, i % 4, i % 2, 0, 0
from generate_series(0, 32) i;
insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name, depth, enqueued)
values ('2033-02-02 10:00:30+00', 'default', 'pgboss', 'pgboss', 'hist_q', 1000, 1000);
select queue_health.rollup('2033-02-02 10:06:30+00');

select results_eq(
  $$ select resolution, count(*)::int from queue_health.queue_history('hist_q', '2033-02-02 09:00:00+00', '2033-02-02 11:00:00+00', 'pgmq') group by 1 $$,
  $$ values ('raw'::text, 33) $$, 'a range of 2 hours returns raw snapshots');
select is(
  (select sum(depth)::int from queue_health.queue_history('hist_q', '2033-02-02 09:00:00+00', '2033-02-02 11:00:00+00', 'pgmq')),
  (select sum(i % 7)::int from generate_series(0, 32) i), 'raw history carries each snapshot''s values');
select is(
  (select count(*)::int from queue_health.queue_history('hist_q', '2033-02-02 09:00:00+00', '2033-02-02 11:00:00+00')), 34,
  'without p_source, both sources'' snapshots of that name are returned');
select is(
  (select count(*)::int from queue_health.queue_history('hist_q', '2033-02-02 09:00:00+00', '2033-02-02 11:00:00+00', 'pgmq')
   where source = 'pgboss'), 0, 'p_source limits history to one source');
select results_eq(
  $$ select distinct resolution from queue_health.queue_history('hist_q', '2033-02-01 11:00:00+00', '2033-02-02 11:00:00+00', 'pgmq') $$,
  $$ values ('1m'::text) $$, 'a range of a day returns 1-minute buckets');
select results_eq(
  $$ select bucket, round(depth::numeric, 6), enqueued, completed, failed, round(oldest_ready_age_s::numeric, 6)
     from queue_health.queue_history('hist_q', '2033-02-01 11:00:00+00', '2033-02-02 11:00:00+00', 'pgmq') order by bucket $$,
  $$ select date_bin('1 minute', t, '2000-01-01'), round(avg(i % 7)::numeric, 6), sum(i)::bigint,
       sum(i % 4)::bigint, sum(i % 2)::bigint, round(max(i * 1.5)::numeric, 6)
     from (select i, '2033-02-02 10:00:00+00'::timestamptz + i * interval '20 seconds' as t from generate_series(0, 32) i) r
     group by 1 order by 1 $$,
  'minute buckets equal the raw aggregates, rolled-up minutes and the newest ones (after the watermark) alike');
select ok(
  (select rolled_up_to from queue_health.rollup_watermark where resolution = '1m') < '2033-02-02 10:10:00+00',
  'the minute watermark is before the last bucket, so the previous test covered both paths');
select results_eq(
  $$ select resolution, bucket, enqueued from queue_health.queue_history('hist_q', '2033-01-01 00:00:00+00', '2033-02-03 00:00:00+00', 'pgmq') $$,
  $$ values ('1h'::text, '2033-02-02 10:00:00+00'::timestamptz, (select sum(i)::bigint from generate_series(0, 32) i)) $$,
  'a range of a month returns 1-hour buckets');
select is(
  (select count(*)::int from queue_health.queue_history('hist_q', '2033-02-02 10:00:20+00', '2033-02-02 10:01:00+00', 'pgmq')), 2,
  'p_from is inclusive and p_to exclusive');
select is(
  (select count(*)::int from queue_health.queue_history('no_such_queue', '2033-02-02 09:00:00+00', '2033-02-02 11:00:00+00')), 0,
  'an unknown queue has no history');
select throws_ok(
  $$ select * from queue_health.queue_history('hist_q', '2033-02-02 11:00:00+00', '2033-02-02 10:00:00+00') $$,
  '22023', null, 'p_to before p_from is refused');
select throws_ok(
  $$ select * from queue_health.queue_history(null, '2033-02-02 10:00:00+00', '2033-02-02 11:00:00+00') $$,
  '22004', null, 'a missing queue name is refused');

select * from finish();
rollback;
