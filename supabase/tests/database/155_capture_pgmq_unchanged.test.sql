-- capture() with the real pgmq sampler on the fixture: a queue unchanged since the previous
-- capture is repeated without reading its table; a write in this very transaction (not yet in the
-- shared statistics) or settings.unchanged_reread_interval = 0 makes it read again.
begin;
select plan(12);

select pgmq.create('qh_unchanged');
select pgmq.send('qh_unchanged', '{}'::jsonb) from generate_series(1, 3);

-- After the sends (their vt is the clock at send time, later than now() in this transaction).
create temporary table fx_t as select clock_timestamp() as t0;

select is(
  (select (queue_health.capture((select t0 from fx_t)) ->> 'unchanged')::int),
  0, 'first sight: the queue is read');
select is(
  (select (queue_health.capture((select t0 + interval '5 seconds' from fx_t)) ->> 'unchanged')::int),
  1, 'nothing happened since: the queue is repeated unread');
select is(
  (select depth from queue_health.metric
    where queue_name = 'qh_unchanged' and captured_at = (select t0 + interval '5 seconds' from fx_t)),
  3::bigint, 'with the same depth');
select ok(
  (select (cursor ->> 'read_at')::timestamptz = (select t0 from fx_t)
     from queue_health.queue where queue_name = 'qh_unchanged'),
  'and the cursor keeps when the table was last read');

select ok(
  (select (cursor ->> 'rel')::oid = 'pgmq.q_qh_unchanged'::regclass::oid
      and (cursor ->> 'seq')::oid = pg_catalog.pg_get_serial_sequence('pgmq.q_qh_unchanged', 'msg_id')::regclass::oid
     from queue_health.queue where queue_name = 'qh_unchanged'),
  'the cursor keeps the table and its msg_id sequence, so the check needs no catalog lookup');
-- A cursor whose sequence is no longer there (say, the identity was recreated): the check fails,
-- every queue is read instead, and the cursor has the current sequence again.
update queue_health.queue set cursor = jsonb_set(cursor, '{seq}', '1') where queue_name = 'qh_unchanged';
select is(
  (select r ->> 'status' || '/' || (r ->> 'unchanged')
     from (select queue_health.capture((select t0 + interval '5500 milliseconds' from fx_t)) as r) x),
  'ok/0', 'a stale sequence in the cursor: the queue is read, the capture is ok');
select is(
  (select (cursor ->> 'seq')::oid from queue_health.queue where queue_name = 'qh_unchanged'),
  pg_catalog.pg_get_serial_sequence('pgmq.q_qh_unchanged', 'msg_id')::regclass::oid,
  'and its cursor has the current sequence again');

-- A delete in this transaction: the statistics do not have it yet, this session's counters do.
select pgmq.delete('qh_unchanged', 1::bigint);
select is(
  (select (queue_health.capture((select t0 + interval '6 seconds' from fx_t)) ->> 'unchanged')::int),
  0, 'a write of this session makes the queue read again');
select is(
  (select array[depth, completed] from queue_health.metric
    where queue_name = 'qh_unchanged' and captured_at = (select t0 + interval '6 seconds' from fx_t)),
  array[2, 1]::bigint[], 'and the snapshot has it');

update queue_health.settings set unchanged_reread_interval = '0';
select is(
  (select (queue_health.capture((select t0 + interval '7 seconds' from fx_t)) ->> 'unchanged')::int),
  0, 'unchanged_reread_interval 0: every queue is read on every capture');
-- _sample_pgmq() hands each queue's indexes, columns, archive and density to the per-queue
-- function; called without them, it looks them up itself, with the same result.
select is(
  (select row(x.ready, x.in_flight, x.delayed, x.depth, x.depth_estimated, x.cursor ->> 'scan',
              x.cursor ->> 'exact')::text
     from queue_health._sample_pgmq_queue('qh_unchanged', 'pgmq.q_qh_unchanged'::regclass,
       pg_catalog.pg_get_serial_sequence('pgmq.q_qh_unchanged', 'msg_id')::regclass, 1, 1, null,
       (select t0 + interval '8 seconds' from fx_t), 10000, null) x),
  (select row(x.ready, x.in_flight, x.delayed, x.depth, x.depth_estimated, x.cursor ->> 'scan',
              x.cursor ->> 'exact')::text
     from queue_health._sample_pgmq((select t0 + interval '8 seconds' from fx_t)) x
    where x.queue_name = 'qh_unchanged'),
  'the per-queue sampler called without the catalog facts finds the same');
select throws_ok(
  $$ update queue_health.settings set unchanged_reread_interval = '-1 second' $$,
  '23514', null, 'a negative re-read interval is refused');

select * from finish();
rollback;
