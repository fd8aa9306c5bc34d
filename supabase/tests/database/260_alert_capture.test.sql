-- capture() evaluates the alert rules on the snapshot it has just written: a real (fixture) pgmq
-- queue whose oldest message ages past the default oldest_ready_age rule goes pending, then
-- firing after `for`, and the notification is in the outbox of the same transaction.
begin;
select plan(7);

-- Background captures (a running local stack) skip while this transaction holds capture()'s
-- lock; this session's own capture() calls take it again (advisory locks are re-entrant).
select pg_advisory_xact_lock(hashtextextended('queue_health.capture', 0)) \g /dev/null

insert into queue_health.project (id, name) values ('t260', 'Capture to alert');
insert into queue_health.project_queue_map (project_id, source, queue_pattern, priority) values ('t260', 'pgmq', 't260\_%', -1000);
update queue_health.alert_rule set enabled = false where project_id = 't260' and name <> 'oldest_ready_age';
update queue_health.alert_rule set group_wait = '0' where project_id = 't260' and name = 'oldest_ready_age';
insert into queue_health.channel (project_id, name, kind, config) values ('t260', 'hook', 'webhook', '{"url": "https://hooks.example.test/t260"}');

select pgmq.create('t260_orders') \g /dev/null
select pgmq.send('t260_orders', '{"order": 1}'::jsonb) from generate_series(1, 5) \g /dev/null

create function pg_temp.state() returns text language sql stable
  as $$
    select coalesce((select a.state::text from queue_health.alert a join queue_health.alert_rule r on r.id = a.rule_id
                      where r.project_id = 't260' and r.name = 'oldest_ready_age' and a.queue_name = 't260_orders'), 'none')
  $$;

select ok(queue_health.capture(now() + interval '30 seconds') ? 'alerts', 'capture() runs evaluate_alerts() and returns its summary');
select is(pg_temp.state(), 'none', 'oldest message 30 s old: below the 60 s threshold');
select queue_health.capture(now() + interval '90 seconds') \g /dev/null
select is(pg_temp.state(), 'pending', 'oldest message 90 s old: pending (the rule holds for 2 minutes first)');
select queue_health.capture(now() + interval '160 seconds') \g /dev/null
select is(pg_temp.state(), 'pending', 'still pending 70 s later');
select queue_health.capture(now() + interval '215 seconds') \g /dev/null
select is(pg_temp.state(), 'firing', 'firing once the condition has held for 2 minutes');
select is(
  (select count(*)::int from queue_health.notification n where n.project_id = 't260'), 1,
  'the capture that fired it wrote one notification');
select is(
  (select n.payload -> 'alerts' -> 0 ->> 'summary' from queue_health.notification n where n.project_id = 't260'),
  't260_orders: oldest ready job has waited 215 s (threshold 60 s)',
  'with the default rule''s summary, filled in');

select * from finish();
rollback;
