-- The on-call channel kinds (issue 23): sms (Twilio), pagerduty (Events API v2) and alertmanager
-- are admitted, their config and secrets checked on insert with a message naming the field, and
-- their secrets kept out of config and away from members.
begin;
select plan(34);

-- Section: fixtures
create temporary table fx (label text primary key, id uuid) on commit drop;
grant select on fx to anon, authenticated, service_role;
insert into fx values
  ('admin', tests.create_user('t246-admin@example.test')),
  ('viewer', tests.create_user('t246-viewer@example.test'));
insert into queue_health.project (id, name) values ('t246', 'Project 246');
insert into queue_health.project_member (project_id, user_id, role) values
  ('t246', (select id from fx where label = 'admin'), 'admin'),
  ('t246', (select id from fx where label = 'viewer'), 'viewer');

create function pg_temp.sms(p_name text, p_config text) returns void language sql as $$
  insert into queue_health.channel (project_id, name, kind, config) values ('t246', p_name, 'sms', p_config::jsonb)
$$;

-- Section: sms config, as a project admin
select tests.authenticate_as((select id from fx where label = 'admin'));

select lives_ok($$ select pg_temp.sms('sms-ok', '{"to": ["+14155550123", "+447700900123"], "from": "+14155550100"}') $$,
  'an sms channel with E.164 recipients and an E.164 sender is accepted');
select lives_ok($$ select pg_temp.sms('sms-csv', '{"to": "+14155550123, +4915123456789", "messaging_service_sid": "MG0123456789abcdef0123456789abcdef"}') $$,
  'recipients as one comma-separated string and a Messaging Service SID are accepted');
select throws_like($$ select pg_temp.sms('sms-local', '{"to": ["(415) 555-0123"], "from": "+14155550100"}') $$,
  '%channel.config.to: ''(415) 555-0123'' is not a phone number in E.164 form%',
  'a number not in E.164 form is refused, named');
select throws_like($$ select pg_temp.sms('sms-zero', '{"to": ["+04155550123"], "from": "+14155550100"}') $$,
  '%is not a phone number in E.164 form%', 'a country code cannot start with 0');
select throws_like($$ select pg_temp.sms('sms-long', '{"to": ["+1234567890123456"], "from": "+14155550100"}') $$,
  '%is not a phone number in E.164 form%', 'more than 15 digits is refused');
select throws_like($$ select pg_temp.sms('sms-none', '{"to": [], "from": "+14155550100"}') $$,
  '%channel.config.to must be a non-empty array of phone numbers in E.164 form%', 'no recipients is refused');
select throws_like($$ select pg_temp.sms('sms-mixed', '{"to": ["+14155550123", 14155550124], "from": "+14155550100"}') $$,
  '%channel.config.to must be a non-empty array of phone numbers%', 'a recipient that is not a string is refused');
select throws_like($$ select pg_temp.sms('sms-many', jsonb_build_object('to', (select jsonb_agg('+1415555' || lpad(i::text, 4, '0')) from generate_series(1, 11) i), 'from', '+14155550100')::text) $$,
  '%channel.config.to lists 11 phone numbers: at most 10%', 'more than 10 recipients is refused');
select throws_like($$ select pg_temp.sms('sms-nofrom', '{"to": ["+14155550123"]}') $$,
  '%channel.config.from (a Twilio phone number in E.164 form) or channel.config.messaging_service_sid is required%',
  'a channel without a sender is refused');
select throws_like($$ select pg_temp.sms('sms-both', '{"to": ["+14155550123"], "from": "+14155550100", "messaging_service_sid": "MG0123456789abcdef0123456789abcdef"}') $$,
  '%either from or messaging_service_sid%', 'both senders at once is refused');
select throws_like($$ select pg_temp.sms('sms-badfrom', '{"to": ["+14155550123"], "from": "QueueHealth"}') $$,
  '%channel.config.from must be your Twilio phone number in E.164 form%', 'a sender that is not E.164 is refused');
select throws_like($$ select pg_temp.sms('sms-badmg', '{"to": ["+14155550123"], "messaging_service_sid": "MG123"}') $$,
  '%messaging_service_sid must be a Twilio Messaging Service SID%', 'a malformed Messaging Service SID is refused');
select throws_like($$ select pg_temp.sms('sms-token', '{"to": ["+14155550123"], "from": "+14155550100", "auth_token": "x"}') $$,
  '%channel.config must not hold secrets%', 'a Twilio auth token in config is refused');
select throws_like(
  $$ update queue_health.channel set config = '{"to": ["+1"], "from": "+14155550100"}' where name = 'sms-ok' $$,
  '%''+1'' is not a phone number in E.164 form%', 'an update is checked as an insert is');

-- Section: pagerduty and alertmanager config
select lives_ok(
  $$ insert into queue_health.channel (project_id, name, kind, config) values ('t246', 'pd', 'pagerduty', '{"source": "queue-health", "component": "queues"}') $$,
  'a pagerduty channel with optional source and component is accepted');
select throws_like(
  $$ insert into queue_health.channel (project_id, name, kind, config) values ('t246', 'pd-key', 'pagerduty', '{"routing_key": "0123456789abcdef0123456789abcdef"}') $$,
  '%channel.config must not hold secrets%', 'a routing key in config is refused');
select throws_like(
  $$ insert into queue_health.channel (project_id, name, kind, config) values ('t246', 'pd-src', 'pagerduty', '{"source": 7}') $$,
  '%channel.config.source must be a string of 1 to 255 characters%', 'a non-string source is refused');
select lives_ok(
  $$ insert into queue_health.channel (project_id, name, kind, config) values ('t246', 'am', 'alertmanager', '{"url": "https://alertmanager.example.test:9093"}') $$,
  'an alertmanager channel with a base URL is accepted');
select throws_like(
  $$ insert into queue_health.channel (project_id, name, kind, config) values ('t246', 'am-none', 'alertmanager', '{}') $$,
  '%channel.config.url must be the http(s) base URL of your Alertmanager%', 'an alertmanager channel without a URL is refused');
select throws_like(
  $$ insert into queue_health.channel (project_id, name, kind, config) values ('t246', 'am-q', 'alertmanager', '{"url": "https://am.example.test/?x=1"}') $$,
  '%base URL of your Alertmanager%', 'a URL with a query string is refused');
select throws_like(
  $$ insert into queue_health.channel (project_id, name, kind, config) values ('t246', 'am-pw', 'alertmanager', '{"url": "https://am.example.test", "password": "x"}') $$,
  '%channel.config must not hold secrets%', 'a password in config is refused');
select throws_like(
  $$ insert into queue_health.channel (project_id, name, kind, config) values ('t246', 'pager', 'pager', '{}') $$,
  '%channel.kind must be email, slack, webhook, sms, pagerduty or alertmanager: got ''pager''%',
  'an unknown kind is refused, listing the known ones');

-- Section: secrets (service role)
select tests.authenticate_as_service_role();
select lives_ok(
  $$ insert into queue_health.channel_secret (channel_id, secret)
     select id, '{"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "0123456789abcdef0123456789abcdef"}'
       from queue_health.channel where project_id = 't246' and name = 'sms-ok' $$,
  'an sms secret with an account SID and auth token is accepted');
select throws_like(
  $$ insert into queue_health.channel_secret (channel_id, secret)
     select id, '{"account_sid": "SK0123456789abcdef0123456789abcdef", "auth_token": "0123456789abcdef0123456789abcdef"}'
       from queue_health.channel where project_id = 't246' and name = 'sms-csv' $$,
  '%channel_secret.secret.account_sid must be your Twilio Account SID%', 'an SID that is not an account SID is refused');
select throws_like(
  $$ insert into queue_health.channel_secret (channel_id, secret)
     select id, '{"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "short"}'
       from queue_health.channel where project_id = 't246' and name = 'sms-csv' $$,
  '%channel_secret.secret.auth_token must be your Twilio auth token%', 'a short auth token is refused');
select lives_ok(
  $$ insert into queue_health.channel_secret (channel_id, secret)
     select id, '{"routing_key": "R0123456789abcdef0123456789abcde"}' from queue_health.channel where project_id = 't246' and name = 'pd' $$,
  'a 32-character routing key is accepted');
select throws_like(
  $$ update queue_health.channel_secret s set secret = '{"routing_key": "too-short"}'
      from queue_health.channel c where c.id = s.channel_id and c.name = 'pd' and c.project_id = 't246' $$,
  '%channel_secret.secret.routing_key must be the 32-character integration key%', 'a malformed routing key is refused');
select lives_ok(
  $$ insert into queue_health.channel_secret (channel_id, secret)
     select id, '{"bearer_token": "am-token"}' from queue_health.channel where project_id = 't246' and name = 'am' $$,
  'an alertmanager bearer token is accepted');
select throws_like(
  $$ update queue_health.channel_secret s set secret = '{"bearer_token": "t", "username": "u", "password": "p"}'
      from queue_health.channel c where c.id = s.channel_id and c.name = 'am' and c.project_id = 't246' $$,
  '%either bearer_token or username and password%', 'both kinds of alertmanager credentials at once are refused');
select throws_like(
  $$ update queue_health.channel_secret s set secret = '{"username": "a:b", "password": "p"}'
      from queue_health.channel c where c.id = s.channel_id and c.name = 'am' and c.project_id = 't246' $$,
  '%username (without ":") and password%', 'a basic-auth user name with a colon is refused');
select lives_ok(
  $$ update queue_health.channel_secret s set secret = '{"username": "qh", "password": "p"}'
      from queue_health.channel c where c.id = s.channel_id and c.name = 'am' and c.project_id = 't246' $$,
  'basic-auth credentials are accepted');
select tests.clear_authentication();

-- Section: members never see the secrets
select tests.authenticate_as((select id from fx where label = 'viewer'));
select is((select count(*)::int from queue_health.channel where project_id = 't246'), 4,
  'a viewer sees the project''s channels');
select throws_ok($$ select * from queue_health.channel_secret $$, '42501', null,
  'a viewer cannot read channel secrets');
select tests.authenticate_as((select id from fx where label = 'admin'));
select throws_ok($$ select * from queue_health.channel_secret $$, '42501', null,
  'an admin cannot read channel secrets either');
select tests.clear_authentication();

select * from finish();
rollback;
