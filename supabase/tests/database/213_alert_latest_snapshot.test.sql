-- Alert evaluation reads a queue's latest snapshot from the registry's copy of its newest metric
-- row (queue.totals_at and the gauges beside it) when that row is at or before p_now, and from
-- metric otherwise: an evaluation at an earlier p_now, a row inserted other than by capture(), a
-- capture at an earlier p_now. Whichever way, the reading is the newest row at or before p_now.
begin;
select plan(12);
set local timezone = 'UTC';
select queue_health.ensure_partitions('2033-03-01 00:00:00+00', 1);
update queue_health.settings set capture_interval = interval '1 minute';

insert into queue_health.project (id, name) values ('t213', 'Latest snapshot tests');
delete from queue_health.alert_rule where project_id = 't213';
insert into queue_health.project_queue_map (project_id, queue_pattern, source) values ('t213', 'ls%', 'pgboss');
insert into queue_health.alert_rule (project_id, name, condition, comparator, threshold) values
  ('t213', 'deep', 'depth', '>', 5),
  ('t213', 'old', 'oldest_ready_age_s', '>', 100);

create function pg_temp.t(p_seconds int) returns timestamptz language sql immutable
  as $$ select timestamptz '2033-03-01 12:00:00+00' + p_seconds * interval '1 second' $$;

-- capture() calls both samplers: pgmq finds no queue, pg-boss returns fx_samples.
create or replace function queue_health._sample_pgmq(p_now timestamptz default now())
returns setof queue_health.sample language sql as $$ select (null::queue_health.sample).* where false $$;
create temporary table fx_samples of queue_health.sample;
create or replace function queue_health._sample_pgboss(p_now timestamptz default now())
returns setof queue_health.sample language sql as $$ select * from pg_temp.fx_samples $$;

create function pg_temp.capture_at(p_seconds int, p_depth bigint) returns void language plpgsql as $$
begin
  delete from pg_temp.fx_samples;
  insert into pg_temp.fx_samples (source, source_schema, queue_name, ready, in_flight, delayed, depth,
    depth_estimated, oldest_ready_age_s, enqueued, completed, failed, retried, dead_lettered, cursor)
  values ('pgboss', 'pgboss', 'ls_a', p_depth, 0, 0, p_depth, false, p_depth * 10, 1, 1, 0, 0, 0, '{}');
  perform queue_health.capture(pg_temp.t(p_seconds));
end;
$$;

create function pg_temp.reading(p_at timestamptz, p_rule text)
returns table (value double precision, active boolean) language sql as $$
  select r.value, r.active
    from queue_health._alert_readings(p_at, false) r
    join queue_health.alert_rule ar on ar.id = r.rule_id
   where ar.project_id = 't213' and ar.name = p_rule and r.queue_name = 'ls_a'
$$;

select pg_temp.capture_at(0, 3);
select pg_temp.capture_at(60, 9);
select is(
  (select row(q.totals_at, q.depth, q.oldest_ready_age_s)::text from queue_health.queue q where q.queue_name = 'ls_a'),
  row(pg_temp.t(60), 9::bigint, 90::float8)::text,
  'capture() keeps the newest row''s gauges in the registry, with its time');
select results_eq(
  $$ select * from pg_temp.reading(pg_temp.t(60), 'deep') $$,
  $$ values (9::float8, true) $$,
  'at the newest row''s time, the reading is that row''s');
select results_eq(
  $$ select * from pg_temp.reading(pg_temp.t(90), 'old') $$,
  $$ values (90::float8, false) $$,
  'and later, within the look-back');
select results_eq(
  $$ select * from pg_temp.reading(pg_temp.t(30), 'deep') $$,
  $$ values (3::float8, false) $$,
  'an evaluation at an earlier p_now reads the newest row at or before it, not the registry''s copy');
select is(
  (select count(*)::int from pg_temp.reading(pg_temp.t(60) + interval '6 minutes', 'deep')),
  1, 'past the look-back the queue is still read');
select results_eq(
  $$ select value, active from pg_temp.reading(pg_temp.t(60) + interval '6 minutes', 'deep') $$,
  $$ values (null::float8, false) $$,
  'but it has no value: its newest row is older than the look-back');

-- A row inserted other than by capture(): the registry's copy is no longer known to be current.
insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name, ready, in_flight,
  delayed, depth, oldest_ready_age_s, enqueued, completed, failed, retried, dead_lettered, interval_s)
values (pg_temp.t(120), 't213', 'pgboss', 'pgboss', 'ls_a', 20, 0, 0, 20, 7, 0, 0, 0, 0, 0, 60);
select is(
  (select totals_at from queue_health.queue where queue_name = 'ls_a'), null,
  'a row inserted directly clears the registry''s copy');
select results_eq(
  $$ select * from pg_temp.reading(pg_temp.t(130), 'deep') $$,
  $$ values (20::float8, true) $$,
  'and evaluation reads that row from metric');

select pg_temp.capture_at(180, 4);
select results_eq(
  $$ select * from pg_temp.reading(pg_temp.t(180), 'deep') $$,
  $$ values (4::float8, false) $$,
  'the next capture keeps its row in the registry again, and evaluation reads it there');

-- A capture at an earlier p_now than the newest row: its row is not the newest.
select pg_temp.capture_at(150, 11);
select is(
  (select totals_at from queue_health.queue where queue_name = 'ls_a'), null,
  'a capture at an earlier p_now than the newest row leaves the registry''s copy unknown');
select results_eq(
  $$ select * from pg_temp.reading(pg_temp.t(185), 'deep') $$,
  $$ values (4::float8, false) $$,
  'evaluation then reads the newest row from metric, not the earlier capture''s');
select results_eq(
  $$ select * from pg_temp.reading(pg_temp.t(160), 'deep') $$,
  $$ values (11::float8, true) $$,
  'and at a p_now between the two, the earlier capture''s row');

select * from finish();
rollback;
