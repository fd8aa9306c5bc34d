-- Queue Health: scheduling. Every pg_cron job the installation runs comes from one list;
-- schedule() creates or updates them, unschedule() removes them.

create function queue_health._capture_cron_schedule(p_interval interval, p_pg_cron_version text)
returns table (schedule text, capture_interval interval, seconds_supported boolean, command text)
immutable
set search_path = ''
language plpgsql
as $$
declare
  v_seconds numeric := extract(epoch from p_interval);
  v_minutes int;
begin
  if p_interval is null or v_seconds < 1 or v_seconds > 3600 then
    raise exception 'p_interval must be between 1 second and 1 hour: got %', p_interval
      using errcode = '22023';
  end if;
  -- pg_cron 1.5 added '[1-59] seconds' schedules; older versions only take cron expressions.
  -- Versions look like '1.4', '1.4-1' or '1.6.4'. Reported only: the choice below does not need
  -- them any more.
  seconds_supported := string_to_array(
      nullif(regexp_replace(split_part(coalesce(p_pg_cron_version, ''), '-', 1), '[^0-9.]', '', 'g'), ''),
      '.')::int[] >= array[1, 5];
  seconds_supported := coalesce(seconds_supported, false);
  if v_seconds < 60 then
    -- Under a minute: a job every minute whose session captures every interval until the
    -- minute ends (run_captures). pg_cron starts a new session for every run, and a new session
    -- plans every statement of a capture again (most of its CPU, docs/benchmarks.md); this way
    -- one session in six (at 10 s) pays that. It also works on pg_cron before 1.5.
    schedule := '* * * * *';
    capture_interval := ceil(v_seconds)::int * interval '1 second';
    command := queue_health.run_captures_command(p_cron_job => 'queue-health-capture');
  else
    -- Whole minutes, rounded up to a divisor of 60 so that '*/N' fires at even intervals.
    v_minutes := (select min(d) from unnest(array[1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60]) d
                  where d >= ceil(v_seconds / 60));
    schedule := case v_minutes when 1 then '* * * * *' when 60 then '0 * * * *'
                else '*/' || v_minutes || ' * * * *' end;
    capture_interval := v_minutes * interval '1 minute';
    command := 'select queue_health.capture()';
  end if;
  return next;
end;
$$;
comment on function queue_health._capture_cron_schedule(interval, text) is 'The pg_cron job for capturing every p_interval: under a minute, every minute the block of run_captures_command() (one session capturing every interval, whole seconds rounded up, on any pg_cron version); a minute or more, ''select queue_health.capture()'' on a cron expression of whole minutes (rounded up to a divisor of 60). Also reports whether that pg_cron version has seconds schedules.';
revoke execute on function queue_health._capture_cron_schedule(interval, text) from public, anon, authenticated;
grant execute on function queue_health._capture_cron_schedule(interval, text) to service_role;

create function queue_health._cron_jobs(p_interval interval default null)
returns table (name text, schedule text, command text)
stable
set search_path = ''
language plpgsql
as $$
declare
  v_schedule text;
  v_command text;
begin
  if p_interval is not null then
    select c.schedule, c.command into v_schedule, v_command
      from queue_health._capture_cron_schedule(p_interval, null) c;
  end if;
  -- Every pg_cron job of the monitor, in the order schedule() creates them.
  --   queue-health-capture        captures (see _capture_cron_schedule);
  --   queue-health-maintenance    partitions ahead, rollups, retention;
  --   queue-health-cron-cleanup   pg_cron's own run history;
  --   queue-health-alert-sweep    flushes waiting groups and re-dispatches due notifications;
  --   queue-health-monitor-stale  evaluates monitor_stale, which capture() cannot when it is not
  --                               running (so it runs on its own job, every minute).
  return query values
    ('queue-health-capture'::text, v_schedule, v_command),
    ('queue-health-maintenance', '*/5 * * * *', 'select queue_health.maintain()'),
    ('queue-health-cron-cleanup', '17 3 * * *', 'select queue_health.cleanup_cron_history()'),
    ('queue-health-alert-sweep', '* * * * *', 'select queue_health.sweep_notifications()'),
    ('queue-health-monitor-stale', '* * * * *', 'select queue_health.evaluate_monitor_stale()');
end;
$$;
comment on function queue_health._cron_jobs(interval) is 'The one list of the monitor''s pg_cron jobs: name, schedule and command of each, the capture job''s for capturing every p_interval (null schedule and command when p_interval is null: the names are what unschedule() needs). schedule() creates them, unschedule() removes them.';
revoke execute on function queue_health._cron_jobs(interval) from public, anon, authenticated;
grant execute on function queue_health._cron_jobs(interval) to service_role;

create function queue_health.schedule(p_interval interval default '10 seconds')
returns jsonb
volatile
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_version text;
  v_choice record;
  v_job record;
  v_jobs jsonb := '[]'::jsonb;
  v_job_id bigint;
  v_dispatch jsonb := queue_health.dispatch_mode();
  v_realtime_policy text;
begin
  -- How alerts leave the database: say first when they cannot (also where pg_cron is missing,
  -- which is reported next), with the fix as hint.
  if v_dispatch ->> 'mode' <> 'http' then
    raise warning 'queue_health: alerts cannot leave the database (dispatch mode %): %', v_dispatch ->> 'mode',
      case v_dispatch ->> 'mode'
        when 'notify' then 'pg_net is not installed, so notifications are only announced with NOTIFY queue_health_dispatch, which nothing listens to on hosted Supabase'
        else 'pg_net is installed but the queue-alert ' ||
          case when not (v_dispatch -> 'url_configured')::boolean and not (v_dispatch -> 'key_configured')::boolean
                 then 'URL and key are'
               when not (v_dispatch -> 'url_configured')::boolean then 'URL is'
               else 'key is' end || ' not configured, so notifications are only announced with NOTIFY'
      end
      using hint = v_dispatch ->> 'fix';
  end if;

  select e.extversion into v_version from pg_catalog.pg_extension e where e.extname = 'pg_cron';
  if v_version is null then
    raise exception 'queue_health.schedule() needs the pg_cron extension, which is not installed in database %', current_database()
      using errcode = '55000',
            hint = 'On Supabase: enable pg_cron (Database > Extensions, or create extension pg_cron with schema pg_catalog), then call queue_health.schedule() again.';
  end if;
  select * into v_choice from queue_health._capture_cron_schedule(p_interval, v_version);

  for v_job in select * from queue_health._cron_jobs(p_interval) loop
    -- cron.schedule(name, ...) creates the current user's job of that name, or updates it. Dynamic
    -- SQL because the cron schema may not exist when this migration is applied (or linted).
    execute format('select %I.schedule($1, $2, $3)', 'cron') into v_job_id using v_job.name, v_job.schedule, v_job.command;
    v_jobs := v_jobs || jsonb_build_array(jsonb_build_object('jobid', v_job_id, 'name', v_job.name,
      'schedule', v_job.schedule, 'command', v_job.command));
  end loop;

  update queue_health.settings s set capture_interval = v_choice.capture_interval where s.id;

  -- Realtime may have created realtime.messages since the install: (re)install the policy.
  v_realtime_policy := queue_health.install_realtime_policy();

  return jsonb_build_object(
    'realtime_policy', v_realtime_policy,
    -- How alerts leave the database (http, notify or not_configured), warned about above when
    -- they cannot; dispatch is dispatch_mode() in full (with the fix).
    'dispatch_mode', v_dispatch ->> 'mode',
    'dispatch', v_dispatch,
    'pg_cron_version', v_version,
    'seconds_schedules', v_choice.seconds_supported,
    'requested_interval', p_interval,
    'capture_interval', v_choice.capture_interval,
    'capture_schedule', v_choice.schedule,
    'mode', case when v_choice.command like 'do %' then 'runner' else 'minutes' end,
    'jobs', v_jobs);
end;
$$;
comment on function queue_health.schedule(interval) is 'Creates or updates every pg_cron job of _cron_jobs(): queue-health-capture (under a minute: every minute, run_captures() capturing every p_interval in one session; else capture() every p_interval in whole minutes, rounded up), queue-health-maintenance (every 5 minutes: partitions, rollups, retention), queue-health-cron-cleanup (daily), queue-health-alert-sweep and queue-health-monitor-stale (every minute). Sets settings.capture_interval to the interval chosen and returns what it chose, with dispatch_mode: http (alerts leave through pg_net), notify (no pg_net) or not_configured (pg_net without the queue-alert URL or key), and dispatch (dispatch_mode() in full); raises a WARNING with the fix when alerts cannot leave. Fails if pg_cron is not installed.';
revoke execute on function queue_health.schedule(interval) from public, anon, authenticated;
grant execute on function queue_health.schedule(interval) to service_role;

create function queue_health.unschedule()
returns jsonb
volatile
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_job record;
  v_removed text[] := '{}'::text[];
  v_exists boolean;
begin
  if pg_catalog.to_regclass('cron.job') is null then
    return jsonb_build_object('unscheduled', '[]'::jsonb, 'note', 'pg_cron is not installed');
  end if;
  -- pg_cron keys a named job by (jobname, username): cron.schedule(name, …) creates or updates
  -- the current user's job of that name, and cron.unschedule(name) finds only the current user's
  -- (and raises for any other). schedule() and unschedule() both run as their owner (security
  -- definer; postgres on hosted Supabase), so the jobs schedule() made are the owner's and this
  -- removes exactly those. A job of the same name scheduled by another role is not ours, and
  -- cron.unschedule(name) could not remove it anyway: hence username = current_user.
  for v_job in select j.name from queue_health._cron_jobs() j loop
    execute format('select exists (select 1 from %I.job j where j.jobname = $1 and j.username = current_user)', 'cron')
      into v_exists using v_job.name;
    if v_exists then
      execute format('select %I.unschedule($1)', 'cron') using v_job.name;
      v_removed := v_removed || v_job.name;
    end if;
  end loop;
  return jsonb_build_object('unscheduled', to_jsonb(v_removed));
end;
$$;
comment on function queue_health.unschedule() is 'Removes the pg_cron jobs of _cron_jobs() that schedule() created (those of the current user, the owner); returns {"unscheduled": [names]}. Safe to call when they do not exist, or without pg_cron.';
revoke execute on function queue_health.unschedule() from public, anon, authenticated;
grant execute on function queue_health.unschedule() to service_role;

-- pg_cron itself: created here only where that is possible. Hosted Supabase wants it in
-- pg_catalog; a self-managed server only allows it in the database named by cron.database_name
-- (and only when it is in shared_preload_libraries). Anywhere else the migration goes on and
-- queue_health.schedule() explains what is missing.
do $$
begin
  if exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    return;
  end if;
  if not exists (select 1 from pg_catalog.pg_available_extensions where name = 'pg_cron') then
    raise notice 'queue_health: pg_cron is not available here; schedule captures yourself or install pg_cron.';
    return;
  end if;
  if current_database() <> coalesce(nullif(current_setting('cron.database_name', true), ''), 'postgres') then
    raise notice 'queue_health: pg_cron can only be created in database %, not %; queue_health.schedule() will not work here.',
      coalesce(nullif(current_setting('cron.database_name', true), ''), 'postgres'), current_database();
    return;
  end if;
  begin
    create extension pg_cron with schema pg_catalog;
  exception when others then
    raise notice 'queue_health: could not create pg_cron (%); enable it, then call queue_health.schedule().', sqlerrm;
  end;
end
$$;
