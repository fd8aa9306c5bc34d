-- Realtime: each insert into metric broadcasts one message per project (split under 64 KiB) to
-- the private topic queue_health:<project_id>, slim (v2, the default), full (v1) or not at all as
-- settings.realtime_payload says; only that project's members may receive it; a failing broadcast
-- never fails the insert.
begin;
select plan(34);

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

-- Section: the setting
select is((select realtime_payload from queue_health.settings), 'slim', 'the payload is slim by default');
select throws_ok(
  $$ update queue_health.settings set realtime_payload = 'fat' $$, '23514', null,
  'realtime_payload is slim, full or off');

-- Section: one message per project per statement (full: payload v1)
update queue_health.settings set realtime_payload = 'full';
create function pg_temp.insert_three(p_at timestamptz) returns void language sql as $$
  insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name,
    ready, in_flight, delayed, depth, depth_estimated, oldest_ready_age_s, enqueued, completed,
    failed, retried, dead_lettered, flow_status, drain_eta_s, poison)
  values
    (p_at, 'acme', 'pgmq', 'pgmq', 'emails', 4, 1, 2, 7, false, 12.5, 10, 8, 1, 0, 0, 'falling_behind', 'Infinity', 2),
    (p_at, 'acme', 'pgboss', 'pgboss', 'reports', 0, 0, 0, 0, false, null, 0, 0, 0, 0, 3, 'idle', 0, 0),
    (p_at, 'globex', 'pgmq', 'pgmq', 'orders', 1, 0, 0, 1, true, 1, 1, 0, 0, 0, 0, null, 123.5, null)
$$;
select pg_temp.insert_three('2026-11-26 12:00:00+00');

select results_eq(
  $$ select topic, event, private, extension from fx_messages
     where topic like 'queue_health:%' order by topic $$,
  $$ values ('queue_health:acme'::text, 'snapshot'::text, true, 'broadcast'::text),
            ('queue_health:globex', 'snapshot', true, 'broadcast') $$,
  'an insert of three rows for two projects sends one private snapshot per project');
select is(
  (select payload - 'queues' - 'id' from fx_messages where topic = 'queue_health:acme'),
  '{"v": 1, "project_id": "acme", "captured_at": "2026-11-26T12:00:00+00:00", "part": 1, "parts": 1}'::jsonb,
  'full: the envelope carries v 1, project_id, captured_at, part and parts');
select is(
  (select payload -> 'queues' -> 0 from fx_messages where topic = 'queue_health:acme'),
  '{"source": "pgboss", "source_schema": "pgboss", "queue": "reports", "depth": 0, "ready": 0,
    "in_flight": 0, "delayed": 0, "oldest_ready_age_s": null, "enqueued": 0, "completed": 0,
    "failed": 0, "dead_lettered": 3, "depth_estimated": false, "flow_status": "idle",
    "drain_eta_s": 0, "poison": 0}'::jsonb,
  'full: each queue is an object with every field of the row and the signals');
select is(
  (select payload -> 'queues' -> 1 -> 'drain_eta_s' from fx_messages where topic = 'queue_health:acme'),
  '"never"'::jsonb, 'full: a drain ETA of Infinity is "never"');
select is(
  (select jsonb_array_length(payload -> 'queues') from fx_messages where topic = 'queue_health:acme'),
  2, 'the acme message holds both acme queues');
select is(
  (select payload -> 'queues' -> 0 ->> 'queue' from fx_messages where topic = 'queue_health:globex'),
  'orders', 'the globex message holds only the globex queue');

-- Section: slim (payload v2, the default)
update queue_health.settings set realtime_payload = 'slim';
insert into fx_seen select id from realtime.messages where topic like 'queue_health:%' on conflict do nothing;
select pg_temp.insert_three('2026-11-26 12:00:05+00');
select is(
  (select count(*)::int from fx_messages where topic like 'queue_health:%'), 2,
  'slim: one message per project too');
select is(
  (select payload - 'queues' - 'id' from fx_messages where topic = 'queue_health:acme'),
  '{"v": 2, "project_id": "acme", "captured_at": "2026-11-26T12:00:05+00:00", "part": 1, "parts": 1}'::jsonb,
  'slim: the envelope carries v 2');
select is(
  (select payload -> 'queues' from fx_messages where topic = 'queue_health:acme'),
  '[["pgboss", "pgboss", "reports", 0, null, 0, 0, 0, false, "idle", 0, 0],
    ["pgmq", "pgmq", "emails", 7, 12.5, 10, 8, 1, false, "falling_behind", "never", 2]]'::jsonb,
  'slim: each queue is [source, source_schema, queue, depth, oldest_ready_age_s, enqueued, completed, failed, depth_estimated, flow_status, drain_eta_s, poison]');
select is(
  (select payload -> 'queues' -> 0 from fx_messages where topic = 'queue_health:globex'),
  '["pgmq", "pgmq", "orders", 1, 1, 1, 0, 0, true, null, 124, null]'::jsonb,
  'slim: the globex message holds only the globex queue (drain ETA in whole seconds, unknowns null)');

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

-- Section: off
update queue_health.settings set realtime_payload = 'off';
insert into fx_seen select id from realtime.messages where topic like 'queue_health:%' on conflict do nothing;
select pg_temp.insert_three('2026-11-26 12:00:06+00');
select is((select count(*)::int from fx_messages where topic like 'queue_health:%'), 0,
  'off: nothing is broadcast (and nothing stored in realtime.messages)');
select is((select count(*)::int from queue_health.metric where captured_at = '2026-11-26 12:00:06+00'), 3,
  'off: the snapshot rows are stored as ever');

-- Section: bytes per queue, 100 queues with varied numbers, as realtime.messages stores them
-- (pg_column_size of the stored payload: compressed once the row passes ~2 kB) and as jsonb
-- before storage.
create temporary table fx_bytes (mode text primary key, stored_per_queue numeric, raw_per_queue numeric)
  on commit drop;
create function pg_temp.measure(p_mode text, p_at timestamptz) returns void language plpgsql as $$
begin
  update queue_health.settings set realtime_payload = p_mode;
  insert into fx_seen select id from realtime.messages where topic = 'queue_health:bytes' on conflict do nothing;
  insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name,
    ready, in_flight, delayed, depth, depth_estimated, oldest_ready_age_s, enqueued, completed,
    failed, retried, dead_lettered, flow_status, drain_eta_s, poison)
  select p_at, 'bytes', 'pgmq', 'pgmq', 'queue_' || lpad(i::text, 3, '0'),
    (i * 7919) % 500, (i * 104729) % 40, (i * 31) % 7,
    (i * 7919) % 500 + (i * 104729) % 40 + (i * 31) % 7, false,
    round(((i * 2654435761) % 100000) / 1000.0, 3)::float8, (i * 613) % 300, (i * 577) % 290,
    (i * 13) % 5, 0, (i * 3) % 2,
    (enum_range(null::queue_health.flow_status))[1 + i % 6],
    case i % 4 when 0 then 'Infinity' when 1 then 0 else ((i * 7919) % 5000) + 0.37 end,
    case when i % 10 = 0 then i % 4 else 0 end
  from generate_series(1, 100) i;
  insert into fx_bytes
  select p_mode, pg_column_size(m.payload) / 100.0, pg_column_size(m.payload::text::jsonb) / 100.0
  from fx_messages m where m.topic = 'queue_health:bytes';
end $$;
select pg_temp.measure('slim', '2026-11-26 12:01:00+00');
select pg_temp.measure('full', '2026-11-26 12:01:10+00');
select diag('bytes a queue at 100 queues: ' || string_agg(mode || ' ' || raw_per_queue || ' raw, '
  || stored_per_queue || ' stored', '; ' order by mode)) from fx_bytes;
select cmp_ok((select raw_per_queue from fx_bytes where mode = 'slim'), '<=', 150::numeric,
  'slim: at most 150 bytes a queue before compression (with the signals)');
select cmp_ok((select raw_per_queue from fx_bytes where mode = 'full'), '>=', 300::numeric,
  'full: 300 bytes a queue or more before compression');
select cmp_ok((select stored_per_queue from fx_bytes where mode = 'slim'), '<=', 35::numeric,
  'slim: at most 35 bytes a queue as stored (100 queues: compressed)');
select cmp_ok(
  (select stored_per_queue from fx_bytes where mode = 'slim'), '<',
  (select 0.7 * stored_per_queue from fx_bytes where mode = 'full'),
  'slim stores under 70 % of full''s bytes at 100 queues');
update queue_health.settings set realtime_payload = 'slim';

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
-- character, the largest counts and ages that print longer as jsonb numbers than as floats; in
-- both forms.
create function pg_temp.insert_odd(p_mode text, p_at timestamptz) returns void language sql as $$
  update queue_health.settings set realtime_payload = p_mode;
  insert into fx_seen select id from realtime.messages where topic = 'queue_health:odd' on conflict do nothing;
  insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name, depth, ready,
    in_flight, delayed, enqueued, completed, failed, dead_lettered, oldest_ready_age_s, depth_estimated,
    flow_status, drain_eta_s, poison)
  select p_at, 'odd', 'pgboss', 'pg"boss' || chr(9), p_mode || i || repeat('"' || chr(1) || 'ü\', 10),
    9223372036854775807, 9223372036854775807, 9223372036854775807, 9223372036854775807, 9223372036854775807,
    9223372036854775807, 9223372036854775807, 9223372036854775807,
    case when i % 2 = 0 then 1e-7 else 123456789.123456789 end, i % 3 = 0,
    'falling_behind', case when i % 2 = 0 then 1e300 else 'Infinity' end, 9223372036854775807
  from generate_series(1, case when p_mode = 'full' then 900 else 1500 end) i;
$$;
select pg_temp.insert_odd('slim', '2026-11-26 12:00:10+00');
select is(
  (select bool_and(octet_length(payload::text) < 65536) and count(*) > 1
     from fx_messages where topic = 'queue_health:odd'),
  true, 'slim: queues whose names and numbers print long are split under 64 KiB too');
select is(
  (select count(*)::int from fx_messages m, jsonb_array_elements(m.payload -> 'queues') q
    where m.topic = 'queue_health:odd'),
  1500, 'and every queue is in one of the parts');
select pg_temp.insert_odd('full', '2026-11-26 12:00:11+00');
select is(
  (select bool_and(octet_length(payload::text) < 65536) and count(*) > 1
     from fx_messages where topic = 'queue_health:odd'),
  true, 'full: queues whose names and numbers print long are split under 64 KiB too');
select is(
  (select count(*)::int from fx_messages m, jsonb_array_elements(m.payload -> 'queues') q
    where m.topic = 'queue_health:odd'),
  900, 'and every queue is in one of the parts');
update queue_health.settings set realtime_payload = 'slim';
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
  (select (payload ->> 'captured_at') || ' depth ' || (payload -> 'queues' -> 0 ->> 3)
   from fx_messages where topic = 'queue_health:acme'),
  '2026-11-26T13:16:30+00:00 depth 99', 'and it carries the latest snapshot');

-- A failing or missing realtime.send() never fails the insert: local/test/realtime_faults_test.ts
-- (replacing Realtime's function takes its owner, which postgres is not).

select * from finish();
rollback;
