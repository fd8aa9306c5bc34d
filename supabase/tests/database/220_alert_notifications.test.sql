-- The outbox as Alertmanager groups it: twenty queues going red at once give one notification
-- after group_wait; a repeat only after repeat_interval; changes at most every group_interval;
-- resolved notifications only with send_resolved; silences suppress notifications (not
-- evaluation) inside their window only.
begin;
select plan(26);

-- Section: fixtures
do $$ begin perform queue_health.ensure_partitions(now() - interval '1 day', 3); end $$;
update queue_health.settings set capture_interval = interval '1 minute';

create function pg_temp.t(p_minute numeric) returns timestamptz language sql stable
  as $$ select date_trunc('minute', now()) + p_minute * interval '1 minute' $$;
create function pg_temp.eval(p_minute numeric) returns jsonb language sql
  as $$ select queue_health.evaluate_alerts(pg_temp.t(p_minute)) $$;
create function pg_temp.sent(p_channel text) returns int language sql stable
  as $$
    select count(*)::int from queue_health.notification n join queue_health.channel c on c.id = n.channel_id
     where c.project_id = 't220' and c.name = p_channel
  $$;
create function pg_temp.last_payload(p_channel text) returns jsonb language sql stable
  as $$
    select n.payload from queue_health.notification n join queue_health.channel c on c.id = n.channel_id
     where c.project_id = 't220' and c.name = p_channel order by n.created_at desc limit 1
  $$;
create function pg_temp.queues(p_payload jsonb, p_state text) returns text[] language sql immutable
  as $$
    select coalesce(array_agg(a ->> 'queue' order by a ->> 'queue'), '{}')
      from jsonb_array_elements(p_payload -> 'alerts') a where a ->> 'state' = p_state
  $$;

insert into queue_health.project (id, name) values ('t220', 'Notification tests');
delete from queue_health.alert_rule where project_id = 't220';
insert into queue_health.project_alert_settings (project_id, dashboard_url) values ('t220', 'https://dash.example.test/t220');
insert into queue_health.channel (id, project_id, name, kind, config) values
  ('22000000-0000-0000-0000-000000000001', 't220', 'ops', 'webhook', '{"url": "https://hooks.example.test/ops"}'),
  ('22000000-0000-0000-0000-000000000002', 't220', 'mail', 'email', '{"to": ["oncall@example.test"]}'),
  ('22000000-0000-0000-0000-000000000003', 't220', 'sil', 'webhook', '{"url": "https://hooks.example.test/sil"}');

insert into queue_health.queue (source, source_schema, queue_name, project_id, first_seen_at, last_seen_at)
select 'pgmq', 'pgmq', q, 't220', pg_temp.t(-60), pg_temp.t(-60)
  from (select 'g' || lpad(i::text, 2, '0') as q from generate_series(1, 20) i
        union all select unnest(array['n1', 's1', 's2'])) qs;

insert into queue_health.alert_rule (project_id, name, condition, threshold, queue_name, queue_pattern, channel_ids,
  group_wait, group_interval, repeat_interval, send_resolved, severity, summary, runbook_url) values
  ('t220', 'deep', 'depth', 100, null, 'g%', array['22000000-0000-0000-0000-000000000001']::uuid[],
   '30 seconds', '5 minutes', '1 hour', true, 'critical', '{{queue}} has {{value}} jobs (> {{threshold}})',
   'https://runbooks.example.test/{{rule}}'),
  ('t220', 'quiet_resolve', 'depth', 100, 'n1', null, array['22000000-0000-0000-0000-000000000002']::uuid[],
   '0 seconds', '1 minute', '4 hours', false, 'warning', null, null),
  ('t220', 'silenceable', 'depth', 100, null, 's%', array['22000000-0000-0000-0000-000000000003']::uuid[],
   '0 seconds', '1 minute', '4 hours', true, 'warning', null, null);

insert into queue_health.silence (project_id, queue_pattern, starts_at, ends_at, comment) values
  ('t220', 's1', pg_temp.t(0), pg_temp.t(10), 'maintenance of s1'),
  ('t220', 's2', pg_temp.t(-60), pg_temp.t(-30), 'an old, expired silence');

-- One snapshot a minute, minutes 0..66: every queue at depth 500, except g01 (0 from minute 61)
-- and n1 (0 from minute 2).
insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name, ready, in_flight,
  delayed, depth, oldest_ready_age_s, enqueued, completed, failed, retried, dead_lettered, interval_s)
select pg_temp.t(m), 't220', 'pgmq', 'pgmq', q.queue_name, d, 0, 0, d, 0, 0, 0, 0, 0, 0, 60
  from queue_health.queue q
 cross join generate_series(0, 66) m
 cross join lateral (select case when (q.queue_name = 'g01' and m >= 61) or (q.queue_name = 'n1' and m >= 2)
                                 then 0 else 500 end as d) x
 where q.project_id = 't220';
update queue_health.queue set last_seen_at = pg_temp.t(66) where project_id = 't220';

-- Section: twenty queues at once -> one notification after group_wait
select is((pg_temp.eval(0) ->> 'firing')::int >= 23, true, 'all alerts fire at minute 0');
select is(pg_temp.sent('ops'), 0, 'group_wait: nothing is sent for a new group before group_wait');
select is(pg_temp.sent('mail'), 1, 'a group with group_wait 0 is notified in the same evaluation');
select is((pg_temp.eval(0.5) ->> 'notifications')::int, 1, 'after group_wait one notification is written');
select is(pg_temp.sent('ops'), 1, 'twenty queues going red at once send one notification');
select is(jsonb_array_length(pg_temp.last_payload('ops') -> 'alerts'), 20, 'the notification lists all twenty alerts');
select is(
  (select jsonb_build_object('v', p -> 'v', 'status', p -> 'status', 'severity', p -> 'severity', 'counts', p -> 'counts',
     'channel', p -> 'channel', 'dashboard_url', p -> 'dashboard_url', 'project_id', p -> 'project_id')
     from pg_temp.last_payload('ops') p),
  jsonb_build_object('v', 1, 'status', 'firing', 'severity', 'critical', 'counts', jsonb_build_object('firing', 20, 'resolved', 0),
     'channel', jsonb_build_object('id', '22000000-0000-0000-0000-000000000001', 'name', 'ops', 'kind', 'webhook'),
     'dashboard_url', 'https://dash.example.test/t220', 'project_id', 't220'),
  'the payload has the contract''s envelope');
select is(
  (select n.id::text from queue_health.notification n where n.payload = pg_temp.last_payload('ops')),
  pg_temp.last_payload('ops') ->> 'notification_id',
  'payload.notification_id is the notification row''s id');
select is(
  (select a - 'alert_id' - 'rule_id' from jsonb_array_elements(pg_temp.last_payload('ops') -> 'alerts') a where a ->> 'queue' = 'g07'),
  jsonb_build_object('rule_name', 'deep', 'condition', 'depth', 'severity', 'critical', 'state', 'firing', 'source', 'pgmq',
    'source_schema', 'pgmq', 'queue', 'g07', 'value', 500, 'value_text', '500', 'threshold', 100, 'started_at', pg_temp.t(0),
    'fired_at', pg_temp.t(0), 'resolved_at', null, 'summary', 'g07 has 500 jobs (> 100)',
    'runbook_url', 'https://runbooks.example.test/deep', 'queue_labels', '{}'::jsonb),
  'each alert carries its rule, state, queue, value (and as read), threshold, times and rendered annotations');
update queue_health.queue set labels = '{"team": "payments", "tier": 1}' where queue_name = 'g07';
select is(
  (select queue_health._notification_payload(gen_random_uuid(), c, array[a.id], '{}', now()) -> 'alerts' -> 0 -> 'queue_labels'
     from queue_health.channel c, queue_health.alert a
    where c.id = '22000000-0000-0000-0000-000000000001' and a.project_id = 't220' and a.queue_name = 'g07'),
  '{"team": "payments", "tier": 1}'::jsonb,
  'each alert carries its queue''s labels, as set (queue-alert makes Alertmanager labels of them)');

-- Section: silences
select is(pg_temp.queues(pg_temp.last_payload('sil'), 'firing'), array['s2'],
  'a silence inside its window keeps its alert out of the notification; an expired one does not');
select is(
  (select a.state::text from queue_health.alert a join queue_health.alert_rule r on r.id = a.rule_id
    where r.project_id = 't220' and r.name = 'silenceable' and a.queue_name = 's1'),
  'firing', 'a silenced alert is still evaluated (firing)');

-- Section: no repeat before repeat_interval
select pg_temp.eval(1) \g /dev/null
select pg_temp.eval(2) \g /dev/null
select is(pg_temp.sent('ops'), 1, 'still firing, nothing new: no second notification');
select is(pg_temp.sent('mail'), 1, 'send_resolved false: no notification when the alert resolves');
select is(
  (select a.state::text from queue_health.alert a join queue_health.alert_rule r on r.id = a.rule_id
    where r.project_id = 't220' and r.name = 'quiet_resolve'),
  'resolved', '(the alert did resolve)');
select pg_temp.eval(10) \g /dev/null
select is(pg_temp.sent('sil'), 2, 'when the silence ends, its still-firing alert is notified');
select is(pg_temp.queues(pg_temp.last_payload('sil'), 'firing'), array['s1', 's2'], 'the group''s notification lists both alerts');
select pg_temp.eval(30) \g /dev/null
select is(pg_temp.sent('ops'), 1, 'no repeat at 30 minutes');
select is(pg_temp.sent('mail'), 1, 'still nothing for the quiet resolve');

-- Section: repeat after repeat_interval
select pg_temp.eval(60) \g /dev/null
select is(pg_temp.sent('ops'), 1, 'no repeat just before repeat_interval (sent at 0.5, repeat 1 h)');
select pg_temp.eval(60.5) \g /dev/null
select is(pg_temp.sent('ops'), 2, 'a repeat once repeat_interval has passed while still firing');
select is((pg_temp.last_payload('ops') -> 'counts')::text, '{"firing": 20, "resolved": 0}', 'the repeat lists what still fires');

-- Section: resolved, at most every group_interval
select pg_temp.eval(61) \g /dev/null
select is(pg_temp.sent('ops'), 2, 'a change within group_interval of the last notification waits');
select pg_temp.eval(65.5) \g /dev/null
select is(pg_temp.sent('ops'), 3, 'the resolved alert is notified once group_interval has passed');
select is((pg_temp.last_payload('ops') -> 'counts')::text, '{"firing": 19, "resolved": 1}', 'with send_resolved the resolved alert is listed');
select is(pg_temp.queues(pg_temp.last_payload('ops'), 'resolved'), array['g01'], 'the resolved alert is g01');

select * from finish();
rollback;
