-- Who may read and write alerting data: members read their project's rules, channels, silences,
-- alerts and notifications; only admins write rules, channels and silences; nothing of another
-- project is visible or writable; channel secrets are readable by the service role only.
begin;
select plan(37);

-- Section: fixtures (as the table owner)
create temporary table fx (label text primary key, id uuid) on commit drop;
grant select on fx to anon, authenticated, service_role;
insert into fx values
  ('admin_a', tests.create_user('t240-admin-a@example.test')),
  ('viewer_a', tests.create_user('t240-viewer-a@example.test')),
  ('admin_b', tests.create_user('t240-admin-b@example.test'));

insert into queue_health.project (id, name) values ('t240a', 'Project A'), ('t240b', 'Project B');
insert into queue_health.project_member (project_id, user_id, role) values
  ('t240a', (select id from fx where label = 'admin_a'), 'admin'),
  ('t240a', (select id from fx where label = 'viewer_a'), 'viewer'),
  ('t240b', (select id from fx where label = 'admin_b'), 'admin');
insert into queue_health.channel (id, project_id, name, kind, config) values
  ('24000000-0000-0000-0000-00000000000a', 't240a', 'a-hook', 'webhook', '{"url": "https://hooks.example.test/a"}'),
  ('24000000-0000-0000-0000-00000000000b', 't240b', 'b-hook', 'webhook', '{"url": "https://hooks.example.test/b"}');
insert into queue_health.channel_secret (channel_id, secret) values
  ('24000000-0000-0000-0000-00000000000a', '{"signing_secret": "a-secret-of-sixteen-chars"}'),
  ('24000000-0000-0000-0000-00000000000b', '{"signing_secret": "b-secret-of-sixteen-chars"}');
insert into queue_health.alert_rule (id, project_id, name, condition, threshold) values
  ('24000000-0000-0000-0000-0000000000a1', 't240a', 'a-deep', 'depth', 100),
  ('24000000-0000-0000-0000-0000000000b1', 't240b', 'b-deep', 'depth', 100);
insert into queue_health.silence (project_id, ends_at, comment) values
  ('t240a', now() + interval '1 hour', 'a'), ('t240b', now() + interval '1 hour', 'b');
insert into queue_health.alert (rule_id, project_id, source, source_schema, queue_name, state, started_at, fired_at, last_evaluated_at) values
  ('24000000-0000-0000-0000-0000000000a1', 't240a', 'pgmq', 'pgmq', 'qa', 'firing', now(), now(), now()),
  ('24000000-0000-0000-0000-0000000000b1', 't240b', 'pgmq', 'pgmq', 'qb', 'firing', now(), now(), now());
insert into queue_health.notification (project_id, channel_id, group_key, payload) values
  ('t240a', '24000000-0000-0000-0000-00000000000a', 'a', '{"v": 1}'),
  ('t240b', '24000000-0000-0000-0000-00000000000b', 'b', '{"v": 1}');

-- Section: a viewer of A
select tests.authenticate_as((select id from fx where label = 'viewer_a'));
select is((select array_agg(distinct project_id) from queue_health.alert_rule), array['t240a'], 'viewer: sees the rules of A only');
select is((select array_agg(name) from queue_health.channel), array['a-hook'], 'viewer: sees the channels of A only');
select is((select array_agg(project_id) from queue_health.silence), array['t240a'], 'viewer: sees the silences of A only');
select is((select array_agg(queue_name) from queue_health.alert), array['qa'], 'viewer: sees the alerts of A only');
select is((select array_agg(project_id) from queue_health.notification), array['t240a'], 'viewer: sees the notifications of A only');
select is((select array_agg(name) from queue_health.channel_health), array['a-hook'], 'viewer: channel_health shows A''s channels only');
select throws_ok(
  $$ insert into queue_health.alert_rule (project_id, name, condition) values ('t240a', 'viewer-rule', 'depth') $$,
  '42501', 'new row violates row-level security policy for table "alert_rule"', 'viewer: cannot create a rule');
update queue_health.alert_rule set threshold = 1 where id = '24000000-0000-0000-0000-0000000000a1';
select throws_ok($$ select * from queue_health.channel_secret $$, '42501', null, 'viewer: cannot read channel secrets');
select throws_ok($$ select queue_health.evaluate_alerts(now() + interval '1 day') $$, '42501', null,
  'viewer: cannot run evaluate_alerts() (it takes p_now)');
select throws_ok($$ select queue_health.evaluate_monitor_stale() $$, '42501', null,
  'viewer: cannot run evaluate_monitor_stale() (it takes the evaluation lock and flushes every project)');

-- Section: an admin of A
select tests.authenticate_as((select id from fx where label = 'admin_a'));
select lives_ok(
  $$ insert into queue_health.alert_rule (project_id, name, condition, threshold, channel_ids)
     values ('t240a', 'a-admin-rule', 'depth', 10, array['24000000-0000-0000-0000-00000000000a']::uuid[]) $$,
  'admin: creates a rule in A');
select throws_ok(
  $$ insert into queue_health.alert_rule (project_id, name, condition) values ('t240b', 'a-into-b', 'depth') $$,
  '42501', 'new row violates row-level security policy for table "alert_rule"', 'admin of A: cannot create a rule in B');
select throws_like(
  $$ insert into queue_health.alert_rule (project_id, name, condition, channel_ids)
     values ('t240a', 'a-to-b-channel', 'depth', array['24000000-0000-0000-0000-00000000000b']::uuid[]) $$,
  '%alert_rule.channel_ids%is not a channel of project t240a%', 'admin of A: cannot route A''s rule to B''s channel');
update queue_health.alert_rule set threshold = 1 where id = '24000000-0000-0000-0000-0000000000b1';
delete from queue_health.alert_rule where id = '24000000-0000-0000-0000-0000000000b1';
update queue_health.channel set config = '{"url": "https://evil.example.test"}' where id = '24000000-0000-0000-0000-00000000000b';
delete from queue_health.silence where project_id = 't240b';
select lives_ok(
  $$ insert into queue_health.channel (project_id, name, kind, config) values ('t240a', 'a-mail', 'email', '{"to": ["a@example.test"]}') $$,
  'admin: creates a channel in A');
select throws_ok(
  $$ insert into queue_health.channel (project_id, name, kind, config) values ('t240b', 'a-into-b', 'email', '{"to": ["a@example.test"]}') $$,
  '42501', 'new row violates row-level security policy for table "channel"', 'admin of A: cannot create a channel in B');
select lives_ok(
  $$ insert into queue_health.silence (project_id, rule_id, ends_at, comment) values ('t240a', '24000000-0000-0000-0000-0000000000a1', now() + interval '1 hour', 'deploy') $$,
  'admin: creates a silence in A');
select throws_ok(
  $$ insert into queue_health.silence (project_id, ends_at, comment) values ('t240b', now() + interval '1 hour', 'mute B') $$,
  '42501', 'new row violates row-level security policy for table "silence"', 'admin of A: cannot silence B');
select throws_ok($$ select * from queue_health.channel_secret $$, '42501', null, 'admin: cannot read channel secrets');
select throws_ok(
  $$ insert into queue_health.channel_secret (channel_id, secret) values ('24000000-0000-0000-0000-00000000000a', '{"signing_secret": "xxxxxxxxxxxxxxxxxxxx"}') $$,
  '42501', null, 'admin: cannot write channel secrets through the API');
select throws_ok($$ select * from queue_health.claim_notifications() $$, '42501', null, 'admin: cannot claim notifications (they carry secrets)');
select throws_ok($$ select * from queue_health.dispatch_settings $$, '42501', null, 'admin: cannot read dispatch settings (they hold a key)');
select throws_ok($$ insert into queue_health.alert (rule_id, project_id, source, source_schema, queue_name, last_evaluated_at)
  values ('24000000-0000-0000-0000-0000000000a1', 't240a', 'pgmq', 'pgmq', 'forged', now()) $$, '42501', null,
  'admin: cannot write alert state (only evaluate_alerts() does)');
select throws_ok($$ update queue_health.notification set status = 'sent' $$, '42501', null, 'admin: cannot change notifications');

-- Section: what the attempts above did (as the owner)
select tests.clear_authentication();
select is((select threshold from queue_health.alert_rule where id = '24000000-0000-0000-0000-0000000000a1'), 100::float8,
  'the viewer''s update of A''s rule changed nothing');
select is((select threshold from queue_health.alert_rule where id = '24000000-0000-0000-0000-0000000000b1'), 100::float8,
  'the admin of A could not update B''s rule');
select is((select count(*)::int from queue_health.alert_rule where id = '24000000-0000-0000-0000-0000000000b1'), 1,
  'the admin of A could not delete B''s rule');
select is((select config ->> 'url' from queue_health.channel where id = '24000000-0000-0000-0000-00000000000b'), 'https://hooks.example.test/b',
  'the admin of A could not change B''s channel');
select is((select count(*)::int from queue_health.silence where project_id = 't240b'), 1, 'the admin of A could not delete B''s silence');

-- Section: anon
select tests.authenticate_as_anon();
select throws_ok($$ select * from queue_health.alert_rule $$, '42501', null, 'anon: cannot read rules');
select throws_ok($$ select * from queue_health.channel_secret $$, '42501', null, 'anon: cannot read channel secrets');
select throws_ok($$ select * from queue_health.claim_notifications() $$, '42501', null, 'anon: cannot claim notifications');

-- Section: the service role
select tests.authenticate_as_service_role();
select is((select count(*)::int from queue_health.channel_secret where channel_id in
  ('24000000-0000-0000-0000-00000000000a', '24000000-0000-0000-0000-00000000000b')), 2, 'service role: reads channel secrets');
select lives_ok(
  $$ insert into queue_health.channel_secret (channel_id, secret) values ('24000000-0000-0000-0000-00000000000a', '{"signing_secret": "rotated-secret-0123456789"}')
     on conflict (channel_id) do update set secret = excluded.secret $$,
  'service role: writes channel secrets');
-- 8 default rules per project (5 of 0.1.0, 3 of the signals) and the 3 of this test
select is((select count(*)::int from queue_health.alert_rule where project_id in ('t240a', 't240b')), 19,
  'service role: sees the rules of every project');
select is((select count(*)::int from queue_health.alert where project_id in ('t240a', 't240b')), 2, 'service role: sees every alert');
select lives_ok($$ select queue_health.evaluate_alerts() $$, 'service role: runs evaluate_alerts()');
select is(
  (select count(*)::int from pg_policies where schemaname = 'queue_health' and tablename = 'channel_secret'), 0,
  'channel_secret has no policy at all: no role but the service role (bypassrls) reads it');

select * from finish();
rollback;
