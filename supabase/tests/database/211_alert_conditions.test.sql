-- Each built-in condition (stalled, growing_backlog, failure_rate, dead_letters, no_data,
-- monitor_stale) and the rate conditions, firing and resolving across time.
begin;
select plan(30);

-- Section: fixtures
do $$ begin perform queue_health.ensure_partitions(now() - interval '1 day', 3); end $$;
update queue_health.settings set capture_interval = interval '1 minute';

create function pg_temp.t(p_minute numeric) returns timestamptz language sql stable
  as $$ select date_trunc('minute', now()) + p_minute * interval '1 minute' $$;
create function pg_temp.put(p_queue text, p_minute numeric, p_ready bigint, p_completed bigint default 0,
  p_failed bigint default 0, p_dead bigint default 0, p_enqueued bigint default 0) returns void language sql
  as $$
    insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name, ready, in_flight,
      delayed, depth, oldest_ready_age_s, enqueued, completed, failed, retried, dead_lettered, interval_s)
    values (pg_temp.t(p_minute), 't211', 'pgboss', 'pgboss', p_queue, p_ready, 0, 0, p_ready, 0, p_enqueued,
      p_completed, p_failed, 0, p_dead, 60);
    update queue_health.queue set last_seen_at = greatest(last_seen_at, pg_temp.t(p_minute))
     where source = 'pgboss' and source_schema = 'pgboss' and queue_name = p_queue;
  $$;
create function pg_temp.eval(p_minute numeric) returns jsonb language sql
  as $$ select queue_health.evaluate_alerts(pg_temp.t(p_minute)) $$;
create function pg_temp.alert(p_rule text, p_queue text) returns queue_health.alert language sql stable
  as $$
    select a.* from queue_health.alert a join queue_health.alert_rule r on r.id = a.rule_id
     where r.project_id = 't211' and r.name = p_rule and a.queue_name = p_queue
  $$;
create function pg_temp.state(p_rule text, p_queue text) returns text language sql stable
  as $$ select coalesce((pg_temp.alert(p_rule, p_queue)).state::text, 'none') $$;

insert into queue_health.project (id, name) values ('t211', 'Condition tests');
delete from queue_health.alert_rule where project_id = 't211';  -- this file tests its own rules
insert into queue_health.queue (source, source_schema, queue_name, project_id, first_seen_at, last_seen_at)
select 'pgboss', 'pgboss', q, 't211', pg_temp.t(-60), pg_temp.t(-60)
  from unnest(array['stuck', 'busy', 'newcomer', 'grow', 'drain', 'fail', 'fail_low', 'fail_ok', 'dead', 'silent',
                    'fresh', 'gone', 'rate']) q;

insert into queue_health.alert_rule (project_id, name, condition, comparator, threshold, window_duration, min_volume, queue_name, queue_pattern) values
  ('t211', 'stalled', 'stalled', '>', 0, '5 minutes', 0, null, null),
  ('t211', 'growing', 'growing_backlog', '>', 50, '10 minutes', 0, null, null),
  ('t211', 'failing', 'failure_rate', '>', 0.05, '10 minutes', 20, null, 'fail%'),
  ('t211', 'dead', 'dead_letters', '>', 0, '10 minutes', 0, 'dead', null),
  ('t211', 'nodata', 'no_data', '>', 3, null, 0, null, null),
  ('t211', 'enqueue_rate', 'enqueue_rate', '>', 1, null, 0, 'rate', null);
insert into queue_health.alert_rule (project_id, name, condition, comparator, threshold) values
  ('t211', 'stale', 'monitor_stale', '>', 3);

-- Data, minutes -12 .. 0 (one snapshot a minute):
--   stuck:    10 ready, nothing completed                         -> stalled
--   busy:     10 ready, 1 completed at -2                         -> not stalled
--   newcomer: 10 ready, first seen at -3 (no full window)         -> not stalled
--   grow:     depth 100 -> 340, completions 5/min then 2/min      -> growing backlog (+240 > 50)
--   drain:    depth 100 -> 340, completions 1/min then 10/min     -> not growing (completions rising)
--   fail:     3 completed + 1 failed a minute (25 %, 40 jobs)     -> failure rate
--   fail_low: 0 completed + 2 failed once (100 %, 2 jobs < 20)    -> below min_volume
--   fail_ok:  99 completed + 1 failed a minute (1 %)              -> fine
--   dead:     2 dead-lettered at -3                               -> dead letters
--   silent:   reported until -5                                   -> no data (5 intervals > 3)
--   fresh:    reporting                                           -> data
--   gone:     dropped at 0                                        -> no data (dropped)
--   rate:     120 enqueued a minute (2/s)                         -> enqueue_rate > 1
select pg_temp.put('stuck', m, 10),
       pg_temp.put('busy', m, 10, case when m = -2 then 1 else 0 end),
       pg_temp.put('grow', m, 100 + (m + 12) * 20, case when m <= -5 then 5 else 2 end),
       pg_temp.put('drain', m, 100 + (m + 12) * 20, case when m <= -5 then 1 else 10 end),
       pg_temp.put('fail', m, 0, 3, 1),
       pg_temp.put('fail_ok', m, 0, 99, 1),
       pg_temp.put('dead', m, 0, 1, 0, case when m = -3 then 2 else 0 end),
       pg_temp.put('fresh', m, 0),
       pg_temp.put('rate', m, 0, 0, 0, 0, 120)
  from generate_series(-12, 0) m \g /dev/null
select pg_temp.put('newcomer', m, 10) from generate_series(-3, 0) m \g /dev/null
select pg_temp.put('fail_low', 0, 0, 0, 2) \g /dev/null
select pg_temp.put('silent', m, 0) from generate_series(-12, -5) m \g /dev/null
update queue_health.queue set dropped_at = pg_temp.t(0), last_seen_at = pg_temp.t(0) where project_id = 't211' and queue_name = 'gone';

select pg_temp.eval(0) \g /dev/null

-- Section: minute 0
select is(pg_temp.state('stalled', 'stuck'), 'firing', 'stalled: work waiting and nothing completed for the window fires');
select is((pg_temp.alert('stalled', 'stuck')).value, 10::float8, 'stalled: the value is the jobs waiting');
select is(pg_temp.state('stalled', 'busy'), 'none', 'stalled: one completion in the window is not a stall');
select is(pg_temp.state('stalled', 'newcomer'), 'none', 'stalled: a queue observed for less than the window is not a stall');
select is(pg_temp.state('growing', 'grow'), 'firing', 'growing_backlog: depth rising while completions fall fires');
select is((pg_temp.alert('growing', 'grow')).value, 200::float8, 'growing_backlog: the value is the growth over the window');
select is(pg_temp.state('growing', 'drain'), 'none', 'growing_backlog: depth rising while completions rise does not fire');
select is(pg_temp.state('failing', 'fail'), 'firing', 'failure_rate: 25 % over the window with enough volume fires');
select is((pg_temp.alert('failing', 'fail')).value, 0.25::float8, 'failure_rate: the value is failed / (completed + failed)');
select is(pg_temp.state('failing', 'fail_low'), 'none', 'failure_rate: below min_volume it does not fire');
select is(pg_temp.state('failing', 'fail_ok'), 'none', 'failure_rate: 1 % stays below a 5 % threshold');
select is(pg_temp.state('dead', 'dead'), 'firing', 'dead_letters: dead-lettered jobs in the window fire');
select is(pg_temp.state('nodata', 'silent'), 'firing', 'no_data: a queue silent for more than 3 intervals fires');
select is((pg_temp.alert('nodata', 'silent')).value, 5::float8, 'no_data: the value is capture intervals since the queue was last seen');
select is(pg_temp.state('nodata', 'fresh'), 'none', 'no_data: a reporting queue does not fire');
select is(pg_temp.state('nodata', 'gone'), 'firing', 'no_data: a dropped queue fires');
select is(pg_temp.state('enqueue_rate', 'rate'), 'firing', 'enqueue_rate: 2 jobs/s > 1 fires');
select is((pg_temp.alert('enqueue_rate', 'rate')).value, 2::float8, 'enqueue_rate: the value is jobs per second');

-- Section: recovery
select pg_temp.put('stuck', 1, 5, 5) \g /dev/null
select pg_temp.put('grow', 1, 100, 5) \g /dev/null
select pg_temp.put('silent', 1, 0) \g /dev/null
select pg_temp.put('dead', m, 0, 1) from generate_series(1, 8) m \g /dev/null
select pg_temp.eval(1) \g /dev/null
select is(pg_temp.state('stalled', 'stuck'), 'resolved', 'stalled: resolves when jobs complete again');
select is(pg_temp.state('growing', 'grow'), 'resolved', 'growing_backlog: resolves when the depth falls back');
select is(pg_temp.state('nodata', 'silent'), 'resolved', 'no_data: resolves when the queue reports again');
select is(pg_temp.state('nodata', 'gone'), 'firing', 'no_data: a dropped queue keeps firing');
select pg_temp.eval(8) \g /dev/null
select is(pg_temp.state('dead', 'dead'), 'resolved', 'dead_letters: resolves once the window holds no dead letters');
select is(pg_temp.state('failing', 'fail'), 'firing',
  'a queue that stopped reporting keeps its alert''s state: no data is not recovery');
update queue_health.queue set dropped_at = pg_temp.t(8.5) where project_id = 't211' and queue_name = 'fail';
select pg_temp.eval(9) \g /dev/null
select is(pg_temp.state('failing', 'fail'), 'resolved', 'a dropped queue''s alerts (other than no_data) resolve');

-- Section: monitor_stale (project level). Far in the future so that real capture runs in this
-- database (a running local stack) are all older.
delete from queue_health.capture_run;  -- (rolled back) as on a fresh installation
select pg_temp.eval(580) \g /dev/null
select is(pg_temp.state('stale', '*'), 'none', 'monitor_stale: before the first capture ever, it does not fire');
insert into queue_health.capture_run (started_at, finished_at, duration_ms, status, error)
values (pg_temp.t(590), pg_temp.t(590), 0, 'ok', null),
       (pg_temp.t(598), pg_temp.t(598), 0, 'error', 'boom');
select pg_temp.eval(600) \g /dev/null
select is(pg_temp.state('stale', '*'), 'firing', 'monitor_stale: fires when the last successful capture is older than 3 intervals');
select is(
  (select row(a.source, a.source_schema, a.value)::text from queue_health.alert a join queue_health.alert_rule r on r.id = a.rule_id
    where r.project_id = 't211' and r.name = 'stale'),
  row('*', '*', 10::float8)::text,
  'monitor_stale: a project-level alert (''*''), valued in capture intervals; failed runs do not count');
insert into queue_health.capture_run (started_at, finished_at, duration_ms, status, error)
values (pg_temp.t(600.5), pg_temp.t(600.5), 0, 'partial', null);
select queue_health.evaluate_monitor_stale() \g /dev/null
select is(pg_temp.state('stale', '*'), 'firing', 'evaluate_monitor_stale() evaluates at now(), not in the future');
select pg_temp.eval(601) \g /dev/null
select is(pg_temp.state('stale', '*'), 'resolved', 'monitor_stale: a partial capture counts as a capture and resolves it');

select * from finish();
rollback;
