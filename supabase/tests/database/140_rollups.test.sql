-- Rollups: metric_1m and metric_1h equal aggregates computed here, independently, from the raw
-- rows (min/avg/max/last of gauges, sums of counts), and are filled incrementally.
begin;
select plan(12);
set local timezone = 'UTC';
select queue_health.ensure_partitions('2031-03-04 00:00:00+00', 0);
delete from queue_health.rollup_watermark;

-- Raw rows for two queues, at irregular times (every 7 s) from 10:00 to 12:29, with nulls.
create temporary table fx_raw on commit drop as
select '2031-03-04 10:00:00+00'::timestamptz + (i * 7) * interval '1 second' as captured_at,
  q as queue_name, (i * 37 + length(q)) % 101 as depth, (i * 13) % 50 as ready,
  (i * 7) % 11 as in_flight, (i * 3) % 5 as delayed,
  case when i % 4 = 0 then null else ((i * 17) % 90) + 0.25 end as oldest_ready_age_s,
  (i * 5) % 9 as enqueued, (i * 11) % 7 as completed, i % 3 as failed, i % 2 as retried,
  (i % 10 = 0)::int as dead_lettered
from generate_series(0, 1284) i, unnest(array['rollup_a', 'rollup_b']) q;

insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name,
  ready, in_flight, delayed, depth, oldest_ready_age_s, enqueued, completed, failed, retried, dead_lettered)
select captured_at, 'default', 'pgmq', 'pgmq', queue_name, ready, in_flight, delayed, depth,
  oldest_ready_age_s, enqueued, completed, failed, retried, dead_lettered
from fx_raw;

-- The expected rollup of the raw rows over buckets of p_width, computed with date_bin and
-- "distinct on" (not with the functions the rollup uses).
create function pg_temp.expected(p_width interval, p_before timestamptz)
returns table (queue_name text, bucket timestamptz, depth_min bigint, depth_avg numeric, depth_max bigint,
  depth_last bigint, ready_avg numeric, in_flight_max bigint, delayed_last bigint,
  oldest_max numeric, oldest_last numeric, enqueued bigint, completed bigint, failed bigint,
  retried bigint, dead_lettered bigint, samples int)
language sql as $$
  with b as (
    select r.*, date_bin(p_width, r.captured_at, '2000-01-01 00:00:00+00') as bkt from fx_raw r
    where r.captured_at < p_before
  ),
  last_row as (
    select distinct on (b.queue_name, b.bkt) b.queue_name, b.bkt, b.depth, b.delayed, b.oldest_ready_age_s
    from b order by b.queue_name, b.bkt, b.captured_at desc
  )
  select b.queue_name, b.bkt, min(b.depth)::bigint, round(sum(b.depth)::numeric / count(*), 6),
    max(b.depth)::bigint, l.depth::bigint, round(sum(b.ready)::numeric / count(*), 6),
    max(b.in_flight)::bigint, l.delayed::bigint,
    round(max(b.oldest_ready_age_s)::numeric, 6), round(l.oldest_ready_age_s::numeric, 6),
    sum(b.enqueued)::bigint, sum(b.completed)::bigint, sum(b.failed)::bigint, sum(b.retried)::bigint,
    sum(b.dead_lettered)::bigint, count(*)::int
  from b join last_row l on l.queue_name = b.queue_name and l.bkt = b.bkt
  group by b.queue_name, b.bkt, l.depth, l.delayed, l.oldest_ready_age_s
  order by 1, 2
$$;
create function pg_temp.actual(p_table text)
returns table (queue_name text, bucket timestamptz, depth_min bigint, depth_avg numeric, depth_max bigint,
  depth_last bigint, ready_avg numeric, in_flight_max bigint, delayed_last bigint,
  oldest_max numeric, oldest_last numeric, enqueued bigint, completed bigint, failed bigint,
  retried bigint, dead_lettered bigint, samples int)
language plpgsql as $$
begin
  return query execute format($q$
    select r.queue_name, r.bucket, r.depth_min, round(r.depth_avg::numeric, 6), r.depth_max, r.depth_last,
      round(r.ready_avg::numeric, 6), r.in_flight_max, r.delayed_last,
      round(r.oldest_ready_age_s_max::numeric, 6), round(r.oldest_ready_age_s_last::numeric, 6),
      r.enqueued, r.completed, r.failed, r.retried, r.dead_lettered, r.samples
    from queue_health.%I r where r.queue_name like 'rollup\_%%' order by 1, 2 $q$, p_table);
end $$;

-- Section: a first rollup at 12:30:30 (minute buckets up to 12:29, hour buckets up to 12:00)
select is(
  queue_health.rollup('2031-03-04 12:30:30+00') -> '1m' ->> 'to', '2031-03-04T12:29:00+00:00',
  'the minute rollup stops at the last bucket that ended at least a minute ago');
select results_eq(
  $$ select * from pg_temp.actual('metric_1m') $$,
  $$ select * from pg_temp.expected('1 minute', '2031-03-04 12:29:00+00') $$,
  'metric_1m equals min/avg/max/last and sums computed independently from the raw rows');
select results_eq(
  $$ select * from pg_temp.actual('metric_1h') $$,
  $$ select * from pg_temp.expected('1 hour', '2031-03-04 12:00:00+00') $$,
  'metric_1h equals the same aggregates over whole hours of raw rows (not averages of averages)');
select is(
  (select count(*)::int from queue_health.metric_1h where queue_name like 'rollup\_%'), 4,
  'two complete hours of two queues make four hour rows');
select is(
  (select rolled_up_to from queue_health.rollup_watermark where resolution = '1m'),
  '2031-03-04 12:29:00+00'::timestamptz, 'the minute watermark moved to the end of the rolled range');

-- Section: incrementally
select is(
  (queue_health.rollup('2031-03-04 12:30:50+00') -> '1m' ->> 'rows')::int, 0,
  'a second rollup within the same minute has nothing to do');

insert into fx_raw
select '2031-03-04 12:29:59+00'::timestamptz + (i * 10) * interval '1 second', q, i, i, 0, 0, i, 1, 1, 0, 0, 0
from generate_series(1, 450) i, unnest(array['rollup_a', 'rollup_b']) q;
insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name,
  ready, in_flight, delayed, depth, oldest_ready_age_s, enqueued, completed, failed, retried, dead_lettered)
select captured_at, 'default', 'pgmq', 'pgmq', queue_name, ready, in_flight, delayed, depth,
  oldest_ready_age_s, enqueued, completed, failed, retried, dead_lettered
from fx_raw where captured_at >= '2031-03-04 12:30:00+00';

select queue_health.rollup('2031-03-04 13:45:10+00');
select is(
  (select count(*)::int from queue_health.metric_1m where queue_name like 'rollup\_%' and bucket >= '2031-03-04 12:30:00+00'),
  2 * 74, 'the next rollup adds the new minutes (12:30 to 13:43) of both queues');
select results_eq(
  $$ select * from pg_temp.actual('metric_1m') $$,
  $$ select * from pg_temp.expected('1 minute', '2031-03-04 13:44:00+00') $$,
  'after the incremental run metric_1m still equals the independent aggregate');
select results_eq(
  $$ select * from pg_temp.actual('metric_1h') $$,
  $$ select * from pg_temp.expected('1 hour', '2031-03-04 13:00:00+00') $$,
  'and metric_1h gained the 12:00 hour, equal to the independent aggregate');
select is(
  (select count(*)::int from queue_health.metric_1m where queue_name like 'rollup\_%' and bucket >= '2031-03-04 13:44:00+00'),
  0, 'the minute still in progress (13:44) is not rolled up yet');

-- Section: maintenance runs the rollup too
select is(
  (queue_health.maintain('2031-03-04 13:46:10+00') -> 'rollup' -> '1m' ->> 'to'),
  '2031-03-04T13:45:00+00:00', 'maintain() rolls up as part of maintenance');
select throws_ok(
  $$ insert into queue_health.metric_1m (bucket, project_id, source, source_schema, queue_name, samples)
     values ('2031-03-04 12:00:30+00', 'default', 'pgmq', 'pgmq', 'x', 1) $$,
  '23514', null, 'a minute bucket must start on a whole minute');

select * from finish();
rollback;
