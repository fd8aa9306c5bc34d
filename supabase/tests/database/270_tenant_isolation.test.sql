-- Issue 19, findings 6-8: one tenant cannot starve, break or read the others. Quotas refuse rows
-- past a project's quota (54000, naming the setting); every interval a tenant sets is bounded;
-- a project whose evaluation fails is recorded alone while the others are evaluated; claiming is
-- fair across projects; capture errors are scoped to the caller's projects.
begin;
select plan(35);

-- Background captures skip while this transaction holds capture()'s lock.
select pg_advisory_xact_lock(hashtextextended('queue_health.capture', 0)) \g /dev/null

create temporary table fx (label text primary key, id uuid) on commit drop;
grant select on fx to anon, authenticated, service_role;
insert into fx values
  ('admin_a', tests.create_user('t270-admin-a@example.test')),
  ('admin_b', tests.create_user('t270-admin-b@example.test')),
  ('admin_c', tests.create_user('t270-admin-c@example.test'));
insert into queue_health.project (id, name) values ('t270a', 'A'), ('t270b', 'B'), ('t270c', 'C');
insert into queue_health.project_member (project_id, user_id, role) values
  ('t270a', (select id from fx where label = 'admin_a'), 'admin'),
  ('t270b', (select id from fx where label = 'admin_b'), 'admin'),
  ('t270c', (select id from fx where label = 'admin_c'), 'admin');

-- Inserts up to p_max rules one by one, stopping at the first refusal: how many went in, and why
-- the next did not.
create function pg_temp.fill_rules(p_project text, p_max int, out inserted int, out code text, out message text, out hint text)
language plpgsql as $$
begin
  inserted := 0;
  for i in 1 .. p_max loop
    begin
      insert into queue_health.alert_rule (project_id, name, condition, threshold)
      values (p_project, 'fill ' || i, 'depth', i);
      inserted := inserted + 1;
    exception when others then
      get stacked diagnostics code = returned_sqlstate, message = message_text, hint = pg_exception_hint;
      return;
    end;
  end loop;
end;
$$;
grant execute on function pg_temp.fill_rules(text, int) to authenticated;

-- Section: quotas (finding 6)
select tests.authenticate_as((select id from fx where label = 'admin_c'));
create temporary table filled on commit drop as select * from pg_temp.fill_rules('t270c', 20000);
select tests.clear_authentication();
select is((select inserted from filled), 192,
  'a project trying to create 20 000 rules gets 192 on top of its 8 default rules: 200 in all');
select is((select code from filled), '54000', 'the next is refused with program_limit_exceeded');
select is((select message from filled),
  'project t270c has reached its quota of 200 alert rules (queue_health.settings.max_rules_per_project)',
  'the message names the project, the quota and the setting');
select matches((select hint from filled), 'raise queue_health.settings.max_rules_per_project', 'the hint says how to get more');
select is((select count(*)::int from queue_health.alert_rule where project_id = 't270c'), 200, 'exactly 200 rules exist');

select tests.authenticate_as((select id from fx where label = 'admin_b'));
select lives_ok($$ insert into queue_health.alert_rule (project_id, name, condition) values ('t270b', 'b1', 'depth') $$,
  'another project is not held to the full one''s quota');
select tests.authenticate_as((select id from fx where label = 'admin_c'));
select throws_ok(
  $$ insert into queue_health.channel (project_id, name, kind, config)
     select 't270c', 'hook ' || i, 'webhook', '{"url": "https://hooks.example.test/x"}' from generate_series(1, 51) i $$,
  '54000', 'project t270c has reached its quota of 50 channels (queue_health.settings.max_channels_per_project)',
  'the 51st channel is refused, also within one statement');
select tests.clear_authentication();
update queue_health.settings set max_silences_per_project = 2;
select tests.authenticate_as((select id from fx where label = 'admin_c'));
insert into queue_health.silence (project_id, ends_at, comment) values ('t270c', now() + interval '1 hour', 's1'), ('t270c', now() + interval '1 hour', 's2');
select throws_ok(
  $$ insert into queue_health.silence (project_id, ends_at, comment) values ('t270c', now() + interval '1 hour', 's3') $$,
  '54000', 'project t270c has reached its quota of 2 silences that have not ended (queue_health.settings.max_silences_per_project)',
  'a silence past max_silences_per_project is refused');

-- Section: bounds (finding 7)
select throws_like(
  $$ insert into queue_health.alert_rule (project_id, name, condition, threshold, window_duration) values ('t270b', 'w', 'enqueued', 0, '10000 years') $$,
  'alert_rule.window_duration must be between 00:00:01 and 48:00:00: got 10000 years', 'a 10 000-year window is refused (raw retention)');
select tests.authenticate_as((select id from fx where label = 'admin_b'));
select throws_like(
  $$ insert into queue_health.alert_rule (project_id, name, condition, threshold, window_duration) values ('t270b', 'w', 'enqueued', 0, '10000 years') $$,
  'alert_rule.window_duration must be between 00:00:01 and 48:00:00: got 10000 years', 'as a project admin too');
select throws_like(
  $$ insert into queue_health.project_alert_settings (project_id, group_wait) values ('t270b', '300000 years') $$,
  'project_alert_settings.group_wait must be between 00:00:00 and 30 days: got 300000 years', 'a 300 000-year group_wait is refused');
select throws_like(
  $$ insert into queue_health.project_alert_settings (project_id, group_interval, repeat_interval) values ('t270b', '1 microsecond', '1 hour') $$,
  'project_alert_settings.group_interval must be between 00:00:10 and 30 days: got 00:00:00.000001', 'a 1 µs group_interval is refused');
select throws_like(
  $$ insert into queue_health.project_alert_settings (project_id, repeat_interval) values ('t270b', '1 microsecond') $$,
  'project_alert_settings.repeat_interval must be between 00:01:00 and 30 days: got 00:00:00.000001', 'a 1 µs repeat_interval is refused');
select throws_like(
  $$ insert into queue_health.alert_rule (project_id, name, condition, group_interval, repeat_interval) values ('t270b', 'g', 'depth', '1 microsecond', '1 microsecond') $$,
  'alert_rule.group_interval must be between 00:00:10 and 30 days: got 00:00:00.000001', 'a rule''s 1 µs group_interval is refused');
select throws_like(
  $$ insert into queue_health.alert_rule (project_id, name, condition, for_duration) values ('t270b', 'f', 'depth', '1000 years') $$,
  'alert_rule.for_duration must be between 00:00:00 and 30 days: got 1000 years', 'a 1000-year for is refused');
select lives_ok(
  $$ insert into queue_health.project_alert_settings (project_id, group_wait, group_interval, repeat_interval) values ('t270b', '1 minute', '10 seconds', '1 minute') $$,
  'the minimums themselves are accepted');
select tests.authenticate_as_service_role();
select lives_ok(
  $$ update queue_health.alert_rule set group_interval = '1 second' where project_id = 't270b' and name = 'b1' $$,
  'the operator (service role) may go below the tenant minimums');
select tests.clear_authentication();

-- Section: one project's bad value does not stop alerting for the others (finding 7)
-- Values from before the bounds existed: written with the validation off, as an older install had them.
alter table queue_health.alert_rule disable trigger alert_rule_validate;
alter table queue_health.project_alert_settings disable trigger project_alert_settings_validate;
delete from queue_health.alert_rule where project_id = 't270c' and name like 'fill %';
delete from queue_health.silence where project_id = 't270c';
insert into queue_health.alert_rule (project_id, name, condition, threshold, window_duration) values ('t270c', 'w', 'enqueued', 0, '10000 years');
insert into queue_health.project_alert_settings (project_id, group_wait) values ('t270c', '300000 years');
alter table queue_health.alert_rule enable trigger alert_rule_validate;
alter table queue_health.project_alert_settings enable trigger project_alert_settings_validate;
insert into queue_health.channel (project_id, name, kind, config) values ('t270c', 'hook', 'webhook', '{"url": "https://hooks.example.test/c"}');
insert into queue_health.alert (rule_id, project_id, source, source_schema, queue_name, state, started_at, fired_at, last_evaluated_at)
select r.id, 't270c', 'pgmq', 'pgmq', 'qc', 'firing', now(), now(), now() from queue_health.alert_rule r where r.project_id = 't270c' and r.name = 'w';

update queue_health.alert_rule set enabled = false where project_id = 't270a';
insert into queue_health.project_queue_map (project_id, source, queue_pattern, priority) values ('t270a', 'pgmq', 't270a\_%', -1000);
insert into queue_health.alert_rule (project_id, name, condition, threshold, queue_name, group_wait) values ('t270a', 'deep', 'depth', 0, 't270a_q', '0');
insert into queue_health.channel (project_id, name, kind, config) values ('t270a', 'hook', 'webhook', '{"url": "https://hooks.example.test/a"}');
select pgmq.create('t270a_q') \g /dev/null
select pgmq.send('t270a_q', '{"n": 1}'::jsonb) \g /dev/null

create temporary table cap on commit drop as select queue_health.capture(now() + interval '10 seconds') as r;
select is(jsonb_path_query_array((select r from cap), '$.alerts.failed[*].project_id'), '["t270c"]',
  'the capture''s evaluation fails for the bad project only');
select is(
  (select a.state::text from queue_health.alert a join queue_health.alert_rule r on r.id = a.rule_id
    where r.project_id = 't270a' and r.name = 'deep'), 'firing', 'the other project''s rule still fires');
select is((select count(*)::int from queue_health.notification where project_id = 't270a'), 1,
  'and its notification is in the outbox');
select is((select r ->> 'status' from cap), 'partial', 'the capture run says partial');
select ok((select errors @> '[{"source": "alerting", "project_id": "t270c"}]' from queue_health.capture_run where id = (select (r ->> 'run_id')::bigint from cap)),
  'capture_run.errors records the failure against t270c');
select tests.authenticate_as_service_role();
select lives_ok($$ select queue_health.evaluate_monitor_stale() $$, 'evaluate_monitor_stale() runs for everyone else');
select is(jsonb_path_query_array(queue_health.sweep_notifications(), '$.failed[*].project_id'), '["t270c"]',
  'sweep_notifications() runs and records the bad project''s flush failure against it alone');
select is((select (healthy, alerting_failing_projects) from queue_health.capture_status), (false, 1::bigint),
  'capture_status: not healthy while a project''s alerting fails (operator view)');
select tests.authenticate_as((select id from fx where label = 'admin_c'));
select is((select (healthy, alerting_failing_projects, alerting_error like 't270c: %') from queue_health.capture_status), (false, 1::bigint, true),
  'the failing project''s admin sees it, with the error');
select tests.authenticate_as((select id from fx where label = 'admin_a'));
select is((select alerting_failing_projects from queue_health.capture_status), 0::bigint,
  'another project''s admin does not see it');

-- Section: capture errors are scoped (finding 8)
select tests.clear_authentication();
insert into queue_health.queue (source, source_schema, queue_name, project_id) values
  ('pgmq', 'pgmq', 't270b_secret_payroll', 't270b');
create temporary table run on commit drop as
with r as (
  insert into queue_health.capture_run (started_at, finished_at, duration_ms, status, error, errors)
  values (now() + interval '20 seconds', now() + interval '20 seconds', 1, 'partial', '2 error(s); first: relation "pgmq.q_t270b_secret_payroll" does not exist',
          '[{"source": "pgmq", "source_schema": "pgmq", "queue_name": "t270b_secret_payroll", "error": "relation \"pgmq.q_t270b_secret_payroll\" does not exist"},
            {"source": "pgmq", "source_schema": "pgmq", "queue_name": "t270a_q", "error": "a failed"}]')
  returning id)
select id from r;
grant select on run to authenticated, service_role;
select tests.authenticate_as((select id from fx where label = 'admin_a'));
select throws_ok($$ select errors from queue_health.capture_run $$, '42501', null, 'a tenant cannot read capture_run.errors');
select throws_ok($$ select error from queue_health.capture_run $$, '42501', null, 'nor capture_run.error');
select lives_ok($$ select id, status, queues from queue_health.capture_run $$, 'but can read the run''s other columns');
select is(jsonb_path_query_array(queue_health.capture_run_errors((select id from run)), '$[*].queue_name'), '["t270a_q"]',
  'capture_run_errors(): a member of A sees A''s queue error only');
select is((select last_run_error from queue_health.capture_status), '1 error(s); first: a failed',
  'capture_status.last_run_error: only A''s error, not B''s queue name');
select tests.authenticate_as_service_role();
select is(jsonb_array_length(queue_health.capture_run_errors((select id from run))), 2, 'the service role sees both');

-- Section: fair claiming (finding 6)
select tests.clear_authentication();
update queue_health.notification set status = 'dead', lease_until = null where status in ('pending', 'failed', 'sending');
update queue_health.settings set claim_per_project_limit = 5;
insert into queue_health.channel (project_id, name, kind, config)
select 't270b', 'flood ' || i, 'webhook', '{"url": "https://hooks.example.test/f"}' from generate_series(1, 40) i;
insert into queue_health.notification (project_id, channel_id, group_key, payload, next_attempt_at, created_at)
select 't270b', c.id, 'g', '{"v": 1}', now() - interval '1 hour', now() - interval '1 hour'
  from queue_health.channel c cross join generate_series(1, 25) where c.project_id = 't270b';
insert into queue_health.notification (project_id, channel_id, group_key, payload, next_attempt_at, created_at)
select 't270a', c.id, 'g', '{"v": 1}', now(), now() from queue_health.channel c where c.project_id = 't270a';
select tests.authenticate_as_service_role();
create temporary table claimed on commit drop as select * from queue_health.claim_notifications(20, interval '2 minutes', now() + interval '1 second');
select is((select count(*)::int from claimed where project_id = 't270a'), 1,
  'a project''s one due row is claimed in the first claim despite 1 000 older rows of another project');
select is((select count(*)::int from claimed where project_id = 't270b'), 5,
  'the flooding project gets at most claim_per_project_limit rows per claim');

select * from finish();
rollback;
