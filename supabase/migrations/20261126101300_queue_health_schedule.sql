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
    -- Created here, so uninstall() may drop it again (one the user had is never recorded).
    insert into queue_health.uninstall_extension (name) values ('pg_cron');
  exception when others then
    raise notice 'queue_health: could not create pg_cron (%); enable it, then call queue_health.schedule().', sqlerrm;
  end;
end
$$;

-- Uninstall: uninstall() removes what the install made — the pg_cron jobs, the Realtime policy,
-- the schema with its data, and the extensions the install created itself — and nothing of the
-- user's. Its helpers decide beforehand, while the schema still exists, what may go.

create function queue_health._uninstall_dependents()
returns text[]
stable
set search_path = ''
language sql
as $$
  -- Objects outside the schema that depend on one of its relations, types or functions (a view
  -- over queue_status, a column of type member_role, a foreign key to project, a policy calling
  -- is_member()): drop schema ... cascade would drop them too, silently. Each is resolved to the
  -- relation it belongs to, when it belongs to one, to tell ours from the user's.
  with ours (classid, oid) as (
    select 'pg_catalog.pg_class'::regclass, c.oid from pg_catalog.pg_class c
     where c.relnamespace = 'queue_health'::regnamespace
    union all
    select 'pg_catalog.pg_type'::regclass, t.oid from pg_catalog.pg_type t
     where t.typnamespace = 'queue_health'::regnamespace
    union all
    select 'pg_catalog.pg_proc'::regclass, p.oid from pg_catalog.pg_proc p
     where p.pronamespace = 'queue_health'::regnamespace
  ),
  dependent as (
    select distinct d.classid, d.objid, d.objsubid,
      case d.classid
        when 'pg_catalog.pg_class'::regclass then d.objid
        when 'pg_catalog.pg_rewrite'::regclass then
          (select r.ev_class from pg_catalog.pg_rewrite r where r.oid = d.objid)
        when 'pg_catalog.pg_trigger'::regclass then
          (select t.tgrelid from pg_catalog.pg_trigger t where t.oid = d.objid)
        when 'pg_catalog.pg_constraint'::regclass then
          (select c.conrelid from pg_catalog.pg_constraint c where c.oid = d.objid)
        when 'pg_catalog.pg_attrdef'::regclass then
          (select a.adrelid from pg_catalog.pg_attrdef a where a.oid = d.objid)
        when 'pg_catalog.pg_policy'::regclass then
          (select p.polrelid from pg_catalog.pg_policy p where p.oid = d.objid)
      end as relid
    from pg_catalog.pg_depend d
    join ours o on o.classid = d.refclassid and o.oid = d.refobjid
    where d.deptype in ('n', 'a')
  )
  select coalesce(array_agg(o.what order by o.what), '{}')
    from dependent x
   cross join lateral (select pg_catalog.pg_describe_object(x.classid, x.objid, x.objsubid) as what) o
   where coalesce(
           (select c.relnamespace from pg_catalog.pg_class c where c.oid = x.relid),
           (select p.pronamespace from pg_catalog.pg_proc p
             where x.classid = 'pg_catalog.pg_proc'::regclass and p.oid = x.objid),
           (select t.typnamespace from pg_catalog.pg_type t
             where x.classid = 'pg_catalog.pg_type'::regclass and t.oid = x.objid),
           0::oid) <> 'queue_health'::regnamespace
$$;
comment on function queue_health._uninstall_dependents() is 'What outside the schema queue_health depends on it (pg_depend): descriptions of the objects drop schema queue_health cascade would drop with it. uninstall() refuses while there are any.';
revoke execute on function queue_health._uninstall_dependents() from public, anon, authenticated;

create function queue_health._uninstall_extensions()
returns table (name text, used_by text)
stable
set search_path = ''
language plpgsql
as $$
declare
  v_name text;
begin
  -- Only extensions the install created (uninstall_extension) and still there; used_by says what
  -- else uses one (then it stays), null when nothing the caller can see does.
  for v_name in
    select u.name from queue_health.uninstall_extension u
      join pg_catalog.pg_extension e on e.extname = u.name
     order by u.name
  loop
    name := v_name;
    used_by := null;
    if v_name = 'pg_cron' then
      -- Called after unschedule(): every job left is someone else's. pg_cron shows a role only
      -- its own jobs (a superuser sees all).
      execute format('select string_agg(''pg_cron job '' || coalesce(j.jobname, j.jobid::text)'
        ' || '' of '' || j.username, '', '' order by j.jobid) from %I.job j', 'cron') into used_by;
    elsif v_name = 'pg_net' then
      -- A function of the user's that sends requests (e.g. Supabase's database webhooks); not
      -- the platform's event trigger functions, which only grant access to net.http_* when
      -- pg_net is created.
      select string_agg('function ' || p.oid::regprocedure::text, ', ' order by p.oid::regprocedure::text)
        into used_by
        from pg_catalog.pg_proc p
       where p.pronamespace <> 'queue_health'::regnamespace
         and p.pronamespace is distinct from pg_catalog.to_regnamespace('net')
         and p.prosrc ~ '\mnet\.http_'
         and p.prorettype <> 'pg_catalog.event_trigger'::regtype
         and not exists (select 1 from pg_catalog.pg_depend d
                          where d.classid = 'pg_catalog.pg_proc'::regclass and d.objid = p.oid
                            and d.deptype = 'e');
    end if;
    return next;
  end loop;
end;
$$;
comment on function queue_health._uninstall_extensions() is 'The extensions the install created (uninstall_extension) that still exist, each with used_by: what else uses it (pg_cron: jobs left after unschedule(); pg_net: functions outside queue_health that call net.http_*), or null when uninstall() may drop it.';
revoke execute on function queue_health._uninstall_extensions() from public, anon, authenticated;

create function queue_health._uninstall_leftovers()
returns jsonb
stable
set search_path = ''
language plpgsql
as $$
declare
  v_secrets text[];
  v_jobs text[];
  v_functions text[];
begin
  -- What the user made for Queue Health: uninstall() removes none of it (the install did not make
  -- it), but names it. The Vault secrets docs/install.md has users create:
  if pg_catalog.to_regclass('vault.secrets') is not null then
    begin
      execute format('select array_agg(s.name order by s.name) from %I.%I s where s.name = any ($1)',
        'vault', 'secrets') into v_secrets using array['queue_health_alert_url', 'queue_health_alert_key'];
    exception when insufficient_privilege then
      v_secrets := array['(Vault not readable by ' || current_user || ')'];
    end;
  end if;
  -- pg_cron jobs of their own that call Queue Health (those of schedule() are gone by now):
  if pg_catalog.to_regclass('cron.job') is not null then
    execute format('select array_agg(coalesce(j.jobname, j.jobid::text) order by j.jobid) from %I.job j'
      ' where j.command ~ ''queue_health\.''', 'cron') into v_jobs;
  end if;
  -- Functions of their own that call it (pg_depend does not see into function bodies):
  select array_agg(p.oid::regprocedure::text order by p.oid::regprocedure::text) into v_functions
    from pg_catalog.pg_proc p
   where p.pronamespace <> 'queue_health'::regnamespace and p.prosrc ~ '\mqueue_health\.';
  if v_secrets is not null then
    raise notice 'queue_health: the Vault secrets % are yours and stay.', array_to_string(v_secrets, ', ')
      using hint = 'To delete them: delete from vault.secrets where name in (''queue_health_alert_url'', ''queue_health_alert_key'');';
  end if;
  if v_jobs is not null then
    raise notice 'queue_health: pg_cron jobs % call queue_health and will fail from now on.', array_to_string(v_jobs, ', ')
      using hint = 'Remove them with select cron.unschedule(<name or id>);';
  end if;
  if v_functions is not null then
    raise notice 'queue_health: functions % call queue_health and will fail from now on.', array_to_string(v_functions, ', ');
  end if;
  return jsonb_strip_nulls(jsonb_build_object('vault_secrets', v_secrets, 'cron_jobs', v_jobs,
    'functions', v_functions));
end;
$$;
comment on function queue_health._uninstall_leftovers() is 'What the user made for Queue Health and uninstall() leaves alone, each named in a notice: the Vault secrets queue_health_alert_url / queue_health_alert_key, pg_cron jobs of their own whose command calls queue_health, functions outside the schema that call it. Returns them as {vault_secrets, cron_jobs, functions} (absent keys: none).';
revoke execute on function queue_health._uninstall_leftovers() from public, anon, authenticated;

create function queue_health.uninstall()
returns jsonb
volatile
set search_path = ''
language plpgsql
as $$
declare
  v_unscheduled jsonb;
  v_policy text;
  v_dependents text[];
  v_extension record;
  v_drop text[] := '{}'::text[];
  v_dropped text[] := '{}'::text[];
  v_kept jsonb := '[]'::jsonb;
  v_leftovers jsonb;
  v_name text;
begin
  -- Security invoker, executable by the owner only: it needs the owner's right to drop the
  -- schema, and gives nobody a right they did not have. One transaction: all or nothing.
  v_unscheduled := queue_health.unschedule() -> 'unscheduled';
  v_policy := queue_health._uninstall_realtime_policy();
  v_dependents := queue_health._uninstall_dependents();
  if cardinality(v_dependents) > 0 then
    raise exception 'queue_health.uninstall(): objects outside the schema queue_health depend on it: %',
      array_to_string(v_dependents, '; ')
      using errcode = '2BP01',
            hint = 'Dropping the schema would drop them too. Drop or change them, then run select queue_health.uninstall(); again. Nothing was removed.';
  end if;
  -- Which extensions go is decided while the schema still says which the install created.
  for v_extension in select * from queue_health._uninstall_extensions() loop
    if v_extension.used_by is null then
      v_drop := v_drop || v_extension.name;
    else
      v_kept := v_kept || jsonb_build_array(jsonb_build_object('name', v_extension.name,
        'used_by', v_extension.used_by));
      raise notice 'queue_health: % was created by the install but stays: used by %.',
        v_extension.name, v_extension.used_by;
    end if;
  end loop;
  v_leftovers := queue_health._uninstall_leftovers();

  -- Every table (with its data), view, function, type and trigger of Queue Health, this function
  -- included: it runs on to the end all the same.
  drop schema queue_health cascade;
  -- This session's prepared statements of the samplers and the alert readings (queue_health_<md5
  -- of the statement>) outlive the schema: installed again, the same statement would find one
  -- planned for the old types ("cached plan must not change result type").
  for v_name in select p.name from pg_catalog.pg_prepared_statements p
                 where p.name like 'queue\_health\_%' loop
    execute format('deallocate %I', v_name);
  end loop;

  foreach v_name in array v_drop loop
    begin
      execute format('drop extension %I', v_name);
      v_dropped := v_dropped || v_name;
    exception when others then
      -- Dropping what the install created is a courtesy: never undo the rest for it.
      v_kept := v_kept || jsonb_build_array(jsonb_build_object('name', v_name, 'used_by', sqlerrm));
      raise notice 'queue_health: % was created by the install but stays: %', v_name, sqlerrm;
    end;
  end loop;
  return jsonb_build_object('unscheduled', v_unscheduled, 'realtime_policy', v_policy,
    'schema', 'dropped', 'extensions_dropped', to_jsonb(v_dropped), 'extensions_kept', v_kept,
    'left_alone', v_leftovers);
end;
$$;
comment on function queue_health.uninstall() is 'Removes Queue Health from this database, in one transaction: unschedules its pg_cron jobs (unschedule()), drops its Realtime policy on realtime.messages, drops the schema queue_health with all its data, and drops pg_net / pg_cron if the install created them and nothing else uses them. Refuses (2BP01, nothing removed) while objects outside the schema depend on it. Leaves the user''s own things (Vault secrets, jobs and functions that call queue_health) and names them in notices. Returns {unscheduled, realtime_policy, schema, extensions_dropped, extensions_kept, left_alone}. Run it as postgres (the owner); nobody else may.';
revoke execute on function queue_health.uninstall() from public, anon, authenticated;
