-- Queue Health: the order in which evaluate_alerts() takes projects. A project's evaluation cannot
-- be interrupted once started, and the budget (settings.alert_evaluation_budget) only decides which
-- projects start, so the order decides who waits for whom. Until now projects went by id: a project
-- at every quota (200 rules with windows of two days: 3.5-5 s, once 16 s, measured by
-- local/test/tenant_fairness_test.ts on this machine) that sorted before another pushed that one past
-- the budget, deferring its alerts by a whole evaluation. Now the projects deferred last time go
-- first (oldest deferral first), then every other project by the work its rules ask for, cheapest
-- first: a project's own rules can only make its own evaluation later, never another's. The work is
-- estimated before it starts (a cost measured last time would not do: a tenant can be cheap once and
-- then fill its quota, which is how the test found it) from what the readings do: per queue, one
-- probe for the latest snapshot and a few index probes for each distinct window of the enabled
-- rules (sums come from the running totals, so a window's length does not matter), i.e.
-- (1 + distinct windows) x the project's queues.

create function queue_health._evaluation_order()
returns table (project_id text, estimated_probes bigint)
stable
set search_path = ''
language sql
as $$
  with work as (
    select r.project_id, count(distinct r.window_duration) as windows
      from queue_health.alert_rule r
     where r.enabled
     group by r.project_id
  )
  select p.id,
         (1 + coalesce(w.windows, 0))
           * greatest((select count(*) from queue_health.queue q where q.project_id = p.id), 1)
    from queue_health.project p
    left join queue_health.alert_evaluation e on e.project_id = p.id
    left join work w on w.project_id = p.id
   where exists (select 1 from queue_health.alert_rule r where r.project_id = p.id)
      or exists (select 1 from queue_health.notification_group g where g.project_id = p.id)
   order by e.deferred_at is null, e.deferred_at, 2, p.id
$$;
comment on function queue_health._evaluation_order() is 'The projects evaluate_alerts() evaluates (those with rules or notification groups), in the order it takes them: deferred ones first (oldest deferral first), then by estimated_probes ascending (the latest snapshot and each distinct window of its enabled rules, times the project''s queues: the index probes its readings make), then by id. An expensive project goes after the cheap ones, so its cost can defer only itself.';
revoke execute on function queue_health._evaluation_order() from public, anon, authenticated;

create or replace function queue_health._evaluate(p_now timestamptz, p_only_monitor boolean)
returns jsonb
set search_path = ''
language plpgsql
as $$
-- Project by project, each in its own exception block (a subtransaction): a project whose
-- evaluation fails (a bad value, a rule from before the bounds existed) is recorded in
-- alert_evaluation and rolled back alone; the others proceed. Projects are taken in
-- _evaluation_order() (deferred ones first, then the cheapest-looking); those not started within
-- settings.alert_evaluation_budget are deferred.
declare
  v_started timestamptz := clock_timestamp();
  v_budget interval := coalesce((queue_health._settings()).alert_evaluation_budget, interval '5 seconds');
  v_project text;
  v_part jsonb;
  v_t timestamptz;
  v_error text;
  v_rules integer := 0;
  v_transitions integer := 0;
  v_notifications integer := 0;
  v_evaluated integer := 0;
  v_failed jsonb := '[]'::jsonb;
  v_deferred text[] := '{}'::text[];
  v_project_ms jsonb := '{}'::jsonb;
  v_projects text[];
  v_dispatch text;
begin
  -- One evaluation at a time (capture, queue-alert and the cron job all call this): the alert and
  -- group rows are read-modify-written.
  perform pg_advisory_xact_lock(hashtext('queue_health.evaluate_alerts'));

  for v_project in select o.project_id from queue_health._evaluation_order() o
  loop
    if clock_timestamp() - v_started > v_budget then
      v_deferred := v_deferred || v_project;
      continue;
    end if;
    v_t := clock_timestamp();
    begin
      v_part := queue_health._evaluate_project(p_now, p_only_monitor, v_project);
      v_rules := v_rules + (v_part ->> 'rules')::int;
      v_transitions := v_transitions + (v_part ->> 'transitions')::int;
      v_notifications := v_notifications + (v_part ->> 'notifications')::int;
      v_evaluated := v_evaluated + 1;
      if not p_only_monitor then
        update queue_health.alert_evaluation e
           set failing = false, failures = 0, deferred_at = null, recovered_at = p_now
         where e.project_id = v_project and (e.failing or e.deferred_at is not null);
      end if;
    exception when others then
      get stacked diagnostics v_error = message_text;
      raise warning 'queue_health: alert evaluation of project % failed: %', v_project, v_error;
      v_failed := v_failed || jsonb_build_array(jsonb_build_object('project_id', v_project, 'error', v_error));
      perform queue_health._record_alerting_failure(v_project, v_error, p_now);
    end;
    v_project_ms := v_project_ms || jsonb_build_object(v_project,
      round((extract(epoch from clock_timestamp() - v_t) * 1000)::numeric, 3));
  end loop;

  if cardinality(v_deferred) > 0 then
    raise warning 'queue_health: alert evaluation budget (%) exceeded: % project(s) deferred to the next evaluation',
      v_budget, cardinality(v_deferred)
      using hint = 'Raise queue_health.settings.alert_evaluation_budget, or look at what the evaluated projects cost (project_ms).';
    insert into queue_health.alert_evaluation as e (project_id, deferred_at)
    select d.id, p_now from unnest(v_deferred) d(id)
    on conflict (project_id) do update set deferred_at = coalesce(e.deferred_at, excluded.deferred_at);
  end if;

  if v_notifications > 0 then
    select array_agg(distinct g.project_id order by g.project_id) into v_projects
      from queue_health.notification_group g
     where g.last_sent_at = p_now;
    v_dispatch := queue_health._dispatch(v_projects, false);
  end if;

  return jsonb_build_object(
    'evaluated_at', p_now,
    'rules', v_rules,
    'transitions', v_transitions,
    'pending', (select count(*) from queue_health.alert a where a.state = 'pending'),
    'firing', (select count(*) from queue_health.alert a where a.state = 'firing'),
    'notifications', v_notifications,
    'dispatch', coalesce(v_dispatch, 'none'),
    'projects', v_evaluated,
    'failed', v_failed,
    'deferred', to_jsonb(v_deferred),
    'project_ms', v_project_ms,
    'duration_ms', round((extract(epoch from clock_timestamp() - v_started) * 1000)::numeric, 3));
end;
$$;
comment on function queue_health._evaluate(timestamptz, boolean) is 'The body of evaluate_alerts(): each project with rules or notification groups on its own (_evaluate_project in an exception block; a failure is recorded in alert_evaluation and returned in failed), in _evaluation_order() (deferred first, then cheapest first), within settings.alert_evaluation_budget (the rest is returned in deferred), then dispatch.';
revoke execute on function queue_health._evaluate(timestamptz, boolean) from public, anon, authenticated;
