-- The running totals queue_status carries for Prometheus' counters (queue_health_*_total): real
-- captures of the pgmq fixture, p_now a minute apart. A total only ever grows while the queue
-- exists, also when the queue is dropped and created again under the same name (its registry row
-- and totals stay), and a member of another project does not see it.
begin;
select plan(8);
set local timezone = 'UTC';
select queue_health.ensure_partitions(now() - interval '1 hour', 1);
update queue_health.settings set capture_interval = '1 minute', stale_after_intervals = 1000;

create temporary table fx_users (label text primary key, id uuid) on commit drop;
grant select on fx_users to authenticated;
insert into fx_users values ('pia', tests.create_user('pia@prom.test')), ('oli', tests.create_user('oli@other.test'));
insert into queue_health.project (id, name) values ('prom', 'Prom'), ('other', 'Other');
insert into queue_health.project_member (project_id, user_id, role)
select 'prom', id, 'viewer'::queue_health.member_role from fx_users where label = 'pia'
union all select 'other', id, 'viewer' from fx_users where label = 'oli';
insert into queue_health.project_queue_map (project_id, source, queue_pattern) values ('prom', 'pgmq', 'pt\_%');

create temporary table fx_t on commit drop as
  select date_trunc('second', now()) - interval '10 minutes' as t0;
create temporary table fx_seen (step int primary key, enq bigint, done bigint, visible boolean) on commit drop;

create function pg_temp.seen(p_step int) returns void language sql as $$
  insert into fx_seen
  select p_step, max(s.cum_enqueued), max(s.cum_completed), count(s.*) > 0
  from (select 1) one
  left join queue_health.queue_status s on s.queue_name = 'pt_orders';
$$;

select pgmq.create('pt_orders');
select queue_health.capture((select t0 from fx_t));
select pg_temp.seen(0);
-- 5 in, then 3 of them done
select pgmq.send('pt_orders', '{}'::jsonb) from generate_series(1, 5);
select queue_health.capture((select t0 + interval '1 minute' from fx_t));
select pg_temp.seen(1);
select pgmq.delete('pt_orders', (select array_agg(msg_id) from (
  select msg_id from pgmq.q_pt_orders order by msg_id limit 3) x));
select queue_health.capture((select t0 + interval '2 minutes' from fx_t));
select pg_temp.seen(2);
-- dropped: gone from the view; created again with 2 new messages: back, totals carry on
select pgmq.drop_queue('pt_orders');
select queue_health.capture((select t0 + interval '3 minutes' from fx_t));
select pg_temp.seen(3);
select pgmq.create('pt_orders');
select pgmq.send('pt_orders', '{}'::jsonb) from generate_series(1, 2);
select queue_health.capture((select t0 + interval '4 minutes' from fx_t));
select pg_temp.seen(4);
select pgmq.delete('pt_orders', (select array_agg(msg_id) from pgmq.q_pt_orders));
select queue_health.capture((select t0 + interval '5 minutes' from fx_t));
select pg_temp.seen(5);

select is(
  (select array_agg(attname::text order by attnum) from pg_attribute
    where attrelid = 'queue_health.queue_status'::regclass and attnum > 41 and not attisdropped),
  array['cum_enqueued', 'cum_completed', 'cum_failed', 'cum_retried', 'cum_dead_lettered'],
  'queue_status appends the running totals after the signals');
select results_eq(
  $$ select step, enq, done from fx_seen where step in (0, 1, 2) order by step $$,
  $$ values (0, 0::bigint, 0::bigint), (1, 5, 0), (2, 5, 3) $$,
  'the totals count what was enqueued and completed since the queue was first seen');
select is((select visible from fx_seen where step = 3), false, 'a dropped queue leaves the view');
select results_eq(
  $$ select step, enq, done from fx_seen where step in (4, 5) order by step $$,
  $$ values (4, 7::bigint, 3::bigint), (5, 7, 5) $$,
  'created again under the same name, the queue''s totals carry on from where they were');
select is(
  (select bool_and(coalesce(n.enq >= p.enq and n.done >= p.done, true))
     from fx_seen n join fx_seen p on p.step = n.step - 1 where n.visible and p.visible),
  true, 'no total ever went down between two snapshots the view showed');
select is(
  (select array[cum_failed, cum_retried, cum_dead_lettered] from queue_health.queue_status
    where queue_name = 'pt_orders'),
  array[0, 0, 0]::bigint[], 'counts pgmq does not have are 0, not null');

set local role authenticated;
select set_config('request.jwt.claims', json_build_object('role', 'authenticated',
  'sub', (select id from fx_users where label = 'pia'))::text, true);
select is((select cum_enqueued from queue_health.queue_status where queue_name = 'pt_orders'),
  7::bigint, 'a member of the project reads the totals');
select set_config('request.jwt.claims', json_build_object('role', 'authenticated',
  'sub', (select id from fx_users where label = 'oli'))::text, true);
select is((select count(*) from queue_health.queue_status where queue_name = 'pt_orders'),
  0::bigint, 'a member of another project does not');
reset role;

select * from finish();
rollback;
