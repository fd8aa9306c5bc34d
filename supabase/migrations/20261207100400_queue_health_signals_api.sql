-- Queue Health: where the signals show. queue_status gains each queue's signals (rates, drain ETA,
-- expected wait, flow status, poison, last enqueue / dequeue, latency objective and its burn) and
-- lets the flow status feed its status; queue_history() gains them per snapshot or bucket; the
-- Realtime snapshot carries flow_status, drain_eta_s and poison. docs/sql.md, docs/api.md and
-- docs/realtime.md show them.

-- Section: queue_status

-- The same view, columns in place, the signals appended (create or replace keeps dependants). The
-- flow status is judged without thresholds, so it feeds the status directly: stopped and stalled
-- (nothing completes while work waits) are critical, falling_behind and redelivering warning.
-- Then the running totals (cum_*), which the queue-health function exports as Prometheus counters
-- (queue_health_enqueued_total, …): a total never goes down while the queue's registry row exists
-- (the previous row's total plus this interval's count, counts never negative; a queue dropped and
-- created again keeps its registry row, so its totals carry on); and poison_estimated.
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
  m.cum_dead_lettered,
  -- The latest capture's cursor says whether poison was a sample's estimate (above the bound).
  coalesce((q.cursor ->> 'poison_estimated')::boolean, false) as poison_estimated
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
comment on view queue_health.queue_status is 'One row per queue that still exists, with its latest snapshot, rates per second over the last interval, error rate failed/(completed+failed), its signals (smoothed rates, drain ETA, expected wait, flow status, poison, last enqueue / dequeue, latency objective) and status: stale (no snapshot in stale_after_intervals capture intervals), critical (oldest ready message >= critical_oldest_ready_age_s, or flow_status stopped or stalled), warning (oldest ready >= warning_oldest_ready_age_s, error rate >= warning_error_rate, dead letters, or flow_status falling_behind or redelivering), else ok; and its running totals (cum_*), which Prometheus reads as counters; poison_estimated says poison is a sample''s estimate. RLS applies.';
comment on column queue_health.queue_status.status is 'ok, warning, critical or stale (see the view comment).';
comment on column queue_health.queue_status.in_rate is 'Enqueue rate, messages/s, exponentially weighted (settings.rate_smoothing); null until the queue has been watched for a minute.';
comment on column queue_health.queue_status.out_rate is 'Completion rate (completed + failed), messages/s, weighted as in_rate.';
comment on column queue_health.queue_status.drain_eta_s is 'Seconds until nothing is ready at the current rates: ready / (out_rate - in_rate); 0 with nothing ready; Infinity (JSON "never") when the backlog does not shrink; null without enough data.';
comment on column queue_health.queue_status.expected_wait_s is 'Seconds a message sent now waits for a worker: ready / out_rate; Infinity (JSON "never") when nothing completes; null without enough data.';
comment on column queue_health.queue_status.flow_status is 'idle, ok, falling_behind, stalled, stopped or redelivering over settings.flow_window (docs/metrics.md); null while the history is shorter than the window.';
comment on column queue_health.queue_status.poison is 'Messages taken settings.poison_read_count times or more still in the queue; null when not probed.';
comment on column queue_health.queue_status.oldest_poison_age_s is 'Age of the oldest poison message, seconds; null when there is none.';
comment on column queue_health.queue_status.last_enqueue_at is 'The latest snapshot at which messages had been enqueued since the one before.';
comment on column queue_health.queue_status.last_dequeue_at is 'The latest snapshot at which consumers had taken work since the one before.';
comment on column queue_health.queue_status.slo_target_wait_s is 'The queue''s latency objective: the oldest ready message waits at most this many seconds (null: no objective).';
comment on column queue_health.queue_status.slo_objective is 'The fraction of the time the objective must hold (0.99 = 99 %); null: no objective.';
comment on column queue_health.queue_status.slo_burn_rate_1h is 'Error budget burn rate over the last hour (queue_health.slo_burn_rate()); 1 spends the budget exactly over the period; null without an objective or data.';
comment on column queue_health.queue_status.slo_budget_remaining is 'Fraction of the period''s error budget left (queue_health.slo_budget_remaining()): 1 untouched, 0 spent, below 0 overspent; null without an objective.';
comment on column queue_health.queue_status.slo_period_s is 'The objective''s budget period, seconds (30 days = 2592000); null without an objective.';
comment on column queue_health.queue_status.cum_enqueued is 'Messages enqueued since the queue was first seen (running total of metric.enqueued at the latest snapshot): a Prometheus counter, never lower than before while the queue is registered.';
comment on column queue_health.queue_status.cum_completed is 'Messages completed since the queue was first seen (running total, as cum_enqueued).';
comment on column queue_health.queue_status.cum_failed is 'Messages failed since the queue was first seen (running total, as cum_enqueued).';
comment on column queue_health.queue_status.cum_retried is 'Retries since the queue was first seen (running total, as cum_enqueued).';
comment on column queue_health.queue_status.cum_dead_lettered is 'Messages dead-lettered since the queue was first seen (running total, as cum_enqueued).';
comment on column queue_health.queue_status.poison_estimated is 'True when poison is estimated from a sample (the queue holds more than settings.exact_count_limit messages or live jobs), false when it was counted; from the latest capture''s cursor, for pgmq and pg-boss alike.';

-- Section: queue_history

-- The same parameters and columns, the signals appended (a new result type: drop and create).
drop function queue_health.queue_history(text, timestamptz, timestamptz, text);
create function queue_health.queue_history(
  p_queue text,
  p_from timestamptz,
  p_to timestamptz,
  p_source text default null
)
returns table (
  bucket timestamptz,
  project_id text,
  source text,
  queue_name text,
  resolution text,
  depth double precision,
  ready double precision,
  in_flight double precision,
  delayed double precision,
  oldest_ready_age_s double precision,
  enqueued bigint,
  completed bigint,
  failed bigint,
  retried bigint,
  dead_lettered bigint,
  source_schema text,
  in_rate double precision,
  out_rate double precision,
  drain_eta_s double precision,
  expected_wait_s double precision,
  flow_status queue_health.flow_status,
  poison bigint,
  slo_total_s double precision,
  slo_bad_s double precision
)
stable
security invoker
set search_path = ''
language plpgsql
as $$
declare
  v_resolution text;
  v_unit text;
  v_watermark timestamptz;
begin
  if p_queue is null or p_from is null or p_to is null then
    raise exception 'p_queue, p_from and p_to are required' using errcode = '22004';
  end if;
  if p_to < p_from then
    raise exception 'p_to (%) must not be before p_from (%)', p_to, p_from using errcode = '22023';
  end if;
  v_resolution := case
    when p_to - p_from <= interval '6 hours' then 'raw'
    when p_to - p_from <= interval '7 days' then '1m'
    else '1h' end;

  if v_resolution = 'raw' then
    return query
      select m.captured_at, m.project_id, m.source, m.queue_name, v_resolution,
        m.depth::float8, m.ready::float8, m.in_flight::float8, m.delayed::float8,
        m.oldest_ready_age_s, m.enqueued, m.completed, m.failed, m.retried, m.dead_lettered,
        m.source_schema, m.in_rate, m.out_rate, m.drain_eta_s, m.expected_wait_s, m.flow_status,
        m.poison, m.slo_total_s, m.slo_bad_s
      from queue_health.metric m
      where m.queue_name = p_queue and (p_source is null or m.source = p_source)
        and m.captured_at >= p_from and m.captured_at < p_to
      order by m.captured_at, m.source, m.source_schema;
    return;
  end if;

  -- Rollup rows up to the watermark; after it (the last few minutes), the same aggregation on
  -- the fly from raw rows, so a chart reaches the present. Both give each bucket's last ready and
  -- in-flight counts, from which the signals of a bucket follow the same way (one bucket before
  -- the range is read for the first bucket's flow status): the rates are the bucket's averages
  -- (messages / bucket seconds), the drain ETA and expected wait those of its last ready count at
  -- those rates, the flow status that of the bucket as one window (flow_status_of(), starting from
  -- the previous bucket's last counts).
  v_unit := case v_resolution when '1m' then 'minute' else 'hour' end;
  select w.rolled_up_to into v_watermark from queue_health.rollup_watermark w where w.resolution = v_resolution;
  v_watermark := coalesce(v_watermark, '-infinity');
  return query execute format($sql$
    with b as (
      select r.bucket, r.project_id, r.source, r.queue_name,
        r.depth_avg, r.ready_avg, r.in_flight_avg, r.delayed_avg, r.oldest_ready_age_s_max,
        r.enqueued, r.completed, r.failed, r.retried, r.dead_lettered, r.source_schema,
        r.ready_last, r.in_flight_last, r.ready_min, r.in_flight_min, r.poison_max, r.slo_total_s, r.slo_bad_s
      from queue_health.%1$I r
      where r.queue_name = $1 and ($4::text is null or r.source = $4)
        and r.bucket >= pg_catalog.date_trunc(%2$L, $2, 'UTC') - %3$L::interval and r.bucket < $3
        and r.bucket < $6
      union all
      select pg_catalog.date_trunc(%2$L, m.captured_at, 'UTC'),
        (pg_catalog.array_agg(m.project_id order by m.captured_at desc))[1],
        m.source, m.queue_name,
        avg(m.depth)::float8, avg(m.ready)::float8, avg(m.in_flight)::float8, avg(m.delayed)::float8,
        max(m.oldest_ready_age_s),
        coalesce(sum(m.enqueued), 0)::bigint, coalesce(sum(m.completed), 0)::bigint,
        coalesce(sum(m.failed), 0)::bigint, coalesce(sum(m.retried), 0)::bigint,
        coalesce(sum(m.dead_lettered), 0)::bigint, m.source_schema,
        (pg_catalog.array_agg(m.ready order by m.captured_at desc))[1],
        (pg_catalog.array_agg(m.in_flight order by m.captured_at desc))[1],
        min(m.ready), min(m.in_flight), max(m.poison),
        coalesce(sum(m.slo_total_s), 0)::float8, coalesce(sum(m.slo_bad_s), 0)::float8
      from queue_health.metric m
      where m.queue_name = $1 and ($4::text is null or m.source = $4)
        and m.captured_at >= greatest($6, pg_catalog.date_trunc(%2$L, $2, 'UTC') - %3$L::interval)
        and m.captured_at < $3
      group by 1, m.source, m.source_schema, m.queue_name
    ),
    f as (
      select b.*,
        b.enqueued / extract(epoch from %3$L::interval)::float8 as in_rate,
        (b.completed + b.failed) / extract(epoch from %3$L::interval)::float8 as out_rate,
        lag(b.bucket) over w as prev_bucket,
        lag(b.ready_last) over w as start_ready,
        lag(b.in_flight_last) over w as start_in_flight
      from b
      window w as (partition by b.source, b.source_schema order by b.bucket)
    )
    select f.bucket, f.project_id, f.source, f.queue_name, $5,
      f.depth_avg, f.ready_avg, f.in_flight_avg, f.delayed_avg, f.oldest_ready_age_s_max,
      f.enqueued, f.completed, f.failed, f.retried, f.dead_lettered, f.source_schema,
      f.in_rate, f.out_rate,
      queue_health.drain_eta_of(f.ready_last, f.in_rate, f.out_rate),
      queue_health.expected_wait_of(f.ready_last, f.out_rate),
      case when f.prev_bucket = f.bucket - %3$L::interval then
        queue_health.flow_status_of(f.ready_last, f.in_flight_last, f.enqueued, f.completed + f.failed,
          f.retried, case when f.ready_min = 0 then 1 else 0 end,
          case when f.ready_min = 0 and f.in_flight_min = 0 then 1 else 0 end,
          f.start_ready, f.start_in_flight) end,
      f.poison_max, f.slo_total_s, f.slo_bad_s
    from f
    where f.bucket >= pg_catalog.date_trunc(%2$L, $2, 'UTC')
    order by 1, 3, 16
    $sql$, 'metric_' || v_resolution, v_unit, '1 ' || v_unit)
    using p_queue, p_from, p_to, p_source, v_resolution, v_watermark;
end;
$$;
comment on function queue_health.queue_history(text, timestamptz, timestamptz, text) is 'History of one queue (optionally one source) over [p_from, p_to): raw snapshots for ranges up to 6 hours, 1-minute buckets up to 7 days, else 1-hour buckets. In buckets, gauges are averages, oldest_ready_age_s the maximum, counts and objective seconds sums, poison the maximum; in_rate / out_rate the bucket''s average rates (messages / bucket seconds), drain_eta_s / expected_wait_s those of the bucket''s last ready count at those rates (Infinity: never), flow_status the bucket judged as one window from the previous bucket''s last counts (null for a bucket without one before it). Raw rows carry the values capture computed. Security invoker: RLS applies.';
revoke execute on function queue_health.queue_history(text, timestamptz, timestamptz, text) from public, anon, authenticated;
grant execute on function queue_health.queue_history(text, timestamptz, timestamptz, text) to authenticated, service_role;

-- Section: Realtime

-- The broadcast of 0.1.0 with three signals appended to each queue: flow_status, drain_eta_s
-- (whole seconds, "never", or null) and poison. Slim stays payload version 2 (the fields are
-- appended: a reader by position sees the first nine as before).
create or replace function queue_health._broadcast_snapshot()
returns trigger
volatile
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_message record;
  v_mode text;
begin
  if pg_catalog.to_regprocedure('realtime.send(jsonb, text, text, boolean)') is null then
    return null;
  end if;
  begin
    -- Every broadcast is also a row of realtime.messages, which hosted Realtime keeps for about
    -- three days: settings.realtime_payload says how much of each snapshot goes out.
    select s.realtime_payload into v_mode from queue_health.settings s where s.id;
    v_mode := coalesce(v_mode, 'slim');
    if v_mode = 'off' then
      return null;
    end if;
    -- One message per project per statement, split into parts of at most ~60 000 bytes of queue
    -- items each (plus one item and the envelope), which keeps every message under 64 KiB. A
    -- capture inserts one snapshot; a bulk load of history (several captured_at) broadcasts only
    -- each project's latest snapshot. Slim (payload v2): each queue is the array [source,
    -- source_schema, queue, depth, oldest_ready_age_s, enqueued, completed, failed,
    -- depth_estimated, flow_status, drain_eta_s, poison] (realtime_payload.ts,
    -- SLIM_QUEUE_FIELDS; the last three appended by the signals). Full (v1): each queue is an
    -- object with every gauge and count of the row and the same three signals.
    for v_message in
      with latest as (
        select n.*, max(n.captured_at) over (partition by n.project_id) as latest_at,
          -- the drain ETA in whole seconds, "never" for Infinity (the JSON convention)
          case when n.drain_eta_s = 'Infinity'::float8 then to_jsonb('never'::text)
               when n.drain_eta_s is not null then to_jsonb(round(n.drain_eta_s::numeric)) end as drain_eta
        from new_rows n
      ),
      item as (
        select n.project_id, n.captured_at,
          case when v_mode = 'full' then
            jsonb_build_object('source', n.source, 'source_schema', n.source_schema,
              'queue', n.queue_name, 'depth', n.depth, 'ready', n.ready, 'in_flight', n.in_flight,
              'delayed', n.delayed, 'oldest_ready_age_s', n.oldest_ready_age_s,
              'enqueued', n.enqueued, 'completed', n.completed, 'failed', n.failed,
              'dead_lettered', n.dead_lettered, 'depth_estimated', n.depth_estimated,
              'flow_status', n.flow_status, 'drain_eta_s', n.drain_eta, 'poison', n.poison)
          else
            jsonb_build_array(n.source, n.source_schema, n.queue_name, n.depth,
              n.oldest_ready_age_s, n.enqueued, n.completed, n.failed, n.depth_estimated,
              n.flow_status, n.drain_eta, n.poison)
          end as queue,
          -- The item's size as JSON text, without printing it (jsonb to text costs ~15 us an
          -- item): the punctuation (full: the keys too, 197 bytes; slim: brackets and ", ", 18)
          -- and a boolean (at most 5), the names as JSON strings, each number as jsonb prints it
          -- (null: 4), and the separator: never less than the printed size.
          case when v_mode = 'full' then 248 else 29 end
            + octet_length(to_json(n.source)::text) + octet_length(to_json(n.source_schema)::text)
            + octet_length(to_json(n.queue_name)::text)
            + coalesce(length(n.depth::text), 4)
            + coalesce(length(n.enqueued::text), 4) + coalesce(length(n.completed::text), 4)
            + coalesce(length(n.failed::text), 4)
            -- the signals: the status as a JSON string, the whole seconds or "never", the count
            + coalesce(length(n.flow_status::text) + 2, 4) + coalesce(length(n.drain_eta::text), 4)
            + coalesce(length(n.poison::text), 4)
            + case when v_mode = 'full' then
                coalesce(length(n.ready::text), 4) + coalesce(length(n.in_flight::text), 4)
                + coalesce(length(n.delayed::text), 4) + coalesce(length(n.dead_lettered::text), 4)
              else 0 end
            -- a float's digits as jsonb prints them (shortest exact, positional) are at most its
            -- float8 text or its positional numeric text, give or take an exponent's digits
            + coalesce(greatest(length(n.oldest_ready_age_s::text),
                                length(n.oldest_ready_age_s::numeric::text)) + 8, 4)
            + 2 as size,
          row_number() over (partition by n.project_id order by n.source, n.source_schema, n.queue_name) as n
        from latest n
        where n.captured_at = n.latest_at
      ),
      sized as (
        select i.*, sum(i.size) over (partition by i.project_id order by i.n) as bytes
        from item i
      ),
      chunk as (
        select s.project_id, max(s.captured_at) as captured_at, floor((s.bytes - 1) / 60000) as chunk,
          jsonb_agg(s.queue order by s.n) as queues
        from sized s
        group by s.project_id, floor((s.bytes - 1) / 60000)
      )
      select c.project_id, c.captured_at, c.queues,
        dense_rank() over (partition by c.project_id order by c.chunk) as part,
        count(*) over (partition by c.project_id) as parts
      from chunk c
      order by c.project_id, c.chunk
    loop
      perform realtime.send(
        jsonb_build_object('v', case when v_mode = 'full' then 1 else 2 end,
          'project_id', v_message.project_id,
          'captured_at', v_message.captured_at, 'part', v_message.part, 'parts', v_message.parts,
          'queues', v_message.queues),
        'snapshot', 'queue_health:' || v_message.project_id, true);
    end loop;
  exception when others then
    -- A broadcast is best-effort: it must never fail the capture that stored the rows.
    raise warning 'queue_health: Realtime broadcast failed: %', sqlerrm;
  end;
  return null;
end;
$$;
comment on function queue_health._broadcast_snapshot() is 'Statement trigger on metric: broadcasts the inserted rows (each project''s latest captured_at) with realtime.send(payload, ''snapshot'', ''queue_health:<project_id>'', private), one message per project (split into parts under 64 KiB), as settings.realtime_payload says: slim (default) {v: 2, project_id, captured_at, part, parts, queues: [[source, source_schema, queue, depth, oldest_ready_age_s, enqueued, completed, failed, depth_estimated, flow_status, drain_eta_s, poison], ...]}, full {v: 1, ..., queues: [{source, source_schema, queue, depth, ready, in_flight, delayed, oldest_ready_age_s, enqueued, completed, failed, dead_lettered, depth_estimated, flow_status, drain_eta_s, poison}, ...]} (drain_eta_s in whole seconds, "never" when the backlog does not shrink, null without data), off: nothing. Never fails the insert.';
revoke execute on function queue_health._broadcast_snapshot() from public, anon, authenticated;
