-- Queue Health: seasonal baselines. An hour-of-week profile per queue (median and median absolute
-- deviation of the enqueue rate, the out rate, the depth and the ready age), recomputed once an
-- hour by maintain() from the 1-hour rollups of the last settings.baseline_weeks weeks, and the two
-- pure helpers the anomaly condition is built on: hour_of_week() and is_anomalous().
-- docs/metrics.md, "Seasonal baselines", defines them with an example.

-- Section: settings

alter table queue_health.settings
  add column baseline_weeks int not null default 4,
  add column baseline_min_days double precision not null default 14,
  add constraint settings_baseline_weeks_range check (baseline_weeks between 1 and 52),
  add constraint settings_baseline_min_days_range check (baseline_min_days >= 0 and baseline_min_days <= 366);
comment on column queue_health.settings.baseline_weeks is 'How many weeks of 1-hour rollups (metric_1h) the seasonal baselines (queue_baseline) are computed from: each hour of the week gets at most this many samples (default 4; 1 to 52; needs rollup_1h_retention at least as long).';
comment on column queue_health.settings.baseline_min_days is 'Days of 1-hour rollups a queue needs (queue_baseline.history_days) before its baseline is trusted: the anomaly condition stays inactive below it (default 14, the issue''s two weeks).';
comment on constraint settings_baseline_weeks_range on queue_health.settings is 'Baselines look back between 1 and 52 weeks.';
comment on constraint settings_baseline_min_days_range on queue_health.settings is 'The history a baseline needs is between 0 and 366 days.';

-- Section: the profile

create table queue_health.queue_baseline (
  source text not null,
  source_schema text not null,
  queue_name text not null,
  hour_of_week smallint not null,
  enqueue_rate_median double precision,
  enqueue_rate_mad double precision,
  out_rate_median double precision,
  out_rate_mad double precision,
  depth_median double precision,
  depth_mad double precision,
  ready_age_median double precision,
  ready_age_mad double precision,
  samples int not null,
  history_days double precision not null,
  computed_at timestamptz not null,
  primary key (queue_name, source, source_schema, hour_of_week),
  constraint queue_baseline_hour_of_week_range check (hour_of_week between 0 and 167),
  constraint queue_baseline_samples_positive check (samples >= 1),
  constraint queue_baseline_history_non_negative check (history_days >= 0)
);
comment on table queue_health.queue_baseline is 'Seasonal baseline of each queue: for every hour of the week (UTC) with data, the median and the median absolute deviation (MAD) of its hourly enqueue rate, out rate, mean depth and largest ready age over the last settings.baseline_weeks weeks of metric_1h. Written by compute_baselines() (maintenance, hourly); readable by members of the queue''s project. docs/metrics.md "Seasonal baselines".';
comment on column queue_health.queue_baseline.source is 'Queue system: pgmq or pgboss.';
comment on column queue_health.queue_baseline.source_schema is 'Schema of the queue.';
comment on column queue_health.queue_baseline.queue_name is 'Queue name.';
comment on column queue_health.queue_baseline.hour_of_week is 'Hour of the week in UTC: 0 = Monday 00:00-00:59, 23 = Monday 23:00, 24 = Tuesday 00:00, ..., 167 = Sunday 23:00 (queue_health.hour_of_week()).';
comment on column queue_health.queue_baseline.enqueue_rate_median is 'Median over the samples of the hour''s enqueue rate, messages/s (metric_1h.enqueued / 3600).';
comment on column queue_health.queue_baseline.enqueue_rate_mad is 'Median absolute deviation of the enqueue rate from enqueue_rate_median, messages/s.';
comment on column queue_health.queue_baseline.out_rate_median is 'Median of the hour''s out rate, messages/s ((metric_1h.completed + failed) / 3600).';
comment on column queue_health.queue_baseline.out_rate_mad is 'Median absolute deviation of the out rate, messages/s.';
comment on column queue_health.queue_baseline.depth_median is 'Median of the hour''s mean depth (metric_1h.depth_avg), messages; null when depth was never known.';
comment on column queue_health.queue_baseline.depth_mad is 'Median absolute deviation of the mean depth, messages.';
comment on column queue_health.queue_baseline.ready_age_median is 'Median of the hour''s largest oldest-ready age (metric_1h.oldest_ready_age_s_max), seconds; hours in which nothing was ever ready count as 0.';
comment on column queue_health.queue_baseline.ready_age_mad is 'Median absolute deviation of the ready age, seconds.';
comment on column queue_health.queue_baseline.samples is 'How many hours of data are behind this hour of the week (at most settings.baseline_weeks).';
comment on column queue_health.queue_baseline.history_days is 'Days of 1-hour rollups the queue has in total (its metric_1h rows / 24, up to the computation''s hour): the anomaly condition needs at least settings.baseline_min_days.';
comment on column queue_health.queue_baseline.computed_at is 'When compute_baselines() wrote the row (its p_now).';
comment on constraint queue_baseline_hour_of_week_range on queue_health.queue_baseline is 'A week has 168 hours: 0 (Monday 00:00 UTC) to 167 (Sunday 23:00 UTC).';
comment on constraint queue_baseline_samples_positive on queue_health.queue_baseline is 'A profile row exists only for an hour of the week with at least one hour of data.';
comment on constraint queue_baseline_history_non_negative on queue_health.queue_baseline is 'history_days counts rollup hours, so it is never negative.';

create index queue_baseline_computed_at_idx on queue_health.queue_baseline (computed_at);
comment on index queue_health.queue_baseline_computed_at_idx is 'Lets maintain() ask when baselines were last computed (max(computed_at)) without a scan.';

alter table queue_health.queue_baseline enable row level security;
create policy "Baselines are visible to members of the queue's project"
  on queue_health.queue_baseline for select to authenticated
  using (exists (
    select 1 from queue_health.queue q
     where q.source = queue_baseline.source and q.source_schema = queue_baseline.source_schema
       and q.queue_name = queue_baseline.queue_name
       and q.project_id = any ((select queue_health.member_project_ids())::text[])));
revoke all on queue_health.queue_baseline from public, anon, authenticated;
grant select on queue_health.queue_baseline to authenticated;
grant all on queue_health.queue_baseline to service_role;

-- Section: pure helpers

create function queue_health.hour_of_week(p_at timestamptz)
returns smallint
immutable
parallel safe
set search_path = ''
language sql
as $$
  -- At time zone 'UTC' makes a timestamp without time zone, whose fields do not depend on the
  -- session's time zone (so the function is immutable).
  select ((extract(isodow from p_at at time zone 'UTC')::int - 1) * 24
          + extract(hour from p_at at time zone 'UTC')::int)::smallint
$$;
comment on function queue_health.hour_of_week(timestamptz) is 'Hour of the week of p_at in UTC, whatever the session''s time zone: 0 = Monday 00:00-00:59 UTC, ..., 167 = Sunday 23:00-23:59 UTC. The key of queue_baseline.';
revoke execute on function queue_health.hour_of_week(timestamptz) from public, anon;
grant execute on function queue_health.hour_of_week(timestamptz) to authenticated, service_role;

create function queue_health.is_anomalous(
  p_value double precision, p_median double precision, p_mad double precision, p_k double precision)
returns boolean
immutable
parallel safe
set search_path = ''
language sql
as $$
  -- The spread is the MAD, floored at 10 % of the median and at 1 (one message, one second, one
  -- message a second): an hour that was the same every week (MAD 0, common for idle hours and
  -- steady producers) would otherwise call any change at all an anomaly.
  select case
    when p_value is null or p_median is null or p_mad is null or p_k is null or p_k < 0 then null
    else abs(p_value - p_median) > p_k * greatest(p_mad, 0.1 * abs(p_median), 1.0)
  end
$$;
comment on function queue_health.is_anomalous(double precision, double precision, double precision, double precision) is 'True when p_value lies outside p_median +- p_k x spread, where spread = greatest(p_mad, 10 % of |p_median|, 1) (the floor handles MAD = 0: an hour that was identical every week); false inside; null when the value, median, MAD or k is unknown (or k < 0). Values, median and MAD in the same unit (messages/s, messages, seconds).';
revoke execute on function queue_health.is_anomalous(double precision, double precision, double precision, double precision) from public, anon;
grant execute on function queue_health.is_anomalous(double precision, double precision, double precision, double precision) to authenticated, service_role;

-- Section: computation

create function queue_health.compute_baselines(p_now timestamptz default now())
returns jsonb
volatile
set search_path = ''
set jit = off
language plpgsql
as $$
declare
  v_to timestamptz := pg_catalog.date_trunc('hour', p_now, 'UTC');
  v_from timestamptz;
  v_replaced bigint;
  v_profiles bigint;
  v_queues bigint;
begin
  -- Security invoker: maintain() (definer) and the service role, which alone may run it, may
  -- read metric_1h and write queue_baseline anyway. One computation at a time. No JIT (set
  -- above): compiling the statement took longer than the hourly run it would speed up.
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('queue_health.compute_baselines', 0));
  select v_to - s.baseline_weeks * interval '7 days' into v_from from queue_health.settings s where s.id;

  -- The profile is replaced as a whole (readers see the old one until commit): rows of a queue
  -- gone from the registry or dropped, or of an hour with no data left in the window, go with it.
  -- An upsert would leave as many dead rows and need an anti-join to find the stale ones.
  delete from queue_health.queue_baseline b where true;
  get diagnostics v_replaced = row_count;

  -- One statement. Each live queue's history (one primary-key range count of all its rollups),
  -- its hours in the window (whole buckets before p_now's hour, so each hour of the week has at
  -- most baseline_weeks samples) grouped by hour of the week into arrays, and per group the medians
  -- and then the medians of the absolute deviations from them, over those few elements. No join
  -- between aggregates: its cost does not depend on the planner guessing how many rows they have.
  -- Rates are the bucket's count / 3600, not / (samples x capture_interval): each snapshot's
  -- counts cover the time since the previous one, so a missed capture's work lands in the next
  -- snapshot and the sum still covers the hour; capture_interval is only today's value (a
  -- bucket of last month may have had another); and at 10 s every bucket has ~360 samples
  -- anyway. Only a queue's first and last hour (covered in part) read low, and medians shrug off
  -- such outliers. A queue's ready age counts as 0 in hours when nothing was ready.
  with grouped as (
    -- Grouped by the registry's id (a bigint, cheaper to sort than three names) and the hour of
    -- the week, written out as in hour_of_week(): a call per row (a function with its own
    -- search_path is never inlined) cost more than the rest of the grouping.
    select q.source, q.source_schema, q.queue_name,
      ((extract(isodow from h.bucket at time zone 'UTC')::int - 1) * 24
        + extract(hour from h.bucket at time zone 'UTC')::int)::smallint as how,
      max(c.n) / 24.0::float8 as history_days, count(*)::int as samples,
      array_agg(h.enqueued / 3600.0::float8) as enqueue_rate,
      array_agg((h.completed + h.failed) / 3600.0::float8) as out_rate,
      array_agg(h.depth_avg) as depth,
      array_agg(coalesce(h.oldest_ready_age_s_max, 0)) as ready_age
    from queue_health.queue q
    cross join lateral (
      select count(*) as n from queue_health.metric_1h a
       where a.queue_name = q.queue_name and a.source = q.source
         and a.source_schema = q.source_schema and a.bucket < v_to) c
    join queue_health.metric_1h h
      on h.queue_name = q.queue_name and h.source = q.source and h.source_schema = q.source_schema
     and h.bucket >= v_from and h.bucket < v_to
    where q.dropped_at is null
    group by q.id, 4
  )
  insert into queue_health.queue_baseline (source, source_schema, queue_name, hour_of_week,
    enqueue_rate_median, enqueue_rate_mad, out_rate_median, out_rate_mad,
    depth_median, depth_mad, ready_age_median, ready_age_mad, samples, history_days, computed_at)
  select g.source, g.source_schema, g.queue_name, g.how,
    m.enqueue_rate, d.enqueue_rate, m.out_rate, d.out_rate,
    m.depth, d.depth, m.ready_age, d.ready_age, g.samples, g.history_days, p_now
  from grouped g
  cross join lateral (
    select percentile_cont(0.5) within group (order by u.enqueue_rate) as enqueue_rate,
      percentile_cont(0.5) within group (order by u.out_rate) as out_rate,
      percentile_cont(0.5) within group (order by u.depth) as depth,
      percentile_cont(0.5) within group (order by u.ready_age) as ready_age
    from unnest(g.enqueue_rate, g.out_rate, g.depth, g.ready_age) u (enqueue_rate, out_rate, depth, ready_age)) m
  cross join lateral (
    select percentile_cont(0.5) within group (order by abs(u.enqueue_rate - m.enqueue_rate)) as enqueue_rate,
      percentile_cont(0.5) within group (order by abs(u.out_rate - m.out_rate)) as out_rate,
      percentile_cont(0.5) within group (order by abs(u.depth - m.depth)) as depth,
      percentile_cont(0.5) within group (order by abs(u.ready_age - m.ready_age)) as ready_age
    from unnest(g.enqueue_rate, g.out_rate, g.depth, g.ready_age) u (enqueue_rate, out_rate, depth, ready_age)) d;
  get diagnostics v_profiles = row_count;
  select count(*) into v_queues from (
    select distinct b.queue_name, b.source, b.source_schema from queue_health.queue_baseline b) x;

  return jsonb_build_object('from', v_from, 'to', v_to, 'queues', v_queues,
    'profiles', v_profiles, 'replaced', v_replaced);
end;
$$;
comment on function queue_health.compute_baselines(timestamptz) is 'Replaces queue_baseline with profiles computed from the metric_1h buckets in [the hour of p_now - settings.baseline_weeks weeks, the hour of p_now) of every queue in the registry that is not dropped (one set-based statement; queues and hours without data in that window get no row). Called hourly by maintain(). Returns {from, to, queues, profiles, replaced (rows of the previous profile)}.';
revoke execute on function queue_health.compute_baselines(timestamptz) from public, anon, authenticated;
grant execute on function queue_health.compute_baselines(timestamptz) to service_role;

-- Section: maintenance

create or replace function queue_health.maintain(p_now timestamptz default now())
returns jsonb
volatile
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_created int;
  v_rollup jsonb;
  v_baselines jsonb;
  v_retention jsonb;
begin
  v_created := queue_health.ensure_partitions(p_now);
  -- Roll up before retention, so raw rows are summarised before their partition goes.
  v_rollup := queue_health.rollup(p_now);
  -- Baselines change only when an hour's rollup becomes final (a minute after the hour): they
  -- are recomputed at the first run after that, once an hour; the other runs skip (one index
  -- probe, written as order by ... limit 1 so that it stays one without statistics).
  if coalesce((select b.computed_at from queue_health.queue_baseline b
                order by b.computed_at desc limit 1), '-infinity')
     < pg_catalog.date_trunc('hour', p_now - interval '1 minute', 'UTC') + interval '1 minute' then
    v_baselines := queue_health.compute_baselines(p_now);
  end if;
  v_retention := queue_health.apply_retention(p_now);
  return jsonb_build_object('partitions_created', v_created, 'rollup', v_rollup,
    'baselines', v_baselines, 'retention', v_retention);
end;
$$;
comment on function queue_health.maintain(timestamptz) is 'The maintenance job (queue-health-maintenance): creates partitions ahead, rolls up, recomputes the seasonal baselines (once an hour, when a new hourly rollup is final; baselines is null when not due), applies retention, in that order. Returns a summary.';
revoke execute on function queue_health.maintain(timestamptz) from public, anon, authenticated;
grant execute on function queue_health.maintain(timestamptz) to service_role;
