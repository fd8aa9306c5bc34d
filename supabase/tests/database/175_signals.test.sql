-- Signals (issue 22): the pure definitions (flow_status_of, drain_eta_of, expected_wait_of), and
-- what capture() makes of real pgmq-fixture queues driven step by step (p_now 10 s apart): the
-- smoothed rates, drain ETA and expected wait, the flow status over the window, the last enqueue
-- and dequeue, and a latency objective's seconds, burn rate and budget.
begin;
select plan(44);

-- Section: flow_status_of(ready, in_flight, enqueued, finished, redelivered, ready_zero, idle,
-- start_ready, start_in_flight, share): each rule, and the order between them.

select is(queue_health.flow_status_of(0, 0, 0, 0, 0, 6, 6, 0, 0), 'idle', 'nothing queued, no traffic: idle');
select is(queue_health.flow_status_of(0, 0, 5, 5, 0, 6, 6, 0, 0), 'ok', 'traffic that is all done: ok, not idle');
select is(queue_health.flow_status_of(5, 2, 10, 0, 8, 0, 0, 5, 2), 'redelivering',
  'taken and coming back, nothing finished: redelivering (before stalled)');
select is(queue_health.flow_status_of(5, 2, 10, 10, 4, 0, 0, 5, 2), 'ok',
  'four redeliveries against ten finished (share below 0.5): not redelivering');
select is(queue_health.flow_status_of(5, 2, 10, 10, 4, 0, 0, 5, 2, 0.25), 'redelivering',
  'the same with a redelivery share of 0.25: redelivering');
select is(queue_health.flow_status_of(7, 0, 2, 0, 0, 0, 0, 5, 0), 'stopped',
  'ready throughout, nothing taken, nothing finished: stopped');
select is(queue_health.flow_status_of(7, 0, 2, 0, 0, 1, 1, 0, 0), 'ok',
  'the same but ready was 0 at one snapshot of the window (work just arrived): not stopped');
select is(queue_health.flow_status_of(3, 4, 2, 0, 0, 2, 0, 1, 4), 'stalled',
  'work waiting throughout, some in flight, nothing finished: stalled');
select is(queue_health.flow_status_of(40, 2, 100, 50, 0, 0, 0, 10, 2), 'falling_behind',
  'work finishes but ready rose and never reached 0: falling_behind');
select is(queue_health.flow_status_of(40, 2, 100, 50, 0, 1, 0, 10, 2), 'ok',
  'the same but ready reached 0 in the window: ok');
select is(queue_health.flow_status_of(5, 2, 100, 120, 0, 0, 0, 25, 2), 'ok', 'a shrinking backlog: ok');
select is(queue_health.flow_status_of(5, 0, 0, 0, 0, 0, 0, null, null), null, 'no window start: unknown (null)');

-- Section: drain_eta_of(ready, in_rate, out_rate, min_rate) and expected_wait_of(ready, out_rate, min_rate)

select is(queue_health.drain_eta_of(120, 1, 3), 60::float8, '120 ready, in 1/s, out 3/s: clears in 60 s');
select is(queue_health.drain_eta_of(0, 5, 0), 0::float8, 'nothing ready: 0, whatever the rates');
select is(queue_health.drain_eta_of(200, 2, 2), 'Infinity'::float8, 'in = out with 100 s of work ready: never');
select is(queue_health.drain_eta_of(1, 0.181, 0.177), 1 / 0.177::float8,
  'keeping pace (in within 5 % of out) with under a minute of work ready: ready / out, not never');
select is(queue_health.drain_eta_of(10, 0.001, 0.002, 0.01), 'Infinity'::float8, 'rates below the floor count as 0: never');
select is(queue_health.drain_eta_of(10, 2.5, 2), 'Infinity'::float8, 'more arrives than leaves: never, however little is ready');
select is(queue_health.drain_eta_of(10, null, 1), null, 'an unknown rate: null');
select is(queue_health.expected_wait_of(30, 3), 10::float8, '30 ready at 3/s: a message sent now waits 10 s');
select is(queue_health.expected_wait_of(30, 0), 'Infinity'::float8, 'nothing completes: never');
select is(queue_health.expected_wait_of(0, 0), 0::float8, 'nothing ready: 0');

-- Section: capture() on real queues, 10 s apart

update queue_health.settings set flow_window = '1 minute', unchanged_reread_interval = '0', rate_smoothing = '1 minute';
select pgmq.create('sig_stopped');
select pgmq.create('sig_idle');
select pgmq.create('sig_draining');
select pgmq.send('sig_stopped', '{}'::jsonb) from generate_series(1, 5);
select pgmq.send('sig_draining', '{}'::jsonb) from generate_series(1, 200);
insert into queue_health.queue_objective (project_id, source, queue_name, target_wait_s, objective)
values ('default', 'pgmq', 'sig_stopped', 30, 0.99);
-- After the sends: their vt is the clock at send time.
create temporary table sig_t as select clock_timestamp() + interval '1 second' as t0;

-- 13 captures (0 s .. 120 s); before each, a consumer deletes 10 of sig_draining's messages.
do $$
declare
  i int;
  v_t0 timestamptz := (select t0 from sig_t);
begin
  for i in 0..12 loop
    perform pgmq.delete('sig_draining', x.msg_id)
       from (select msg_id from pgmq.q_sig_draining order by msg_id limit 10) x;
    perform queue_health.capture(v_t0 + i * interval '10 seconds');
  end loop;
end;
$$;
create temporary view sig_last as
select m.* from queue_health.metric m
 where m.captured_at = (select t0 + interval '120 seconds' from sig_t) and m.queue_name like 'sig\_%';

select is((select flow_status::text from sig_last where queue_name = 'sig_stopped'), 'stopped',
  'a backlog nobody takes: stopped');
select is((select flow_status::text from sig_last where queue_name = 'sig_idle'), 'idle', 'an empty queue: idle');
select is((select flow_status::text from sig_last where queue_name = 'sig_draining'), 'ok', 'a shrinking backlog: ok');
select is(
  (select flow_status from queue_health.metric
    where queue_name = 'sig_stopped' and captured_at = (select t0 + interval '50 seconds' from sig_t)),
  null, 'before a whole window of history: no flow status');
select is((select round(out_rate::numeric, 3) from sig_last where queue_name = 'sig_draining'), 1.000,
  'ten deletes every 10 s: out_rate 1/s');
select is((select round(in_rate::numeric, 3) from sig_last where queue_name = 'sig_draining'), 0.000,
  'nothing sent after the first capture: in_rate 0');
select is((select round(drain_eta_s::numeric) from sig_last where queue_name = 'sig_draining'), 70::numeric,
  '70 ready at 1/s: clears in 70 s');
select is((select round(expected_wait_s::numeric) from sig_last where queue_name = 'sig_draining'), 70::numeric,
  'and a message sent now waits 70 s');
select is((select drain_eta_s from sig_last where queue_name = 'sig_stopped'), 'Infinity'::float8,
  'the stopped queue never clears');
select is(
  (select drain_eta_s from queue_health.metric
    where queue_name = 'sig_draining' and captured_at = (select t0 + interval '50 seconds' from sig_t)),
  null, 'watched for less than a minute: no drain ETA yet');
select is((select last_dequeue_at from sig_last where queue_name = 'sig_draining'),
  (select t0 + interval '120 seconds' from sig_t), 'the draining queue''s last dequeue is this snapshot');
select is((select last_dequeue_at from sig_last where queue_name = 'sig_stopped'), null,
  'nothing ever taken from the stopped queue');
select is(
  (select array[q.flow_status::text, q.drain_eta_s::text, q.cum_ready_zero::text]
     from queue_health.queue q where q.queue_name = 'sig_draining'),
  (select array[l.flow_status::text, l.drain_eta_s::text, l.cum_ready_zero::text]
     from sig_last l where l.queue_name = 'sig_draining'),
  'the registry holds the newest row''s signals');
-- A message enqueued now shows as the last enqueue at the next capture.
select pgmq.send('sig_idle', '{}'::jsonb);
select queue_health.capture((select t0 + interval '130 seconds' from sig_t));
select is(
  (select last_enqueue_at from queue_health.queue where queue_name = 'sig_idle'),
  (select t0 + interval '130 seconds' from sig_t), 'an enqueue shows as last_enqueue_at at the next capture');

-- Section: the objective (30 s, 99 %) on sig_stopped, whose oldest message ages 10 s a capture

select is(
  (select array[count(*) filter (where slo_bad_s > 0), sum(slo_total_s)::bigint] from queue_health.metric
    where queue_name = 'sig_stopped' and captured_at <= (select t0 + interval '120 seconds' from sig_t)),
  array[10, 120]::bigint[], 'bad from the snapshot whose oldest message is past 30 s on: 10 of 12 intervals');
select is((select slo_total_s from queue_health.metric where queue_name = 'sig_draining' limit 1), null,
  'no objective: no objective seconds');
select is(
  round(queue_health.slo_burn_rate('pgmq', 'pgmq', 'sig_stopped', interval '1 minute',
    (select t0 + interval '120 seconds' from sig_t))::numeric, 2),
  100.00, 'all bad over the last minute: the budget burns at 1 / (1 - 0.99) = 100x');
select is(
  round(queue_health.slo_burn_rate('pgmq', 'pgmq', 'sig_stopped', interval '1 hour',
    (select t0 + interval '120 seconds' from sig_t))::numeric, 2),
  round(100 / 3600.0 / 0.01, 2),
  'over an hour holding 120 s of snapshots the rest counts as good: (100 / 3600) / 0.01, not the 83x of the counted seconds alone');
select is(
  round(queue_health.slo_budget_remaining('pgmq', 'pgmq', 'sig_stopped',
    (select t0 + interval '120 seconds' from sig_t))::numeric, 6),
  round((1 - 100 / (0.01 * 30 * 86400))::numeric, 6),
  '100 bad seconds of a 30-day budget of 25 920 s: 99.6 % left');
select is(queue_health.slo_burn_rate('pgmq', 'pgmq', 'sig_draining', interval '1 hour'), null,
  'a queue without an objective has no burn rate');

-- Section: objectives are validated

select throws_ok(
  $$insert into queue_health.queue_objective (project_id, source, queue_name, target_wait_s, objective)
    values ('default', 'pgmq', 'sig_idle', 10, 1)$$,
  '23514', null, 'an objective of 100 % is refused (no budget)');
select throws_ok(
  $$insert into queue_health.queue_objective (project_id, source, queue_name, target_wait_s)
    values ('default', 'pgmq', 'sig_stopped', 10)$$,
  '23505', null, 'one objective per queue');

select * from finish();
rollback;
