-- Seasonal baselines (issue 22, item 5): hour_of_week() in UTC at its edges, is_anomalous() with
-- MAD = 0 and nulls, compute_baselines() from a synthetic history of metric_1h rows (the medians
-- and MADs equal values worked out by hand), the two-week rule visible in history_days, removal of
-- stale profiles, the hourly hook in maintain(), and row-level security.
begin;
select plan(38);

-- Section: hour_of_week() (2031-03-03 and 2031-03-10 are Mondays)
set local timezone = 'America/Los_Angeles';
select is(queue_health.hour_of_week('2031-03-03 00:00:00+00'), 0::smallint,
  'Monday 00:00 UTC is hour 0');
select is(queue_health.hour_of_week('2031-03-03 00:59:59.999+00'), 0::smallint,
  'Monday 00:59:59 UTC is still hour 0');
select is(queue_health.hour_of_week('2031-03-03 01:00:00+00'), 1::smallint,
  'Monday 01:00 UTC is hour 1');
select is(queue_health.hour_of_week('2031-03-04 00:00:00+00'), 24::smallint,
  'Tuesday 00:00 UTC is hour 24');
select is(queue_health.hour_of_week('2031-03-09 23:59:59+00'), 167::smallint,
  'Sunday 23:59:59 UTC is hour 167');
select is(queue_health.hour_of_week('2031-03-10 01:30:00+02'), 167::smallint,
  'Monday 01:30 at +02 is Sunday 23:30 UTC: hour 167 (the offset of the input counts, not its wall clock)');
select is(queue_health.hour_of_week('2031-03-09 16:00:00-08'), 0::smallint,
  'Sunday 16:00 at -08 is Monday 00:00 UTC: hour 0, though the session runs in Los Angeles');
select is((select provolatile from pg_catalog.pg_proc
            where oid = 'queue_health.hour_of_week(timestamptz)'::regprocedure), 'i'::"char",
  'hour_of_week() is immutable (usable in indexes and generated columns)');
set local timezone = 'UTC';

-- Section: is_anomalous() (spread = greatest(MAD, 10 % of |median|, 1))
select is(queue_health.is_anomalous(10, 3, 1.5, 3), true, 'outside median + k x MAD: anomalous');
select is(queue_health.is_anomalous(-2, 3, 1.5, 3), true, 'below median - k x MAD: anomalous');
select is(queue_health.is_anomalous(7.5, 3, 1.5, 3), false, 'exactly at median + k x MAD: not anomalous');
select is(queue_health.is_anomalous(9, 5, 0, 3), true,
  'MAD 0: the floor of 1 makes 4 away from median 5 with k = 3 anomalous');
select is(queue_health.is_anomalous(5.5, 5, 0, 3), false,
  'MAD 0: a small change from an hour that was identical every week is not anomalous');
select is(queue_health.is_anomalous(2, 0, 0, 3), false, 'median 0 and MAD 0: 2 (< 3 x 1) is usual');
select is(queue_health.is_anomalous(3.5, 0, 0, 3), true, 'median 0 and MAD 0: 3.5 (> 3 x 1) is anomalous');
select is(array[queue_health.is_anomalous(130, 100, 0, 3), queue_health.is_anomalous(131, 100, 0, 3)],
  array[false, true], 'MAD 0 at median 100: the spread is 10 % of the median (10)');
select is(array[queue_health.is_anomalous(null, 3, 1, 3), queue_health.is_anomalous(3, null, 1, 3),
                queue_health.is_anomalous(3, 3, null, 3), queue_health.is_anomalous(3, 3, 1, null)],
  array[null, null, null, null]::boolean[], 'null when the value, median, MAD or k is unknown');

-- Section: a synthetic history
-- baseline_a (project t177_p): five weeks of hourly rollups ending at Monday 2031-03-10 00:00 UTC,
-- plus the bucket of that (unfinished) hour. In the four weeks of the window, week w (0..3) has at
-- hour of week j: enqueued 3600 x (j % 5 + {1, 2, 4, 10}[w]), completed 3600 x 5, failed
-- 3600 x {0, 0, 0, 1}[w], depth_avg j + {0, 1, 2, 100}[w], oldest_ready_age_s_max {null, null, 7,
-- 9}[w]. By hand: enqueue median j % 5 + 3, MAD median{2, 1, 1, 7} = 1.5; out median 5, MAD
-- median{0, 0, 0, 1} = 0; depth median j + 1.5, MAD median{1.5, 0.5, 0.5, 98.5} = 1; ready age
-- (null as 0) median 3.5, MAD median{3.5, 3.5, 3.5, 5.5} = 3.5. Hour 100 lacks week 3 (three
-- samples: enqueue j % 5 + {1, 2, 4}, median j % 5 + 2 = 2, MAD median{1, 0, 2} = 1). The week
-- before the window and the unfinished hour carry 1000s that must not count.
insert into queue_health.project (id, name) values ('t177_p', 'Project P'), ('t177_q', 'Project Q');
insert into queue_health.queue (source, source_schema, queue_name, project_id, dropped_at) values
  ('pgmq', 'pgmq', 'baseline_a', 't177_p', null),
  ('pgmq', 'pgmq', 'baseline_young', 't177_q', null),
  ('pgmq', 'pgmq', 'baseline_dropped', 't177_p', '2031-03-09 00:00:00+00');
create temporary table fx_w (w int primary key, enq int, failed int, depth_add int, age float8) on commit drop;
insert into fx_w values (-1, 1000, 1000, 1000, 1000), (0, 1, 0, 0, null), (1, 2, 0, 1, null),
  (2, 4, 0, 2, 7), (3, 10, 1, 100, 9), (4, 1000, 1000, 1000, 1000);
insert into queue_health.metric_1h (bucket, project_id, source, source_schema, queue_name,
  enqueued, completed, failed, depth_avg, oldest_ready_age_s_max, samples)
select '2031-02-10 00:00:00+00'::timestamptz + (w.w * 168 + j) * interval '1 hour', 't177_p', 'pgmq', 'pgmq',
  'baseline_a', 3600 * (j % 5 + w.enq), 3600 * 5, 3600 * w.failed, j + w.depth_add, w.age, 360
from fx_w w, generate_series(0, 167) j
where not (w.w = 3 and j = 100) and (w.w < 4 or j = 0);
-- baseline_young (project t177_q): ten days of data; baseline_dropped: data, but dropped.
insert into queue_health.metric_1h (bucket, project_id, source, source_schema, queue_name,
  enqueued, completed, failed, depth_avg, oldest_ready_age_s_max, samples)
select '2031-03-10 00:00:00+00'::timestamptz - i * interval '1 hour', p, 'pgmq', 'pgmq', q, 36, 36, 0, 2, 1, 360
from generate_series(1, 240) i,
  (values ('t177_q', 'baseline_young'), ('t177_p', 'baseline_dropped')) x (p, q);
-- A stale profile of a queue the registry does not know.
insert into queue_health.queue_baseline (source, source_schema, queue_name, hour_of_week, samples,
  history_days, computed_at)
values ('pgmq', 'pgmq', 'baseline_gone', 5, 4, 30, '2031-03-01 00:00:00+00');

select is(
  queue_health.compute_baselines('2031-03-10 00:30:00+00') - 'from' - 'to',
  '{"queues": 2, "profiles": 336, "replaced": 1}'::jsonb,
  'compute_baselines(): two live queues, 168 hours each, replacing the one stale row');
select results_eq(
  $$ select hour_of_week, enqueue_rate_median, enqueue_rate_mad, out_rate_median, out_rate_mad,
       depth_median, depth_mad, ready_age_median, ready_age_mad, samples, history_days
     from queue_health.queue_baseline where queue_name = 'baseline_a' and hour_of_week in (0, 7, 167)
     order by 1 $$,
  $$ values (0::smallint, 3::float8, 1.5::float8, 5::float8, 0::float8, 1.5::float8, 1::float8, 3.5::float8, 3.5::float8, 4, 839 / 24.0::float8),
            (7::smallint, 5, 1.5, 5, 0, 8.5, 1, 3.5, 3.5, 4, 839 / 24.0::float8),
            (167::smallint, 5, 1.5, 5, 0, 168.5, 1, 3.5, 3.5, 4, 839 / 24.0::float8) $$,
  'hours 0, 7 and 167 of baseline_a: the medians and MADs worked out by hand; history_days counts all its 839 final hours (35 days less hour 100 of week 3)');
select is(
  (select count(*)::int from queue_health.queue_baseline
    where queue_name = 'baseline_a'
      and enqueue_rate_median = hour_of_week % 5 + 3 and enqueue_rate_mad = 1.5
      and out_rate_median = 5 and out_rate_mad = 0
      and depth_median = hour_of_week + 1.5 and depth_mad = 1
      and ready_age_median = 3.5 and ready_age_mad = 3.5 and samples = 4),
  167, 'every hour of baseline_a but hour 100 matches the hand-computed profile (no 1000 counted)');
select results_eq(
  $$ select enqueue_rate_median, enqueue_rate_mad, depth_median, depth_mad, ready_age_median, ready_age_mad, samples
     from queue_health.queue_baseline where queue_name = 'baseline_a' and hour_of_week = 100 $$,
  $$ values (2::float8, 1::float8, 101::float8, 1::float8, 0::float8, 0::float8, 3) $$,
  'hour 100 (a week missing): three samples, median of three and its MAD');
select is(
  (select array[min(history_days), max(history_days)] from queue_health.queue_baseline where queue_name = 'baseline_young'),
  array[10, 10]::float8[], 'baseline_young: ten days of history');
select ok(
  (select bool_and(b.history_days < s.baseline_min_days) from queue_health.queue_baseline b, queue_health.settings s
    where b.queue_name = 'baseline_young'),
  'baseline_young is under settings.baseline_min_days (14): the anomaly condition can stay inactive');
select ok(
  (select bool_and(b.history_days >= s.baseline_min_days) from queue_health.queue_baseline b, queue_health.settings s
    where b.queue_name = 'baseline_a'),
  'baseline_a has enough history');
select is(
  (select count(*)::int from queue_health.queue_baseline where queue_name in ('baseline_dropped', 'baseline_gone')),
  0, 'no profile for a dropped queue or one gone from the registry');
select is(
  (select array_agg(distinct computed_at) from queue_health.queue_baseline),
  array['2031-03-10 00:30:00+00']::timestamptz[], 'computed_at is the computation''s p_now');

-- The profile answers "is this usual?" for the hour a value was seen in.
select is(
  (select queue_health.is_anomalous(50, b.enqueue_rate_median, b.enqueue_rate_mad, 3)
     from queue_health.queue_baseline b
    where b.queue_name = 'baseline_a' and b.hour_of_week = queue_health.hour_of_week('2031-03-10 00:40:00+00')),
  true, 'an enqueue rate of 50/s at Monday 00:40 is an anomaly for baseline_a (usual 3 +- 1.5)');

-- A queue gone from the registry: its profile goes at the next computation; an hour that lost its
-- data goes too.
delete from queue_health.queue where queue_name = 'baseline_young';
delete from queue_health.metric_1h where queue_name = 'baseline_a' and bucket = '2031-03-09 23:00:00+00';
select is(
  queue_health.compute_baselines('2031-03-10 00:30:00+00') - 'from' - 'to',
  '{"queues": 1, "profiles": 168, "replaced": 336}'::jsonb,
  'after baseline_young leaves the registry, only baseline_a has a profile');
select is((select count(*)::int from queue_health.queue_baseline where queue_name = 'baseline_young'), 0,
  'baseline_young''s 168 rows are gone');
select is(
  (select samples from queue_health.queue_baseline where queue_name = 'baseline_a' and hour_of_week = 167), 3,
  'a deleted bucket leaves its hour with one sample fewer');

-- Section: maintain() recomputes once an hour, after the previous hour is final
select isnt(queue_health.maintain('2031-03-10 01:01:30+00') -> 'baselines', 'null'::jsonb,
  'maintain() at 01:01:30 recomputes (computed at 00:30, the 00:00 hour is final)');
select is(queue_health.maintain('2031-03-10 01:06:30+00') -> 'baselines', 'null'::jsonb,
  'maintain() five minutes later skips');
select is(queue_health.maintain('2031-03-10 02:00:30+00') -> 'baselines', 'null'::jsonb,
  'maintain() at 02:00:30 still skips (the 01:00 hour is not final yet)');
select isnt(queue_health.maintain('2031-03-10 02:05:00+00') -> 'baselines', 'null'::jsonb,
  'maintain() at 02:05 recomputes');

-- Section: row-level security
create temporary table fx_user (label text primary key, id uuid) on commit drop;
grant select on fx_user to authenticated;
insert into fx_user values ('p_viewer', tests.create_user('t177-p@example.test')),
  ('q_viewer', tests.create_user('t177-q@example.test'));
insert into queue_health.project_member (project_id, user_id, role) values
  ('t177_p', (select id from fx_user where label = 'p_viewer'), 'viewer'),
  ('t177_q', (select id from fx_user where label = 'q_viewer'), 'viewer');
select tests.authenticate_as((select id from fx_user where label = 'q_viewer'));
select is((select count(*)::int from queue_health.queue_baseline), 0,
  'a member of another project sees no baseline rows');
select tests.authenticate_as((select id from fx_user where label = 'p_viewer'));
select is((select count(*)::int from queue_health.queue_baseline where queue_name = 'baseline_a'), 168,
  'a member of the queue''s project sees its profile');
select throws_ok($$ update queue_health.queue_baseline set samples = 1 $$, '42501', null,
  'a member cannot change baselines');
select throws_ok($$ select queue_health.compute_baselines() $$, '42501', null,
  'a member cannot run compute_baselines()');
select tests.clear_authentication();

select * from finish();
rollback;
