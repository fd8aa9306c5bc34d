-- Alert state machine with Prometheus semantics, moved through time with evaluate_alerts(p_now):
-- pending before `for`, firing after, keep_firing_for holding through a flap, resolved, every
-- transition recorded; selectors (name, pattern, labels); disabled rules resolve their alerts.
begin;
select plan(27);

-- Section: fixtures (minute m is pg_temp.t(m); metric rows are inserted with chosen captured_at)
do $$ begin perform queue_health.ensure_partitions(now() - interval '1 day', 3); end $$;
update queue_health.settings set capture_interval = interval '1 minute';

create function pg_temp.t(p_minute numeric) returns timestamptz language sql stable
  as $$ select date_trunc('minute', now()) + p_minute * interval '1 minute' $$;
create function pg_temp.put(p_queue text, p_minute numeric, p_depth bigint) returns void language sql
  as $$
    insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name, ready, in_flight,
      delayed, depth, oldest_ready_age_s, enqueued, completed, failed, retried, dead_lettered, interval_s)
    values (pg_temp.t(p_minute), 't210', 'pgmq', 'pgmq', p_queue, p_depth, 0, 0, p_depth, 0, 0, 0, 0, 0, 0, 60);
    update queue_health.queue set last_seen_at = greatest(last_seen_at, pg_temp.t(p_minute))
     where source = 'pgmq' and source_schema = 'pgmq' and queue_name = p_queue;
  $$;
create function pg_temp.eval(p_minute numeric) returns jsonb language sql
  as $$ select queue_health.evaluate_alerts(pg_temp.t(p_minute)) $$;
create function pg_temp.alert(p_rule text, p_queue text) returns queue_health.alert language sql stable
  as $$
    select a.* from queue_health.alert a join queue_health.alert_rule r on r.id = a.rule_id
     where r.project_id = 't210' and r.name = p_rule and a.queue_name = p_queue
  $$;
create function pg_temp.state(p_rule text, p_queue text) returns text language sql stable
  as $$ select coalesce((pg_temp.alert(p_rule, p_queue)).state::text, 'none') $$;
create function pg_temp.events(p_rule text, p_queue text) returns text[] language sql stable
  as $$
    select coalesce(array_agg(e.from_state || '>' || e.to_state order by e.id), '{}')
      from queue_health.alert_event e join queue_health.alert_rule r on r.id = e.rule_id
     where r.project_id = 't210' and r.name = p_rule and e.queue_name = p_queue
  $$;

insert into queue_health.project (id, name) values ('t210', 'State machine tests');
update queue_health.alert_rule set enabled = false where project_id = 't210';  -- defaults off: this file tests its own rules
insert into queue_health.queue (source, source_schema, queue_name, project_id, labels, first_seen_at, last_seen_at)
select 'pgmq', 'pgmq', q, 't210', case when q = 'q_lab' then '{"team": "billing"}'::jsonb else '{}'::jsonb end,
       pg_temp.t(-60), pg_temp.t(-60)
  from unnest(array['q_for', 'q_flap', 'q_blip', 'q_lab', 'q_nolab']) q;

insert into queue_health.alert_rule (project_id, name, condition, comparator, threshold, for_duration, keep_firing_for, queue_name, queue_pattern, labels) values
  ('t210', 'for2m', 'depth', '>', 100, '2 minutes', '0', 'q_for', null, '{}'),
  ('t210', 'flappy', 'depth', '>', 100, '0', '3 minutes', 'q_flap', null, '{}'),
  ('t210', 'blip', 'depth', '>', 100, '2 minutes', '0', 'q_blip', null, '{}'),
  ('t210', 'labelled', 'depth', '>', 100, '0', '0', null, 'q\_%', '{"team": "billing"}');

-- minute:        0    1    2    3    4    5    6    7    8    9
-- q_for        500  500  500    0    0    0    0  500  500  500
-- q_flap       500    0  500    0    0    0    0    0    0    0
-- q_blip       500    0    0    0    0    0    0    0    0    0
-- q_lab/nolab  500 every minute
select pg_temp.put('q_for', m, case when m in (3, 4, 5, 6) then 0 else 500 end),
       pg_temp.put('q_flap', m, case when m in (0, 2) then 500 else 0 end),
       pg_temp.put('q_blip', m, case when m = 0 then 500 else 0 end),
       pg_temp.put('q_lab', m, 500),
       pg_temp.put('q_nolab', m, 500)
  from generate_series(0, 10) m \g /dev/null

-- Section: minute 0
select is((pg_temp.eval(0) ->> 'transitions')::int >= 4, true, 'evaluate_alerts() reports its transitions');
select is(pg_temp.state('for2m', 'q_for'), 'pending', 'a true condition with `for` starts pending');
select is((pg_temp.alert('for2m', 'q_for')).started_at, pg_temp.t(0), 'started_at is when the condition became true');
select is(pg_temp.state('flappy', 'q_flap'), 'firing', 'with `for` 0 the alert fires at once');
select is(pg_temp.state('blip', 'q_blip'), 'pending', 'the blip starts pending');
select is(pg_temp.state('labelled', 'q_lab'), 'firing', 'a rule selects queues whose labels contain its labels');
select is(pg_temp.state('labelled', 'q_nolab'), 'none', 'a queue without the labels gets no alert');
select is(pg_temp.state('for2m', 'q_flap'), 'none', 'a queue not named by the rule gets no alert');

-- Section: minute 1
select pg_temp.eval(1) \g /dev/null
select is(pg_temp.state('for2m', 'q_for'), 'pending', 'still pending before `for` has passed');
select is(pg_temp.state('blip', 'q_blip'), 'inactive', 'a condition that clears before `for` goes back to inactive without firing');
select is(pg_temp.state('flappy', 'q_flap'), 'firing', 'keep_firing_for keeps a firing alert firing when the condition clears');

-- Section: minute 2
select pg_temp.eval(2) \g /dev/null
select is(pg_temp.state('for2m', 'q_for'), 'firing', 'fires once the condition has held for `for`');
select is((pg_temp.alert('for2m', 'q_for')).fired_at, pg_temp.t(2), 'fired_at is the evaluation that fired it');
select is((pg_temp.alert('for2m', 'q_for')).value, 500::float8, 'the alert keeps the last value seen');

-- Section: minutes 3 to 6
select pg_temp.eval(3) \g /dev/null
select is(pg_temp.state('for2m', 'q_for'), 'resolved', 'without keep_firing_for a firing alert resolves as soon as the condition clears');
select is((pg_temp.alert('for2m', 'q_for')).resolved_at, pg_temp.t(3), 'resolved_at is the evaluation that resolved it');
select pg_temp.eval(5) \g /dev/null
select is(pg_temp.state('flappy', 'q_flap'), 'firing', 'the flap (true at 2, false since 3) is still held at 5');
select pg_temp.eval(6) \g /dev/null
select is(pg_temp.state('flappy', 'q_flap'), 'resolved', 'resolved once the condition has been false for keep_firing_for');
select is(pg_temp.events('flappy', 'q_flap'), array['inactive>firing', 'firing>resolved'],
  'the flap produced no transitions: one firing, one resolved');
select is(pg_temp.events('blip', 'q_blip'), array['inactive>pending', 'pending>inactive'], 'the blip''s transitions are recorded');

-- Section: minutes 7 to 10
select pg_temp.eval(7) \g /dev/null
select is(pg_temp.state('for2m', 'q_for'), 'pending', 'a resolved alert whose condition comes back is pending again');
select is(row((pg_temp.alert('for2m', 'q_for')).resolved_at, (pg_temp.alert('for2m', 'q_for')).fired_at)::text, row(null::timestamptz, null::timestamptz)::text,
  'pending again clears resolved_at and fired_at');
select pg_temp.eval(4) \g /dev/null
select is(pg_temp.state('for2m', 'q_for'), 'pending', 'an evaluation older than the last one is ignored');
select pg_temp.eval(9) \g /dev/null
select is(pg_temp.state('for2m', 'q_for'), 'firing', 'fires again after `for`');
select is(pg_temp.events('for2m', 'q_for'),
  array['inactive>pending', 'pending>firing', 'firing>resolved', 'resolved>pending', 'pending>firing'],
  'every transition of the alert is in alert_event');
select is(
  (select row(e.value, e.threshold, e.at)::text from queue_health.alert_event e
    where e.alert_id = (pg_temp.alert('for2m', 'q_for')).id and e.to_state = 'firing' order by e.id limit 1),
  row(500::float8, 100::float8, pg_temp.t(2))::text,
  'an event records the value, the threshold and the time');
update queue_health.alert_rule set enabled = false where project_id = 't210' and name = 'for2m';
select pg_temp.eval(10) \g /dev/null
select is(pg_temp.state('for2m', 'q_for'), 'resolved', 'disabling a rule resolves its firing alerts');

select * from finish();
rollback;
