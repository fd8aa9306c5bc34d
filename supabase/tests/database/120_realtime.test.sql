-- Realtime: each insert into metric broadcasts one message per project (split under 64 KiB) to
-- the private topic queue_health:<project_id>; only that project's members may receive it; a
-- failing broadcast never fails the insert.
begin;
select plan(19);

-- The rows below are stamped 2026-11-26: make sure that day's partition exists whenever this runs.
select queue_health.ensure_partitions('2026-11-26 12:00:00+00', 0);

create temporary table fx_users (label text primary key, id uuid) on commit drop;
grant select on fx_users to anon, authenticated, service_role;
insert into fx_users values
  ('ada', tests.create_user('ada@acme.test')),
  ('gus', tests.create_user('gus@globex.test')),
  ('nora', tests.create_user('nora@nowhere.test'));
insert into queue_health.project (id, name) values ('acme', 'Acme'), ('globex', 'Globex');
insert into queue_health.project_member (project_id, user_id)
select 'acme', id from fx_users where label = 'ada'
union all select 'globex', id from fx_users where label = 'gus';

-- postgres may not delete from realtime.messages (hosted grants it select, insert and update): the
-- messages seen so far are remembered instead, and fx_messages shows only the newer ones.
create temporary table fx_seen (id uuid primary key) on commit drop;
create temporary view fx_messages as
  select m.* from realtime.messages m where not exists (select 1 from fx_seen s where s.id = m.id);
insert into fx_seen select id from realtime.messages where topic like 'queue_health:%' on conflict do nothing;

-- Section: one message per project per statement
insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name,
  ready, in_flight, delayed, depth, depth_estimated, oldest_ready_age_s, enqueued, completed,
  failed, retried, dead_lettered)
values
  ('2026-11-26 12:00:00+00', 'acme', 'pgmq', 'pgmq', 'emails', 4, 1, 2, 7, false, 12.5, 10, 8, 1, 0, 0),
  ('2026-11-26 12:00:00+00', 'acme', 'pgboss', 'pgboss', 'reports', 0, 0, 0, 0, false, null, 0, 0, 0, 0, 0),
  ('2026-11-26 12:00:00+00', 'globex', 'pgmq', 'pgmq', 'orders', 1, 0, 0, 1, true, 1, 1, 0, 0, 0, 0);

select results_eq(
  $$ select topic, event, private, extension from fx_messages
     where topic like 'queue_health:%' order by topic $$,
  $$ values ('queue_health:acme'::text, 'snapshot'::text, true, 'broadcast'::text),
            ('queue_health:globex', 'snapshot', true, 'broadcast') $$,
  'an insert of three rows for two projects sends one private snapshot per project');
select is(
  (select payload - 'queues' - 'id' from fx_messages where topic = 'queue_health:acme'),
  '{"v": 1, "project_id": "acme", "captured_at": "2026-11-26T12:00:00+00:00", "part": 1, "parts": 1}'::jsonb,
  'the envelope carries v, project_id, captured_at, part and parts');
select is(
  (select payload -> 'queues' -> 0 from fx_messages where topic = 'queue_health:acme'),
  '{"source": "pgboss", "source_schema": "pgboss", "queue": "reports", "depth": 0, "ready": 0,
    "in_flight": 0, "delayed": 0, "oldest_ready_age_s": null, "enqueued": 0, "completed": 0,
    "failed": 0, "dead_lettered": 0, "depth_estimated": false}'::jsonb,
  'each queue is a compact row with the contract''s fields');
select is(
  (select jsonb_array_length(payload -> 'queues') from fx_messages where topic = 'queue_health:acme'),
  2, 'the acme message holds both acme queues');
select is(
  (select payload -> 'queues' -> 0 ->> 'queue' from fx_messages where topic = 'queue_health:globex'),
  'orders', 'the globex message holds only the globex queue');

-- Section: the Realtime Authorization policy, checked the way Realtime checks a join
create function pg_temp.can_join(p_user text, p_topic text) returns boolean language plpgsql as $$
declare v_seen boolean;
begin
  perform tests.authenticate_as((select id from fx_users where label = p_user));
  perform set_config('realtime.topic', p_topic, true);
  select exists (select 1 from realtime.messages m where m.topic = p_topic and m.extension = 'broadcast')
    into v_seen;
  perform tests.clear_authentication();
  perform set_config('realtime.topic', '', true);
  return v_seen;
end $$;
grant execute on function pg_temp.can_join(text, text) to authenticated;

select ok(pg_temp.can_join('ada', 'queue_health:acme'), 'a member of acme may join queue_health:acme');
select ok(not pg_temp.can_join('ada', 'queue_health:globex'), 'a member of acme may not join queue_health:globex');
select ok(pg_temp.can_join('gus', 'queue_health:globex'), 'a member of globex may join queue_health:globex');
select ok(not pg_temp.can_join('gus', 'queue_health:acme'), 'a member of globex may not join queue_health:acme');
select ok(not pg_temp.can_join('nora', 'queue_health:acme'), 'a user in no project may not join any project''s topic');

select tests.authenticate_as((select id from fx_users where label = 'ada'));
select set_config('realtime.topic', 'queue_health:acme', true);
select is(
  (select count(*)::int from realtime.messages where topic = 'queue_health:globex'), 0,
  'a member of acme with the acme topic set still cannot read the globex messages');
select tests.clear_authentication();
select set_config('realtime.topic', '', true);

-- Section: splitting under 64 KiB
insert into fx_seen select id from realtime.messages where topic like 'queue_health:%' on conflict do nothing;
insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name, depth, ready, in_flight, delayed)
select '2026-11-26 12:00:10+00', 'acme', 'pgmq', 'pgmq', 'queue_' || lpad(i::text, 4, '0') || repeat('x', 120), i, i, 0, 0
from generate_series(1, 1200) i;
select ok(
  (select count(*) from fx_messages where topic = 'queue_health:acme') > 1,
  'a project with 1200 queues is split into several messages');
select is(
  (select max(octet_length(payload::text)) < 65536 from fx_messages where topic = 'queue_health:acme'),
  true, 'every part is under 64 KiB');
-- The split is sized without printing each item: names that JSON escapes to several bytes a
-- character, the largest counts and ages that print longer as jsonb numbers than as floats.
insert into fx_seen select id from realtime.messages where topic = 'queue_health:odd' on conflict do nothing;
insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name, depth, ready,
  in_flight, delayed, enqueued, completed, failed, dead_lettered, oldest_ready_age_s, depth_estimated)
select '2026-11-26 12:00:10+00', 'odd', 'pgboss', 'pg"boss' || chr(9), 'q' || i || repeat('"' || chr(1) || 'ü\', 10),
  9223372036854775807, 9223372036854775807, 9223372036854775807, 9223372036854775807, 9223372036854775807,
  9223372036854775807, 9223372036854775807, 9223372036854775807,
  case when i % 2 = 0 then 1e-7 else 123456789.123456789 end, i % 3 = 0
from generate_series(1, 900) i;
select is(
  (select bool_and(octet_length(payload::text) < 65536) and count(*) > 1
     from fx_messages where topic = 'queue_health:odd'),
  true, 'queues whose names and numbers print long are split under 64 KiB too');
select is(
  (select count(*)::int from fx_messages m, jsonb_array_elements(m.payload -> 'queues') q
    where m.topic = 'queue_health:odd'),
  900, 'and every queue is in one of the parts');
select is(
  (select array_agg((payload ->> 'part')::int order by (payload ->> 'part')::int)
     = array(select generate_series(1, max((payload ->> 'parts')::int)))
   from fx_messages where topic = 'queue_health:acme'),
  true, 'parts are numbered 1..parts');
select is(
  (select count(*)::int from fx_messages m, jsonb_array_elements(m.payload -> 'queues') q
   where m.topic = 'queue_health:acme'),
  1200, 'together the parts carry every queue exactly once');

-- Section: a bulk load of history broadcasts only the latest snapshot
insert into fx_seen select id from realtime.messages where topic like 'queue_health:%' on conflict do nothing;
insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name, depth)
select '2026-11-26 13:00:00+00'::timestamptz + i * interval '10 seconds', 'acme', 'pgmq', 'pgmq', 'emails', i
from generate_series(0, 99) i;
select is((select count(*)::int from fx_messages where topic = 'queue_health:acme'), 1,
  'inserting 100 snapshots of history at once sends one message');
select is(
  (select (payload ->> 'captured_at') || ' depth ' || (payload -> 'queues' -> 0 ->> 'depth')
   from fx_messages where topic = 'queue_health:acme'),
  '2026-11-26T13:16:30+00:00 depth 99', 'and it carries the latest snapshot');

-- A failing or missing realtime.send() never fails the insert: local/test/realtime_faults_test.ts
-- (replacing Realtime's function takes its owner, which postgres is not).

select * from finish();
rollback;
