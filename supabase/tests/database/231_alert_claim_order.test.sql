-- claim_notifications() hands out due rows round-robin across channels, each channel's oldest
-- first: a burst for one (paced) Slack webhook does not hold the other channels' messages back.
begin;
select plan(5);

create function pg_temp.t(p_second int) returns timestamptz language sql stable
  as $$ select date_trunc('minute', now()) - interval '1 hour' + p_second * interval '1 second' $$;
-- Whatever else is due in this database is out of the way: only this file's rows are pending.
update queue_health.notification set status = 'dead', lease_until = null
 where status in ('pending', 'failed', 'sending');

insert into queue_health.project (id, name) values ('t231', 'Claim order');
insert into queue_health.channel (id, project_id, name, kind, config) values
  ('23100000-0000-0000-0000-000000000001', 't231', 'busy', 'webhook', '{"url": "https://hooks.example.test/busy"}'),
  ('23100000-0000-0000-0000-000000000002', 't231', 'quiet', 'webhook', '{"url": "https://hooks.example.test/quiet"}'),
  ('23100000-0000-0000-0000-000000000003', 't231', 'other', 'webhook', '{"url": "https://hooks.example.test/other"}');
-- busy: five rows queued first; quiet: one row after them; other: two rows last
insert into queue_health.notification (id, project_id, channel_id, group_key, payload, next_attempt_at, created_at)
select ('23100000-0000-0000-0000-0000000000' || x.n)::uuid, 't231', x.ch::uuid, 'g', '{"v": 1}', pg_temp.t(x.s), pg_temp.t(x.s)
  from (values
    ('b1', '23100000-0000-0000-0000-000000000001', 1), ('b2', '23100000-0000-0000-0000-000000000001', 2),
    ('b3', '23100000-0000-0000-0000-000000000001', 3), ('b4', '23100000-0000-0000-0000-000000000001', 4),
    ('b5', '23100000-0000-0000-0000-000000000001', 5), ('c1', '23100000-0000-0000-0000-000000000002', 6),
    ('d1', '23100000-0000-0000-0000-000000000003', 7), ('d2', '23100000-0000-0000-0000-000000000003', 8)) x(n, ch, s);

select tests.authenticate_as_service_role();

select is(
  (select array_agg(right(c.id::text, 2) order by c.id)
     from queue_health.claim_notifications(3, interval '2 minutes', pg_temp.t(60)) c),
  array['b1', 'c1', 'd1'],
  'a batch takes each channel''s oldest due row before any channel''s second');
select is(
  (select array_agg(right(c.id::text, 2) order by c.id)
     from queue_health.claim_notifications(3, interval '2 minutes', pg_temp.t(60)) c),
  array['b2', 'b3', 'd2'],
  'then each one''s second, oldest first, and what is left of the busy channel');
select is(
  (select array_agg(right(c.id::text, 2) order by c.id)
     from queue_health.claim_notifications(10, interval '2 minutes', pg_temp.t(60)) c),
  array['b4', 'b5'],
  'the busy channel''s backlog comes last, in order');
select is(
  (select count(*)::int from queue_health.claim_notifications(10, interval '2 minutes', pg_temp.t(60))),
  0, 'nothing is claimed twice while its lease runs');
-- An expired lease makes a row claimable again, in the same round-robin.
select is(
  (select array_agg(right(c.id::text, 2) order by c.id)
     from queue_health.claim_notifications(3, interval '2 minutes', pg_temp.t(60 + 180)) c),
  array['b1', 'c1', 'd1'],
  'expired leases are reclaimed round-robin too');

select * from finish();
rollback;
