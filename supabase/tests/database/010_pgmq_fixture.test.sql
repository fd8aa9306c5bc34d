-- The pgmq test fixture (supabase/tests/fixtures/pgmq.sql) behaves as pgmq documents, in both the
-- 1.4.4 and the 1.5.x table layout, so that sampler tests against it mean something.
begin;
select plan(66);
set local client_min_messages = warning;

-- Section: layout of a 1.5.x queue (the default)
select pgmq.create('fx_jobs');

select has_table('pgmq', 'meta', 'pgmq.meta exists');
select is(
  (select row(is_partitioned, is_unlogged) from pgmq.meta where queue_name = 'fx_jobs'),
  row(false, false),
  'create() records the queue in pgmq.meta as neither partitioned nor unlogged'
);
select has_table('pgmq', 'q_fx_jobs', 'create() makes the queue table q_<name>');
select has_table('pgmq', 'a_fx_jobs', 'create() makes the archive table a_<name>');
select col_is_pk('pgmq', 'q_fx_jobs', 'msg_id', 'msg_id is the primary key of the queue table');
select col_type_is('pgmq', 'q_fx_jobs', 'msg_id', 'bigint', 'msg_id is a bigint');
select col_type_is('pgmq', 'q_fx_jobs', 'read_ct', 'integer', 'read_ct is an integer');
select col_type_is('pgmq', 'q_fx_jobs', 'enqueued_at', 'timestamp with time zone', 'enqueued_at is a timestamptz');
select col_type_is('pgmq', 'q_fx_jobs', 'vt', 'timestamp with time zone', 'vt is a timestamptz');
select col_type_is('pgmq', 'q_fx_jobs', 'message', 'jsonb', 'message is jsonb');
select col_type_is('pgmq', 'q_fx_jobs', 'headers', 'jsonb', 'a 1.5.x queue table has a jsonb headers column');
select col_type_is('pgmq', 'a_fx_jobs', 'headers', 'jsonb', 'a 1.5.x archive table has a jsonb headers column');
select col_type_is('pgmq', 'a_fx_jobs', 'archived_at', 'timestamp with time zone', 'the archive has archived_at');
select is(
  (select attidentity from pg_attribute where attrelid = 'pgmq.q_fx_jobs'::regclass and attname = 'msg_id'),
  'a'::"char",
  'msg_id is generated always as identity'
);
select isnt(
  pg_get_serial_sequence('pgmq.q_fx_jobs', 'msg_id'), null,
  'msg_id has a sequence (what total_messages reads)'
);
select has_index('pgmq', 'q_fx_jobs', 'q_fx_jobs_vt_idx', array['vt'], 'the queue table has the vt index');
select has_index('pgmq', 'a_fx_jobs', 'archived_at_idx_fx_jobs', array['archived_at'], 'the archive is indexed on archived_at');
select lives_ok($$ select pgmq.create('fx_jobs') $$, 'create() of an existing queue is a no-op');

-- Section: send and read (visibility timeout, read_ct)
select results_eq(
  $$ select * from pgmq.send_batch('fx_jobs', array['{"n": 1}', '{"n": 2}', '{"n": 3}']::jsonb[]) $$,
  $$ values (1::bigint), (2), (3) $$,
  'send_batch() returns consecutive msg_ids in order'
);
select is(
  (select * from pgmq.send('fx_jobs', '{"n": 4}', 3600)), 4::bigint,
  'send() with a delay returns the next msg_id'
);
select is(
  (select * from pgmq.send('fx_jobs', '{"n": 5}', '{"trace": "t-5"}'::jsonb)), 5::bigint,
  'send() with headers works on a 1.5.x queue'
);
select results_eq(
  $$ select msg_id, read_ct, message from pgmq.read('fx_jobs', 30, 2) $$,
  $$ values (1::bigint, 1, '{"n": 1}'::jsonb), (2::bigint, 1, '{"n": 2}'::jsonb) $$,
  'read() returns the oldest visible messages first, qty at most, with read_ct incremented'
);
select ok(
  (select bool_and(vt > clock_timestamp() + interval '25 seconds') from pgmq.q_fx_jobs where msg_id in (1, 2)),
  'read() moves vt of what it returned vt seconds into the future'
);
select results_eq(
  $$ select msg_id from pgmq.read('fx_jobs', 30, 10) $$,
  $$ values (3::bigint), (5::bigint) $$,
  'messages being worked on and delayed messages are invisible to read()'
);
select is(
  (select headers from pgmq.q_fx_jobs where msg_id = 5), '{"trace": "t-5"}'::jsonb,
  'headers are stored with the message'
);
select is(
  (select count(*)::int from pgmq.read('fx_jobs', 30, 10)), 0,
  'a second read() within the visibility timeout returns nothing'
);
select is(
  (select msg_id from pgmq.set_vt('fx_jobs', 1, 0)), 1::bigint,
  'set_vt() returns the message it changed'
);
select results_eq(
  $$ select msg_id, read_ct from pgmq.read('fx_jobs', 30, 10) $$,
  $$ values (1::bigint, 2) $$,
  'after set_vt(…, 0) the message is visible again and a redelivery shows as read_ct = 2'
);
select is(
  (select count(*)::int from pgmq.set_vt('fx_jobs', 999, 0)), 0,
  'set_vt() of an unknown msg_id returns nothing'
);
select results_eq(
  $$ select msg_id from pgmq.read('fx_jobs', 30, 10, '{"n": 2}') $$,
  $$ select null::bigint where false $$,
  'read() with a condition only considers matching visible messages'
);

-- Section: archive and delete
select ok(pgmq.archive('fx_jobs', 1::bigint), 'archive() of an existing message returns true');
select is(
  (select count(*)::int from pgmq.q_fx_jobs where msg_id = 1), 0,
  'archive() removes the message from the queue table'
);
select results_eq(
  $$ select msg_id, read_ct, message, archived_at is not null from pgmq.a_fx_jobs $$,
  $$ values (1::bigint, 2, '{"n": 1}'::jsonb, true) $$,
  'archive() moves the message with its read_ct into a_<name> and stamps archived_at'
);
select results_eq(
  $$ select * from pgmq.archive('fx_jobs', array[2, 3, 999]::bigint[]) order by 1 $$,
  $$ values (2::bigint), (3::bigint) $$,
  'archive() of an array returns the msg_ids it archived'
);
select is(
  (select count(*)::int from pgmq.a_fx_jobs where msg_id = 5), 0,
  'messages not archived are not in the archive'
);
select ok(pgmq.delete('fx_jobs', 4::bigint), 'delete() of an existing message returns true');
select ok(not pgmq.delete('fx_jobs', 4::bigint), 'delete() of a missing message returns false');
select results_eq(
  $$ select * from pgmq.delete('fx_jobs', array[5, 6]::bigint[]) $$,
  $$ values (5::bigint) $$,
  'delete() of an array returns the msg_ids it deleted'
);
select is((select count(*)::int from pgmq.q_fx_jobs), 0, 'the queue table is empty after archive and delete');

-- Section: metrics and metrics_all
select pgmq.send_batch('fx_jobs', array['{}', '{}']::jsonb[]);
select pgmq.send('fx_jobs', '{}', 600);
select results_eq(
  $$ select queue_length, queue_visible_length, total_messages from pgmq.metrics('fx_jobs') $$,
  $$ values (3::bigint, 2::bigint, 8::bigint) $$,
  'metrics() counts messages held, visible ones, and messages ever sent (from the sequence)'
);
select pgmq.create('fx_other');
select pgmq.send('fx_other', '{}');
select results_eq(
  $$ select queue_name, queue_length, total_messages from pgmq.metrics_all()
     where queue_name like 'fx\_%' order by queue_name $$,
  $$ values ('fx_jobs'::text, 3::bigint, 8::bigint), ('fx_other', 1, 1) $$,
  'metrics_all() reports every queue in pgmq.meta'
);
select pgmq.create('fx_empty');
select results_eq(
  $$ select queue_length, total_messages, oldest_msg_age_sec from pgmq.metrics('fx_empty') $$,
  $$ values (0::bigint, 0::bigint, null::integer) $$,
  'an empty queue that never got a message reports 0 messages ever sent and no age'
);

-- Section: 1.4.4 layout
set local pgmq_fixture.version = '1.4.4';
select pgmq.create('fx_old');
select hasnt_column('pgmq', 'q_fx_old', 'headers', 'a 1.4.4 queue table has no headers column');
select hasnt_column('pgmq', 'a_fx_old', 'headers', 'a 1.4.4 archive table has no headers column');
select is(
  (select * from pgmq.send('fx_old', '{"v": 1}')), 1::bigint,
  'send() without headers works on a 1.4.4 queue'
);
select throws_like(
  $$ select pgmq.send('fx_old', '{}', '{"h": 1}'::jsonb) $$,
  '%1.4 layout%',
  'send() with headers to a 1.4.4 queue fails with a message naming the layout'
);
select ok(
  (select headers is null and read_ct = 1 from pgmq.read('fx_old', 30, 1)),
  'read() of a 1.4.4 queue returns headers as null'
);
select ok(pgmq.archive('fx_old', 1::bigint), 'archive() works on a 1.4.4 queue');
set local pgmq_fixture.version = '2.0';
select throws_like(
  $$ select pgmq.create('fx_bad_version') $$,
  '%pgmq_fixture.version%2.0%',
  'an unsupported pgmq_fixture.version is refused, naming the setting and the value'
);
reset pgmq_fixture.version;

-- Section: queue names as pgmq documents them
select pgmq.create('Fx_Mixed');
select ok(
  exists (select 1 from pgmq.meta where queue_name = 'Fx_Mixed')
    and to_regclass('pgmq.q_fx_mixed') is not null,
  'pgmq.meta keeps the name as given while the tables use it lower-cased'
);
select is(
  (select count(*)::int from pgmq.send('fx_mixed', '{}')), 1,
  'a queue can be addressed by either casing'
);
select lives_ok(
  $$ select pgmq.create('fx with "quotes" and spaces ü') $$,
  'double quotes, spaces and non-ASCII letters are allowed'
);
select is(
  (select msg_id from pgmq.read('fx with "quotes" and spaces ü', 30, 1)), null,
  'such a queue can be read (empty)'
);
select throws_like($$ select pgmq.create('fx''quote') $$, '%invalid characters%', 'a single quote is refused');
select throws_like($$ select pgmq.create('fx;drop') $$, '%invalid characters%', 'a semicolon is refused');
select throws_like($$ select pgmq.create('fx--c') $$, '%invalid characters%', 'a double dash is refused');
select throws_like($$ select pgmq.create('fx$x') $$, '%invalid characters%', 'a dollar sign is refused');
select lives_ok(
  format('select pgmq.create(%L)', 'fx_' || repeat('x', 44)),
  'a 47-character name is accepted'
);
select throws_like(
  format('select pgmq.create(%L)', 'fx_' || repeat('x', 45)),
  '%too long%47%',
  'a 48-character name is refused'
);

-- Section: unlogged and partitioned-like queues, drop_queue
select pgmq.create_unlogged('fx_fast');
select ok(
  (select relpersistence = 'u' from pg_class where oid = 'pgmq.q_fx_fast'::regclass)
    and (select is_unlogged from pgmq.meta where queue_name = 'fx_fast'),
  'create_unlogged() makes an unlogged queue table and records is_unlogged'
);
select pgmq._fixture_create_partitioned_like('fx_part', 10, 2);
select ok(
  (select relkind = 'p' from pg_class where oid = 'pgmq.q_fx_part'::regclass)
    and (select is_partitioned from pgmq.meta where queue_name = 'fx_part'),
  'a partitioned-like queue is a partitioned table and meta says is_partitioned'
);
select ok(
  not exists (select 1 from pg_index where indrelid = 'pgmq.q_fx_part'::regclass and indisprimary)
    and to_regclass('pgmq.q_fx_part_vt_idx') is null,
  'a partitioned-like queue has no primary key and no vt index'
);
select is(
  (select count(*)::int from pgmq.send_batch('fx_part',
    array(select jsonb_build_object('i', g) from generate_series(1, 25) g))), 25,
  'messages beyond the premade partitions land in the default partition'
);
select ok(pgmq.drop_queue('fx_jobs'), 'drop_queue() returns true for an existing queue');
select ok(
  to_regclass('pgmq.q_fx_jobs') is null and to_regclass('pgmq.a_fx_jobs') is null
    and not exists (select 1 from pgmq.meta where queue_name = 'fx_jobs'),
  'drop_queue() removes both tables and the meta row'
);
select ok(not pgmq.drop_queue('fx_jobs'), 'drop_queue() of a missing queue returns false');

select * from finish();
rollback;
