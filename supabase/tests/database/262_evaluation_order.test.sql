-- evaluate_alerts() takes the projects deferred last time first, then every other project by the
-- work its rules ask for, cheapest first (_evaluation_order): a project whose rules make its own
-- evaluation slow can push only itself past the budget, never a cheap project that happens to
-- sort before it by id. The slow project is made slow here by stubbing _evaluate_project inside
-- this transaction (it sleeps 150 ms for that project and does nothing for the others), with the
-- budget at its minimum of 100 ms.
begin;
select plan(9);

insert into queue_health.project (id, name) values
  ('t262_a_heavy', 'Heavy (sorts first by id)'), ('t262_b_light', 'Light');
-- Only this file's rules, not the defaults a new project gets.
delete from queue_health.alert_rule where project_id like 't262%';
insert into queue_health.queue (source, source_schema, queue_name, project_id)
select 'pgmq', 'pgmq', 't262_heavy_q' || i, 't262_a_heavy' from generate_series(1, 10) i;
insert into queue_health.alert_rule (project_id, name, condition, threshold, window_duration)
select 't262_a_heavy', 'long ' || i, 'failure_rate', 0.5, interval '48 hours' - make_interval(mins => i)
  from generate_series(1, 20) i;
insert into queue_health.alert_rule (project_id, name, condition, threshold)
values ('t262_b_light', 'depth', 'depth', 100);
-- Whatever other projects this database holds have no deferral that could go first.
delete from queue_health.alert_evaluation;

select ok(
  (select array_agg(o.project_id) from queue_health._evaluation_order() o
    where o.project_id like 't262%') = array['t262_b_light', 't262_a_heavy'],
  'the light project is taken before the heavy one, though the heavy one sorts first by id'
);
select is(
  (select o.estimated_probes from queue_health._evaluation_order() o where o.project_id = 't262_a_heavy'),
  (1 + 20) * 10::bigint,
  'estimated_probes: the latest snapshot and 20 distinct windows, times 10 queues'
);
select is(
  (select o.estimated_probes from queue_health._evaluation_order() o where o.project_id = 't262_b_light'),
  1::bigint,
  'the latest snapshot counts 1, a project without queues counts as one queue'
);
insert into queue_health.alert_rule (project_id, name, condition, threshold, window_duration)
values ('t262_b_light', 'rate a', 'enqueued', 1, interval '5 minutes'),
       ('t262_b_light', 'rate b', 'completed', 1, interval '5 minutes');
select is(
  (select o.estimated_probes from queue_health._evaluation_order() o where o.project_id = 't262_b_light'),
  2::bigint,
  'a window two rules share is counted once (it is summed once)'
);

update queue_health.settings set alert_evaluation_budget = interval '100 milliseconds';
create or replace function queue_health._evaluate_project(p_now timestamptz, p_only_monitor boolean, p_project_id text)
returns jsonb
set search_path = ''
language plpgsql
as $$
begin
  if p_project_id = 't262_a_heavy' then
    perform pg_sleep(0.15);
  end if;
  return jsonb_build_object('rules', 0, 'transitions', 0, 'notifications', 0);
end;
$$;

create temporary table t262_run (n int primary key, r jsonb);
insert into t262_run select 1, queue_health.evaluate_alerts(now());
select ok(
  (select r -> 'project_ms' ? 't262_b_light' and r -> 'project_ms' ? 't262_a_heavy'
          and r -> 'deferred' = '[]'::jsonb from t262_run where n = 1),
  'light first: both are evaluated and nothing is deferred, though the heavy one takes past the budget'
);

-- A deferred project goes first, whatever it costs: the heavy one, deferred, now defers the light.
insert into queue_health.alert_evaluation (project_id, deferred_at) values ('t262_a_heavy', now());
select is(
  (select o.project_id from queue_health._evaluation_order() o limit 1),
  't262_a_heavy',
  'a project deferred last time is taken first'
);
insert into t262_run select 2, queue_health.evaluate_alerts(now());
select ok(
  (select r -> 'deferred' ? 't262_b_light' and r -> 'project_ms' ? 't262_a_heavy' from t262_run where n = 2),
  'the deferred heavy project runs first and the budget it uses defers the light one'
);
select ok(
  (select e.deferred_at is null from queue_health.alert_evaluation e where e.project_id = 't262_a_heavy')
  and (select e.deferred_at is not null from queue_health.alert_evaluation e where e.project_id = 't262_b_light'),
  'the evaluated project''s deferral is cleared, the skipped one''s recorded'
);
insert into t262_run select 3, queue_health.evaluate_alerts(now());
select ok(
  (select r -> 'project_ms' ? 't262_b_light' and r -> 'deferred' = '[]'::jsonb from t262_run where n = 3),
  'next time the deferred light project goes first and both are evaluated again'
);

select * from finish();
rollback;
