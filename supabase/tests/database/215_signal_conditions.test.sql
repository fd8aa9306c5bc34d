-- The signal conditions (issue 22): flow_status, drain_eta, expected_wait, poison,
-- consumer_silent, producer_silent, anomaly, slo_burn; their validation; the default rules of the
-- signals (quiet on a healthy queue) and the burn-rate rules a latency objective installs.
-- Real captures of the pgmq fixture, a minute apart in p_now: sig_stop has 5 messages and no
-- consumer, sig_ok gets one message a minute and a consumer takes and deletes it.
begin;
select plan(64);
set local client_min_messages = warning;

-- Section: fixtures
select queue_health.ensure_partitions(now() - interval '1 day', 3) \g /dev/null
update queue_health.settings set capture_interval = interval '1 minute';
insert into queue_health.project (id, name) values ('t215', 'Signal alerts'), ('t215_gone', 'Deleted with its objective');
insert into queue_health.project_queue_map (project_id, source, queue_pattern, priority)
values ('t215', 'pgmq', 'sig\_%', 10);
select pgmq.create('sig_stop') \g /dev/null
select pgmq.create('sig_ok') \g /dev/null
select pgmq.send('sig_stop', '{}'::jsonb) from generate_series(1, 5) \g /dev/null

-- Objectives before the first capture, so every capture records their seconds.
insert into queue_health.queue_objective (project_id, source, queue_name, target_wait_s)
values ('t215', 'pgmq', 'sig_stop', 60), ('t215', 'pgmq', 'sig_ok', 60);

-- Rules of this test beside the defaults (all in state only: no channel).
insert into queue_health.alert_rule (project_id, name, condition, comparator, threshold, statuses, metric,
  window_duration, queue_name) values
  ('t215', 'eta', 'drain_eta', '>', 3600, null, null, null, null),
  ('t215', 'wait', 'expected_wait', '>', 60, null, null, null, null),
  ('t215', 'flowing', 'flow_status', '>', 0, '{ok}', null, null, null),
  ('t215', 'producers', 'producer_silent', '>', 3, null, null, null, null),
  ('t215', 'depth_anomaly', 'anomaly', '>', 3, null, 'depth', null, null),
  ('t215', 'any_burn', 'slo_burn', '>', 1, null, null, '1 hour', null);

-- Minutes 0..15 from the next whole hour: one hour of the week, the baseline rows' hour.
create temporary table fx_t as select date_trunc('hour', clock_timestamp()) + interval '1 hour' as t0;
create function pg_temp.t(m int) returns timestamptz language sql stable
  as $$ select t0 + m * interval '1 minute' from pg_temp.fx_t $$;
-- One minute of traffic on sig_ok, then a capture (which evaluates the alerts) at minute m.
create function pg_temp.step(m int) returns text language plpgsql as $$
declare
  v bigint;
begin
  perform pgmq.send('sig_ok', '{}'::jsonb);
  select msg_id into v from pgmq.read('sig_ok', 30, 1);
  if v is not null then
    perform pgmq.delete('sig_ok', v);
  end if;
  return queue_health.capture(pg_temp.t(m)) ->> 'status';
end $$;
create function pg_temp.alert(p_rule text, p_queue text) returns queue_health.alert language sql stable
  as $$
    select a.* from queue_health.alert a join queue_health.alert_rule r on r.id = a.rule_id
     where r.project_id = 't215' and r.name = p_rule and a.queue_name = p_queue
  $$;
create function pg_temp.state(p_rule text, p_queue text) returns text language sql stable
  as $$ select coalesce((pg_temp.alert(p_rule, p_queue)).state::text, 'none') $$;
-- What rule p_rule reads on p_queue at minute m: active/eligible/value.
create function pg_temp.reads(p_rule text, p_queue text, m int) returns text language sql
  as $$
    select coalesce(x.active::text, 'null') || '/' || coalesce(x.eligible::text, 'null') || '/'
           || coalesce(queue_health._format_number(x.value), 'null')
      from queue_health._alert_readings(pg_temp.t(m), false, 't215') x
      join queue_health.alert_rule r on r.id = x.rule_id
     where r.project_id = 't215' and r.name = p_rule and x.queue_name = p_queue
  $$;
create function pg_temp.summary(p_rule text, p_queue text) returns text language sql stable
  as $$
    select queue_health._render(
             coalesce(r.summary, '{{rule}}: {{condition}} is {{value}} on {{queue}} (threshold {{threshold}})'),
             r, pg_temp.alert(p_rule, p_queue))
      from queue_health.alert_rule r where r.project_id = 't215' and r.name = p_rule
  $$;

select is(
  (select string_agg(s, ',') from (select pg_temp.step(m) as s from generate_series(0, 15) m) x),
  'ok,ok,ok,ok,ok,ok,ok,ok,ok,ok,ok,ok,ok,ok,ok,ok', 'sixteen captures, a minute apart');
select is(
  (select string_agg(queue_name || ':' || flow_status, ',' order by queue_name) from queue_health.queue
    where project_id = 't215'),
  'sig_ok:ok,sig_stop:stopped', 'the captures classify the flows: sig_ok ok, sig_stop stopped');

-- Section: default rules of the signals
select is(
  (select array_agg(name order by name) from queue_health.alert_rule
    where project_id = 't215' and is_default and condition in ('flow_status', 'poison', 'consumer_silent')),
  array['consumer_silent', 'flow_stopped', 'poison'], 'a new project gets the signals'' three default rules');
select is(
  (select row(statuses, for_duration, severity)::text from queue_health.alert_rule
    where project_id = 't215' and name = 'flow_stopped'),
  row('{stalled,stopped}'::queue_health.flow_status[], interval '5 minutes', 'critical'::queue_health.alert_severity)::text,
  'flow_stopped: stalled or stopped for 5 minutes, critical');
select is(
  (select row(comparator, threshold, for_duration, severity)::text from queue_health.alert_rule
    where project_id = 't215' and name = 'poison'),
  row('>', 0::float8, interval '10 minutes', 'warning'::queue_health.alert_severity)::text,
  'poison: > 0 for 10 minutes, warning');
select is(
  (select row(threshold, for_duration, severity)::text from queue_health.alert_rule
    where project_id = 't215' and name = 'consumer_silent'),
  row(3::float8, interval '5 minutes', 'warning'::queue_health.alert_severity)::text,
  'consumer_silent: k = 3 for 5 minutes, warning');
select is(queue_health.install_default_rules('t215'), 0, 'install_default_rules() stays idempotent');

-- Section: flow_status
select is(pg_temp.state('flow_stopped', 'sig_stop'), 'firing',
  'flow_stopped fires on the queue stopped since minute 10 (for 5 minutes)');
select is((select started_at from queue_health.alert a where a.id = (pg_temp.alert('flow_stopped', 'sig_stop')).id),
  pg_temp.t(10), 'it became pending when the flow window first said stopped');
select is(pg_temp.summary('flow_stopped', 'sig_stop'),
  'sig_stop is stopped: work waits and consumers finish none of it', '{{value}} shows the status by name');
select is(pg_temp.reads('flowing', 'sig_ok', 15), 'true/true/2',
  'a rule naming {ok} holds on the flowing queue (value: the status'' position, 2)');
select is(pg_temp.reads('flowing', 'sig_stop', 15), 'false/true/5', 'and not on the stopped one');
select is(pg_temp.reads('flowing', 'sig_ok', 5), 'false/false/n/a',
  'before a full flow window there is no status: not eligible');

-- Section: drain_eta and expected_wait
select is(pg_temp.reads('eta', 'sig_stop', 15), 'true/true/Infinity', 'drain_eta: never drains (Infinity) is > 3600');
select is(pg_temp.reads('eta', 'sig_ok', 15), 'false/true/0', 'drain_eta: nothing ready drains in 0 s');
select is(pg_temp.summary('eta', 'sig_stop'), 'eta: drain_eta is never on sig_stop (threshold 3600)',
  'the default summary shows an endless drain as never');
select is(pg_temp.reads('wait', 'sig_stop', 15), 'true/true/Infinity', 'expected_wait: nothing completes: Infinity > 60');
select is(pg_temp.reads('wait', 'sig_ok', 15), 'false/true/0', 'expected_wait: 0 on the healthy queue');

-- Section: notification payloads carry only numbers JSON can hold, and the value as read
select is(
  (select jsonb_agg(jsonb_build_object('rule', e ->> 'rule_name', 'value', e -> 'value', 'text', e -> 'value_text')
                    order by e ->> 'rule_name')
     from jsonb_array_elements(queue_health._notification_payload(gen_random_uuid(),
            jsonb_populate_record(null::queue_health.channel, '{"project_id": "t215", "name": "x", "kind": "webhook"}'),
            array[(pg_temp.alert('eta', 'sig_stop')).id, (pg_temp.alert('flow_stopped', 'sig_stop')).id,
                  (pg_temp.alert('consumer_silent', 'sig_stop')).id], '{}', pg_temp.t(15)) -> 'alerts') e),
  '[{"rule": "consumer_silent", "text": "900", "value": 900}, {"rule": "eta", "text": "never", "value": null},
    {"rule": "flow_stopped", "text": "stopped", "value": null}]'::jsonb,
  'the payload''s value is null for never and for a flow status; value_text says never / stopped');

-- Section: consumer_silent
select is(pg_temp.state('consumer_silent', 'sig_stop'), 'firing',
  'consumer_silent fires on the queue nobody has taken from since it was first seen');
select is(pg_temp.reads('consumer_silent', 'sig_stop', 15), 'true/true/900', 'its value: 900 s since first seen');
select is(pg_temp.reads('consumer_silent', 'sig_stop', 3), 'false/true/180',
  'without a baseline the usual gap is 60 s: 180 s is not more than 3 x 60 s');
select is(pg_temp.reads('consumer_silent', 'sig_stop', 4), 'true/true/240', 'and 240 s is');
select is(pg_temp.reads('consumer_silent', 'sig_ok', 15), 'false/false/0',
  'nothing ready on the healthy queue (its consumer took work at this capture): not eligible');
insert into queue_health.queue_baseline (source, source_schema, queue_name, hour_of_week, enqueue_rate_median,
  enqueue_rate_mad, out_rate_median, out_rate_mad, depth_median, depth_mad, ready_age_median, ready_age_mad,
  samples, history_days, computed_at)
values ('pgmq', 'pgmq', 'sig_stop', queue_health.hour_of_week(pg_temp.t(15)), 0, 0, 1.0 / 600, 0, 5, 0, 30, 5,
  4, 20, now());
select is(pg_temp.reads('consumer_silent', 'sig_stop', 15), 'false/true/900',
  'a baseline with one dequeue per 10 minutes at this hour: 900 s is not more than 3 x 600 s');
update queue_health.queue_baseline set samples = 1 where queue_name = 'sig_stop';
select is(pg_temp.reads('consumer_silent', 'sig_stop', 15), 'true/true/900',
  'a baseline of one sample is not usable: the usual gap is 60 s again');
update queue_health.queue_baseline set samples = 4, hour_of_week = (hour_of_week + 1) % 168 where queue_name = 'sig_stop';
select is(pg_temp.reads('consumer_silent', 'sig_stop', 15), 'true/true/900',
  'the baseline of another hour of the week does not count');
update queue_health.queue_baseline set hour_of_week = queue_health.hour_of_week(pg_temp.t(15)) where queue_name = 'sig_stop';

-- Section: producer_silent
select is(pg_temp.reads('producers', 'sig_ok', 15), 'false/false/0',
  'producer_silent: without a baseline, not eligible');
select is(pg_temp.reads('producers', 'sig_stop', 15), 'false/false/900',
  'a baseline saying nothing normally arrives at this hour: not eligible');
update queue_health.queue_baseline set enqueue_rate_median = 0.001 where queue_name = 'sig_stop';
select is(pg_temp.reads('producers', 'sig_stop', 15), 'false/true/900',
  'one message per 1000 s normally at this hour: 900 s of silence is not more than 3 x 1000 s');
update queue_health.queue_baseline set enqueue_rate_median = 0.01 where queue_name = 'sig_stop';
select is(pg_temp.reads('producers', 'sig_stop', 15), 'true/true/900',
  'one message per 100 s normally: 900 s of silence is more than 3 x 100 s');
update queue_health.queue_baseline set enqueue_rate_median = 10 where queue_name = 'sig_stop';
select is(pg_temp.reads('producers', 'sig_stop', 1), 'false/true/60',
  'at 10 messages/s normally the limit is still at least 60 s: 60 s is not more');
update queue_health.queue_baseline set samples = 1 where queue_name = 'sig_stop';
select is(pg_temp.reads('producers', 'sig_stop', 15), 'false/false/900',
  'a baseline of one sample is not usable: not eligible');
update queue_health.queue_baseline set samples = 4 where queue_name = 'sig_stop';

-- Section: anomaly (the depth of sig_stop is 5)
select is(pg_temp.reads('depth_anomaly', 'sig_stop', 15), 'false/true/5',
  'anomaly: depth 5 against a median of 5 is normal');
update queue_health.queue_baseline set depth_median = 100, depth_mad = 2 where queue_name = 'sig_stop';
select is(pg_temp.reads('depth_anomaly', 'sig_stop', 15), 'true/true/5',
  'depth 5 against a median of 100 +- 3 MAD of 2 is an anomaly');
update queue_health.queue_baseline set history_days = 13.9 where queue_name = 'sig_stop';
select is(pg_temp.reads('depth_anomaly', 'sig_stop', 15), 'false/false/5',
  'with under two weeks of history (settings.baseline_min_days) it stays quiet: not eligible');
select is(pg_temp.reads('depth_anomaly', 'sig_ok', 15), 'false/false/0',
  'a queue without a baseline: not eligible');
update queue_health.queue_baseline set history_days = 20 where queue_name = 'sig_stop';

-- Section: poison (metric rows: the sampler's poison count is not part of this file)
insert into queue_health.queue (source, source_schema, queue_name, project_id, first_seen_at, last_seen_at)
select 'pgmq', 'pgmq', q, 't215', pg_temp.t(0), pg_temp.t(15) from unnest(array['sig_poison', 'sig_clean', 'sig_unknown']) q;
insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name, ready, in_flight,
  delayed, depth, oldest_ready_age_s, enqueued, completed, failed, retried, dead_lettered, interval_s, poison)
values (pg_temp.t(15), 't215', 'pgmq', 'pgmq', 'sig_poison', 3, 0, 0, 3, 5, 0, 0, 0, 0, 0, 60, 2),
       (pg_temp.t(15), 't215', 'pgmq', 'pgmq', 'sig_clean', 3, 0, 0, 3, 5, 0, 0, 0, 0, 0, 60, 0),
       (pg_temp.t(15), 't215', 'pgmq', 'pgmq', 'sig_unknown', 3, 0, 0, 3, 5, 0, 0, 0, 0, 0, 60, null);
select is(pg_temp.reads('poison', 'sig_poison', 15), 'true/true/2', 'poison: 2 poison messages are > 0');
select is(pg_temp.reads('poison', 'sig_clean', 15), 'false/true/0', 'none: inactive');
select is(pg_temp.reads('poison', 'sig_unknown', 15), 'false/false/n/a', 'not counted: not eligible');

-- Section: slo_burn and the objective's rules
select is(
  (select array_agg(row(name, condition, queue_name, threshold, window_duration, severity, is_default, enabled)::text
                    order by name)
     from queue_health.alert_rule where project_id = 't215' and objective_id is not null),
  array[row('slo_fast_burn pgmq/sig_ok', 'slo_burn', 'sig_ok', 14.4::float8, interval '1 hour', 'critical'::queue_health.alert_severity, true, true)::text,
        row('slo_fast_burn pgmq/sig_stop', 'slo_burn', 'sig_stop', 14.4::float8, interval '1 hour', 'critical'::queue_health.alert_severity, true, true)::text,
        row('slo_slow_burn pgmq/sig_ok', 'slo_burn', 'sig_ok', 6::float8, interval '6 hours', 'warning'::queue_health.alert_severity, true, true)::text,
        row('slo_slow_burn pgmq/sig_stop', 'slo_burn', 'sig_stop', 6::float8, interval '6 hours', 'warning'::queue_health.alert_severity, true, true)::text],
  'each objective installs a fast (14.4x over 1 h, critical) and a slow (6x over 6 h, warning) burn rule for its queue');
select is(pg_temp.state('slo_fast_burn pgmq/sig_stop', 'sig_stop'), 'firing',
  'the queue whose oldest message waits past its 60 s target pages');
select is(
  (select x.value from queue_health._alert_readings(pg_temp.t(15), false, 't215') x
     join queue_health.alert_rule r on r.id = x.rule_id where r.name = 'slo_fast_burn pgmq/sig_stop'),
  least(queue_health.slo_burn_rate('pgmq', 'pgmq', 'sig_stop', interval '1 hour', pg_temp.t(15)),
        queue_health.slo_burn_rate('pgmq', 'pgmq', 'sig_stop', interval '5 minutes', pg_temp.t(15))),
  'its value is the lower of the burn rates over 1 h and over 5 min');
select cmp_ok(queue_health.slo_burn_rate('pgmq', 'pgmq', 'sig_stop', interval '5 minutes', pg_temp.t(15)), '>', 14.4::float8,
  'both of which exceed 14.4');
select is(pg_temp.reads('slo_fast_burn pgmq/sig_ok', 'sig_ok', 15), 'false/true/0',
  'the healthy queue burns nothing: eligible, inactive');
select is(pg_temp.reads('any_burn', 'sig_poison', 15), 'false/false/n/a',
  'a queue without an objective: slo_burn is not eligible');
insert into queue_health.alert_rule (project_id, name, condition, threshold, window_duration, queue_name)
values ('t215', 'long_only', 'slo_burn', 50, '3 hours', 'sig_stop');
select is(
  (select x.active from queue_health._alert_readings(pg_temp.t(15), false, 't215') x
     join queue_health.alert_rule r on r.id = x.rule_id where r.name = 'long_only'),
  least(queue_health.slo_burn_rate('pgmq', 'pgmq', 'sig_stop', interval '3 hours', pg_temp.t(15)),
        queue_health.slo_burn_rate('pgmq', 'pgmq', 'sig_stop', interval '15 minutes', pg_temp.t(15))) > 50,
  'active exactly when both windows (3 h and 15 min) exceed the threshold');

delete from queue_health.queue_objective where project_id = 't215' and queue_name = 'sig_ok';
select is(
  (select array_agg(enabled::text || '/' || coalesce(objective_id::text, 'null') order by name)
     from queue_health.alert_rule where project_id = 't215' and name like 'slo\_%burn pgmq/sig\_ok'),
  array['false/null', 'false/null'], 'deleting the objective disables its two rules');
insert into queue_health.queue_objective (project_id, source, queue_name, target_wait_s)
values ('t215', 'pgmq', 'sig_ok', 30);
select is(
  (select array_agg(enabled::text || '/' || (objective_id is not null)::text order by name)
     from queue_health.alert_rule where project_id = 't215' and name like 'slo\_%burn pgmq/sig\_ok'),
  array['true/true', 'true/true'], 'setting it again enables the same two rules (no duplicates)');
insert into queue_health.queue_objective (project_id, source, queue_name, target_wait_s)
values ('t215_gone', 'pgmq', 'x', 30);
select lives_ok($$ delete from queue_health.project where id = 't215_gone' $$,
  'a project deleted with an objective takes its rules along');
select is((select count(*)::int from queue_health.alert_rule where project_id = 't215_gone'), 0, 'none left');

-- A project admin (not the service role) sets and removes an objective: the rules follow.
create temporary table fx_user as select tests.create_user('t215-admin@example.test') as id;
grant select on fx_user to authenticated;
insert into queue_health.project_member (project_id, user_id, role) select 't215', id, 'admin' from fx_user;
select tests.authenticate_as((select id from fx_user));
insert into queue_health.queue_objective (project_id, source, queue_name, target_wait_s)
values ('t215', 'pgmq', 'sig_poison', 10);
select is(
  (select array_agg(name || '/' || enabled order by name) from queue_health.alert_rule
    where project_id = 't215' and queue_name = 'sig_poison' and condition = 'slo_burn'),
  array['slo_fast_burn pgmq/sig_poison/true', 'slo_slow_burn pgmq/sig_poison/true'],
  'an admin setting an objective gets its two rules');
delete from queue_health.queue_objective where project_id = 't215' and queue_name = 'sig_poison';
select is(
  (select array_agg(enabled::text order by name) from queue_health.alert_rule
    where project_id = 't215' and queue_name = 'sig_poison' and condition = 'slo_burn'),
  array['false', 'false'], 'and removing it disables them');
select tests.clear_authentication();

-- Section: the healthy queue stays quiet
select is(
  (select count(*)::int from queue_health.alert a join queue_health.alert_rule r on r.id = a.rule_id
    where a.queue_name = 'sig_ok' and r.is_default and a.state in ('pending', 'firing')),
  0, 'no default rule is pending or firing on the healthy queue after 15 minutes');

-- Section: validation, naming the field
select throws_ok($$ insert into queue_health.alert_rule (project_id, name, condition, statuses)
  values ('t215', 'v1', 'flow_status', '{}') $$, '23514',
  'alert_rule.statuses must name at least one flow status (idle, ok, falling_behind, stalled, stopped, redelivering) for flow_status: got {}',
  'flow_status with no status is refused');
select throws_ok($$ insert into queue_health.alert_rule (project_id, name, condition, statuses)
  values ('t215', 'v2', 'ready', '{ok}') $$, '23514',
  'alert_rule.statuses applies to condition flow_status only: got {ok} for ready', 'statuses on another condition');
select throws_ok($$ insert into queue_health.alert_rule (project_id, name, condition)
  values ('t215', 'v3', 'anomaly') $$, '23514',
  'alert_rule.metric must be one of enqueue_rate, out_rate, depth, ready_age for anomaly: got null', 'anomaly without a metric');
select throws_ok($$ insert into queue_health.alert_rule (project_id, name, condition, metric)
  values ('t215', 'v4', 'poison', 'depth') $$, '23514',
  'alert_rule.metric applies to condition anomaly only: got ''depth'' for poison', 'a metric on another condition');
select throws_ok($$ insert into queue_health.alert_rule (project_id, name, condition, comparator)
  values ('t215', 'v5', 'consumer_silent', '<') $$, '23514',
  'alert_rule.comparator must be > for consumer_silent (the condition has its own limit): got ''<''',
  'consumer_silent compares with its own limit');
select throws_ok($$ insert into queue_health.alert_rule (project_id, name, condition, threshold)
  values ('t215', 'v6', 'producer_silent', -1) $$, '23514',
  'alert_rule.threshold is k for producer_silent, and must be positive (3 when left at 0): got -1', 'a negative k');
select throws_ok($$ insert into queue_health.alert_rule (project_id, name, condition, threshold)
  values ('t215', 'v7', 'slo_burn', 14.4) $$, '23514',
  'alert_rule.window_duration is required for slo_burn', 'slo_burn needs its long window');
select throws_ok($$ insert into queue_health.alert_rule (project_id, name, condition, threshold, window_duration)
  values ('t215', 'v8', 'slo_burn', 14.4, '5 minutes') $$, '23514',
  'alert_rule.window_duration must be at least 12 minutes for slo_burn (its short window is 1/12 of it): got 00:05:00',
  'a window too short for its twelfth');
insert into queue_health.project (id, name) values ('t215_other', 'Another project');
insert into queue_health.queue_objective (id, project_id, source, queue_name, target_wait_s)
values ('21500000-0000-0000-0000-000000000001', 't215_other', 'pgmq', 'theirs', 30);
select throws_ok($$ insert into queue_health.alert_rule (project_id, name, condition, threshold, window_duration, objective_id)
  values ('t215', 'v11', 'slo_burn', 2, '1 hour', '21500000-0000-0000-0000-000000000001') $$, '23503',
  'alert_rule.objective_id: 21500000-0000-0000-0000-000000000001 is not a latency objective of project t215',
  'a rule cannot claim another project''s objective');
insert into queue_health.alert_rule (project_id, name, condition) values ('t215', 'v9', 'flow_status');
insert into queue_health.alert_rule (project_id, name, condition, metric) values ('t215', 'v10', 'anomaly', 'out_rate');
select is(
  (select array_agg(coalesce(statuses::text, '-') || '/' || threshold order by name) from queue_health.alert_rule
    where project_id = 't215' and name in ('v9', 'v10')),
  array['-/3', '{stalled,stopped}/0'],
  'defaults: flow_status names {stalled,stopped}; k left at 0 is 3');

select * from finish();
rollback;
