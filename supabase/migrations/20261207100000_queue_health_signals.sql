-- Queue Health: signals. What each snapshot means, computed by capture() from the snapshot and the
-- queue's history, without another read of the queue tables: smoothed enqueue and completion
-- rates, drain ETA, expected wait, the flow status over a sliding window, the last time work was
-- enqueued or taken, and the time-based indicator of a latency objective (queue_objective). The
-- poison probe and the alert conditions, baselines and views built on these follow in later files.
-- docs/metrics.md, "Signals", defines each one with a worked example.

-- Section: settings

alter table queue_health.settings
  add column flow_window interval not null default '10 minutes',
  add column rate_smoothing interval not null default '5 minutes',
  add column redelivery_share double precision not null default 0.5,
  add column poison_read_count int not null default 3,
  add constraint settings_flow_window_range check (
    flow_window >= interval '10 seconds' and flow_window <= interval '6 hours'),
  add constraint settings_rate_smoothing_range check (
    rate_smoothing >= interval '10 seconds' and rate_smoothing <= interval '6 hours'),
  add constraint settings_redelivery_share_fraction check (redelivery_share > 0 and redelivery_share <= 1),
  add constraint settings_poison_read_count_range check (poison_read_count between 2 and 1000);
comment on column queue_health.settings.flow_window is 'The sliding window flow_status is judged over (default 10 minutes; 10 s to 6 h). docs/metrics.md "flow_status".';
comment on column queue_health.settings.rate_smoothing is 'Time constant of the exponentially weighted enqueue and completion rates (in_rate, out_rate) behind drain_eta_s and expected_wait_s: a change in rate shows 63 % after this long (default 5 minutes).';
comment on column queue_health.settings.redelivery_share is 'flow_status is redelivering when redeliveries are at least this share of what consumers took (redelivered + finished) in the window (0..1, default 0.5).';
comment on column queue_health.settings.poison_read_count is 'A message taken this many times or more (pgmq read_ct, pg-boss retry_count + 1) is poison (default 3, as SQS''s ApproximateAgeOfOldestMessage leaves out messages received 3+ times).';
comment on constraint settings_flow_window_range on queue_health.settings is 'The flow window is between 10 seconds and 6 hours (raw rows live at least 2 hours longer than that needs).';
comment on constraint settings_rate_smoothing_range on queue_health.settings is 'The rate smoothing constant is between 10 seconds and 6 hours.';
comment on constraint settings_redelivery_share_fraction on queue_health.settings is 'The redelivery share is a fraction above 0 and at most 1.';
comment on constraint settings_poison_read_count_range on queue_health.settings is 'Poison needs at least two takes (one redelivery) and at most 1000.';

-- Section: latency objectives

create table queue_health.queue_objective (
  id uuid primary key default gen_random_uuid(),
  project_id text not null references queue_health.project (id) on update cascade on delete cascade,
  source text not null,
  source_schema text,
  queue_name text not null,
  target_wait_s double precision not null,
  objective double precision not null default 0.99,
  period interval not null default interval '30 days',
  created_at timestamptz not null default now(),
  created_by uuid default auth.uid(),
  constraint queue_objective_source check (source in ('pgmq', 'pgboss')),
  constraint queue_objective_target_positive check (
    target_wait_s > 0 and target_wait_s < 'Infinity'::float8),
  constraint queue_objective_fraction check (objective > 0 and objective < 1),
  constraint queue_objective_period_range check (period >= interval '1 day' and period <= interval '90 days')
);
comment on table queue_health.queue_objective is 'Optional latency objective of a queue: the oldest ready message waits at most target_wait_s for objective (e.g. 0.99) of the time over period. Each capture records the seconds the queue met or missed it (metric.slo_total_s, slo_bad_s); burn rates and the remaining error budget come from those. One objective per queue.';
comment on column queue_health.queue_objective.id is 'Objective id.';
comment on column queue_health.queue_objective.project_id is 'The project of the queue (members read, admins write).';
comment on column queue_health.queue_objective.source is 'The queue''s source: pgmq or pgboss.';
comment on column queue_health.queue_objective.source_schema is 'The queue''s source schema (e.g. pgboss_v12); null: any schema of that source.';
comment on column queue_health.queue_objective.queue_name is 'The queue''s exact name.';
comment on column queue_health.queue_objective.target_wait_s is 'T: a snapshot is bad when the oldest ready message is older than T seconds (oldest_ready_age_s > T).';
comment on column queue_health.queue_objective.objective is 'X: the fraction of the time the queue must be good (0.99 = 99 %); the error budget is 1 - X.';
comment on column queue_health.queue_objective.period is 'The period the error budget is counted over (1 to 90 days; default 30).';
comment on column queue_health.queue_objective.created_at is 'When the objective was set.';
comment on column queue_health.queue_objective.created_by is 'Who set it (auth.uid()), null for the service role.';
comment on constraint queue_objective_source on queue_health.queue_objective is 'source is one of the known sources.';
comment on constraint queue_objective_target_positive on queue_health.queue_objective is 'target_wait_s is a positive, finite number of seconds.';
comment on constraint queue_objective_fraction on queue_health.queue_objective is 'objective is a fraction strictly between 0 and 1 (0.99 = 99 %).';
comment on constraint queue_objective_period_range on queue_health.queue_objective is 'The budget period is between 1 and 90 days.';

create unique index queue_objective_queue_key
  on queue_health.queue_objective (project_id, source, coalesce(source_schema, ''), queue_name);
comment on index queue_health.queue_objective_queue_key is 'One objective per queue (and per source schema, where given).';

alter table queue_health.queue_objective enable row level security;
create policy "Objectives are visible to project members" on queue_health.queue_objective
  for select to authenticated using ((select queue_health.is_member(project_id)));
create policy "Objectives are set by project admins" on queue_health.queue_objective
  for insert to authenticated with check ((select queue_health.is_member(project_id, 'admin')));
create policy "Objectives are changed by project admins" on queue_health.queue_objective
  for update to authenticated using ((select queue_health.is_member(project_id, 'admin')))
  with check ((select queue_health.is_member(project_id, 'admin')));
create policy "Objectives are removed by project admins" on queue_health.queue_objective
  for delete to authenticated using ((select queue_health.is_member(project_id, 'admin')));
revoke all on queue_health.queue_objective from public, anon, authenticated;
grant select, insert, update, delete on queue_health.queue_objective to authenticated, service_role;

-- Section: columns

create type queue_health.flow_status as enum (
  'idle', 'ok', 'falling_behind', 'stalled', 'stopped', 'redelivering');
comment on type queue_health.flow_status is 'How work flows through a queue over the flow window, judged without thresholds (docs/metrics.md "flow_status"): idle, ok, falling_behind, stalled, stopped, redelivering.';

alter table queue_health.metric
  add column poison bigint,
  add column oldest_poison_age_s double precision,
  add column in_rate double precision,
  add column out_rate double precision,
  add column drain_eta_s double precision,
  add column expected_wait_s double precision,
  add column flow_status queue_health.flow_status,
  add column last_enqueue_at timestamptz,
  add column last_dequeue_at timestamptz,
  add column slo_total_s double precision,
  add column slo_bad_s double precision,
  add column cum_ready_zero bigint,
  add column cum_slo_total_s double precision,
  add column cum_slo_bad_s double precision;
comment on column queue_health.metric.poison is 'Messages taken settings.poison_read_count times or more that are still in the queue (ready or in flight); estimated above settings.exact_count_limit; null when not probed.';
comment on column queue_health.metric.oldest_poison_age_s is 'Age (since enqueued) of the oldest poison message, seconds; null when there is none.';
comment on column queue_health.metric.in_rate is 'Enqueue rate, messages/s, exponentially weighted (time constant settings.rate_smoothing); null until the queue has been watched for a minute.';
comment on column queue_health.metric.out_rate is 'Completion rate (completed + failed), messages/s, weighted as in_rate.';
comment on column queue_health.metric.drain_eta_s is 'Seconds until ready reaches 0 at the current rates: ready / (out_rate - in_rate); 0 when nothing is ready; Infinity when the backlog does not shrink; null without enough data.';
comment on column queue_health.metric.expected_wait_s is 'Seconds a message sent now waits for a worker: ready / out_rate; 0 when nothing is ready; Infinity when nothing completes; null without enough data.';
comment on column queue_health.metric.flow_status is 'idle | ok | falling_behind | stalled | stopped | redelivering over settings.flow_window; null while the queue''s history is shorter than the window.';
comment on column queue_health.metric.last_enqueue_at is 'The latest snapshot at which messages had been enqueued since the one before (to the capture interval); null: none seen yet.';
comment on column queue_health.metric.last_dequeue_at is 'The latest snapshot at which consumers had taken work since the one before (completed, failed or redelivered, or more in flight); null: none seen yet.';
comment on column queue_health.metric.slo_total_s is 'Seconds of this interval under a latency objective (interval_s; null without an objective).';
comment on column queue_health.metric.slo_bad_s is 'Seconds of this interval that missed the objective (interval_s when oldest_ready_age_s > target_wait_s, else 0; null without an objective).';
comment on column queue_health.metric.cum_ready_zero is 'Running count of this queue''s snapshots with nothing ready (ready = 0), up to and including this one.';
comment on column queue_health.metric.cum_slo_total_s is 'Running total of slo_total_s (as cum_enqueued).';
comment on column queue_health.metric.cum_slo_bad_s is 'Running total of slo_bad_s (as cum_enqueued).';

alter table queue_health.queue
  add column poison bigint,
  add column oldest_poison_age_s double precision,
  add column in_rate double precision,
  add column out_rate double precision,
  add column drain_eta_s double precision,
  add column expected_wait_s double precision,
  add column flow_status queue_health.flow_status,
  add column last_enqueue_at timestamptz,
  add column last_dequeue_at timestamptz,
  add column slo_total_s double precision,
  add column slo_bad_s double precision,
  add column cum_ready_zero bigint,
  add column cum_slo_total_s double precision,
  add column cum_slo_bad_s double precision;
comment on column queue_health.queue.poison is 'The newest metric row''s poison (see totals_at).';
comment on column queue_health.queue.oldest_poison_age_s is 'The newest metric row''s oldest_poison_age_s (see totals_at).';
comment on column queue_health.queue.in_rate is 'The newest metric row''s in_rate (see totals_at); the next capture smooths from it.';
comment on column queue_health.queue.out_rate is 'The newest metric row''s out_rate (see totals_at); the next capture smooths from it.';
comment on column queue_health.queue.drain_eta_s is 'The newest metric row''s drain_eta_s (see totals_at).';
comment on column queue_health.queue.expected_wait_s is 'The newest metric row''s expected_wait_s (see totals_at).';
comment on column queue_health.queue.flow_status is 'The newest metric row''s flow_status (see totals_at).';
comment on column queue_health.queue.last_enqueue_at is 'The newest metric row''s last_enqueue_at (see totals_at).';
comment on column queue_health.queue.last_dequeue_at is 'The newest metric row''s last_dequeue_at (see totals_at).';
comment on column queue_health.queue.slo_total_s is 'The newest metric row''s slo_total_s (see totals_at).';
comment on column queue_health.queue.slo_bad_s is 'The newest metric row''s slo_bad_s (see totals_at).';
comment on column queue_health.queue.cum_ready_zero is 'The newest metric row''s cum_ready_zero (see totals_at).';
comment on column queue_health.queue.cum_slo_total_s is 'The newest metric row''s cum_slo_total_s (see totals_at).';
comment on column queue_health.queue.cum_slo_bad_s is 'The newest metric row''s cum_slo_bad_s (see totals_at).';

alter table queue_health.metric_1m
  add column poison_max bigint,
  add column slo_total_s double precision not null default 0,
  add column slo_bad_s double precision not null default 0;
alter table queue_health.metric_1h
  add column poison_max bigint,
  add column slo_total_s double precision not null default 0,
  add column slo_bad_s double precision not null default 0;
comment on column queue_health.metric_1m.poison_max is 'Most poison messages seen in the bucket.';
comment on column queue_health.metric_1m.slo_total_s is 'Seconds under a latency objective in the bucket (sum of metric.slo_total_s).';
comment on column queue_health.metric_1m.slo_bad_s is 'Seconds that missed the objective in the bucket (sum of metric.slo_bad_s).';
comment on column queue_health.metric_1h.poison_max is 'Most poison messages seen in the bucket.';
comment on column queue_health.metric_1h.slo_total_s is 'Seconds under a latency objective in the bucket (sum of metric.slo_total_s).';
comment on column queue_health.metric_1h.slo_bad_s is 'Seconds that missed the objective in the bucket (sum of metric.slo_bad_s).';

-- Section: the carried state of a queue's newest row

-- The running totals and the smoothed state of the queue's newest metric row before p_now, for
-- capture() when the registry's copy is not current. Replaces the 0.1.0 function (more columns).
drop function queue_health._metric_totals_before(text, text, text, timestamptz);
create function queue_health._metric_totals_before(
  p_source text, p_source_schema text, p_queue_name text, p_now timestamptz)
returns table (
  cum_enqueued bigint, cum_completed bigint, cum_failed bigint, cum_retried bigint,
  cum_dead_lettered bigint, cum_interval_s double precision, cum_idle bigint,
  cum_ready_zero bigint, cum_slo_total_s double precision, cum_slo_bad_s double precision,
  in_flight bigint, in_rate double precision, out_rate double precision,
  last_enqueue_at timestamptz, last_dequeue_at timestamptz)
stable
-- At most one row: the planner's default of 1 000 would mislead the capture's statement.
rows 1
set search_path = ''
language plpgsql
as $$
begin
  return query
    select m.cum_enqueued, m.cum_completed, m.cum_failed, m.cum_retried, m.cum_dead_lettered,
           m.cum_interval_s, m.cum_idle, m.cum_ready_zero, m.cum_slo_total_s, m.cum_slo_bad_s,
           m.in_flight, m.in_rate, m.out_rate, m.last_enqueue_at, m.last_dequeue_at
      from queue_health.metric m
     where m.queue_name = p_queue_name and m.source = p_source and m.source_schema = p_source_schema
       and m.captured_at < p_now
     order by m.captured_at desc
     limit 1;
end;
$$;
comment on function queue_health._metric_totals_before(text, text, text, timestamptz) is 'The running totals (cum_*) and the state the next snapshot carries on (in_flight, in_rate, out_rate, last_enqueue_at, last_dequeue_at) of the queue''s newest metric row before p_now; no row when it has none.';
revoke execute on function queue_health._metric_totals_before(text, text, text, timestamptz) from public, anon, authenticated;
grant execute on function queue_health._metric_totals_before(text, text, text, timestamptz) to service_role;

create or replace function queue_health._metric_running_totals()
returns trigger
set search_path = ''
language plpgsql
as $$
declare
  v_prev record;
begin
  select * into v_prev
    from queue_health._metric_totals_before(new.source, new.source_schema, new.queue_name, new.captured_at);
  new.cum_enqueued := coalesce(v_prev.cum_enqueued, 0) + coalesce(new.enqueued, 0);
  new.cum_completed := coalesce(v_prev.cum_completed, 0) + coalesce(new.completed, 0);
  new.cum_failed := coalesce(v_prev.cum_failed, 0) + coalesce(new.failed, 0);
  new.cum_retried := coalesce(v_prev.cum_retried, 0) + coalesce(new.retried, 0);
  new.cum_dead_lettered := coalesce(v_prev.cum_dead_lettered, 0) + coalesce(new.dead_lettered, 0);
  new.cum_interval_s := coalesce(v_prev.cum_interval_s, 0) + coalesce(new.interval_s, 0);
  new.cum_idle := coalesce(v_prev.cum_idle, 0)
    + case when coalesce(new.ready, 0) = 0 and coalesce(new.in_flight, 0) = 0 then 1 else 0 end;
  new.cum_ready_zero := coalesce(v_prev.cum_ready_zero, 0) + case when coalesce(new.ready, 0) = 0 then 1 else 0 end;
  new.cum_slo_total_s := coalesce(v_prev.cum_slo_total_s, 0) + coalesce(new.slo_total_s, 0);
  new.cum_slo_bad_s := coalesce(v_prev.cum_slo_bad_s, 0) + coalesce(new.slo_bad_s, 0);
  -- The registry's copy of the newest row's totals is no longer known to be current.
  update queue_health.queue q
     set totals_at = null
   where q.source = new.source and q.source_schema = new.source_schema and q.queue_name = new.queue_name
     and q.totals_at is not null;
  return new;
end;
$$;
comment on function queue_health._metric_running_totals() is 'Trigger: fills the running totals (cum_*) of a metric row inserted without them, from the queue''s previous row.';

-- Section: the signals' definitions (pure functions; docs/metrics.md has worked examples)

create function queue_health.flow_status_of(
  p_ready bigint, p_in_flight bigint, p_enqueued bigint, p_finished bigint, p_redelivered bigint,
  p_ready_zero bigint, p_idle bigint, p_start_ready bigint, p_start_in_flight bigint,
  p_redelivery_share double precision default 0.5)
returns queue_health.flow_status
immutable
set search_path = ''
-- plpgsql: a SQL function with a SET clause is never inlined, and its every call costs
-- ~15-20 us against ~2 us for plpgsql (capture() calls it once per queue).
language plpgsql
as $$
begin
  -- Over one window: p_ready / p_in_flight now and p_start_* at the window's start; what was
  -- enqueued, finished (completed + failed) and redelivered in it; p_ready_zero / p_idle: how many
  -- of its snapshots had nothing ready / nothing ready or in flight. The first rule that holds
  -- wins; null when the window is not known.
  return case
    when p_start_ready is null or p_ready is null then null
    when p_ready = 0 and coalesce(p_in_flight, 0) = 0 and coalesce(p_enqueued, 0) = 0
         and coalesce(p_finished, 0) = 0 and coalesce(p_redelivered, 0) = 0 then 'idle'
    when coalesce(p_redelivered, 0) > 0
         and p_redelivered >= p_redelivery_share * (p_redelivered + coalesce(p_finished, 0)) then 'redelivering'
    when p_ready > 0 and coalesce(p_in_flight, 0) = 0 and coalesce(p_start_in_flight, 0) = 0
         and coalesce(p_finished, 0) = 0 and coalesce(p_redelivered, 0) = 0 and p_ready_zero = 0 then 'stopped'
    when coalesce(p_finished, 0) = 0 and coalesce(p_in_flight, 0) > 0 and p_idle = 0 then 'stalled'
    when coalesce(p_finished, 0) > 0 and p_ready > p_start_ready and p_ready_zero = 0
         and coalesce(p_enqueued, 0) > p_finished then 'falling_behind'
    else 'ok'
  end::queue_health.flow_status;
end;
$$;
comment on function queue_health.flow_status_of(bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, double precision) is 'The flow status of one window, rules in this order (the first that holds): idle (nothing ready or in flight, nothing enqueued, finished or redelivered); redelivering (redeliveries >= p_redelivery_share of redelivered + finished); stopped (ready at every snapshot, nothing in flight at either end, nothing finished or redelivered); stalled (work waiting at every snapshot, some in flight now, nothing finished); falling_behind (work finished, ready higher than at the start and never 0, more enqueued than finished); else ok. Null without a window start.';
revoke execute on function queue_health.flow_status_of(bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, double precision) from public, anon;
grant execute on function queue_health.flow_status_of(bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, double precision) to authenticated, service_role;

create function queue_health.drain_eta_of(
  p_ready bigint, p_in_rate double precision, p_out_rate double precision, p_min_rate double precision default 0)
returns double precision
immutable
set search_path = ''
-- plpgsql: a SQL function with a SET clause is never inlined, and its every call costs
-- ~15-20 us against ~2 us for plpgsql (capture() calls it once per queue).
language plpgsql
as $$
begin
  -- Rates below p_min_rate count as 0, so an exponentially decaying rate reaches "never". A queue
  -- that keeps pace (arrivals within ±5 % of completions, the smoothed rates' noise) with at most a
  -- minute of its consumers' work ready is kept up with: its backlog is worked off in
  -- ready / out, and "never" (or ready / a difference near 0) would be wrong.
  return case
    when p_ready is null then null
    when p_ready = 0 then 0::float8
    when p_in_rate is null or p_out_rate is null then null
    when p_out_rate >= greatest(p_min_rate, 1e-9) and p_ready <= 60 * p_out_rate
         and p_in_rate <= 1.05 * p_out_rate and p_in_rate >= 0.95 * p_out_rate then p_ready / p_out_rate
    when (case when p_out_rate < p_min_rate then 0 else p_out_rate end)
         - (case when p_in_rate < p_min_rate then 0 else p_in_rate end) <= 0 then 'Infinity'::float8
    else p_ready / ((case when p_out_rate < p_min_rate then 0 else p_out_rate end)
                    - (case when p_in_rate < p_min_rate then 0 else p_in_rate end))
  end;
end;
$$;
comment on function queue_health.drain_eta_of(bigint, double precision, double precision, double precision) is 'Seconds until p_ready messages are gone at the given enqueue and completion rates (messages/s): ready / (out - in); 0 with nothing ready; ready / out when the queue keeps pace (in within 5 % of out) with at most a minute of work ready; Infinity when a backlog does not shrink; null when a rate is unknown. Rates below p_min_rate count as 0.';
revoke execute on function queue_health.drain_eta_of(bigint, double precision, double precision, double precision) from public, anon;
grant execute on function queue_health.drain_eta_of(bigint, double precision, double precision, double precision) to authenticated, service_role;

create function queue_health.expected_wait_of(
  p_ready bigint, p_out_rate double precision, p_min_rate double precision default 0)
returns double precision
immutable
set search_path = ''
-- plpgsql: a SQL function with a SET clause is never inlined, and its every call costs
-- ~15-20 us against ~2 us for plpgsql (capture() calls it once per queue).
language plpgsql
as $$
begin
  return case
    when p_ready is null then null
    when p_ready = 0 then 0::float8
    when p_out_rate is null then null
    when p_out_rate < greatest(p_min_rate, 0) or p_out_rate = 0 then 'Infinity'::float8
    else p_ready / p_out_rate
  end;
end;
$$;
comment on function queue_health.expected_wait_of(bigint, double precision, double precision) is 'Seconds a message sent now waits before a worker takes it: p_ready / completion rate; 0 with nothing ready, Infinity when nothing completes (rate below p_min_rate), null when the rate is unknown.';
revoke execute on function queue_health.expected_wait_of(bigint, double precision, double precision) from public, anon;
grant execute on function queue_health.expected_wait_of(bigint, double precision, double precision) to authenticated, service_role;

-- The flow window's start: the queue's newest row at or before p_at and after p_after. plpgsql,
-- as _newest_snapshot_at(): planned once per session, pruned to the window's partitions when run.
create type queue_health._flow_base as (
  captured_at timestamptz, ready bigint, in_flight bigint, cum_enqueued bigint, cum_completed bigint,
  cum_failed bigint, cum_retried bigint, cum_ready_zero bigint, cum_idle bigint);
comment on type queue_health._flow_base is 'A queue''s metric row at the start of the flow window: what flow_status compares with.';

create function queue_health._flow_window_start(
  p_source text, p_source_schema text, p_queue_name text, p_at timestamptz, p_after timestamptz)
returns queue_health._flow_base
stable
set search_path = ''
language plpgsql
as $$
declare
  b queue_health._flow_base;
begin
  select m.captured_at, m.ready, m.in_flight, m.cum_enqueued, m.cum_completed, m.cum_failed,
         m.cum_retried, m.cum_ready_zero, m.cum_idle
    into b
    from queue_health.metric m
   where m.queue_name = p_queue_name and m.source = p_source and m.source_schema = p_source_schema
     and m.captured_at <= p_at and m.captured_at > p_after
   order by m.captured_at desc
   limit 1;
  return b;
end;
$$;
comment on function queue_health._flow_window_start(text, text, text, timestamptz, timestamptz) is 'The queue''s newest metric row at or before p_at and after p_after (the flow window''s start), or all nulls.';
revoke execute on function queue_health._flow_window_start(text, text, text, timestamptz, timestamptz) from public, anon, authenticated;
grant execute on function queue_health._flow_window_start(text, text, text, timestamptz, timestamptz) to service_role;

-- Section: capture

create function queue_health._capture_rows(p_now timestamptz, p_samples queue_health.sample[])
-- queue_health.metric's columns in its order (105_metric_columns.test.sql checks), then the
-- sampler's cursor, whether the row is the queue's newest, and the sample's error. Flat columns,
-- not one composite of metric: reading 43 fields out of a composite deforms it once per field.
returns table (
  captured_at timestamptz, project_id text, source text, source_schema text, queue_name text,
  ready bigint, in_flight bigint, delayed bigint, depth bigint, depth_estimated boolean,
  oldest_ready_age_s double precision, enqueued bigint, completed bigint, failed bigint,
  retried bigint, dead_lettered bigint, wait_p50_ms double precision, wait_p95_ms double precision,
  run_p50_ms double precision, run_p95_ms double precision, sample_ms double precision,
  interval_s double precision, cum_enqueued bigint, cum_completed bigint, cum_failed bigint,
  cum_retried bigint, cum_dead_lettered bigint, cum_interval_s double precision, cum_idle bigint,
  poison bigint, oldest_poison_age_s double precision, in_rate double precision,
  out_rate double precision, drain_eta_s double precision, expected_wait_s double precision,
  flow_status queue_health.flow_status, last_enqueue_at timestamptz, last_dequeue_at timestamptz,
  slo_total_s double precision, slo_bad_s double precision, cum_ready_zero bigint,
  cum_slo_total_s double precision, cum_slo_bad_s double precision,
  cursor jsonb, newest boolean, error text)
stable
set search_path = ''
-- The planner's cost for this statement passes jit_above_cost even for two queues (the default
-- estimates of its helpers and of the never-analyzed settings row), and compiling it with LLVM
-- takes seconds where running it takes milliseconds: found by local/test/signal_scenarios_test.ts
-- (a capture of 2 queues took 9 s with JIT on). As for the samplers and the alert readings.
set jit = off
-- plpgsql, so the statement's plan is kept for the session (a SQL function that is not inlined,
-- as one with a SET clause never is, plans its statement again on every call).
language plpgsql
as $$
#variable_conflict use_column
begin
  -- One row per queue sampled (the sample without error when there are both): its metric row
  -- stamped p_now, with its interval, running totals and signals, computed from the registry's
  -- copy of the queue's newest row (or, when that is not current, from the newest row before
  -- p_now); only the queue's identity (and error) when its sample failed.
  return query
  with st as (
    select coalesce(s.flow_window, interval '10 minutes') as flow_window,
           extract(epoch from coalesce(s.rate_smoothing, interval '5 minutes'))::float8 as tau_s,
           coalesce(s.redelivery_share, 0.5) as redelivery_share
      from (select) one left join queue_health.settings s on s.id
  ),
  s as (
    select distinct on (x.source, x.source_schema, x.queue_name)
      x.*,
      coalesce((
        select pm.project_id
        from queue_health.project_queue_map pm
        where (pm.source is null or pm.source = x.source)
          and x.queue_name like pm.queue_pattern
        order by pm.priority, pm.id
        limit 1), 'default') as project_id
    from unnest(p_samples) x
    where x.source in ('pgmq', 'pgboss') and x.source_schema is not null and x.queue_name is not null
    order by x.source, x.source_schema, x.queue_name, (x.error is null) desc
  ),
  prev as (
    select s.*, i.interval_s, t.*,
           -- whether this row will be the queue's newest
           case when q.totals_at < p_now then true
                else not coalesce(queue_health._newest_snapshot_at(
                       s.source, s.source_schema, s.queue_name, 'infinity') >= p_now, false)
           end as is_newest,
           (select o.target_wait_s from queue_health.queue_objective o
             where o.project_id = s.project_id and o.source = s.source and o.queue_name = s.queue_name
               and (o.source_schema is null or o.source_schema = s.source_schema)
             order by o.source_schema nulls last limit 1) as target_wait_s
    from s
    left join queue_health.queue q
      on q.source = s.source and q.source_schema = s.source_schema and q.queue_name = s.queue_name
    cross join lateral (
      select case when q.last_seen_at is not null
        then greatest(0, extract(epoch from p_now - q.last_seen_at))::float8 end as interval_s) i
    -- What the previous row carries on: the registry's copy when current, else read from metric
    -- (a function called only then; in this statement it would be planned over every partition).
    left join lateral (
      select q.cum_enqueued as t_enqueued, q.cum_completed as t_completed, q.cum_failed as t_failed,
             q.cum_retried as t_retried, q.cum_dead_lettered as t_dead_lettered,
             q.cum_interval_s as t_interval_s, q.cum_idle as t_idle, q.cum_ready_zero as t_ready_zero,
             q.cum_slo_total_s as t_slo_total_s, q.cum_slo_bad_s as t_slo_bad_s,
             q.in_flight as t_in_flight, q.in_rate as t_in_rate, q.out_rate as t_out_rate,
             q.last_enqueue_at as t_last_enqueue_at, q.last_dequeue_at as t_last_dequeue_at
      where q.totals_at < p_now
      union all
      select b.*
        from queue_health._metric_totals_before(s.source, s.source_schema, s.queue_name, p_now) b
       where not coalesce(q.totals_at < p_now, false)) t on true
  ),
  c as (
    select p.*,
           coalesce(p.t_enqueued, 0) + coalesce(p.enqueued, 0) as cum_enqueued,
           coalesce(p.t_completed, 0) + coalesce(p.completed, 0) as cum_completed,
           coalesce(p.t_failed, 0) + coalesce(p.failed, 0) as cum_failed,
           coalesce(p.t_retried, 0) + coalesce(p.retried, 0) as cum_retried,
           coalesce(p.t_dead_lettered, 0) + coalesce(p.dead_lettered, 0) as cum_dead_lettered,
           coalesce(p.t_interval_s, 0) + coalesce(p.interval_s, 0) as cum_interval_s,
           coalesce(p.t_idle, 0) + case when coalesce(p.ready, 0) = 0 and coalesce(p.in_flight, 0) = 0 then 1 else 0 end as cum_idle,
           coalesce(p.t_ready_zero, 0) + case when coalesce(p.ready, 0) = 0 then 1 else 0 end as cum_ready_zero,
           case when p.target_wait_s is not null then coalesce(p.interval_s, 0) end as slo_total_s,
           case when p.target_wait_s is not null then
             case when p.oldest_ready_age_s > p.target_wait_s then coalesce(p.interval_s, 0) else 0 end end as slo_bad_s,
           -- Exponentially weighted rates: the weight of this interval is 1 - e^(-interval / tau).
           case when p.interval_s > 0 and p.enqueued is not null then
             coalesce(p.t_in_rate + (1 - exp(-p.interval_s / st.tau_s)) * (p.enqueued / p.interval_s - p.t_in_rate),
                      p.enqueued / p.interval_s)
             else p.t_in_rate end as in_rate,
           case when p.interval_s > 0 and p.completed is not null then
             coalesce(p.t_out_rate + (1 - exp(-p.interval_s / st.tau_s))
                        * ((p.completed + coalesce(p.failed, 0)) / p.interval_s - p.t_out_rate),
                      (p.completed + coalesce(p.failed, 0)) / p.interval_s)
             else p.t_out_rate end as out_rate,
           st.tau_s, st.flow_window, st.redelivery_share
      from prev p cross join st
  )
  select
      p_now, c.project_id, c.source, c.source_schema, c.queue_name,
      c.ready, c.in_flight, c.delayed, c.depth, coalesce(c.depth_estimated, false), c.oldest_ready_age_s,
      c.enqueued, c.completed, c.failed, c.retried, c.dead_lettered,
      c.wait_p50_ms, c.wait_p95_ms, c.run_p50_ms, c.run_p95_ms, c.sample_ms, c.interval_s,
      c.cum_enqueued, c.cum_completed, c.cum_failed, c.cum_retried, c.cum_dead_lettered,
      c.cum_interval_s, c.cum_idle,
      -- poison: the sampler's probe, in its cursor (null when it did not probe)
      (c.cursor ->> 'poison')::bigint,
      case when c.cursor ->> 'oldest_poison_at' is not null then
        greatest(extract(epoch from p_now - (c.cursor ->> 'oldest_poison_at')::timestamptz), 0)::float8 end,
      c.in_rate, c.out_rate,
      queue_health.drain_eta_of(c.ready, r.in_rate, r.out_rate, 0.5 / c.tau_s),
      queue_health.expected_wait_of(c.ready, r.out_rate, 0.5 / c.tau_s),
      queue_health.flow_status_of(c.ready, c.in_flight, c.cum_enqueued - b.cum_enqueued,
        (c.cum_completed + c.cum_failed) - (b.cum_completed + b.cum_failed), c.cum_retried - b.cum_retried,
        c.cum_ready_zero - b.cum_ready_zero, c.cum_idle - b.cum_idle, b.ready, b.in_flight, c.redelivery_share),
      case when coalesce(c.enqueued, 0) > 0 then p_now else c.t_last_enqueue_at end,
      case when coalesce(c.completed, 0) + coalesce(c.failed, 0) + coalesce(c.retried, 0) > 0
             or c.in_flight > c.t_in_flight then p_now else c.t_last_dequeue_at end,
      c.slo_total_s, c.slo_bad_s, c.cum_ready_zero,
      coalesce(c.t_slo_total_s, 0) + coalesce(c.slo_total_s, 0),
      coalesce(c.t_slo_bad_s, 0) + coalesce(c.slo_bad_s, 0),
      c.cursor, c.is_newest, c.error
    from c
    -- The drain ETA and expected wait are known once the queue has been watched for a minute.
    cross join lateral (
      select case when c.cum_interval_s >= 60 then c.in_rate end as in_rate,
             case when c.cum_interval_s >= 60 then c.out_rate end as out_rate) r
    -- The flow window's start (nulls while the queue's history is shorter than the window, or
    -- when its rows are older than two windows). Not for failed samples.
    left join lateral queue_health._flow_window_start(c.source, c.source_schema, c.queue_name,
      p_now - c.flow_window, p_now - 2 * c.flow_window) b on c.error is null;
end;
$$;
comment on function queue_health._capture_rows(timestamptz, queue_health.sample[]) is 'capture() step: the metric row (stamped p_now, with interval, running totals and signals), cursor and newest flag of each queue in p_samples; for a queue whose sample failed, its identity and error.';
revoke execute on function queue_health._capture_rows(timestamptz, queue_health.sample[]) from public, anon, authenticated;

create or replace function queue_health._capture_store(
  p_now timestamptz,
  p_samples queue_health.sample[],
  out stored_rows int,
  out sampled_queues int,
  out unchanged_queues int)
returns record
volatile
set search_path = ''
language plpgsql
as $$
begin
  -- Registry and metric rows in one statement: every CTE sees the registry as it was before
  -- this statement, so interval_s comes from the previous last_seen_at (_capture_rows()).
  with r as materialized (
    select * from queue_health._capture_rows(p_now, p_samples)
  ),
  new_metric as (
    insert into queue_health.metric
    select r.captured_at, r.project_id, r.source, r.source_schema, r.queue_name, r.ready, r.in_flight,
      r.delayed, r.depth, r.depth_estimated, r.oldest_ready_age_s, r.enqueued, r.completed, r.failed,
      r.retried, r.dead_lettered, r.wait_p50_ms, r.wait_p95_ms, r.run_p50_ms, r.run_p95_ms,
      r.sample_ms, r.interval_s, r.cum_enqueued, r.cum_completed, r.cum_failed, r.cum_retried,
      r.cum_dead_lettered, r.cum_interval_s, r.cum_idle, r.poison, r.oldest_poison_age_s, r.in_rate,
      r.out_rate, r.drain_eta_s, r.expected_wait_s, r.flow_status, r.last_enqueue_at,
      r.last_dequeue_at, r.slo_total_s, r.slo_bad_s, r.cum_ready_zero, r.cum_slo_total_s,
      r.cum_slo_bad_s
    from r where r.error is null
    returning 1
  ),
  seen as (
    insert into queue_health.queue as q (source, source_schema, queue_name, project_id, cursor,
      first_seen_at, last_seen_at, totals_at, ready, in_flight, delayed, depth, oldest_ready_age_s,
      enqueued, completed, failed, retried, dead_lettered, wait_p50_ms, wait_p95_ms, run_p50_ms,
      run_p95_ms, sample_ms, interval_s, cum_enqueued, cum_completed, cum_failed, cum_retried,
      cum_dead_lettered, cum_interval_s, cum_idle, poison, oldest_poison_age_s, in_rate, out_rate,
      drain_eta_s, expected_wait_s, flow_status, last_enqueue_at, last_dequeue_at, slo_total_s,
      slo_bad_s, cum_ready_zero, cum_slo_total_s, cum_slo_bad_s)
    select r.source, r.source_schema, r.queue_name, r.project_id, r.cursor, p_now, p_now,
      case when r.newest then p_now end, r.ready, r.in_flight, r.delayed, r.depth,
      r.oldest_ready_age_s, r.enqueued, r.completed, r.failed, r.retried,
      r.dead_lettered, r.wait_p50_ms, r.wait_p95_ms, r.run_p50_ms, r.run_p95_ms,
      r.sample_ms, r.interval_s, r.cum_enqueued, r.cum_completed, r.cum_failed,
      r.cum_retried, r.cum_dead_lettered, r.cum_interval_s, r.cum_idle,
      r.poison, r.oldest_poison_age_s, r.in_rate, r.out_rate, r.drain_eta_s,
      r.expected_wait_s, r.flow_status, r.last_enqueue_at, r.last_dequeue_at,
      r.slo_total_s, r.slo_bad_s, r.cum_ready_zero, r.cum_slo_total_s, r.cum_slo_bad_s
    from r
    where r.error is null
    on conflict (source, source_schema, queue_name) do update set
      project_id = excluded.project_id, cursor = excluded.cursor,
      last_seen_at = greatest(q.last_seen_at, excluded.last_seen_at),
      dropped_at = null, totals_at = excluded.totals_at,
      ready = excluded.ready, in_flight = excluded.in_flight, delayed = excluded.delayed,
      depth = excluded.depth, oldest_ready_age_s = excluded.oldest_ready_age_s,
      enqueued = excluded.enqueued, completed = excluded.completed, failed = excluded.failed,
      retried = excluded.retried, dead_lettered = excluded.dead_lettered,
      wait_p50_ms = excluded.wait_p50_ms, wait_p95_ms = excluded.wait_p95_ms,
      run_p50_ms = excluded.run_p50_ms, run_p95_ms = excluded.run_p95_ms,
      sample_ms = excluded.sample_ms, interval_s = excluded.interval_s,
      cum_enqueued = excluded.cum_enqueued, cum_completed = excluded.cum_completed,
      cum_failed = excluded.cum_failed, cum_retried = excluded.cum_retried,
      cum_dead_lettered = excluded.cum_dead_lettered, cum_interval_s = excluded.cum_interval_s,
      cum_idle = excluded.cum_idle, poison = excluded.poison,
      oldest_poison_age_s = excluded.oldest_poison_age_s, in_rate = excluded.in_rate,
      out_rate = excluded.out_rate, drain_eta_s = excluded.drain_eta_s,
      expected_wait_s = excluded.expected_wait_s, flow_status = excluded.flow_status,
      last_enqueue_at = excluded.last_enqueue_at, last_dequeue_at = excluded.last_dequeue_at,
      slo_total_s = excluded.slo_total_s, slo_bad_s = excluded.slo_bad_s,
      cum_ready_zero = excluded.cum_ready_zero, cum_slo_total_s = excluded.cum_slo_total_s,
      cum_slo_bad_s = excluded.cum_slo_bad_s
    returning 1
  ),
  -- A queue whose sample failed still exists: register it, keep its cursor and last_seen_at
  -- (the next good sample's deltas and interval run from the last good one).
  seen_failed as (
    insert into queue_health.queue as q (source, source_schema, queue_name, project_id,
      first_seen_at, last_seen_at)
    select r.source, r.source_schema, r.queue_name, r.project_id, p_now, p_now
    from r
    where r.error is not null
    on conflict (source, source_schema, queue_name) do update set
      project_id = excluded.project_id,
      dropped_at = null
    returning 1
  )
  select (select count(*) from new_metric), (select count(*) from r),
         -- Queues the samplers found unchanged and did not read (docs/metrics.md).
         (select count(*) from r where r.error is null and (r.cursor ->> 'read_at')::timestamptz < p_now)
    into stored_rows, sampled_queues, unchanged_queues;
end;
$$;
comment on function queue_health._capture_store(timestamptz, queue_health.sample[]) is 'capture() step: in one statement, writes the metric row of each sample without error (_capture_rows(): interval, running totals, signals) and upserts the queue registry (project from project_queue_map, cursor, the newest row''s values; a queue whose sample failed is registered and keeps its cursor). Returns the rows stored, the queues sampled and how many of them the samplers found unchanged and did not read.';

-- Section: rollups

-- The rollups also sum the objective's seconds (for the budget over its period) and keep the most
-- poison messages of each bucket.
create or replace function queue_health.rollup(p_now timestamptz default now())
returns jsonb
volatile
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_settings queue_health.settings;
  v_resolution text;
  v_unit text;
  v_table text;
  v_from timestamptz;
  v_to timestamptz;
  v_rows bigint;
  v_result jsonb := '{}'::jsonb;
begin
  -- One rollup at a time: two overlapping runs would both read the same watermark.
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('queue_health.rollup', 0));
  select * into v_settings from queue_health.settings where id;

  foreach v_resolution in array array['1m', '1h'] loop
    v_unit := case v_resolution when '1m' then 'minute' else 'hour' end;
    v_table := 'metric_' || v_resolution;
    select w.rolled_up_to into v_from from queue_health.rollup_watermark w where w.resolution = v_resolution;
    v_from := coalesce(v_from, pg_catalog.date_trunc(v_unit, p_now - v_settings.raw_retention, 'UTC'));
    -- A capture stamps its rows with its start time and may commit a little later: only buckets
    -- that ended at least a minute ago are final.
    v_to := pg_catalog.date_trunc(v_unit, p_now - interval '1 minute', 'UTC');
    v_rows := 0;
    if v_to > v_from then
      -- Both resolutions are computed from raw rows, so averages are exact (not averages of
      -- averages). Buckets are whole, so a re-run replaces a bucket with the same values.
      execute format($sql$
        insert into queue_health.%1$I as r (
          bucket, project_id, source, source_schema, queue_name,
          depth_min, depth_avg, depth_max, depth_last,
          ready_min, ready_avg, ready_max, ready_last,
          in_flight_min, in_flight_avg, in_flight_max, in_flight_last,
          delayed_min, delayed_avg, delayed_max, delayed_last,
          oldest_ready_age_s_max, oldest_ready_age_s_last,
          enqueued, completed, failed, retried, dead_lettered,
          wait_p95_ms_max, run_p95_ms_max, depth_estimated, samples, poison_max, slo_total_s, slo_bad_s)
        select
          pg_catalog.date_trunc(%2$L, m.captured_at, 'UTC'),
          (pg_catalog.array_agg(m.project_id order by m.captured_at desc))[1],
          m.source, m.source_schema, m.queue_name,
          min(m.depth), avg(m.depth)::float8, max(m.depth),
          (pg_catalog.array_agg(m.depth order by m.captured_at desc))[1],
          min(m.ready), avg(m.ready)::float8, max(m.ready),
          (pg_catalog.array_agg(m.ready order by m.captured_at desc))[1],
          min(m.in_flight), avg(m.in_flight)::float8, max(m.in_flight),
          (pg_catalog.array_agg(m.in_flight order by m.captured_at desc))[1],
          min(m.delayed), avg(m.delayed)::float8, max(m.delayed),
          (pg_catalog.array_agg(m.delayed order by m.captured_at desc))[1],
          max(m.oldest_ready_age_s),
          (pg_catalog.array_agg(m.oldest_ready_age_s order by m.captured_at desc))[1],
          coalesce(sum(m.enqueued), 0), coalesce(sum(m.completed), 0), coalesce(sum(m.failed), 0),
          coalesce(sum(m.retried), 0), coalesce(sum(m.dead_lettered), 0),
          max(m.wait_p95_ms), max(m.run_p95_ms), bool_or(m.depth_estimated), count(*),
          max(m.poison), coalesce(sum(m.slo_total_s), 0), coalesce(sum(m.slo_bad_s), 0)
        from queue_health.metric m
        where m.captured_at >= $1 and m.captured_at < $2
        group by 1, m.source, m.source_schema, m.queue_name
        on conflict (queue_name, source, source_schema, bucket) do update set
          project_id = excluded.project_id,
          depth_min = excluded.depth_min, depth_avg = excluded.depth_avg,
          depth_max = excluded.depth_max, depth_last = excluded.depth_last,
          ready_min = excluded.ready_min, ready_avg = excluded.ready_avg,
          ready_max = excluded.ready_max, ready_last = excluded.ready_last,
          in_flight_min = excluded.in_flight_min, in_flight_avg = excluded.in_flight_avg,
          in_flight_max = excluded.in_flight_max, in_flight_last = excluded.in_flight_last,
          delayed_min = excluded.delayed_min, delayed_avg = excluded.delayed_avg,
          delayed_max = excluded.delayed_max, delayed_last = excluded.delayed_last,
          oldest_ready_age_s_max = excluded.oldest_ready_age_s_max,
          oldest_ready_age_s_last = excluded.oldest_ready_age_s_last,
          enqueued = excluded.enqueued, completed = excluded.completed, failed = excluded.failed,
          retried = excluded.retried, dead_lettered = excluded.dead_lettered,
          wait_p95_ms_max = excluded.wait_p95_ms_max, run_p95_ms_max = excluded.run_p95_ms_max,
          depth_estimated = excluded.depth_estimated, samples = excluded.samples,
          poison_max = excluded.poison_max, slo_total_s = excluded.slo_total_s, slo_bad_s = excluded.slo_bad_s
        $sql$, v_table, v_unit)
      using v_from, v_to;
      get diagnostics v_rows = row_count;
      insert into queue_health.rollup_watermark (resolution, rolled_up_to, updated_at)
      values (v_resolution, v_to, pg_catalog.clock_timestamp())
      on conflict (resolution) do update
        set rolled_up_to = excluded.rolled_up_to, updated_at = excluded.updated_at;
    end if;
    v_result := v_result || jsonb_build_object(v_resolution, jsonb_build_object(
      'from', v_from, 'to', greatest(v_from, v_to), 'rows', v_rows));
  end loop;
  return v_result;
end;
$$;
comment on function queue_health.rollup(timestamptz) is 'Fills metric_1m and metric_1h from raw metric rows, from each rollup''s watermark up to the last whole bucket that ended at least a minute before p_now; moves the watermarks. Returns {"1m": {from, to, rows}, "1h": {...}}.';

-- Section: objectives: seconds, burn rates, budget

-- Whole hours only: counting the metric_1h bucket that holds the window's start would take in up
-- to 59 minutes before it (local/test/signal_scenarios_test.ts measured a 1 h burn of 17.0 read as
-- 8.6 once the hour was rolled up, below the fast-burn rule's 14.4).
create function queue_health._slo_seconds(
  p_source text, p_source_schema text, p_queue_name text, p_since timestamptz, p_now timestamptz,
  out total_s double precision, out bad_s double precision)
returns record
stable
set search_path = ''
language plpgsql
as $$
declare
  v_rolled timestamptz;
  v_hour timestamptz;
  v_from timestamptz;
  v_after timestamptz;
  v_last record;
  v_base record;
begin
  -- The seconds under the objective, and those that missed it, in (p_since, p_now], in up to three
  -- parts. Once the hourly rollup has passed the first whole hour of the window (v_hour): raw rows
  -- of (p_since, v_hour), at most an hour of them (none once raw retention has dropped them: the
  -- far end of a long window then counts a little short, never long); the whole hours
  -- [v_hour, watermark) of metric_1h (so windows longer than raw retention work); raw rows from
  -- the watermark on. Otherwise raw rows only. Raw runs are two probes of the running totals.
  select w.rolled_up_to into v_rolled from queue_health.rollup_watermark w where w.resolution = '1h';
  v_hour := pg_catalog.date_trunc('hour', p_since, 'UTC');
  if v_hour < p_since then
    v_hour := v_hour + interval '1 hour';
  end if;
  v_from := case when v_rolled is not null and least(v_rolled, p_now) > v_hour
                 then least(v_rolled, p_now) else p_since end;
  total_s := 0;
  bad_s := 0;
  if v_from > p_since then
    select coalesce(sum(h.slo_total_s), 0), coalesce(sum(h.slo_bad_s), 0) into total_s, bad_s
      from queue_health.metric_1h h
     where h.queue_name = p_queue_name and h.source = p_source and h.source_schema = p_source_schema
       and h.bucket >= v_hour and h.bucket < v_from;
    select total_s + coalesce(sum(m.slo_total_s), 0), bad_s + coalesce(sum(m.slo_bad_s), 0)
      into total_s, bad_s
      from queue_health.metric m
     where m.queue_name = p_queue_name and m.source = p_source and m.source_schema = p_source_schema
       and m.captured_at > p_since and m.captured_at < v_hour;
    -- The raw rows after the rollup start at the watermark itself (a bucket holds [start, end)).
    v_after := v_from - interval '1 microsecond';
  else
    v_after := p_since;
  end if;
  select m.cum_slo_total_s, m.cum_slo_bad_s into v_last
    from queue_health.metric m
   where m.queue_name = p_queue_name and m.source = p_source and m.source_schema = p_source_schema
     and m.captured_at <= p_now and m.captured_at > v_after
   order by m.captured_at desc limit 1;
  if v_last.cum_slo_total_s is null then
    return;
  end if;
  select m.cum_slo_total_s, m.cum_slo_bad_s into v_base
    from queue_health.metric m
   where m.queue_name = p_queue_name and m.source = p_source and m.source_schema = p_source_schema
     and m.captured_at <= v_after
   order by m.captured_at desc limit 1;
  if v_base.cum_slo_total_s is null then
    -- No row before: from the run's oldest row, less its own seconds.
    select m.cum_slo_total_s - coalesce(m.slo_total_s, 0) as cum_slo_total_s,
           m.cum_slo_bad_s - coalesce(m.slo_bad_s, 0) as cum_slo_bad_s
      into v_base
      from queue_health.metric m
     where m.queue_name = p_queue_name and m.source = p_source and m.source_schema = p_source_schema
       and m.captured_at > v_after and m.captured_at <= p_now
     order by m.captured_at limit 1;
  end if;
  total_s := total_s + v_last.cum_slo_total_s - coalesce(v_base.cum_slo_total_s, 0);
  bad_s := bad_s + v_last.cum_slo_bad_s - coalesce(v_base.cum_slo_bad_s, 0);
end;
$$;
comment on function queue_health._slo_seconds(text, text, text, timestamptz, timestamptz) is 'Seconds of the queue under its latency objective, and those that missed it, in (p_since, p_now]: the whole hours of metric_1h inside the window before the hourly rollup''s watermark, raw rows for the rest (the part before the first whole hour, and from the watermark on).';
revoke execute on function queue_health._slo_seconds(text, text, text, timestamptz, timestamptz) from public, anon;
-- Security invoker over row-level security (metric, metric_1h): slo_burn_rate() and
-- slo_budget_remaining() call it as the caller.
grant execute on function queue_health._slo_seconds(text, text, text, timestamptz, timestamptz) to authenticated, service_role;

create function queue_health._slo_objective(p_source text, p_source_schema text, p_queue_name text)
returns queue_health.queue_objective
stable
set search_path = ''
language sql
as $$
  -- Security invoker: row-level security on queue and queue_objective decides, so a queue the
  -- caller may not see has no objective. One for the queue's schema wins over one for any schema.
  select o
    from queue_health.queue q
    join queue_health.queue_objective o
      on o.project_id = q.project_id and o.source = q.source and o.queue_name = q.queue_name
     and (o.source_schema is null or o.source_schema = q.source_schema)
   where q.source = p_source and q.source_schema = p_source_schema and q.queue_name = p_queue_name
   order by o.source_schema nulls last
   limit 1
$$;
comment on function queue_health._slo_objective(text, text, text) is 'The latency objective that applies to the queue (its project''s, for its schema before one for any schema); null when it has none or the caller may not see the queue.';
revoke execute on function queue_health._slo_objective(text, text, text) from public, anon;
-- Called as the caller by slo_burn_rate() and slo_budget_remaining().
grant execute on function queue_health._slo_objective(text, text, text) to authenticated, service_role;

create function queue_health.slo_burn_rate(
  p_source text, p_source_schema text, p_queue_name text, p_window interval, p_now timestamptz default now())
returns double precision
stable
set search_path = ''
language plpgsql
as $$
declare
  v_objective queue_health.queue_objective;
  v_seconds record;
begin
  -- Security invoker: row-level security on queue, queue_objective, metric and metric_1h decides
  -- what it reads, so a queue the caller may not see has no objective and no seconds (null).
  v_objective := queue_health._slo_objective(p_source, p_source_schema, p_queue_name);
  if v_objective.id is null then
    return null;
  end if;
  v_seconds := queue_health._slo_seconds(p_source, p_source_schema, p_queue_name, p_now - p_window, p_now);
  if coalesce(v_seconds.total_s, 0) <= 0 then
    return null;
  end if;
  -- Over the whole window, not over the seconds counted in it: time without an objective or
  -- without snapshots (a young queue, an objective set minutes ago) counts as good. Otherwise a
  -- window holding one bad capture and little else would burn at 1 / (1 - X): a fresh objective
  -- would page on its first slow minute, and the long windows, whose job is to show that a real
  -- share of the budget went, would show nothing of the kind.
  return (v_seconds.bad_s / extract(epoch from p_window)) / (1 - v_objective.objective);
end;
$$;
comment on function queue_health.slo_burn_rate(text, text, text, interval, timestamptz) is 'How fast the queue spends its latency objective''s error budget over the last p_window: (bad seconds / seconds in p_window) / (1 - objective), time without snapshots or before the objective counting as good; 1 spends exactly the budget over the period, 14.4 spends 2 % of a 30-day budget in an hour. Null without an objective or without data in the window; security invoker, so null for a queue the caller may not see (row-level security).';
revoke execute on function queue_health.slo_burn_rate(text, text, text, interval, timestamptz) from public, anon;
grant execute on function queue_health.slo_burn_rate(text, text, text, interval, timestamptz) to authenticated, service_role;

create function queue_health.slo_budget_remaining(
  p_source text, p_source_schema text, p_queue_name text, p_now timestamptz default now())
returns double precision
stable
set search_path = ''
language plpgsql
as $$
declare
  v_objective queue_health.queue_objective;
  v_seconds record;
begin
  -- Security invoker, as slo_burn_rate().
  v_objective := queue_health._slo_objective(p_source, p_source_schema, p_queue_name);
  if v_objective.id is null then
    return null;
  end if;
  v_seconds := queue_health._slo_seconds(p_source, p_source_schema, p_queue_name,
    greatest(p_now - v_objective.period, v_objective.created_at), p_now);
  if coalesce(v_seconds.total_s, 0) <= 0 then
    return 1;
  end if;
  -- The budget is (1 - objective) of the whole period; what the seconds so far spent of it.
  return 1 - v_seconds.bad_s / ((1 - v_objective.objective) * extract(epoch from v_objective.period));
end;
$$;
comment on function queue_health.slo_budget_remaining(text, text, text, timestamptz) is 'Fraction of the latency objective''s error budget for its period that is left: 1 - bad seconds in the last period (since the objective was set, if later) / ((1 - objective) x period seconds). 1 untouched, 0 spent, below 0 overspent. Null without an objective; security invoker, so null for a queue the caller may not see (row-level security).';
revoke execute on function queue_health.slo_budget_remaining(text, text, text, timestamptz) from public, anon;
grant execute on function queue_health.slo_budget_remaining(text, text, text, timestamptz) to authenticated, service_role;
