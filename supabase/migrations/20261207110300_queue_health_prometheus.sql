-- Queue Health: what Prometheus counters are made of. queue_status gains each queue's running
-- totals (the metric row's cum_* columns, kept by capture() and the metric_running_totals
-- trigger), so the queue-health function can export them as counters
-- (queue_health_enqueued_total, …) that Prometheus can rate(). docs/prometheus.md shows them.

-- Section: queue_status

-- The same view, columns in place, the running totals appended (create or replace keeps
-- dependants and grants). A total never goes down while the queue's registry row exists: it is
-- the previous row's total plus this interval's count, and the counts are never negative; a
-- queue that is dropped and created again keeps its registry row, so its totals carry on.
create or replace view queue_health.queue_status
with (security_invoker = true)
as
select
  q.project_id,
  q.source,
  q.source_schema,
  q.queue_name,
  m.captured_at,
  extract(epoch from now() - m.captured_at)::float8 as snapshot_age_s,
  m.ready,
  m.in_flight,
  m.delayed,
  m.depth,
  m.depth_estimated,
  m.oldest_ready_age_s,
  m.enqueued,
  m.completed,
  m.failed,
  m.retried,
  m.dead_lettered,
  m.interval_s,
  m.enqueued / nullif(m.interval_s, 0) as enqueue_rate,
  m.completed / nullif(m.interval_s, 0) as complete_rate,
  m.failed / nullif(m.interval_s, 0) as fail_rate,
  m.failed::float8 / nullif(m.completed + m.failed, 0) as error_rate,
  m.wait_p50_ms,
  m.wait_p95_ms,
  m.run_p50_ms,
  m.run_p95_ms,
  case
    when m.captured_at is null
      or now() - m.captured_at > s.capture_interval * s.stale_after_intervals then 'stale'
    when m.oldest_ready_age_s >= s.critical_oldest_ready_age_s
      or m.flow_status in ('stopped', 'stalled') then 'critical'
    when m.oldest_ready_age_s >= s.warning_oldest_ready_age_s
      or m.failed::float8 / nullif(m.completed + m.failed, 0) >= s.warning_error_rate
      or m.dead_lettered > 0
      or m.flow_status in ('falling_behind', 'redelivering') then 'warning'
    else 'ok'
  end as status,
  m.in_rate,
  m.out_rate,
  m.drain_eta_s,
  m.expected_wait_s,
  m.flow_status,
  m.poison,
  m.oldest_poison_age_s,
  m.last_enqueue_at,
  m.last_dequeue_at,
  o.target_wait_s as slo_target_wait_s,
  o.objective as slo_objective,
  -- Only queues with an objective pay for the burn rate and budget (each reads the queue's rows).
  case when o.objective is not null then
    queue_health.slo_burn_rate(q.source, q.source_schema, q.queue_name, interval '1 hour') end as slo_burn_rate_1h,
  case when o.objective is not null then
    queue_health.slo_budget_remaining(q.source, q.source_schema, q.queue_name) end as slo_budget_remaining,
  extract(epoch from o.period)::float8 as slo_period_s,
  m.cum_enqueued,
  m.cum_completed,
  m.cum_failed,
  m.cum_retried,
  m.cum_dead_lettered
from queue_health.queue q
cross join queue_health.settings s
left join lateral (
  select *
  from queue_health.metric m
  where m.queue_name = q.queue_name and m.source = q.source and m.source_schema = q.source_schema
  order by m.captured_at desc
  limit 1
) m on true
-- The queue's objective as capture picks it: one for its schema before one for any schema.
left join lateral (
  select o.target_wait_s, o.objective, o.period
  from queue_health.queue_objective o
  where o.project_id = q.project_id and o.source = q.source and o.queue_name = q.queue_name
    and (o.source_schema is null or o.source_schema = q.source_schema)
  order by o.source_schema nulls last
  limit 1
) o on true
where q.dropped_at is null;
comment on view queue_health.queue_status is 'One row per queue that still exists, with its latest snapshot, rates per second over the last interval, error rate failed/(completed+failed), its signals (smoothed rates, drain ETA, expected wait, flow status, poison, last enqueue / dequeue, latency objective) and status: stale (no snapshot in stale_after_intervals capture intervals), critical (oldest ready message >= critical_oldest_ready_age_s, or flow_status stopped or stalled), warning (oldest ready >= warning_oldest_ready_age_s, error rate >= warning_error_rate, dead letters, or flow_status falling_behind or redelivering), else ok; and its running totals (cum_*), which Prometheus reads as counters. RLS applies.';
comment on column queue_health.queue_status.cum_enqueued is 'Messages enqueued since the queue was first seen (running total of metric.enqueued at the latest snapshot): a Prometheus counter, never lower than before while the queue is registered.';
comment on column queue_health.queue_status.cum_completed is 'Messages completed since the queue was first seen (running total, as cum_enqueued).';
comment on column queue_health.queue_status.cum_failed is 'Messages failed since the queue was first seen (running total, as cum_enqueued).';
comment on column queue_health.queue_status.cum_retried is 'Retries since the queue was first seen (running total, as cum_enqueued).';
comment on column queue_health.queue_status.cum_dead_lettered is 'Messages dead-lettered since the queue was first seen (running total, as cum_enqueued).';
