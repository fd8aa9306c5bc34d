-- Poison messages (issue 22) with the real pgmq sampler on the fixture: messages read
-- settings.poison_read_count times or more are counted (ready or in flight) and the oldest one's
-- age is in the capture's metric row; above exact_count_limit they are estimated; an unchanged
-- queue repeats them; a queue with no redelivery and no poison is not probed again.
begin;
select plan(18);

update queue_health.settings set unchanged_reread_interval = '0';

-- qh_poison: five messages; 1 and 2 read three times (vt 0: visible again at once), then 1 once
-- more for an hour: 1 is poison in flight (read_ct 4), 2 poison and ready (read_ct 3).
select pgmq.create('qh_poison');
select pgmq.send('qh_poison', jsonb_build_object('n', i)) from generate_series(1, 5) i;
select count(*) from pgmq.read('qh_poison', 0, 2);
select count(*) from pgmq.read('qh_poison', 0, 2);
select count(*) from pgmq.read('qh_poison', 0, 2);
select count(*) from pgmq.read('qh_poison', 3600, 1);
create temporary table fx_t as select clock_timestamp() as t0;

select is(
  (select array_agg(read_ct order by msg_id) from pgmq.q_qh_poison),
  array[4, 3, 0, 0, 0], 'fixture: read counts 4, 3, 0, 0, 0');
select is(
  (select queue_health.capture((select t0 + interval '10 seconds' from fx_t)) ->> 'status'),
  'ok', 'capture ok');
select is(
  (select array[ready, in_flight, poison] from queue_health.metric
    where queue_name = 'qh_poison' and captured_at = (select t0 + interval '10 seconds' from fx_t)),
  array[4, 1, 2]::bigint[], 'two poison messages: one ready, one in flight');
select is(
  (select oldest_poison_age_s from queue_health.metric
    where queue_name = 'qh_poison' and captured_at = (select t0 + interval '10 seconds' from fx_t)),
  (select extract(epoch from (select t0 + interval '10 seconds' from fx_t) - min(enqueued_at))::float8
     from pgmq.q_qh_poison where read_ct >= 3),
  'oldest_poison_age_s is the age of the oldest poison message since it was enqueued');
select is(
  (select array[poison::float8, oldest_poison_age_s] from queue_health.queue where queue_name = 'qh_poison'),
  (select array[poison::float8, oldest_poison_age_s] from queue_health.metric
    where queue_name = 'qh_poison' and captured_at = (select t0 + interval '10 seconds' from fx_t)),
  'the registry copies them');
select is(
  (select array[cursor ->> 'poison_estimated', coalesce(cursor ->> 'poison_sample', 'none')]
     from queue_health.queue where queue_name = 'qh_poison'),
  array['false', 'none'], 'below the bound: counted, not flagged estimated');

update queue_health.settings set poison_read_count = 4;
select queue_health.capture((select t0 + interval '11 seconds' from fx_t));
select is(
  (select poison from queue_health.metric
    where queue_name = 'qh_poison' and captured_at = (select t0 + interval '11 seconds' from fx_t)),
  1::bigint, 'settings.poison_read_count 4: only the message read four times');
update queue_health.settings set poison_read_count = 3;

-- Above the bound: estimated (the share among a block sample's rows times the depth).
update queue_health.settings set exact_count_limit = 2;
select queue_health.capture((select t0 + interval '12 seconds' from fx_t));
select is(
  (select array[depth_estimated::int, poison] from queue_health.metric
    where queue_name = 'qh_poison' and captured_at = (select t0 + interval '12 seconds' from fx_t)),
  array[1, 2]::bigint[], 'above exact_count_limit: estimated (here the sample holds every row)');
select is(
  (select cursor ->> 'scan' from queue_health.queue where queue_name = 'qh_poison'),
  'vt_index', 'counted up to the bound through the vt index, the rest from the sample');
select is(
  (select array[cursor ->> 'poison_estimated', cursor ->> 'poison_sample']
     from queue_health.queue where queue_name = 'qh_poison'),
  array['true', '5'], 'above the bound: flagged estimated, with the sample''s size (its 5 rows)');
update queue_health.settings set exact_count_limit = 10000;

-- Unchanged since: the snapshot, poison included, is repeated without a read.
update queue_health.settings set unchanged_reread_interval = '1 minute';
select queue_health.capture((select t0 + interval '13 seconds' from fx_t));
select is(
  (select (queue_health.capture((select t0 + interval '20 seconds' from fx_t)) ->> 'unchanged')::int),
  1, 'nothing happened since: both queues repeated unread');
select is(
  (select array[poison::float8, oldest_poison_age_s] from queue_health.metric
    where queue_name = 'qh_poison' and captured_at = (select t0 + interval '20 seconds' from fx_t)),
  (select array[2, extract(epoch from (select t0 + interval '20 seconds' from fx_t) - min(enqueued_at))::float8]
     from pgmq.q_qh_poison where read_ct >= 3),
  'the unchanged queue repeats its poison, which has aged');

-- qh_clean: nothing read twice. First sight probes the ready messages; later reads do not while
-- no redelivery shows (their poison_probe_at stays), until one does. Captures are slow on a busy
-- machine: each one's time is taken after the writes before it (fx_c), so its messages are due.
create temporary table fx_c (label text primary key, at timestamptz not null);
create or replace function pg_temp.at(p_label text) returns timestamptz language sql stable
as $$ select at from fx_c where label = p_label $$;
create or replace function pg_temp.mark(p_label text) returns timestamptz language sql
as $$ insert into fx_c values (p_label, greatest(clock_timestamp(), (select t0 + interval '20 seconds' from fx_t),
                                             (select max(at) from fx_c)) + interval '1 second')
      returning at $$;
select pgmq.create('qh_clean');
select pgmq.send('qh_clean', '{}'::jsonb) from generate_series(1, 4);
select count(*) from pgmq.read('qh_clean', 3600, 1);
select queue_health.capture(pg_temp.mark('c1'));
select is(
  (select array[poison::text, cursor ->> 'poison_probe_at'] from queue_health.queue where queue_name = 'qh_clean'),
  array['0', to_jsonb(pg_temp.at('c1')) #>> '{}'],
  'first sight: probed, no poison');
select pgmq.send('qh_clean', '{}'::jsonb);
select is(
  (select (queue_health.capture(pg_temp.mark('c2')) ->> 'unchanged')::int),
  1, 'a send: qh_clean is read again (only qh_poison is repeated)');
select is(
  (select array[poison::text, cursor ->> 'poison_probe_at', cursor ->> 'read_at'] from queue_health.queue where queue_name = 'qh_clean'),
  array['0', to_jsonb(pg_temp.at('c1')) #>> '{}', to_jsonb(pg_temp.at('c2')) #>> '{}'],
  'read, but no redelivery and no poison before: its ready messages were not probed again');
-- A redelivery: the in-flight message's visibility ends and it is read again (read_ct 2).
update pgmq.q_qh_clean set vt = clock_timestamp() - interval '1 second' where read_ct = 1;
select count(*) from pgmq.read('qh_clean', 3600, 1);
select queue_health.capture(pg_temp.mark('c3'));
select is(
  (select array[poison::text, cursor ->> 'poison_probe_at', cursor ->> 'redelivery_seen'] from queue_health.queue where queue_name = 'qh_clean'),
  array['0', to_jsonb(pg_temp.at('c3')) #>> '{}', 'true'],
  'a message read twice is in flight: the ready messages are probed again');
-- Read a third time (vt 0: ready again at once): poison.
update pgmq.q_qh_clean set vt = clock_timestamp() - interval '1 second' where read_ct = 2;
select count(*) from pgmq.read('qh_clean', 0, 1);
select queue_health.capture(pg_temp.mark('c4'));
select is(
  (select array[ready, in_flight, poison] from queue_health.metric
    where queue_name = 'qh_clean' and captured_at = pg_temp.at('c4')),
  array[5, 0, 1]::bigint[], 'read a third time and ready again: poison');
select is(
  (select oldest_ready_age_s > 0 and oldest_poison_age_s > 0 from queue_health.metric
    where queue_name = 'qh_clean' and captured_at = pg_temp.at('c4')),
  true, 'oldest_ready_age_s still counts the poison message (reported apart, not left out)');

select * from finish();
rollback;
