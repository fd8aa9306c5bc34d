-- schedule()/unschedule(): pg_cron jobs under stable names. Under a minute, a job every minute
-- runs run_captures(), which captures every interval in one session (any pg_cron version: the
-- local test database has 1.4); a minute or more, capture() on whole minutes. Where pg_cron is not installed,
-- schedule() must say so; the pg_cron tests are then skipped, and the other way round.
begin;
select plan(32);

-- Section: choosing the schedule (no pg_cron needed)
select results_eq(
  $$ select schedule, capture_interval, seconds_supported, command from queue_health._capture_cron_schedule('10 seconds', '1.6.4') $$,
  $$ values ('* * * * *'::text, '10 seconds'::interval, true,
             queue_health.run_captures_command(p_cron_job => 'queue-health-capture')) $$,
  '10 s on pg_cron 1.6: a job every minute whose session captures every 10 s (seconds schedules reported)');
select results_eq(
  $$ select schedule, capture_interval from queue_health._capture_cron_schedule('2.5 seconds', '1.5') $$,
  $$ values ('* * * * *'::text, '3 seconds'::interval) $$,
  'fractions of a second round up');
select results_eq(
  $$ select schedule, capture_interval, seconds_supported, command from queue_health._capture_cron_schedule('10 seconds', '1.4-1') $$,
  $$ values ('* * * * *'::text, '10 seconds'::interval, false,
             queue_health.run_captures_command(p_cron_job => 'queue-health-capture')) $$,
  'pg_cron 1.4 (no seconds schedules) captures every 10 s too, through the same job');
select results_eq(
  $$ select schedule, capture_interval, command from queue_health._capture_cron_schedule('90 seconds', '1.6') $$,
  $$ values ('*/2 * * * *'::text, '2 minutes'::interval, 'select queue_health.capture()'::text) $$,
  'a minute or more is capture() on whole minutes, rounded up');
select results_eq(
  $$ select schedule, capture_interval from queue_health._capture_cron_schedule('7 minutes', '1.4') $$,
  $$ values ('*/10 * * * *'::text, '10 minutes'::interval) $$,
  'minutes round up to a divisor of an hour, so runs are evenly spaced');
select results_eq(
  $$ select schedule from queue_health._capture_cron_schedule('1 hour', '1.4') $$,
  $$ values ('0 * * * *'::text) $$, 'one hour is hourly');
select throws_ok(
  $$ select * from queue_health._capture_cron_schedule('0 seconds', '1.6') $$,
  '22023', 'p_interval must be between 1 second and 1 hour: got 00:00:00',
  'an interval under a second is refused, naming p_interval');
select throws_ok(
  $$ select * from queue_health._capture_cron_schedule('2 hours', '1.6') $$,
  '22023', null, 'an interval over an hour is refused');

-- Section: run_captures() checks (its captures are tested in local/test/run_captures_test.ts:
-- it commits, which a pgTAP transaction cannot)
select throws_ok(
  $$ select queue_health.run_captures_start(p_interval => '0.5 seconds') $$,
  '22023', 'p_interval must be between 1 second and 1 hour: got 00:00:00.5',
  'run_captures_start() refuses an interval under a second, naming p_interval');
select throws_ok(
  $$ do $b$ begin execute queue_health.run_captures_command(p_until => clock_timestamp() + interval '5 seconds'); end $b$ $$,
  '2D000', 'invalid transaction termination',
  'run_captures() inside a transaction block fails at once (it commits after every capture)');
select is(
  (select count(*)::int from queue_health.capture_run where started_at >= now()), 0,
  'and it captured nothing before failing');

-- Section: with or without pg_cron
create function pg_temp.cron_tests() returns setof text language plpgsql as $$
declare
  v_result jsonb;
begin
  if not exists (select 1 from pg_extension where extname = 'pg_cron') then
    return next throws_ok($q$ select queue_health.schedule() $q$, '55000', null,
      'without pg_cron, schedule() fails and says pg_cron is missing');
    return next is(queue_health.unschedule() -> 'unscheduled', '[]'::jsonb,
      'without pg_cron, unschedule() has nothing to remove');
    return next skip('pg_cron is not installed in this database', 17);
    return;
  end if;
  return next skip('pg_cron is installed: the "pg_cron missing" tests do not apply', 2);

  perform queue_health.unschedule();
  v_result := queue_health.schedule();
  return next is(v_result ->> 'mode',
    'runner', 'schedule() with 10 s (the default) schedules the runner, whatever the pg_cron version');
  return next is(v_result ->> 'realtime_policy', 'installed',
    'schedule() installs the Realtime policy again (Realtime may have created its table since) and says so');
  return next is(v_result ->> 'pg_cron_version', (select extversion from pg_extension where extname = 'pg_cron'),
    'schedule() reports the pg_cron version it saw');
  return next is(
    (select array_agg(jobname::text order by jobname) from cron.job where jobname like 'queue-health-%'),
    array['queue-health-alert-sweep', 'queue-health-capture', 'queue-health-cron-cleanup',
          'queue-health-maintenance', 'queue-health-monitor-stale'],
    'schedule() creates the capture jobs and the alerting jobs under stable names');
  return next is(
    (select command from cron.job where jobname = 'queue-health-monitor-stale'),
    'select queue_health.evaluate_monitor_stale()',
    'the dead man''s switch runs on its own job, not inside capture()');
  return next is(
    (select command from cron.job where jobname = 'queue-health-capture'),
    queue_health.run_captures_command(p_cron_job => 'queue-health-capture'),
    'the capture job runs the run_captures_command() block, naming itself');
  return next is(
    (select command from cron.job where jobname = 'queue-health-maintenance'), 'select queue_health.maintain()',
    'the maintenance job calls maintain() (partitions, rollups, retention)');
  return next is(
    (select schedule from cron.job where jobname = 'queue-health-capture'), v_result ->> 'capture_schedule',
    'the capture job runs on the schedule schedule() reported');
  return next is(
    (select capture_interval from queue_health.settings), (v_result ->> 'capture_interval')::interval,
    'settings.capture_interval is the interval actually scheduled');

  v_result := queue_health.schedule('90 seconds');
  return next is(
    (select count(*)::int from cron.job where jobname like 'queue-health-%'), 5,
    'calling schedule() again updates the jobs instead of adding more');
  return next is(
    (select schedule from cron.job where jobname = 'queue-health-capture'), '*/2 * * * *',
    'the capture job takes the new schedule');
  return next is((select capture_interval from queue_health.settings), '2 minutes'::interval,
    'and capture_interval follows');
  return next is(
    (select command from cron.job where jobname = 'queue-health-capture'), 'select queue_health.capture()',
    'and the job calls capture() itself (a running runner sees that and stops)');
  return next is(v_result ->> 'mode', 'minutes', 'schedule() reports the minutes mode');

  return next is(queue_health.unschedule() -> 'unscheduled',
    '["queue-health-capture", "queue-health-maintenance", "queue-health-cron-cleanup",
      "queue-health-alert-sweep", "queue-health-monitor-stale"]'::jsonb,
    'unschedule() removes the capture and alerting jobs and names them');
  return next is((select count(*)::int from cron.job where jobname like 'queue-health-%'), 0,
    'no queue-health job is left');

  insert into cron.job_run_details (jobid, runid, command, status, start_time, end_time)
  values (0, -101, 'select 1', 'succeeded', now() - interval '10 days', now() - interval '10 days'),
         (0, -102, 'select 1', 'succeeded', now() - interval '1 hour', now() - interval '1 hour');
  perform queue_health.cleanup_cron_history();
  return next is(
    (select array_agg(runid) from cron.job_run_details where runid in (-101, -102)), array[-102::bigint],
    'cleanup_cron_history() deletes job history older than cron_history_retention, keeps newer');
end $$;
select * from pg_temp.cron_tests();

select tests.authenticate_as(tests.create_user('ada@example.test'));
select throws_ok($$ select queue_health.schedule() $$, '42501', null, 'an authenticated user cannot schedule');
select throws_ok($$ select queue_health.unschedule() $$, '42501', null, 'an authenticated user cannot unschedule');
select tests.clear_authentication();

select * from finish();
rollback;
