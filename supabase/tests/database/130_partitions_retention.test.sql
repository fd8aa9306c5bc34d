-- Daily partitions are created ahead (by p_now) and retention drops whole partitions once their
-- day is older than raw_retention; rollups and capture runs are trimmed by their own retention.
begin;
select plan(16);
set local timezone = 'UTC';

-- Section: creating partitions ahead
select is(queue_health.ensure_partitions('2030-01-10 05:00:00+00'), 3,
  'ensure_partitions() creates the day of p_now and the two days after it');
select is(
  (select array_agg(c.relname::text order by c.relname) from pg_inherits i join pg_class c on c.oid = i.inhrelid
   where i.inhparent = 'queue_health.metric'::regclass and c.relname like 'metric_p203001%'),
  array['metric_p20300110', 'metric_p20300111', 'metric_p20300112'],
  'the partitions are named metric_pYYYYMMDD');
select is(
  (select pg_get_expr(c.relpartbound, c.oid) from pg_class c where c.oid = 'queue_health.metric_p20300110'::regclass),
  'FOR VALUES FROM (''2030-01-10 00:00:00+00'') TO (''2030-01-11 00:00:00+00'')',
  'a partition covers exactly one UTC day');
select ok(
  (select relrowsecurity from pg_class where oid = 'queue_health.metric_p20300111'::regclass),
  'new partitions have row-level security enabled');
select is(queue_health.ensure_partitions('2030-01-10 23:59:59+00'), 0,
  'a second call the same day creates nothing');
select throws_ok($$ select queue_health.ensure_partitions(now(), -1) $$, '22023',
  'p_days_ahead must be between 0 and 31: got -1', 'a negative p_days_ahead is refused, naming it');

select is(queue_health.capture('2030-01-13 00:00:05+00') ->> 'status', 'ok',
  'capture() on a day without a partition succeeds');
select ok(
  to_regclass('queue_health.metric_p20300113') is not null and to_regclass('queue_health.metric_p20300115') is not null,
  'capture() created the missing partitions (today and two ahead)');

-- Section: retention of raw rows, by dropping whole partitions
insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name, depth)
select t, 'default', 'pgmq', 'pgmq', 'retention_q', 1
from generate_series('2030-01-10 00:00:00+00'::timestamptz, '2030-01-11 23:50:00+00', interval '10 minutes') t;

select ok(
  not (queue_health.apply_retention('2030-01-12 23:59:00+00') -> 'dropped_partitions') ? 'metric_p20300110',
  'a partition is kept while part of its day is within raw_retention (48 h)');
select is(
  (select count(*)::int from queue_health.metric where queue_name = 'retention_q'), 288,
  'and none of its rows are touched');
select ok(
  (queue_health.apply_retention('2030-01-13 00:00:00+00') -> 'dropped_partitions') ? 'metric_p20300110',
  'a partition is dropped once its whole day is older than raw_retention');
select ok(to_regclass('queue_health.metric_p20300110') is null, 'the partition is gone');
select is(
  (select count(*)::int from queue_health.metric where queue_name = 'retention_q'
     and captured_at >= '2030-01-11 00:00:00+00'), 144,
  'the next day''s partition and its rows are untouched');

-- Section: retention of rollups and capture runs
insert into queue_health.metric_1m (bucket, project_id, source, source_schema, queue_name, samples)
values ('2029-12-29 23:59:00+00', 'default', 'pgmq', 'pgmq', 'retention_q', 1),
       ('2029-12-30 00:01:00+00', 'default', 'pgmq', 'pgmq', 'retention_q', 1);
insert into queue_health.metric_1h (bucket, project_id, source, source_schema, queue_name, samples)
values ('2028-12-08 23:00:00+00', 'default', 'pgmq', 'pgmq', 'retention_q', 1),
       ('2028-12-09 01:00:00+00', 'default', 'pgmq', 'pgmq', 'retention_q', 1);
insert into queue_health.capture_run (started_at, status) values ('2030-01-05 23:00:00+00', 'ok'),
  ('2030-01-06 01:00:00+00', 'ok');
select queue_health.apply_retention('2030-01-13 00:00:00+00');
select is(
  (select array_agg(bucket order by bucket) from queue_health.metric_1m where queue_name = 'retention_q'),
  array['2029-12-30 00:01:00+00'::timestamptz],
  'minute rollups older than rollup_1m_retention (14 days) are deleted, newer kept');
select is(
  (select array_agg(bucket order by bucket) from queue_health.metric_1h where queue_name = 'retention_q'),
  array['2028-12-09 01:00:00+00'::timestamptz],
  'hour rollups older than rollup_1h_retention (400 days) are deleted, newer kept');
select is(
  (select count(*)::int from queue_health.capture_run where started_at between '2030-01-05' and '2030-01-07'), 1,
  'capture runs older than capture_run_retention (7 days) are deleted');

select * from finish();
rollback;
