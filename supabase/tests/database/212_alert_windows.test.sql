-- Window sums come from the metric rows' running totals (cum_*): they must equal a plain sum over
-- the window's snapshots, whether the rows were written by capture() or inserted directly, mixed,
-- after retention removed the oldest rows, and for a window longer than the queue's history.
begin;
select plan(19);
set local timezone = 'UTC';
select queue_health.ensure_partitions('2032-06-01 00:00:00+00', 1);
update queue_health.settings set capture_interval = interval '1 minute';

insert into queue_health.project (id, name) values ('t212', 'Window tests');
delete from queue_health.alert_rule where project_id = 't212';
insert into queue_health.project_queue_map (project_id, queue_pattern, source) values ('t212', 'w%', 'pgboss');

create function pg_temp.t(p_minute int) returns timestamptz language sql immutable
  as $$ select timestamptz '2032-06-01 12:00:00+00' + p_minute * interval '1 minute' $$;

-- Section: rows written by capture() (stand-in sampler), then directly, then by capture() again
-- capture() calls both samplers: pgmq finds no queue, pg-boss returns fx_samples.
create or replace function queue_health._sample_pgmq(p_now timestamptz default now())
returns setof queue_health.sample language sql as $$ select (null::queue_health.sample).* where false $$;
create temporary table fx_samples of queue_health.sample;
create or replace function queue_health._sample_pgboss(p_now timestamptz default now())
returns setof queue_health.sample language sql as $$ select * from pg_temp.fx_samples $$;

create function pg_temp.capture_at(p_minute int) returns void language plpgsql as $$
begin
  delete from pg_temp.fx_samples;
  -- w_busy: work always waiting, uneven counts, retried unknown (null) on odd minutes
  -- w_idle: nothing waiting on every third minute
  insert into pg_temp.fx_samples (source, source_schema, queue_name, ready, in_flight, delayed, depth,
    depth_estimated, oldest_ready_age_s, enqueued, completed, failed, retried, dead_lettered, cursor)
  values
    ('pgboss', 'pgboss', 'w_busy', 5 + p_minute % 4, 1, 0, 6 + p_minute % 4, false, 1,
     (p_minute * 7) % 11, (p_minute * 3) % 5, p_minute % 2, case when p_minute % 2 = 0 then abs(p_minute % 3) end,
     case when p_minute % 5 = 0 then 1 else 0 end, '{}'),
    ('pgboss', 'pgboss', 'w_idle', case when p_minute % 3 = 0 then 0 else 2 end, 0, 0,
     case when p_minute % 3 = 0 then 0 else 2 end, false, null, 1, 1, 0, 0, 0, '{}'),
    -- w_stuck: work always waiting, nothing completed
    ('pgboss', 'pgboss', 'w_stuck', 3 + p_minute % 2, 1, 0, 4 + p_minute % 2, false, 30, 1, 0, 0, 0, 0, '{}');
  perform queue_health.capture(pg_temp.t(p_minute));
end;
$$;

select pg_temp.capture_at(m) from generate_series(-40, -21) m;
select is(
  (select totals_at from queue_health.queue where queue_name = 'w_busy'), pg_temp.t(-21),
  'the registry keeps the newest row''s running totals (so the next capture need not read that row)');
-- directly inserted rows (as a history load or a test would): the trigger fills cum_*
insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name, ready, in_flight,
  delayed, depth, enqueued, completed, failed, retried, dead_lettered, interval_s)
select pg_temp.t(m), 't212', 'pgboss', 'pgboss', 'w_busy', 4, 0, 0, 4, m % 6, 2, 1, null, 0, 60
  from generate_series(-20, -11) m order by m;
update queue_health.queue set last_seen_at = pg_temp.t(-11) where queue_name = 'w_busy';
select is(
  (select totals_at from queue_health.queue where queue_name = 'w_busy'), null,
  'a row inserted other than by capture() makes the registry''s copy unknown');
select pg_temp.capture_at(m) from generate_series(-10, 0) m;
select is(
  (select totals_at from queue_health.queue where queue_name = 'w_busy'), pg_temp.t(0),
  'and the next capture reads the newest row and keeps its totals again');

select is(
  (select count(*) from queue_health.metric m
    where m.queue_name = 'w_busy'
      and m.cum_enqueued is distinct from (select sum(coalesce(x.enqueued, 0)) from queue_health.metric x
                                            where x.queue_name = 'w_busy' and x.captured_at <= m.captured_at)),
  0::bigint, 'every row''s cum_enqueued is the sum of enqueued up to it, across captured and inserted rows');
select is(
  (select count(*) from queue_health.metric m
    where m.queue_name in ('w_busy', 'w_idle')
      and row(m.cum_idle, m.cum_interval_s, m.cum_retried) is distinct from (
        select row(count(*) filter (where coalesce(x.ready, 0) + coalesce(x.in_flight, 0) = 0),
               sum(coalesce(x.interval_s, 0)), sum(coalesce(x.retried, 0))::bigint)
          from queue_health.metric x
         where x.queue_name = m.queue_name and x.captured_at <= m.captured_at)),
  0::bigint, 'cum_idle, cum_interval_s and cum_retried too, for both queues');

-- Section: the readings equal plain sums over the window
insert into queue_health.alert_rule (project_id, name, condition, comparator, threshold, window_duration, min_volume) values
  ('t212', 'enq7', 'enqueued', '>', 0, '7 minutes', 0),
  ('t212', 'enq15', 'enqueued', '>', 0, '15 minutes', 0),
  ('t212', 'retried15', 'retried', '>', 0, '15 minutes', 0),
  ('t212', 'dead15', 'dead_letters', '>', 0, '15 minutes', 0),
  ('t212', 'rate25', 'complete_rate', '>', 0, '25 minutes', 0),
  ('t212', 'errors12', 'error_rate', '>', 0.5, '12 minutes', 1),
  ('t212', 'enq_all', 'enqueued', '>', 0, '3 hours', 0),
  ('t212', 'stalled', 'stalled', '>', 0, '4 minutes', 0),
  ('t212', 'growing', 'growing_backlog', '>', -100, '10 minutes', 0);

create function pg_temp.reading(p_rule text, p_queue text, p_minute int) returns double precision
  language sql as $$
  select r.value from queue_health._alert_readings(pg_temp.t(p_minute), false) r
    join queue_health.alert_rule a on a.id = r.rule_id
   where a.project_id = 't212' and a.name = p_rule and r.queue_name = p_queue $$;
create function pg_temp.plain(p_column text, p_queue text, p_minute int, p_window interval) returns numeric
  language plpgsql as $$
declare v numeric;
begin
  execute format('select sum(%I) from queue_health.metric where queue_name = $1 and captured_at > $2 - $3 and captured_at <= $2', p_column)
    into v using p_queue, pg_temp.t(p_minute), p_window;
  return v;
end $$;

select is(pg_temp.reading('enq7', 'w_busy', 0)::numeric, pg_temp.plain('enqueued', 'w_busy', 0, '7 minutes'),
  'a 7-minute count is the plain sum of its snapshots');
select is(pg_temp.reading('enq15', 'w_busy', -3)::numeric, pg_temp.plain('enqueued', 'w_busy', -3, '15 minutes'),
  'a window over captured and inserted rows, evaluated in the past');
select is(pg_temp.reading('retried15', 'w_busy', -2)::numeric, pg_temp.plain('retried', 'w_busy', -2, '15 minutes'),
  'retried, whose value is unknown on some snapshots, sums the known ones');
select is(pg_temp.reading('retried15', 'w_busy', -1), null,
  'and is unknown when the latest snapshot does not report it');
select is(pg_temp.reading('dead15', 'w_busy', 0)::numeric, pg_temp.plain('dead_lettered', 'w_busy', 0, '15 minutes'),
  'dead letters over 15 minutes');
select is(round(pg_temp.reading('rate25', 'w_busy', 0)::numeric, 9),
  round(pg_temp.plain('completed', 'w_busy', 0, '25 minutes') / pg_temp.plain('interval_s', 'w_busy', 0, '25 minutes'), 9),
  'a rate is the window''s count over the seconds its snapshots cover');
select is(round(pg_temp.reading('errors12', 'w_busy', 0)::numeric, 9),
  round(pg_temp.plain('failed', 'w_busy', 0, '12 minutes')
        / (pg_temp.plain('failed', 'w_busy', 0, '12 minutes') + pg_temp.plain('completed', 'w_busy', 0, '12 minutes')), 9),
  'an error rate is failed over finished in the window');
select is(pg_temp.reading('enq_all', 'w_busy', 0)::numeric, pg_temp.plain('enqueued', 'w_busy', 0, '3 hours'),
  'a window longer than the queue''s history sums all of it');
select is(pg_temp.reading('growing', 'w_busy', 0),
  (select (select depth from queue_health.metric where queue_name = 'w_busy' and captured_at = pg_temp.t(0))
        - (select depth from queue_health.metric where queue_name = 'w_busy' and captured_at = pg_temp.t(-10)))::float8,
  'growing_backlog reads the depth change from the snapshot before the window');

-- Section: stalled
select is(pg_temp.reading('stalled', 'w_stuck', -1),
  (select (ready + in_flight)::float8 from queue_health.metric where queue_name = 'w_stuck' and captured_at = pg_temp.t(-1)),
  'stalled reads the jobs waiting now (ready + in flight) when work waited throughout and none completed');
select is(pg_temp.reading('stalled', 'w_idle', 0), 0::float8,
  'stalled reads 0 when some snapshot of the window had nothing waiting');
select is(pg_temp.reading('stalled', 'w_busy', 0), 0::float8,
  'stalled reads 0 when jobs completed in the window, though work always waited');

-- Section: retention removed the oldest rows
delete from queue_health.metric where queue_name = 'w_busy' and captured_at < pg_temp.t(-30);
select is(pg_temp.reading('enq_all', 'w_busy', 0)::numeric, pg_temp.plain('enqueued', 'w_busy', 0, '3 hours'),
  'after the oldest rows are gone, a window longer than what is left sums what is left');
select is(pg_temp.reading('enq15', 'w_busy', 0)::numeric, pg_temp.plain('enqueued', 'w_busy', 0, '15 minutes'),
  'and shorter windows are unchanged');

select * from finish();
rollback;
