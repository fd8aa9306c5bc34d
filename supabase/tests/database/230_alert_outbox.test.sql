-- The outbox contract queue-alert relies on: claim_notifications() with leases (an expired lease
-- makes a row claimable again), complete_notification(), fail_notification() with retry and dead
-- after max_attempts, channel_health, and the sweep that re-dispatches due rows.
begin;
select plan(31);

-- Section: fixtures
create function pg_temp.t(p_minute numeric) returns timestamptz language sql stable
  as $$ select date_trunc('minute', now()) + p_minute * interval '1 minute' $$;
-- Claims as the service role (what queue-alert is) and returns only this file's rows: a running
-- local stack may have rows of its own in this database.
create function pg_temp.claim(p_minute numeric, p_limit int default 1000) returns setof uuid language sql
  as $$ select c.id from queue_health.claim_notifications(p_limit, interval '2 minutes', pg_temp.t(p_minute)) c where c.project_id = 't230' $$;
create function pg_temp.status(p_id uuid) returns text language sql stable
  as $$ select n.status::text from queue_health.notification n where n.id = p_id $$;

insert into queue_health.project (id, name) values ('t230', 'Outbox tests');
insert into queue_health.channel (id, project_id, name, kind, config) values
  ('23000000-0000-0000-0000-000000000001', 't230', 'slack', 'slack', '{}'),
  ('23000000-0000-0000-0000-000000000002', 't230', 'hook', 'webhook', '{"url": "https://hooks.example.test/t230"}');
insert into queue_health.channel_secret (channel_id, secret) values
  ('23000000-0000-0000-0000-000000000001', '{"url": "https://hooks.slack.example.test/services/T/B/X"}');

insert into queue_health.notification (id, project_id, channel_id, group_key, payload, next_attempt_at, max_attempts, created_at) values
  ('23000000-0000-0000-0000-0000000000a1', 't230', '23000000-0000-0000-0000-000000000001', 'g', '{"v": 1, "n": "a1"}', pg_temp.t(0), 8, pg_temp.t(0)),
  ('23000000-0000-0000-0000-0000000000a2', 't230', '23000000-0000-0000-0000-000000000002', 'g', '{"v": 1, "n": "a2"}', pg_temp.t(0), 3, pg_temp.t(0)),
  ('23000000-0000-0000-0000-0000000000a3', 't230', '23000000-0000-0000-0000-000000000002', 'g', '{"v": 1, "n": "a3"}', pg_temp.t(0), 8, pg_temp.t(0)),
  ('23000000-0000-0000-0000-0000000000a4', 't230', '23000000-0000-0000-0000-000000000002', 'g', '{"v": 1, "n": "a4"}', pg_temp.t(100), 8, pg_temp.t(0));

select tests.authenticate_as_service_role();

-- Section: claim and lease
select is(
  (select row(c.kind, c.config, c.secret, c.payload, c.attempts, c.max_attempts)::text
     from queue_health.claim_notifications(1000, interval '2 minutes', pg_temp.t(0)) c
    where c.id = '23000000-0000-0000-0000-0000000000a1'),
  row('slack', '{}'::jsonb, '{"url": "https://hooks.slack.example.test/services/T/B/X"}'::jsonb, '{"v": 1, "n": "a1"}'::jsonb, 1, 8)::text,
  'claim returns the row with its channel kind, config, secret and payload, attempts counted');
select is(
  (select row(n.status, n.attempts, n.lease_until)::text from queue_health.notification n where n.id = '23000000-0000-0000-0000-0000000000a1'),
  row('sending'::queue_health.notification_status, 1, pg_temp.t(2))::text,
  'a claimed row is sending with a lease of p_lease');
select is(pg_temp.status('23000000-0000-0000-0000-0000000000a4'), 'pending', 'a row not yet due is not claimed');
select is((select count(*)::int from pg_temp.claim(1)), 0, 'leased rows are not claimed again while the lease runs');
select is((select array_agg(c.id order by c.id) from pg_temp.claim(3) c(id)),
  array['23000000-0000-0000-0000-0000000000a1', '23000000-0000-0000-0000-0000000000a2', '23000000-0000-0000-0000-0000000000a3']::uuid[],
  'rows whose lease expired (a crashed worker''s) are claimable again');
select is((select n.attempts from queue_health.notification n where n.id = '23000000-0000-0000-0000-0000000000a1'), 2,
  'reclaiming counts another attempt');

-- Section: complete
select is(queue_health.complete_notification('23000000-0000-0000-0000-0000000000a1', 'msg_123', pg_temp.t(3))::text, 'sent',
  'complete_notification() returns sent');
select is(
  (select row(n.status, n.sent_at, n.provider_message_id, n.lease_until)::text from queue_health.notification n where n.id = '23000000-0000-0000-0000-0000000000a1'),
  row('sent'::queue_health.notification_status, pg_temp.t(3), 'msg_123', null::timestamptz)::text,
  'a sent row keeps sent_at and the provider message id, and loses its lease');
select is((select count(*)::int from pg_temp.claim(30)), 2, 'a sent row is never claimed again (only a2 and a3, leases expired)');

-- Section: fail, retry, dead
select is(queue_health.fail_notification('23000000-0000-0000-0000-0000000000a3', 'HTTP 500', pg_temp.t(40), false, pg_temp.t(31))::text, 'failed',
  'a transient failure below max_attempts is failed');
select is(
  (select row(n.next_attempt_at, n.last_error, n.last_error_at, n.lease_until)::text from queue_health.notification n where n.id = '23000000-0000-0000-0000-0000000000a3'),
  row(pg_temp.t(40), 'HTTP 500', pg_temp.t(31), null::timestamptz)::text,
  'a failed row waits for p_retry_at and keeps the error');
select is((select count(*)::int from pg_temp.claim(35) c where c = '23000000-0000-0000-0000-0000000000a3'), 0, 'not claimed before p_retry_at');
select is((select count(*)::int from pg_temp.claim(40) c where c = '23000000-0000-0000-0000-0000000000a3'), 1, 'claimed again at p_retry_at');
select is(queue_health.fail_notification('23000000-0000-0000-0000-0000000000a3', 'HTTP 404 no_service', null, true, pg_temp.t(41))::text, 'dead',
  'a permanent failure is dead at once');
select is((select n.attempts from queue_health.notification n where n.id = '23000000-0000-0000-0000-0000000000a2'), 3,
  'a2 has been claimed three times, its max_attempts');
select is(queue_health.fail_notification('23000000-0000-0000-0000-0000000000a2', 'HTTP 503', pg_temp.t(50), false, pg_temp.t(41))::text, 'dead',
  'fail_notification() goes dead once attempts reach max_attempts');
select is((select count(*)::int from pg_temp.claim(60)), 0, 'dead rows are never claimed');
select is(queue_health.complete_notification('23000000-0000-0000-0000-0000000000a2', null, pg_temp.t(61))::text, 'dead',
  'completing a dead row leaves it dead');
select throws_ok($$ select queue_health.complete_notification('23000000-0000-0000-0000-0000000000ff') $$, 'P0002', null,
  'completing an unknown notification is an error');

-- Section: an expired lease on the last attempt goes dead
insert into queue_health.notification (id, project_id, channel_id, group_key, payload, next_attempt_at, max_attempts, created_at)
values ('23000000-0000-0000-0000-0000000000a5', 't230', '23000000-0000-0000-0000-000000000002', 'g', '{"v": 1}', pg_temp.t(0), 1, pg_temp.t(0));
select is((select count(*)::int from pg_temp.claim(70) c where c = '23000000-0000-0000-0000-0000000000a5'), 1, 'a5 claimed (its only attempt)');
select is((select count(*)::int from pg_temp.claim(80) c where c = '23000000-0000-0000-0000-0000000000a5'), 0,
  'its lease expired on the last attempt: not claimed again');
select is(pg_temp.status('23000000-0000-0000-0000-0000000000a5'), 'dead', '... but dead, with the reason');

-- Section: channel health
select is(
  (select row(h.last_success_at, h.pending, h.dead)::text from queue_health.channel_health h where h.channel_id = '23000000-0000-0000-0000-000000000001'),
  row(pg_temp.t(3), 0::bigint, 0::bigint)::text,
  'channel_health: the Slack channel''s last success');
select is(
  (select row(h.last_error_at, h.last_error, h.pending, h.dead)::text from queue_health.channel_health h where h.channel_id = '23000000-0000-0000-0000-000000000002'),
  row(pg_temp.t(80), 'lease expired on the last attempt', 1::bigint, 3::bigint)::text,
  'channel_health: the webhook channel''s last error, waiting (a4) and dead rows');
select hasnt_column('queue_health', 'channel_health', 'secret', 'channel_health has no secret column');
select is(
  (select count(*)::int from information_schema.columns where table_schema = 'queue_health' and table_name = 'channel_health'
      and column_name in ('config', 'secret', 'url', 'signing_secret')),
  0, 'channel_health exposes neither config nor secrets');

-- Section: sweep re-dispatches due rows
select is(
  (queue_health.sweep_notifications(pg_temp.t(100)) -> 'due_projects') ? 't230', true,
  'sweep_notifications() finds projects with due rows to re-dispatch');
select is(queue_health.sweep_notifications(pg_temp.t(100)) ->> 'dispatch', 'notify', 'without pg_net it dispatches by NOTIFY');
select queue_health.sweep_notifications(pg_temp.t(31 * 24 * 60)) \g /dev/null
select is(
  (select array_agg(n.id order by n.id) from queue_health.notification n where n.project_id = 't230'),
  array['23000000-0000-0000-0000-0000000000a4']::uuid[],
  'after 30 days the sweep deletes sent and dead rows, never waiting ones');

-- Section: only the service role may use the outbox API
select tests.authenticate_as(tests.create_user('t230@example.test'));
select throws_ok($$ select * from queue_health.claim_notifications() $$, '42501', null, 'an authenticated user cannot claim notifications');
select throws_ok($$ select queue_health.fail_notification('23000000-0000-0000-0000-0000000000a4', 'x', now()) $$, '42501', null,
  'an authenticated user cannot fail notifications');

select * from finish();
rollback;
