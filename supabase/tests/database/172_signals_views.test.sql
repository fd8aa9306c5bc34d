-- The signals where people read them: queue_status (rates, drain ETA, expected wait, flow status
-- feeding the status, latency objective with burn rate and budget), queue_history() (raw and in
-- buckets, rolled-up and on the fly alike), the docs/sql.md query "which queues will breach their
-- objective today?", and RLS: a member of another project sees none of it. Real captures of the
-- pgmq fixture, p_now stepping a minute at a time over the last 13 minutes.
begin;
select plan(23);
set local timezone = 'UTC';
select queue_health.ensure_partitions(now() - interval '1 hour', 1);
delete from queue_health.rollup_watermark;
update queue_health.settings set capture_interval = '1 minute', stale_after_intervals = 3,
  warning_oldest_ready_age_s = 1e9, critical_oldest_ready_age_s = 1e9, warning_error_rate = 1;

-- Section: fixture: three queues of project sigs, captured every minute from t0 to t0 + 12 min
create temporary table fx_users (label text primary key, id uuid) on commit drop;
grant select on fx_users to authenticated;
insert into fx_users values ('sia', tests.create_user('sia@sigs.test')), ('oli', tests.create_user('oli@other.test'));
insert into queue_health.project (id, name) values ('sigs', 'Sigs'), ('other', 'Other');
insert into queue_health.project_member (project_id, user_id, role)
select 'sigs', id, 'viewer'::queue_health.member_role from fx_users where label = 'sia'
union all select 'other', id, 'viewer' from fx_users where label = 'oli';
insert into queue_health.project_queue_map (project_id, source, queue_pattern) values ('sigs', 'pgmq', 'sg\_%');

create temporary table fx_t on commit drop as
  select date_trunc('second', now()) - interval '13 minutes' as t0;
grant select on fx_t to authenticated;
select pgmq.create('sg_stop');   -- 5 messages nobody takes: stopped
select pgmq.create('sg_drain');  -- 30 messages; each minute 2 done, 1 new: ok, draining
select pgmq.create('sg_grow');   -- each minute 3 new, 1 done: falling behind
select pgmq.send('sg_stop', '{}'::jsonb) from generate_series(1, 5);
select pgmq.send('sg_drain', '{}'::jsonb) from generate_series(1, 30);
-- sent "a minute before t0" (the captures' clock runs in the past)
update pgmq.q_sg_stop set enqueued_at = (select t0 from fx_t) - interval '1 minute', vt = (select t0 from fx_t) - interval '1 minute';
update pgmq.q_sg_drain set enqueued_at = (select t0 from fx_t) - interval '1 minute', vt = (select t0 from fx_t) - interval '1 minute';
-- Objectives: sg_stop's oldest message may wait 2 minutes, 99 % of a day; sg_drain's an hour.
insert into queue_health.queue_objective (project_id, source, queue_name, target_wait_s, objective, period, created_at)
values ('sigs', 'pgmq', 'sg_stop', 120, 0.99, '1 day', (select t0 from fx_t) - interval '1 minute'),
       ('sigs', 'pgmq', 'sg_drain', 3600, 0.99, '30 days', (select t0 from fx_t) - interval '1 minute');

do $$
declare
  v_at timestamptz;
begin
  for i in 0..12 loop
    v_at := (select t0 from fx_t) + i * interval '1 minute';
    if i > 0 then
      perform pgmq.delete('sg_drain', (select array_agg(msg_id) from (
        select msg_id from pgmq.q_sg_drain order by msg_id limit 2) x));
      perform pgmq.send('sg_drain', '{}'::jsonb);
      perform pgmq.send('sg_grow', '{}'::jsonb) from generate_series(1, 3);
      perform pgmq.delete('sg_grow', (select min(msg_id) from pgmq.q_sg_grow));
      update pgmq.q_sg_drain set enqueued_at = v_at, vt = v_at where enqueued_at > v_at;
      update pgmq.q_sg_grow set enqueued_at = v_at, vt = v_at where enqueued_at > v_at;
    end if;
    perform queue_health.capture(v_at);
    -- roll up the first minutes half way, so history reads rollups and raw rows
    if i = 7 then
      perform queue_health.rollup(v_at);
    end if;
  end loop;
end $$;

-- Section: queue_status
select results_eq(
  $$ select queue_name, flow_status::text, status, ready from queue_health.queue_status
     where queue_name like 'sg\_%' order by queue_name $$,
  $$ values ('sg_drain'::text, 'ok'::text, 'ok'::text, 18::bigint),
            ('sg_grow', 'falling_behind', 'warning', 24),
            ('sg_stop', 'stopped', 'critical', 5) $$,
  'flow status after 12 minutes: stopped is critical, falling_behind a warning, ok stays ok');
select is(
  (select array[drain_eta_s, expected_wait_s] from queue_health.queue_status where queue_name = 'sg_stop'),
  array['Infinity', 'Infinity']::float8[], 'nothing taken: drain ETA and expected wait are Infinity (never)');
select is(
  (select drain_eta_s from queue_health.queue_status where queue_name = 'sg_grow'),
  'Infinity'::float8, 'a growing backlog never drains');
-- sg_drain: 2 done, 1 new a minute since the first minute: the smoothed rates are 2/60 and 1/60.
select results_eq(
  $$ select round(in_rate::numeric, 6), round(out_rate::numeric, 6), round(drain_eta_s::numeric, 3),
            round(expected_wait_s::numeric, 3)
     from queue_health.queue_status where queue_name = 'sg_drain' $$,
  $$ values (round(1 / 60.0, 6), round(2 / 60.0, 6), 1080.000, 540.000) $$,
  'a draining queue: rates per second, drain ETA ready / (out - in) = 18 min, expected wait ready / out');
select ok(
  (select last_enqueue_at = (select t0 + interval '12 minutes' from fx_t)
      and last_dequeue_at = (select t0 + interval '12 minutes' from fx_t)
     from queue_health.queue_status where queue_name = 'sg_drain'),
  'last_enqueue_at and last_dequeue_at are the latest capture that saw work come and go');
select ok(
  (select last_enqueue_at is null and last_dequeue_at is null from queue_health.queue_status where queue_name = 'sg_stop'),
  'a queue nobody sent to or took from since it was first seen has neither');
-- sg_stop: 12 intervals of 60 s under the objective; from the 2nd on (the oldest message 180 s
-- old and more) 11 missed it: burn over the hour (660 / 3600) / 0.01 (the 48 minutes before the
-- first snapshot count as good), budget 1 - 660 / (0.01 x 86400).
select results_eq(
  $$ select slo_target_wait_s, slo_objective, slo_period_s, round(slo_burn_rate_1h::numeric, 6),
            round(slo_budget_remaining::numeric, 6)
     from queue_health.queue_status where queue_name = 'sg_stop' $$,
  $$ values (120::float8, 0.99::float8, 86400::float8, round(660 / 3600.0 / 0.01, 6), round(1 - 660 / 864.0, 6)) $$,
  'objective, 1-hour burn rate and remaining budget of a queue that missed its objective');
select results_eq(
  $$ select slo_burn_rate_1h, slo_budget_remaining from queue_health.queue_status where queue_name = 'sg_drain' $$,
  $$ values (0::float8, 1::float8) $$, 'a queue within its objective burns nothing');
select results_eq(
  $$ select slo_target_wait_s, slo_objective, slo_burn_rate_1h, slo_budget_remaining, slo_period_s
     from queue_health.queue_status where queue_name = 'sg_grow' $$,
  $$ values (null::float8, null::float8, null::float8, null::float8, null::float8) $$,
  'without an objective the objective columns are null');
select is(
  (select array_agg(attname::text order by attnum) from pg_attribute
    where attrelid = 'queue_health.queue_status'::regclass and attnum between 1 and 41),
  array['project_id', 'source', 'source_schema', 'queue_name', 'captured_at', 'snapshot_age_s',
    'ready', 'in_flight', 'delayed', 'depth', 'depth_estimated', 'oldest_ready_age_s', 'enqueued',
    'completed', 'failed', 'retried', 'dead_lettered', 'interval_s', 'enqueue_rate', 'complete_rate',
    'fail_rate', 'error_rate', 'wait_p50_ms', 'wait_p95_ms', 'run_p50_ms', 'run_p95_ms', 'status',
    'in_rate', 'out_rate', 'drain_eta_s', 'expected_wait_s', 'flow_status', 'poison',
    'oldest_poison_age_s', 'last_enqueue_at', 'last_dequeue_at', 'slo_target_wait_s', 'slo_objective',
    'slo_burn_rate_1h', 'slo_budget_remaining', 'slo_period_s'],
  'queue_status keeps its 0.1.0 columns in place and appends the signals (later columns: 178_prometheus_totals)');

-- Section: "which queues will breach their objective today?" (docs/sql.md, the same query)
create temporary table fx_breach on commit drop as
select queue_name, budget_gone_at from (
-- docs/sql.md: begin
select project_id, source, queue_name,
       round(slo_budget_remaining::numeric, 3) as budget_left,
       round(slo_burn_rate_1h::numeric, 1) as burn_1h,
       now() + make_interval(secs => slo_budget_remaining * slo_period_s / slo_burn_rate_1h)
         as budget_gone_at
  from queue_health.queue_status
 where slo_burn_rate_1h > 0
   and now() + make_interval(secs => slo_budget_remaining * slo_period_s / slo_burn_rate_1h)
       < date_trunc('day', now(), 'UTC') + interval '1 day'
 order by budget_gone_at
-- docs/sql.md: end
) q where queue_name like 'sg\_%';
-- At 18.3 x, sg_stop's 23.6 % of a day's budget lasts 0.236 x 86400 / 18.3 = 1113 s more.
select case when date_trunc('day', now(), 'UTC') + interval '1 day' - now() > interval '20 minutes' then
  results_eq($$ select queue_name, round(extract(epoch from budget_gone_at - now())) from fx_breach $$,
    $$ values ('sg_stop'::text, round(0.236111111 * 86400 / 18.3333333)) $$,
    'the breach query names the queue that will spend its budget today, and when')
  else skip('less than 20 minutes left of the UTC day', 1) end;

-- Section: queue_history
select results_eq(
  $$ select flow_status::text, drain_eta_s, slo_total_s, slo_bad_s from queue_health.queue_history('sg_stop',
       (select t0 + interval '10 minutes' from fx_t), now(), 'pgmq') order by bucket $$,
  $$ values ('stopped'::text, 'Infinity'::float8, 60::float8, 60::float8), ('stopped', 'Infinity', 60, 60),
            ('stopped', 'Infinity', 60, 60) $$,
  'raw history carries each snapshot''s signals and objective seconds');
select is(
  (select count(*)::int from queue_health.queue_history('sg_stop', now() - interval '6 hours', now(), 'pgmq')
    where flow_status is null), 10, 'the first 10 snapshots are shorter than the flow window: no flow status');
select ok(
  (select rolled_up_to from queue_health.rollup_watermark where resolution = '1m')
    between (select t0 + interval '2 minutes' from fx_t) and (select t0 + interval '7 minutes' from fx_t),
  'the minute watermark is in the middle: minute buckets come from rollups and from raw rows');
-- Minute buckets (one snapshot each): rates are the minute's counts / 60 s.
select results_eq(
  $$ select resolution, count(*)::int, count(*) filter (where flow_status = 'falling_behind')::int,
            count(*) filter (where flow_status is null)::int,
            count(*) filter (where round(in_rate::numeric, 6) = round(3 / 60.0, 6)
                               and round(out_rate::numeric, 6) = round(1 / 60.0, 6))::int,
            count(*) filter (where drain_eta_s = 'Infinity')::int
     from queue_health.queue_history('sg_grow', now() - interval '1 day', now(), 'pgmq') group by 1 $$,
  $$ values ('1m'::text, 13, 12, 1, 12, 12) $$,
  'minute buckets of a growing queue: each falling behind (the first has no bucket before it), 3 in and 1 out a minute, never drains');
select results_eq(
  $$ select round(drain_eta_s::numeric, 3), round(expected_wait_s::numeric, 3), flow_status::text
     from queue_health.queue_history('sg_drain', now() - interval '1 day', now(), 'pgmq')
     where bucket > (select t0 from fx_t) order by bucket $$,
  $$ select (30 - i) * 60.000, (30 - i) * 30.000, 'ok'::text from generate_series(1, 12) i $$,
  'minute buckets of a draining queue: drain ETA and expected wait of the last ready count at the minute''s rates, rolled-up and recent alike');
select results_eq(
  $$ select flow_status::text, count(*)::int from queue_health.queue_history('sg_stop', now() - interval '1 day', now(), 'pgmq')
     group by 1 order by 1 $$,
  $$ values ('stopped'::text, 12), (null, 1) $$,
  'minute buckets of a stopped queue are stopped');
select results_eq(
  $$ select sum(slo_total_s), sum(slo_bad_s) from queue_health.queue_history('sg_stop', now() - interval '1 day', now(), 'pgmq') $$,
  $$ values (720::float8, 660::float8) $$, 'minute buckets sum the objective''s seconds');
select results_eq(
  $$ select resolution, sum(slo_total_s), sum(slo_bad_s), sum(enqueued)::int
     from queue_health.queue_history('sg_stop', now() - interval '30 days', now(), 'pgmq') group by 1 $$,
  $$ values ('1h'::text, 720::float8, 660::float8, 0) $$, 'hour buckets too');
select is(
  (select count(*)::int from queue_health.queue_history('sg_grow', now() - interval '30 days', now(), 'pgmq')
    where in_rate is null or out_rate is null or drain_eta_s is null),
  0, 'hour buckets have rates and a drain ETA');

-- Section: RLS: a member of another project sees none of it; a member of sigs sees it all
select tests.authenticate_as((select id from fx_users where label = 'oli'));
select is((select count(*)::int from queue_health.queue_status where queue_name like 'sg\_%'), 0,
  'a member of another project sees none of the queues or their signals');
select is(
  (select count(*)::int from queue_health.queue_history('sg_stop', now() - interval '1 hour', now())), 0,
  'nor their history');
select tests.authenticate_as((select id from fx_users where label = 'sia'));
select results_eq(
  $$ select flow_status::text, slo_objective, slo_burn_rate_1h > 14.4, slo_budget_remaining < 1
     from queue_health.queue_status where queue_name = 'sg_stop' $$,
  $$ values ('stopped'::text, 0.99::float8, true, true) $$,
  'a member of the project sees the signals, the objective and its burn');
select tests.clear_authentication();

select * from finish();
rollback;
