-- The outbox for alertmanager channels (issue 23): no group_wait, every change at once, all firing
-- alerts resent every settings.alertmanager_resend_interval with valid_until = now + 4 x
-- max(resend interval, capture interval), resolves always (send_resolved notwithstanding), an
-- unsent older notification superseded by the next one (its resolves carried over), and sent
-- resends kept a day. Other kinds keep their timing.
begin;
select plan(31);

-- Section: fixtures
do $$ begin perform queue_health.ensure_partitions(now() - interval '1 day', 3); end $$;
update queue_health.settings set capture_interval = interval '1 minute', alertmanager_resend_interval = interval '1 minute';

create function pg_temp.t(p_minute numeric) returns timestamptz language sql stable
  as $$ select date_trunc('minute', now()) + p_minute * interval '1 minute' $$;
create function pg_temp.eval(p_minute numeric) returns jsonb language sql
  as $$ select queue_health.evaluate_alerts(pg_temp.t(p_minute)) $$;
create function pg_temp.count(p_channel text) returns int language sql stable
  as $$
    select count(*)::int from queue_health.notification n join queue_health.channel c on c.id = n.channel_id
     where c.project_id = 't232' and c.name = p_channel
  $$;
create function pg_temp.last(p_channel text) returns queue_health.notification language sql stable
  as $$
    select n.* from queue_health.notification n join queue_health.channel c on c.id = n.channel_id
     where c.project_id = 't232' and c.name = p_channel order by n.created_at desc limit 1
  $$;
-- "queue:state" of each alert of a payload, sorted.
create function pg_temp.alerts(p_payload jsonb) returns text[] language sql immutable
  as $$
    select coalesce(array_agg((a ->> 'queue') || ':' || (a ->> 'state') order by a ->> 'queue'), '{}')
      from jsonb_array_elements(p_payload -> 'alerts') a
  $$;
create function pg_temp.resolved_at(p_payload jsonb, p_queue text) returns timestamptz language sql immutable
  as $$ select (a ->> 'resolved_at')::timestamptz from jsonb_array_elements(p_payload -> 'alerts') a where a ->> 'queue' = p_queue $$;

insert into queue_health.project (id, name) values ('t232', 'Alertmanager resend tests');
delete from queue_health.alert_rule where project_id = 't232';
insert into queue_health.project_alert_settings (project_id, dashboard_url) values ('t232', 'https://dash.example.test/t232');
insert into queue_health.channel (id, project_id, name, kind, config) values
  ('23200000-0000-0000-0000-000000000001', 't232', 'am', 'alertmanager', '{"url": "https://am.example.test"}'),
  ('23200000-0000-0000-0000-000000000002', 't232', 'hook', 'webhook', '{"url": "https://hooks.example.test/t232"}');

insert into queue_health.queue (source, source_schema, queue_name, project_id, first_seen_at, last_seen_at)
select 'pgmq', 'pgmq', q, 't232', pg_temp.t(-60), pg_temp.t(-60) from unnest(array['q1', 'q2']) q;

-- Rule timing meant for people (group_wait 30 s, group_interval 5 min, repeat 4 h) and no
-- send_resolved: the webhook channel follows it, the alertmanager channel does not.
insert into queue_health.alert_rule (project_id, name, condition, threshold, queue_pattern, channel_ids,
  group_wait, group_interval, repeat_interval, send_resolved, severity) values
  ('t232', 'deep', 'depth', 100, 'q%',
   array['23200000-0000-0000-0000-000000000001', '23200000-0000-0000-0000-000000000002']::uuid[],
   '30 seconds', '5 minutes', '4 hours', false, 'critical');

-- One snapshot a minute, minutes 0..12: q1 at depth 500 until minute 8, q2 until minute 6.
insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name, ready, in_flight,
  delayed, depth, oldest_ready_age_s, enqueued, completed, failed, retried, dead_lettered, interval_s)
select pg_temp.t(m), 't232', 'pgmq', 'pgmq', q.q, d, 0, 0, d, 0, 0, 0, 0, 0, 0, 60
  from unnest(array['q1', 'q2']) q(q)
 cross join generate_series(0, 12) m
 cross join lateral (select case when (q.q = 'q1' and m >= 8) or (q.q = 'q2' and m >= 6) then 0 else 500 end as d) x;
update queue_health.queue set last_seen_at = pg_temp.t(12) where project_id = 't232';

-- Sent notifications of the channel from 2 days and from 12 hours ago.
insert into queue_health.notification (id, project_id, channel_id, group_key, payload, status, created_at, sent_at) values
  ('23200000-0000-0000-0000-0000000000d2', 't232', '23200000-0000-0000-0000-000000000001', 'g', '{"v": 1}', 'sent',
   pg_temp.t(-2 * 24 * 60), pg_temp.t(-2 * 24 * 60)),
  ('23200000-0000-0000-0000-0000000000d1', 't232', '23200000-0000-0000-0000-000000000001', 'g', '{"v": 1}', 'sent',
   pg_temp.t(-12 * 60), pg_temp.t(-12 * 60));

-- Section: the first notification, at once
select is((pg_temp.eval(0) ->> 'firing')::int >= 2, true, 'both alerts fire at minute 0');
select is(pg_temp.count('am') - 1, 1, 'the alertmanager channel is notified in the same evaluation: no group_wait');
select is(pg_temp.count('hook'), 0, 'the webhook channel still waits for group_wait');
select is(pg_temp.alerts((pg_temp.last('am')).payload), array['q1:firing', 'q2:firing'],
  'the notification carries both firing alerts');
select is(((pg_temp.last('am')).payload ->> 'valid_until')::timestamptz, pg_temp.t(4),
  'valid_until = now + 4 x max(resend interval 1 min, capture interval 1 min)');
select is((pg_temp.last('am')).payload #>> '{channel,kind}', 'alertmanager', 'the payload names the kind');
select is(
  (select array_agg(n.id order by n.id) from queue_health.notification n
    where n.channel_id = '23200000-0000-0000-0000-000000000001' and n.status = 'sent'),
  array['23200000-0000-0000-0000-0000000000d1']::uuid[],
  'writing it deleted the channel''s sent notification older than a day, kept the one of 12 hours');

-- Section: resends
select pg_temp.eval(0.5) \g /dev/null
select is(pg_temp.count('am') - 1, 1, 'no resend before the resend interval');
select is((pg_temp.eval(1) ->> 'notifications')::int >= 1, true, 'a resend after one minute');
select is(pg_temp.count('am') - 1, 2, 'the alertmanager channel got its resend');
select is(((pg_temp.last('am')).payload ->> 'valid_until')::timestamptz, pg_temp.t(5), 'the resend moves valid_until on');
select is(pg_temp.count('hook'), 1, 'the webhook channel got one notification (after group_wait), and no resend');
select is(
  (select row(n.status, n.last_error)::text from queue_health.notification n
    where n.channel_id = '23200000-0000-0000-0000-000000000001' and n.created_at = pg_temp.t(0)),
  row('dead'::queue_health.notification_status,
      'superseded by notification ' || (pg_temp.last('am')).id || ', which carries the current alerts')::text,
  'the unsent minute-0 notification is superseded by the resend: dead, saying by which');

select queue_health.complete_notification((pg_temp.last('am')).id, null, pg_temp.t(1.1)) \g /dev/null
select pg_temp.eval(2) \g /dev/null
select is(
  (select n.status::text from queue_health.notification n
    where n.channel_id = '23200000-0000-0000-0000-000000000001' and n.created_at = pg_temp.t(1)),
  'sent', 'a sent notification is not superseded');

update queue_health.settings set alertmanager_resend_interval = interval '2 minutes';
select is((select row(t.group_wait, t.group_interval, t.repeat_interval)::text
             from queue_health.channel c, queue_health._group_timing(c, '{}') t
            where c.id = '23200000-0000-0000-0000-000000000001'),
  row(interval '0', interval '0', interval '2 minutes')::text,
  '_group_timing(): alertmanager channels have no wait, no group interval, the resend interval as repeat');
select is((select row(t.group_wait, t.group_interval, t.repeat_interval)::text
             from queue_health.channel c, queue_health._group_timing(c,
               (select array_agg(a.id) from queue_health.alert a where a.project_id = 't232')) t
            where c.id = '23200000-0000-0000-0000-000000000002'),
  row(interval '30 seconds', interval '5 minutes', interval '4 hours')::text,
  '_group_timing(): other kinds take the rules'' timing');
select is((pg_temp.eval(3) ->> 'notifications')::int, 0, 'with a 2-minute resend interval, none a minute after the last');
select pg_temp.eval(4) \g /dev/null
select is((pg_temp.last('am')).created_at, pg_temp.t(4), 'a resend two minutes after the last');
select is(((pg_temp.last('am')).payload ->> 'valid_until')::timestamptz, pg_temp.t(12),
  'valid_until = now + 4 x the 2-minute resend interval');
select queue_health.complete_notification((pg_temp.last('am')).id, null, pg_temp.t(4.1)) \g /dev/null

-- Section: resolves, always
select pg_temp.eval(6) \g /dev/null
select is(pg_temp.alerts((pg_temp.last('am')).payload), array['q1:firing', 'q2:resolved'],
  'q2 resolving is sent at once, with q1 still firing, although the rule says send_resolved false');
select is(pg_temp.resolved_at((pg_temp.last('am')).payload, 'q2'), pg_temp.t(6), 'resolved_at is when it resolved');
select is(pg_temp.count('hook'), 1, 'the webhook channel, send_resolved false, is told nothing');
-- That notification is not delivered (Alertmanager down); the next resend carries its resolve.
select queue_health.fail_notification((pg_temp.last('am')).id, 'alertmanager 503', pg_temp.t(30), false, pg_temp.t(6.1)) \g /dev/null
select pg_temp.eval(8) \g /dev/null
select is(pg_temp.alerts((pg_temp.last('am')).payload), array['q1:resolved', 'q2:resolved'],
  'q1 resolving: the notification carries it and, from the failed one it supersedes, q2''s resolve');
select is(pg_temp.resolved_at((pg_temp.last('am')).payload, 'q2'), pg_temp.t(6), 'the carried resolve keeps its time');
select is(
  (select n.status::text from queue_health.notification n
    where n.channel_id = '23200000-0000-0000-0000-000000000001' and n.created_at = pg_temp.t(6)),
  'dead', 'the failed minute-6 notification is superseded');
select is((pg_temp.last('am')).payload ->> 'status', 'resolved', 'the last notification is resolved');
select queue_health.complete_notification((pg_temp.last('am')).id, null, pg_temp.t(8.1)) \g /dev/null
select is((pg_temp.eval(10) ->> 'notifications')::int, 0, 'nothing fires: no more resends');
select is((select count(*)::int from queue_health.notification_group g where g.channel_id = '23200000-0000-0000-0000-000000000001'),
  0, 'the group is gone');

-- Section: the setting
select throws_ok($$ update queue_health.settings set alertmanager_resend_interval = interval '5 seconds' $$, '23514', null,
  'a resend interval under 10 seconds is refused');
select is(queue_health._alertmanager_valid_until(pg_temp.t(0)), pg_temp.t(8),
  '_alertmanager_valid_until(): 4 x the resend interval when it is longer than the capture interval');
update queue_health.settings set capture_interval = interval '5 minutes';
select is(queue_health._alertmanager_valid_until(pg_temp.t(0)), pg_temp.t(20),
  '... and 4 x the capture interval when that is longer');

select * from finish();
rollback;
