-- Queue Health: capture, partitions, rollups, retention, scheduling, Realtime, views, RLS.
-- Depends on 20261126100000_queue_health_core.sql. capture() calls the samplers (20261126100100,
-- 20261126100110) and evaluate_alerts() (20261126100300) directly; plpgsql resolves them when it
-- runs, so they may be created by the later migrations. schedule() owns every pg_cron job,
-- the alerting ones included (_cron_jobs()).

-- Section: partitions of queue_health.metric (one per UTC day, named metric_pYYYYMMDD)

create function queue_health._metric_partition_name(p_day date)
returns text
immutable
set search_path = ''
language sql
as $$
  select 'metric_p' || to_char(p_day, 'YYYYMMDD')
$$;
comment on function queue_health._metric_partition_name(date) is 'Name of the metric partition holding the UTC day p_day: metric_pYYYYMMDD.';
revoke execute on function queue_health._metric_partition_name(date) from public, anon, authenticated;
grant execute on function queue_health._metric_partition_name(date) to service_role;

create function queue_health.ensure_partitions(p_now timestamptz default now(), p_days_ahead int default 2)
returns int
volatile
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_today date := (p_now at time zone 'UTC')::date;
  v_day date;
  v_name text;
  v_created int := 0;
begin
  if p_days_ahead is null or p_days_ahead < 0 or p_days_ahead > 31 then
    raise exception 'p_days_ahead must be between 0 and 31: got %', p_days_ahead using errcode = '22023';
  end if;
  -- capture() and the maintenance job can both get here; the lock makes the second caller wait
  -- and then find the partitions made, instead of failing on "relation already exists".
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('queue_health.ensure_partitions', 0));
  for i in 0 .. p_days_ahead loop
    v_day := v_today + i;
    v_name := queue_health._metric_partition_name(v_day);
    if pg_catalog.to_regclass(format('queue_health.%I', v_name)) is null then
      execute format(
        'create table queue_health.%I partition of queue_health.metric for values from (%L) to (%L)',
        v_name, v_day::timestamp at time zone 'UTC', (v_day + 1)::timestamp at time zone 'UTC');
      execute format('alter table queue_health.%I enable row level security', v_name);
      execute format('comment on table queue_health.%I is %L', v_name,
        'Raw metric rows captured on ' || v_day || ' (UTC). Read through queue_health.metric; dropped whole by queue_health.apply_retention().');
      v_created := v_created + 1;
    end if;
  end loop;
  return v_created;
end;
$$;
comment on function queue_health.ensure_partitions(timestamptz, int) is 'Creates the daily metric partitions for the UTC day of p_now and p_days_ahead days after it, when missing; returns how many it created. Called by capture() when the next partition is missing and by the maintenance job.';
revoke execute on function queue_health.ensure_partitions(timestamptz, int) from public, anon, authenticated;
grant execute on function queue_health.ensure_partitions(timestamptz, int) to service_role;

-- Today's partition and the next two exist from the start; capture() and the maintenance job
-- keep creating them ahead.
do $$ begin perform queue_health.ensure_partitions(); end $$;

-- Section: rollups (metric_1m, metric_1h), incremental by watermark

create function queue_health.rollup(p_now timestamptz default now())
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
          wait_p95_ms_max, run_p95_ms_max, depth_estimated, samples)
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
          max(m.wait_p95_ms), max(m.run_p95_ms), bool_or(m.depth_estimated), count(*)
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
          depth_estimated = excluded.depth_estimated, samples = excluded.samples
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
revoke execute on function queue_health.rollup(timestamptz) from public, anon, authenticated;
grant execute on function queue_health.rollup(timestamptz) to service_role;

-- Section: retention

create function queue_health.apply_retention(p_now timestamptz default now())
returns jsonb
volatile
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_settings queue_health.settings;
  v_partition record;
  v_dropped text[] := '{}'::text[];
  v_deleted_1m bigint;
  v_deleted_1h bigint;
  v_deleted_runs bigint;
begin
  select * into v_settings from queue_health.settings where id;
  -- Raw rows: only whole partitions go, once their whole day is older than raw_retention. Never a
  -- delete over the raw table.
  for v_partition in
    select c.relname, to_date(substr(c.relname, 9), 'YYYYMMDD') as day
    from pg_catalog.pg_inherits i
    join pg_catalog.pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'queue_health.metric'::regclass
      and c.relname ~ '^metric_p[0-9]{8}$'
    order by 1
  loop
    if (v_partition.day + 1)::timestamp at time zone 'UTC' <= p_now - v_settings.raw_retention then
      execute format('drop table queue_health.%I', v_partition.relname);
      v_dropped := v_dropped || v_partition.relname::text;
    end if;
  end loop;
  -- Rollups are small (one row per queue per bucket) and indexed on bucket: delete by bucket.
  delete from queue_health.metric_1m r where r.bucket < p_now - v_settings.rollup_1m_retention;
  get diagnostics v_deleted_1m = row_count;
  delete from queue_health.metric_1h r where r.bucket < p_now - v_settings.rollup_1h_retention;
  get diagnostics v_deleted_1h = row_count;
  delete from queue_health.capture_run r where r.started_at < p_now - v_settings.capture_run_retention;
  get diagnostics v_deleted_runs = row_count;
  return jsonb_build_object('dropped_partitions', to_jsonb(v_dropped), 'deleted_1m', v_deleted_1m,
    'deleted_1h', v_deleted_1h, 'deleted_capture_runs', v_deleted_runs);
end;
$$;
comment on function queue_health.apply_retention(timestamptz) is 'Drops raw metric partitions whose whole day is older than settings.raw_retention, and deletes rollup rows and capture runs older than their retention. Returns what it removed.';
revoke execute on function queue_health.apply_retention(timestamptz) from public, anon, authenticated;
grant execute on function queue_health.apply_retention(timestamptz) to service_role;

create function queue_health.maintain(p_now timestamptz default now())
returns jsonb
volatile
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_created int;
  v_rollup jsonb;
  v_retention jsonb;
begin
  v_created := queue_health.ensure_partitions(p_now);
  -- Roll up before retention, so raw rows are summarised before their partition goes.
  v_rollup := queue_health.rollup(p_now);
  v_retention := queue_health.apply_retention(p_now);
  return jsonb_build_object('partitions_created', v_created, 'rollup', v_rollup, 'retention', v_retention);
end;
$$;
comment on function queue_health.maintain(timestamptz) is 'The maintenance job (queue-health-maintenance): creates partitions ahead, rolls up, applies retention, in that order. Returns a summary.';
revoke execute on function queue_health.maintain(timestamptz) from public, anon, authenticated;
grant execute on function queue_health.maintain(timestamptz) to service_role;

create function queue_health.cleanup_cron_history(p_now timestamptz default now())
returns bigint
volatile
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_deleted bigint := 0;
begin
  if pg_catalog.to_regclass('cron.job_run_details') is null then
    return 0;
  end if;
  -- Dynamic (with the schema as a parameter of format, so that linters do not resolve it where
  -- pg_cron is absent) so that this function can be created and called without pg_cron.
  execute format('delete from %I.job_run_details d where d.end_time < $1', 'cron')
    using p_now - (select s.cron_history_retention from queue_health.settings s where s.id);
  get diagnostics v_deleted = row_count;
  return v_deleted;
end;
$$;
comment on function queue_health.cleanup_cron_history(timestamptz) is 'Deletes pg_cron''s cron.job_run_details rows that ended more than settings.cron_history_retention before p_now (a 10-second job writes 8640 rows a day). Returns how many; 0 without pg_cron.';
revoke execute on function queue_health.cleanup_cron_history(timestamptz) from public, anon, authenticated;
grant execute on function queue_health.cleanup_cron_history(timestamptz) to service_role;

-- Section: capture

-- capture() is a short list of named steps, each a function below. The steps run as capture()'s
-- owner (security invoker, called from a security definer function) and nobody else may call
-- them.

create function queue_health._capture_error(p_source text, p_error text)
returns jsonb
immutable
set search_path = ''
language sql
as $$
  select jsonb_build_array(jsonb_build_object(
    'source', p_source, 'source_schema', null, 'queue_name', null, 'error', p_error))
$$;
comment on function queue_health._capture_error(text, text) is 'A capture_run.errors entry (a one-element array) for an error of a whole source (pgmq, pgboss, alerting, or null for the capture itself): no schema or queue.';
revoke execute on function queue_health._capture_error(text, text) from public, anon, authenticated;

create function queue_health._capture_skipped(p_now timestamptz, p_started timestamptz)
returns jsonb
volatile
set search_path = ''
language plpgsql
as $$
declare
  v_duration_ms double precision := extract(epoch from pg_catalog.clock_timestamp() - p_started) * 1000;
  v_run_id bigint;
begin
  insert into queue_health.capture_run (started_at, finished_at, duration_ms, status, error)
  values (p_now, p_now + v_duration_ms * interval '1 millisecond', v_duration_ms, 'skipped',
    'another capture was running')
  returning id into v_run_id;
  return jsonb_build_object('run_id', v_run_id, 'status', 'skipped', 'queues', 0, 'rows', 0,
    'duration_ms', v_duration_ms, 'skipped', true);
end;
$$;
comment on function queue_health._capture_skipped(timestamptz, timestamptz) is 'capture() step: records a skipped capture_run (another capture holds the lock) and returns capture()''s answer for it.';
revoke execute on function queue_health._capture_skipped(timestamptz, timestamptz) from public, anon, authenticated;

create function queue_health._capture_ensure_partitions(p_now timestamptz)
returns void
volatile
set search_path = ''
language plpgsql
as $$
declare
  v_today date := (p_now at time zone 'UTC')::date;
begin
  -- Cheap check on every run; creates partitions only when today's or the next is missing.
  if pg_catalog.to_regclass(format('queue_health.%I', queue_health._metric_partition_name(v_today))) is null
    or pg_catalog.to_regclass(format('queue_health.%I', queue_health._metric_partition_name(v_today + 1))) is null then
    perform queue_health.ensure_partitions(p_now);
  end if;
end;
$$;
comment on function queue_health._capture_ensure_partitions(timestamptz) is 'capture() step: creates the metric partitions (ensure_partitions) when the one of p_now''s UTC day or of the next day is missing.';
revoke execute on function queue_health._capture_ensure_partitions(timestamptz) from public, anon, authenticated;

create function queue_health._capture_sample_sources(
  p_now timestamptz,
  out samples queue_health.sample[],
  out ok_sources text[],
  out failed_sources int,
  out errors jsonb)
returns record
volatile
set search_path = ''
language plpgsql
as $$
declare
  v_error text;
begin
  samples := '{}';
  ok_sources := '{}';
  failed_sources := 0;
  errors := '[]';
  -- Each source in its own exception block (a subtransaction), so a failing source costs only
  -- its own queues. A source that is not installed is no failure: its sampler returns no rows.
  begin
    samples := samples || coalesce(
      (select pg_catalog.array_agg(s) from queue_health._sample_pgmq(p_now) s), '{}');
    ok_sources := ok_sources || 'pgmq'::text;
  exception when others then
    get stacked diagnostics v_error = message_text;
    failed_sources := failed_sources + 1;
    errors := errors || queue_health._capture_error('pgmq', v_error);
  end;
  begin
    samples := samples || coalesce(
      (select pg_catalog.array_agg(s) from queue_health._sample_pgboss(p_now) s), '{}');
    ok_sources := ok_sources || 'pgboss'::text;
  exception when others then
    get stacked diagnostics v_error = message_text;
    failed_sources := failed_sources + 1;
    errors := errors || queue_health._capture_error('pgboss', v_error);
  end;
  -- Then the queues a sampler could not read (the rest of its source went on).
  errors := errors || coalesce((
    select jsonb_agg(jsonb_build_object('source', x.source, 'source_schema', x.source_schema,
      'queue_name', x.queue_name, 'error', x.error) order by x.source, x.source_schema, x.queue_name)
    from unnest(samples) x
    where x.error is not null), '[]'::jsonb);
end;
$$;
comment on function queue_health._capture_sample_sources(timestamptz) is 'capture() step: runs the samplers _sample_pgmq(p_now) and _sample_pgboss(p_now), each in its own subtransaction. Returns their samples, the sources that ran, how many failed, and the errors: one per failed source, then one per queue sample with an error.';
revoke execute on function queue_health._capture_sample_sources(timestamptz) from public, anon, authenticated;

create function queue_health._capture_store(
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
  -- this statement, so interval_s comes from the previous last_seen_at.
  with s as (
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
    select s.*, q.last_seen_at as prev_seen_at, i.interval_s,
           coalesce(t.cum_enqueued, 0) + coalesce(s.enqueued, 0) as cum_enqueued,
           coalesce(t.cum_completed, 0) + coalesce(s.completed, 0) as cum_completed,
           coalesce(t.cum_failed, 0) + coalesce(s.failed, 0) as cum_failed,
           coalesce(t.cum_retried, 0) + coalesce(s.retried, 0) as cum_retried,
           coalesce(t.cum_dead_lettered, 0) + coalesce(s.dead_lettered, 0) as cum_dead_lettered,
           coalesce(t.cum_interval_s, 0) + coalesce(i.interval_s, 0) as cum_interval_s,
           coalesce(t.cum_idle, 0) + case when coalesce(s.ready, 0) = 0 and coalesce(s.in_flight, 0) = 0 then 1 else 0 end as cum_idle,
           -- whether this row will be the queue's newest
           case when q.totals_at < p_now then true
                else not coalesce(queue_health._newest_snapshot_at(
                       s.source, s.source_schema, s.queue_name, 'infinity') >= p_now, false)
           end as newest
    from s
    left join queue_health.queue q
      on q.source = s.source and q.source_schema = s.source_schema and q.queue_name = s.queue_name
    cross join lateral (
      select case when q.last_seen_at is not null
        then greatest(0, extract(epoch from p_now - q.last_seen_at))::float8 end as interval_s) i
    -- The running totals (metric.cum_*) before this row. The registry keeps those of the
    -- queue's newest row (at totals_at); when they are not current (a new queue, a row inserted
    -- other than by capture, or a capture at an earlier p_now), the newest row before p_now is
    -- read. Both probes of metric are functions called only then: in this statement they would
    -- be planned over every partition on every capture (each a new session under pg_cron).
    left join lateral (
      select q.cum_enqueued, q.cum_completed, q.cum_failed, q.cum_retried, q.cum_dead_lettered,
             q.cum_interval_s, q.cum_idle
      where q.totals_at < p_now
      union all
      select b.cum_enqueued, b.cum_completed, b.cum_failed, b.cum_retried, b.cum_dead_lettered,
             b.cum_interval_s, b.cum_idle
        from queue_health._metric_totals_before(s.source, s.source_schema, s.queue_name, p_now) b
       where not coalesce(q.totals_at < p_now, false)) t on true
  ),
  new_metric as (
    insert into queue_health.metric (
      captured_at, project_id, source, source_schema, queue_name,
      ready, in_flight, delayed, depth, depth_estimated, oldest_ready_age_s,
      enqueued, completed, failed, retried, dead_lettered,
      wait_p50_ms, wait_p95_ms, run_p50_ms, run_p95_ms, sample_ms, interval_s,
      cum_enqueued, cum_completed, cum_failed, cum_retried, cum_dead_lettered, cum_interval_s, cum_idle)
    select
      p_now, p.project_id, p.source, p.source_schema, p.queue_name,
      p.ready, p.in_flight, p.delayed, p.depth, coalesce(p.depth_estimated, false),
      p.oldest_ready_age_s,
      p.enqueued, p.completed, p.failed, p.retried, p.dead_lettered,
      p.wait_p50_ms, p.wait_p95_ms, p.run_p50_ms, p.run_p95_ms, p.sample_ms, p.interval_s,
      p.cum_enqueued, p.cum_completed, p.cum_failed, p.cum_retried, p.cum_dead_lettered,
      p.cum_interval_s, p.cum_idle
    from prev p
    where p.error is null
    returning 1
  ),
  seen as (
    insert into queue_health.queue as q (source, source_schema, queue_name, project_id, cursor,
      first_seen_at, last_seen_at, totals_at, ready, in_flight, delayed, depth, oldest_ready_age_s,
      enqueued, completed, failed, retried, dead_lettered, wait_p50_ms, wait_p95_ms, run_p50_ms,
      run_p95_ms, sample_ms, interval_s, cum_enqueued, cum_completed, cum_failed, cum_retried,
      cum_dead_lettered, cum_interval_s, cum_idle)
    select p.source, p.source_schema, p.queue_name, p.project_id, p.cursor, p_now, p_now,
      case when p.newest then p_now end, p.ready, p.in_flight, p.delayed, p.depth,
      p.oldest_ready_age_s, p.enqueued, p.completed, p.failed, p.retried, p.dead_lettered,
      p.wait_p50_ms, p.wait_p95_ms, p.run_p50_ms, p.run_p95_ms, p.sample_ms, p.interval_s,
      p.cum_enqueued, p.cum_completed, p.cum_failed, p.cum_retried,
      p.cum_dead_lettered, p.cum_interval_s, p.cum_idle
    from prev p
    where p.error is null
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
      cum_idle = excluded.cum_idle
    returning 1
  ),
  -- A queue whose sample failed still exists: register it, keep its cursor and last_seen_at
  -- (the next good sample's deltas and interval run from the last good one).
  seen_failed as (
    insert into queue_health.queue as q (source, source_schema, queue_name, project_id,
      first_seen_at, last_seen_at)
    select s.source, s.source_schema, s.queue_name, s.project_id, p_now, p_now
    from s
    where s.error is not null
    on conflict (source, source_schema, queue_name) do update set
      project_id = excluded.project_id,
      dropped_at = null
    returning 1
  )
  select (select count(*) from new_metric), (select count(*) from s),
         -- Queues the samplers found unchanged and did not read (docs/metrics.md).
         (select count(*) from s where s.error is null and (s.cursor ->> 'read_at')::timestamptz < p_now)
    into stored_rows, sampled_queues, unchanged_queues;
end;
$$;
comment on function queue_health._capture_store(timestamptz, queue_health.sample[]) is 'capture() step: in one statement, writes one metric row stamped p_now per sample without error (with its interval and running totals) and upserts the queue registry (project from project_queue_map, cursor, gauges; a queue whose sample failed is registered and keeps its cursor). Returns the rows stored, the queues sampled and how many of them the samplers found unchanged and did not read.';
revoke execute on function queue_health._capture_store(timestamptz, queue_health.sample[]) from public, anon, authenticated;

create function queue_health._capture_mark_dropped(
  p_now timestamptz, p_samples queue_health.sample[], p_ok_sources text[])
returns void
volatile
set search_path = ''
language plpgsql
as $$
declare
  v_seen jsonb;
begin
  -- Queues that a source which ran successfully no longer returns are gone (dropped or renamed).
  -- The samples' keys as a jsonb object, whose ? is a binary search: an anti-join against the
  -- array itself is planned for ten samples and rescans them per queue, which grows with the
  -- square of the number of queues (docs/benchmarks.md).
  select jsonb_object_agg(jsonb_build_array(x.source, x.source_schema, x.queue_name)::text, true)
    into v_seen
    from unnest(p_samples) x;
  update queue_health.queue q
     set dropped_at = greatest(p_now, q.first_seen_at)
   where q.source = any (p_ok_sources)
     and q.dropped_at is null
     and not coalesce(v_seen ? jsonb_build_array(q.source, q.source_schema, q.queue_name)::text, false);
end;
$$;
comment on function queue_health._capture_mark_dropped(timestamptz, queue_health.sample[], text[]) is 'capture() step: sets dropped_at (p_now) on the queues of the sources in p_ok_sources (those that ran) that p_samples no longer contains.';
revoke execute on function queue_health._capture_mark_dropped(timestamptz, queue_health.sample[], text[]) from public, anon, authenticated;

create function queue_health._capture_record_run(
  p_now timestamptz, p_started timestamptz, p_queues int, p_rows int,
  p_status queue_health.capture_run_status, p_error text, p_errors jsonb)
returns bigint
volatile
set search_path = ''
language plpgsql
as $$
declare
  v_duration_ms double precision := extract(epoch from pg_catalog.clock_timestamp() - p_started) * 1000;
  v_run_id bigint;
begin
  insert into queue_health.capture_run (started_at, finished_at, duration_ms, queues, rows,
    status, error, errors)
  values (p_now, p_now + v_duration_ms * interval '1 millisecond', v_duration_ms, p_queues, p_rows,
    p_status, p_error, p_errors)
  returning id into v_run_id;
  return v_run_id;
end;
$$;
comment on function queue_health._capture_record_run(timestamptz, timestamptz, int, int, queue_health.capture_run_status, text, jsonb) is 'capture() step: inserts the capture_run row (started at p_now, its duration so far since p_started) and returns its id.';
revoke execute on function queue_health._capture_record_run(timestamptz, timestamptz, int, int, queue_health.capture_run_status, text, jsonb) from public, anon, authenticated;

create function queue_health._capture_alert_errors(p_alerts jsonb)
returns table (errors jsonb, summary text)
immutable
set search_path = ''
language sql
as $$
  -- Evaluation isolates projects: those that failed, or that the evaluation budget deferred, are
  -- recorded against their project (project_id in errors), so only its members see them.
  select
    coalesce((
      select jsonb_agg(jsonb_build_object('source', 'alerting', 'source_schema', null, 'queue_name', null,
               'project_id', f ->> 'project_id', 'error', 'alert evaluation failed: ' || (f ->> 'error')))
        from jsonb_array_elements(p_alerts -> 'failed') f), '[]'::jsonb)
    || coalesce((
      select jsonb_agg(jsonb_build_object('source', 'alerting', 'source_schema', null, 'queue_name', null,
               'project_id', d #>> '{}',
               'error', 'alert evaluation deferred: the evaluation budget (settings.alert_evaluation_budget) ran out'))
        from jsonb_array_elements(p_alerts -> 'deferred') d), '[]'::jsonb),
    concat_ws('; ',
      case when jsonb_array_length(p_alerts -> 'failed') > 0 then
        'alert evaluation failed for ' || jsonb_array_length(p_alerts -> 'failed') || ' project(s); first: '
        || (p_alerts -> 'failed' -> 0 ->> 'project_id') || ': ' || (p_alerts -> 'failed' -> 0 ->> 'error') end,
      case when jsonb_array_length(p_alerts -> 'deferred') > 0 then
        'alert evaluation budget exceeded: ' || jsonb_array_length(p_alerts -> 'deferred')
        || ' project(s) deferred' end)
  where jsonb_array_length(coalesce(p_alerts -> 'failed', '[]'::jsonb)) > 0
     or jsonb_array_length(coalesce(p_alerts -> 'deferred', '[]'::jsonb)) > 0
$$;
comment on function queue_health._capture_alert_errors(jsonb) is 'capture() step: from evaluate_alerts()''s answer, the capture_run.errors entries of the projects whose evaluation failed or was deferred (with their project_id) and a one-line summary for capture_run.error; no row when there are none.';
revoke execute on function queue_health._capture_alert_errors(jsonb) from public, anon, authenticated;

create function queue_health._capture_evaluate_alerts(
  p_now timestamptz,
  p_run_id bigint,
  p_errors jsonb,
  p_status queue_health.capture_run_status,
  out run_errors jsonb,
  out run_status queue_health.capture_run_status,
  out alerts jsonb)
returns record
volatile
set search_path = ''
language plpgsql
as $$
declare
  v_error text;
  v_project_errors record;
begin
  run_errors := p_errors;
  run_status := p_status;
  begin
    alerts := queue_health.evaluate_alerts(p_now);
  exception when others then
    get stacked diagnostics v_error = message_text;
    raise warning 'queue_health.evaluate_alerts failed: %', v_error;
    alerts := jsonb_build_object('error', v_error);
    run_errors := run_errors || queue_health._capture_error('alerting', v_error);
    run_status := case when run_status = 'ok' then 'partial'::queue_health.capture_run_status else run_status end;
    update queue_health.capture_run r
       set errors = run_errors, status = run_status,
           error = coalesce(r.error, 'alert evaluation failed: ' || v_error)
     where r.id = p_run_id;
  end;
  select * into v_project_errors from queue_health._capture_alert_errors(alerts);
  if found then
    run_errors := run_errors || v_project_errors.errors;
    run_status := case when run_status = 'ok' then 'partial'::queue_health.capture_run_status else run_status end;
    update queue_health.capture_run r
       set errors = run_errors, status = run_status, error = coalesce(r.error, v_project_errors.summary)
     where r.id = p_run_id;
  end if;
end;
$$;
comment on function queue_health._capture_evaluate_alerts(timestamptz, bigint, jsonb, queue_health.capture_run_status) is 'capture() step: calls evaluate_alerts(p_now) in its own subtransaction and records on capture run p_run_id what went wrong (the whole evaluation, or some projects). Returns the run''s errors (p_errors and those), its status (p_status, partial instead of ok when something went wrong) and evaluate_alerts()''s answer (alerts; {error} when it failed).';
revoke execute on function queue_health._capture_evaluate_alerts(timestamptz, bigint, jsonb, queue_health.capture_run_status) from public, anon, authenticated;

create function queue_health.capture(p_now timestamptz default now())
returns jsonb
volatile
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_started timestamptz := pg_catalog.clock_timestamp();
  v_sources record;
  v_stored record;
  v_evaluated record;
  v_errors jsonb := '[]'::jsonb;
  v_error text;
  v_queues int := 0;
  v_rows int := 0;
  v_unchanged int := 0;
  v_status queue_health.capture_run_status;
  v_run_id bigint;
  v_duration_ms double precision;
begin
  -- Transaction-scoped lock: a capture that starts while another is still running (a slow run,
  -- or pg_cron firing again) records a skipped run and returns instead of queueing up behind it.
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtextextended('queue_health.capture', 0)) then
    return queue_health._capture_skipped(p_now, v_started);
  end if;

  begin
    perform queue_health._capture_ensure_partitions(p_now);
    select * into v_sources from queue_health._capture_sample_sources(p_now);
    v_errors := v_sources.errors;
    select * into v_stored from queue_health._capture_store(p_now, v_sources.samples);
    v_rows := v_stored.stored_rows;
    v_queues := v_stored.sampled_queues;
    v_unchanged := v_stored.unchanged_queues;
    perform queue_health._capture_mark_dropped(p_now, v_sources.samples, v_sources.ok_sources);

    v_status := case
      when v_sources.failed_sources > 0 and cardinality(v_sources.ok_sources) = 0 then 'error'
      when jsonb_array_length(v_errors) > 0 then 'partial'
      else 'ok' end::queue_health.capture_run_status;
    v_error := case when v_status <> 'ok' then
      jsonb_array_length(v_errors) || ' error(s); first: ' || (v_errors -> 0 ->> 'error') end;
  exception when others then
    -- Everything above was rolled back to the block's start; record why, and keep the run.
    get stacked diagnostics v_error = message_text;
    raise warning 'queue_health.capture failed: %', v_error;
    v_status := 'error';
    v_rows := 0;
    v_queues := 0;
    v_errors := queue_health._capture_error(null, v_error);
  end;

  v_run_id := queue_health._capture_record_run(p_now, v_started, v_queues, v_rows, v_status, v_error, v_errors);
  select * into v_evaluated from queue_health._capture_evaluate_alerts(p_now, v_run_id, v_errors, v_status);
  v_errors := v_evaluated.run_errors;
  v_status := v_evaluated.run_status;
  v_duration_ms := extract(epoch from pg_catalog.clock_timestamp() - v_started) * 1000;
  update queue_health.capture_run r
     set duration_ms = v_duration_ms, finished_at = p_now + v_duration_ms * interval '1 millisecond'
   where r.id = v_run_id;

  return jsonb_build_object('run_id', v_run_id, 'status', v_status, 'queues', v_queues,
    'rows', v_rows, 'unchanged', v_unchanged, 'duration_ms', v_duration_ms, 'skipped', false, 'errors', v_errors,
    'alerts', v_evaluated.alerts);
end;
$$;
comment on function queue_health.capture(timestamptz) is 'Takes one snapshot of every queue: runs the samplers (queue_health._sample_pgmq/_sample_pgboss), updates the queue registry (project from project_queue_map, dropped_at for vanished queues, cursors), writes one metric row per queue stamped p_now, records a capture_run, then calls queue_health.evaluate_alerts(p_now). One transaction; an overlapping call records a skipped run. Returns {run_id, status, queues, rows, duration_ms, skipped, errors, alerts}.';
revoke execute on function queue_health.capture(timestamptz) from public, anon, authenticated;
grant execute on function queue_health.capture(timestamptz) to service_role;

-- Section: scheduling with pg_cron

create function queue_health._capture_cron_schedule(p_interval interval, p_pg_cron_version text)
returns table (schedule text, capture_interval interval, seconds_supported boolean, command text)
immutable
set search_path = ''
language plpgsql
as $$
declare
  v_seconds numeric := extract(epoch from p_interval);
  v_minutes int;
begin
  if p_interval is null or v_seconds < 1 or v_seconds > 3600 then
    raise exception 'p_interval must be between 1 second and 1 hour: got %', p_interval
      using errcode = '22023';
  end if;
  -- pg_cron 1.5 added '[1-59] seconds' schedules; older versions only take cron expressions.
  -- Versions look like '1.4', '1.4-1' or '1.6.4'. Reported only: the choice below does not need
  -- them any more.
  seconds_supported := string_to_array(
      nullif(regexp_replace(split_part(coalesce(p_pg_cron_version, ''), '-', 1), '[^0-9.]', '', 'g'), ''),
      '.')::int[] >= array[1, 5];
  seconds_supported := coalesce(seconds_supported, false);
  if v_seconds < 60 then
    -- Under a minute: a job every minute whose session captures every interval until the
    -- minute ends (run_captures). pg_cron starts a new session for every run, and a new session
    -- plans every statement of a capture again (most of its CPU, docs/benchmarks.md); this way
    -- one session in six (at 10 s) pays that. It also works on pg_cron before 1.5.
    schedule := '* * * * *';
    capture_interval := ceil(v_seconds)::int * interval '1 second';
    command := queue_health.run_captures_command(p_cron_job => 'queue-health-capture');
  else
    -- Whole minutes, rounded up to a divisor of 60 so that '*/N' fires at even intervals.
    v_minutes := (select min(d) from unnest(array[1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60]) d
                  where d >= ceil(v_seconds / 60));
    schedule := case v_minutes when 1 then '* * * * *' when 60 then '0 * * * *'
                else '*/' || v_minutes || ' * * * *' end;
    capture_interval := v_minutes * interval '1 minute';
    command := 'select queue_health.capture()';
  end if;
  return next;
end;
$$;
comment on function queue_health._capture_cron_schedule(interval, text) is 'The pg_cron job for capturing every p_interval: under a minute, every minute the block of run_captures_command() (one session capturing every interval, whole seconds rounded up, on any pg_cron version); a minute or more, ''select queue_health.capture()'' on a cron expression of whole minutes (rounded up to a divisor of 60). Also reports whether that pg_cron version has seconds schedules.';
revoke execute on function queue_health._capture_cron_schedule(interval, text) from public, anon, authenticated;
grant execute on function queue_health._capture_cron_schedule(interval, text) to service_role;

create function queue_health._capture_interval()
returns interval
stable
set search_path = ''
language plpgsql
as $$
declare
  v interval;
begin
  select s.capture_interval into v from queue_health.settings s limit 1;
  return coalesce(nullif(v, interval '0'), interval '10 seconds');
end;
$$;
comment on function queue_health._capture_interval() is 'settings.capture_interval (10 s when unset): how often run_captures() captures, and the unit of the no_data and monitor_stale thresholds.';
revoke execute on function queue_health._capture_interval() from public, anon, authenticated;
-- run_captures_step() runs as its caller (service_role may run it).
grant execute on function queue_health._capture_interval() to service_role;

-- Captures under a minute run in one session a minute, each capture its own transaction, with a
-- commit between the waits too (a waiting statement holds a snapshot, which would hold back vacuum
-- on the queues). Only a top-level block can commit, and a routine that commits may not carry
-- `set search_path` (which Supabase's advisor requires of every function), so the loop is a DO
-- block (run_captures_command()) around two functions that do the work: run_captures_start()
-- and run_captures_step(), one step a transaction.

create function queue_health.run_captures_start(
  p_until timestamptz default null, p_interval interval default null, p_cron_job text default null)
returns jsonb
volatile
set search_path = ''
language plpgsql
as $$
declare
  v_timeout interval := pg_catalog.current_setting('statement_timeout')::interval;
begin
  if p_interval is not null and (p_interval < interval '1 second' or p_interval > interval '1 hour') then
    raise exception 'p_interval must be between 1 second and 1 hour: got %', p_interval using errcode = '22023';
  end if;
  if p_cron_job is not null then
    -- So that pg_stat_activity says what this long statement is.
    perform pg_catalog.set_config('application_name', 'queue_health.run_captures', false);
  end if;
  return jsonb_build_object(
    'until', coalesce(p_until, pg_catalog.date_trunc('minute', pg_catalog.clock_timestamp()) + interval '1 minute'),
    'interval', p_interval,
    'cron_job', p_cron_job,
    -- statement_timeout counts from the block's start: stop starting captures before it would
    -- cancel one.
    'timeout_at', case when v_timeout > interval '0' then pg_catalog.statement_timestamp() + v_timeout end,
    'last_tick', null,
    'longest_s', 0,
    'captures', 0,
    'failed', 0,
    'done', false);
end;
$$;
comment on function queue_health.run_captures_start(timestamptz, interval, text) is 'The state run_captures_step() starts from: capture every p_interval (default settings.capture_interval) until p_until (default: the end of the current minute); p_cron_job names the pg_cron job that runs it (the run stops when the job is removed, paused or changed). Validates p_interval.';
revoke execute on function queue_health.run_captures_start(timestamptz, interval, text) from public, anon, authenticated;
grant execute on function queue_health.run_captures_start(timestamptz, interval, text) to service_role;

create function queue_health.run_captures_step(p_state jsonb)
returns jsonb
volatile
set search_path = ''
language plpgsql
as $$
declare
  v_until timestamptz := (p_state ->> 'until')::timestamptz;
  v_timeout_at timestamptz := (p_state ->> 'timeout_at')::timestamptz;
  v_last_tick timestamptz := (p_state ->> 'last_tick')::timestamptz;
  v_longest interval := make_interval(secs => coalesce((p_state ->> 'longest_s')::float8, 0));
  v_cron_job text := p_state ->> 'cron_job';
  v_interval interval := coalesce((p_state ->> 'interval')::interval, queue_health._capture_interval());
  v_step float8 := greatest(ceil(extract(epoch from v_interval)), 1);
  v_tick timestamptz;
  v_wait float8;
  v_scheduled boolean;
  v_started timestamptz;
  v_error text;
  v_done jsonb;
begin
  if (p_state ->> 'done')::boolean then
    return p_state;
  end if;
  v_done := p_state || jsonb_build_object('done', true);
  -- Ticks are whole multiples of the interval since the epoch, so captures stay evenly spaced
  -- across runs. A tick up to a second old still counts (pg_cron starts a job a few milliseconds
  -- after the minute); ticks missed while a slow capture ran are skipped.
  v_tick := pg_catalog.to_timestamp(
    ceil((extract(epoch from pg_catalog.clock_timestamp()) - 1) / v_step) * v_step);
  if v_last_tick is not null and v_tick <= v_last_tick then
    v_tick := pg_catalog.to_timestamp((floor(extract(epoch from v_last_tick) / v_step) + 1) * v_step);
  end if;
  if v_tick >= v_until then
    return v_done;
  end if;
  if v_timeout_at is not null and v_tick + greatest(interval '1 second', 2 * v_longest) >= v_timeout_at then
    -- The captures stop until the next run: say why, where the server log and psql show it.
    raise warning 'queue_health.run_captures: statement_timeout (%) ends this run before %, % capture(s) short',
      pg_catalog.current_setting('statement_timeout'), v_until,
      ceil(extract(epoch from v_until - v_tick) / v_step)::int
      using hint = 'Captures stop until the next run of the job. Set statement_timeout to 0 (or over a minute) for the role that runs it, e.g. alter role postgres set statement_timeout = 0.';
    return v_done;
  end if;

  -- Wait in steps of at most a second; the block commits after each step.
  v_wait := extract(epoch from v_tick - pg_catalog.clock_timestamp());
  if v_wait > 0 then
    perform pg_catalog.pg_sleep(least(v_wait, 1));
    return p_state;
  end if;

  if v_cron_job is not null then
    -- schedule() with a minute or more, or unschedule(): the job no longer runs this loop, so
    -- this session stops too instead of capturing until the minute ends.
    v_scheduled := false;
    if pg_catalog.to_regclass('cron.job') is not null then
      execute format('select exists (select from %I.job j where j.jobname = $1 and j.active and j.command like $2)', 'cron')
        into v_scheduled using v_cron_job, '%queue_health.run_captures_step%';
    end if;
    if not v_scheduled then
      return v_done;
    end if;
  end if;

  v_started := pg_catalog.clock_timestamp();
  begin
    -- This transaction began when the wait's last step committed, at the tick: now() is it.
    perform queue_health.capture();
    p_state := p_state || jsonb_build_object('captures', (p_state ->> 'captures')::int + 1);
  exception when others then
    -- capture() records a failing source in capture_run itself; this is anything else (the run
    -- could not even be recorded). The next tick tries again.
    get stacked diagnostics v_error = message_text;
    p_state := p_state || jsonb_build_object('failed', (p_state ->> 'failed')::int + 1);
    raise warning 'queue_health.run_captures: capture at % failed: %', v_tick, v_error;
  end;
  return p_state || jsonb_build_object(
    'last_tick', v_tick,
    'longest_s', extract(epoch from greatest(v_longest, pg_catalog.clock_timestamp() - v_started)));
end;
$$;
comment on function queue_health.run_captures_step(jsonb) is 'One step of a capture run (see run_captures_command()): waits up to a second for the next tick, or captures at it; returns the state with done = true when the run is over (p_until reached, statement_timeout near, or the pg_cron job no longer runs it). Its caller commits between steps.';
revoke execute on function queue_health.run_captures_step(jsonb) from public, anon, authenticated;
grant execute on function queue_health.run_captures_step(jsonb) to service_role;

create function queue_health.run_captures_command(
  p_until timestamptz default null, p_interval interval default null, p_cron_job text default null)
returns text
stable
set search_path = ''
language sql
as $body$
  -- The first commit fails at once inside a transaction block (where nothing may commit):
  -- 'invalid transaction termination', before any capture. The last notice gives the counts.
  select format($f$do $run$
declare
  s jsonb := queue_health.run_captures_start(%L, %L, %L);
begin
  loop
    commit;
    s := queue_health.run_captures_step(s);
    exit when (s ->> 'done')::boolean;
  end loop;
  raise notice 'queue_health.run_captures: %% capture(s), %% failed', s ->> 'captures', s ->> 'failed';
end
$run$$f$, p_until, p_interval, p_cron_job)
$body$;
comment on function queue_health.run_captures_command(timestamptz, interval, text) is 'The statement that captures every p_interval (default settings.capture_interval), on whole multiples of it, until p_until (default: the end of the current minute), each capture its own transaction, in one session: a DO block looping over run_captures_step() with a commit between steps. What the queue-health-capture pg_cron job runs every minute for intervals under a minute. Run it on its own, not inside a transaction block; its last notice says how many captures it made and how many failed.';
revoke execute on function queue_health.run_captures_command(timestamptz, interval, text) from public, anon, authenticated;
grant execute on function queue_health.run_captures_command(timestamptz, interval, text) to service_role;

create function queue_health._cron_jobs(p_interval interval default null)
returns table (name text, schedule text, command text)
stable
set search_path = ''
language plpgsql
as $$
declare
  v_schedule text;
  v_command text;
begin
  if p_interval is not null then
    select c.schedule, c.command into v_schedule, v_command
      from queue_health._capture_cron_schedule(p_interval, null) c;
  end if;
  -- Every pg_cron job of the monitor, in the order schedule() creates them.
  --   queue-health-capture        captures (see _capture_cron_schedule);
  --   queue-health-maintenance    partitions ahead, rollups, retention;
  --   queue-health-cron-cleanup   pg_cron's own run history;
  --   queue-health-alert-sweep    flushes waiting groups and re-dispatches due notifications;
  --   queue-health-monitor-stale  evaluates monitor_stale, which capture() cannot when it is not
  --                               running (so it runs on its own job, every minute).
  return query values
    ('queue-health-capture'::text, v_schedule, v_command),
    ('queue-health-maintenance', '*/5 * * * *', 'select queue_health.maintain()'),
    ('queue-health-cron-cleanup', '17 3 * * *', 'select queue_health.cleanup_cron_history()'),
    ('queue-health-alert-sweep', '* * * * *', 'select queue_health.sweep_notifications()'),
    ('queue-health-monitor-stale', '* * * * *', 'select queue_health.evaluate_monitor_stale()');
end;
$$;
comment on function queue_health._cron_jobs(interval) is 'The one list of the monitor''s pg_cron jobs: name, schedule and command of each, the capture job''s for capturing every p_interval (null schedule and command when p_interval is null: the names are what unschedule() needs). schedule() creates them, unschedule() removes them.';
revoke execute on function queue_health._cron_jobs(interval) from public, anon, authenticated;
grant execute on function queue_health._cron_jobs(interval) to service_role;

create function queue_health.schedule(p_interval interval default '10 seconds')
returns jsonb
volatile
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_version text;
  v_choice record;
  v_job record;
  v_jobs jsonb := '[]'::jsonb;
  v_job_id bigint;
  v_dispatch jsonb := queue_health.dispatch_mode();
  v_realtime_policy text;
begin
  -- How alerts leave the database: say first when they cannot (also where pg_cron is missing,
  -- which is reported next), with the fix as hint.
  if v_dispatch ->> 'mode' <> 'http' then
    raise warning 'queue_health: alerts cannot leave the database (dispatch mode %): %', v_dispatch ->> 'mode',
      case v_dispatch ->> 'mode'
        when 'notify' then 'pg_net is not installed, so notifications are only announced with NOTIFY queue_health_dispatch, which nothing listens to on hosted Supabase'
        else 'pg_net is installed but the queue-alert ' ||
          case when not (v_dispatch -> 'url_configured')::boolean and not (v_dispatch -> 'key_configured')::boolean
                 then 'URL and key are'
               when not (v_dispatch -> 'url_configured')::boolean then 'URL is'
               else 'key is' end || ' not configured, so notifications are only announced with NOTIFY'
      end
      using hint = v_dispatch ->> 'fix';
  end if;

  select e.extversion into v_version from pg_catalog.pg_extension e where e.extname = 'pg_cron';
  if v_version is null then
    raise exception 'queue_health.schedule() needs the pg_cron extension, which is not installed in database %', current_database()
      using errcode = '55000',
            hint = 'On Supabase: enable pg_cron (Database > Extensions, or create extension pg_cron with schema pg_catalog), then call queue_health.schedule() again.';
  end if;
  select * into v_choice from queue_health._capture_cron_schedule(p_interval, v_version);

  for v_job in select * from queue_health._cron_jobs(p_interval) loop
    -- cron.schedule(name, ...) creates the current user's job of that name, or updates it. Dynamic
    -- SQL because the cron schema may not exist when this migration is applied (or linted).
    execute format('select %I.schedule($1, $2, $3)', 'cron') into v_job_id using v_job.name, v_job.schedule, v_job.command;
    v_jobs := v_jobs || jsonb_build_array(jsonb_build_object('jobid', v_job_id, 'name', v_job.name,
      'schedule', v_job.schedule, 'command', v_job.command));
  end loop;

  update queue_health.settings s set capture_interval = v_choice.capture_interval where s.id;

  -- Realtime may have created realtime.messages since the install: (re)install the policy.
  v_realtime_policy := queue_health.install_realtime_policy();

  return jsonb_build_object(
    'realtime_policy', v_realtime_policy,
    -- How alerts leave the database (http, notify or not_configured), warned about above when
    -- they cannot; dispatch is dispatch_mode() in full (with the fix).
    'dispatch_mode', v_dispatch ->> 'mode',
    'dispatch', v_dispatch,
    'pg_cron_version', v_version,
    'seconds_schedules', v_choice.seconds_supported,
    'requested_interval', p_interval,
    'capture_interval', v_choice.capture_interval,
    'capture_schedule', v_choice.schedule,
    'mode', case when v_choice.command like 'do %' then 'runner' else 'minutes' end,
    'jobs', v_jobs);
end;
$$;
comment on function queue_health.schedule(interval) is 'Creates or updates every pg_cron job of _cron_jobs(): queue-health-capture (under a minute: every minute, run_captures() capturing every p_interval in one session; else capture() every p_interval in whole minutes, rounded up), queue-health-maintenance (every 5 minutes: partitions, rollups, retention), queue-health-cron-cleanup (daily), queue-health-alert-sweep and queue-health-monitor-stale (every minute). Sets settings.capture_interval to the interval chosen and returns what it chose, with dispatch_mode: http (alerts leave through pg_net), notify (no pg_net) or not_configured (pg_net without the queue-alert URL or key), and dispatch (dispatch_mode() in full); raises a WARNING with the fix when alerts cannot leave. Fails if pg_cron is not installed.';
revoke execute on function queue_health.schedule(interval) from public, anon, authenticated;
grant execute on function queue_health.schedule(interval) to service_role;

create function queue_health.unschedule()
returns jsonb
volatile
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_job record;
  v_removed text[] := '{}'::text[];
  v_exists boolean;
begin
  if pg_catalog.to_regclass('cron.job') is null then
    return jsonb_build_object('unscheduled', '[]'::jsonb, 'note', 'pg_cron is not installed');
  end if;
  -- pg_cron keys a named job by (jobname, username): cron.schedule(name, …) creates or updates
  -- the current user's job of that name, and cron.unschedule(name) finds only the current user's
  -- (and raises for any other). schedule() and unschedule() both run as their owner (security
  -- definer; postgres on hosted Supabase), so the jobs schedule() made are the owner's and this
  -- removes exactly those. A job of the same name scheduled by another role is not ours, and
  -- cron.unschedule(name) could not remove it anyway: hence username = current_user.
  for v_job in select j.name from queue_health._cron_jobs() j loop
    execute format('select exists (select 1 from %I.job j where j.jobname = $1 and j.username = current_user)', 'cron')
      into v_exists using v_job.name;
    if v_exists then
      execute format('select %I.unschedule($1)', 'cron') using v_job.name;
      v_removed := v_removed || v_job.name;
    end if;
  end loop;
  return jsonb_build_object('unscheduled', to_jsonb(v_removed));
end;
$$;
comment on function queue_health.unschedule() is 'Removes the pg_cron jobs of _cron_jobs() that schedule() created (those of the current user, the owner); returns {"unscheduled": [names]}. Safe to call when they do not exist, or without pg_cron.';
revoke execute on function queue_health.unschedule() from public, anon, authenticated;
grant execute on function queue_health.unschedule() to service_role;

-- pg_cron itself: created here only where that is possible. Hosted Supabase wants it in
-- pg_catalog; a self-managed server only allows it in the database named by cron.database_name
-- (and only when it is in shared_preload_libraries). Anywhere else the migration goes on and
-- queue_health.schedule() explains what is missing.
do $$
begin
  if exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    return;
  end if;
  if not exists (select 1 from pg_catalog.pg_available_extensions where name = 'pg_cron') then
    raise notice 'queue_health: pg_cron is not available here; schedule captures yourself or install pg_cron.';
    return;
  end if;
  if current_database() <> coalesce(nullif(current_setting('cron.database_name', true), ''), 'postgres') then
    raise notice 'queue_health: pg_cron can only be created in database %, not %; queue_health.schedule() will not work here.',
      coalesce(nullif(current_setting('cron.database_name', true), ''), 'postgres'), current_database();
    return;
  end if;
  begin
    create extension pg_cron with schema pg_catalog;
  exception when others then
    raise notice 'queue_health: could not create pg_cron (%); enable it, then call queue_health.schedule().', sqlerrm;
  end;
end
$$;

-- Section: Realtime broadcast of each snapshot

create function queue_health._broadcast_snapshot()
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
    -- depth_estimated] (realtime_payload.ts, SLIM_QUEUE_FIELDS). Full (v1): each queue is an
    -- object with every gauge and count of the row.
    for v_message in
      with latest as (
        select n.*, max(n.captured_at) over (partition by n.project_id) as latest_at
        from new_rows n
      ),
      item as (
        select n.project_id, n.captured_at,
          case when v_mode = 'full' then
            jsonb_build_object('source', n.source, 'source_schema', n.source_schema,
              'queue', n.queue_name, 'depth', n.depth, 'ready', n.ready, 'in_flight', n.in_flight,
              'delayed', n.delayed, 'oldest_ready_age_s', n.oldest_ready_age_s,
              'enqueued', n.enqueued, 'completed', n.completed, 'failed', n.failed,
              'dead_lettered', n.dead_lettered, 'depth_estimated', n.depth_estimated)
          else
            jsonb_build_array(n.source, n.source_schema, n.queue_name, n.depth,
              n.oldest_ready_age_s, n.enqueued, n.completed, n.failed, n.depth_estimated)
          end as queue,
          -- The item's size as JSON text, without printing it (jsonb to text costs ~15 us an
          -- item): the punctuation (full: the keys too, 197 bytes; slim: brackets and ", ", 18)
          -- and a boolean (at most 5), the names as JSON strings, each number as jsonb prints it
          -- (null: 4), and the separator: never less than the printed size.
          case when v_mode = 'full' then 202 else 23 end
            + octet_length(to_json(n.source)::text) + octet_length(to_json(n.source_schema)::text)
            + octet_length(to_json(n.queue_name)::text)
            + coalesce(length(n.depth::text), 4)
            + coalesce(length(n.enqueued::text), 4) + coalesce(length(n.completed::text), 4)
            + coalesce(length(n.failed::text), 4)
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
comment on function queue_health._broadcast_snapshot() is 'Statement trigger on metric: broadcasts the inserted rows (each project''s latest captured_at) with realtime.send(payload, ''snapshot'', ''queue_health:<project_id>'', private), one message per project (split into parts under 64 KiB), as settings.realtime_payload says: slim (default) {v: 2, project_id, captured_at, part, parts, queues: [[source, source_schema, queue, depth, oldest_ready_age_s, enqueued, completed, failed, depth_estimated], ...]}, full {v: 1, ..., queues: [{source, source_schema, queue, depth, ready, in_flight, delayed, oldest_ready_age_s, enqueued, completed, failed, dead_lettered, depth_estimated}, ...]}, off: nothing. Never fails the insert.';
revoke execute on function queue_health._broadcast_snapshot() from public, anon, authenticated;

create trigger metric_broadcast_snapshot
  after insert on queue_health.metric
  referencing new table as new_rows
  for each statement
  execute function queue_health._broadcast_snapshot();
comment on trigger metric_broadcast_snapshot on queue_health.metric is 'Pushes every new snapshot to the project''s private Realtime topic.';

-- Realtime Authorization: Realtime checks a join by selecting from realtime.messages as the user,
-- with realtime.topic set to the channel's topic. On hosted Supabase realtime.messages belongs to
-- supabase_realtime_admin: postgres may create and drop policies on it (supautils policy_grants)
-- but, before supautils 3.3, not comment on them; and the table only exists once Realtime has
-- connected to the project. So the policy is installed by a function that never fails an install:
-- the migration calls it, schedule() calls it again, and it says what to do when it cannot.
create function queue_health.install_realtime_policy()
returns text
volatile
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_name constant text := 'Project members can receive Queue Health snapshots';
begin
  if pg_catalog.to_regclass('realtime.messages') is null then
    raise notice 'queue_health: realtime.messages does not exist yet, so the Realtime policy for queue_health:<project_id> topics is not installed.'
      using hint = 'Realtime creates the table when it first connects to the project (open Realtime in the dashboard, or subscribe once); then run select queue_health.install_realtime_policy(); (queue_health.schedule() runs it too).';
    return 'realtime_absent';
  end if;
  begin
    -- Drop and create in one subtransaction: a refused create keeps the previous policy.
    execute format('drop policy if exists %I on realtime.messages', v_name);
    execute format($p$create policy %I on realtime.messages for select to authenticated using (
        realtime.messages.extension = 'broadcast'
        and left((select realtime.topic()), 13) = 'queue_health:'
        and realtime.messages.topic = (select realtime.topic())
        and (select queue_health.is_member(substr((select realtime.topic()), 14)))
      )$p$, v_name);
  exception when insufficient_privilege then
    raise notice 'queue_health: % may not create policies on realtime.messages (%), so members cannot join queue_health:<project_id> topics yet.', current_user, sqlerrm
      using hint = 'On Supabase, run select queue_health.install_realtime_policy(); as postgres from the SQL editor; elsewhere, as the owner of realtime.messages.';
    return 'refused';
  end;
  begin
    execute format('comment on policy %I on realtime.messages is %L', v_name,
      'Admits a user to the private topic queue_health:<project_id> only when queue_health.is_member() says they belong to that project.');
  exception when insufficient_privilege then
    -- supautils before 3.3 lets postgres create policies on realtime.messages but not comment on
    -- them; the policy's name says what it does.
    null;
  end;
  return 'installed';
end;
$$;
comment on function queue_health.install_realtime_policy() is 'Creates (or re-creates) the SELECT policy on realtime.messages that admits only a project''s members to the private topic queue_health:<project_id>. Never fails: returns installed, realtime_absent (Realtime has not created its table yet; a notice says what to do) or refused (no privilege; a notice says who can). Called by the migration and by schedule(); safe to run again.';
revoke execute on function queue_health.install_realtime_policy() from public, anon, authenticated;
grant execute on function queue_health.install_realtime_policy() to service_role;

select queue_health.install_realtime_policy();

-- Section: views and history (security invoker: the caller's RLS applies)

create view queue_health.queue_status
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
    when m.oldest_ready_age_s >= s.critical_oldest_ready_age_s then 'critical'
    when m.oldest_ready_age_s >= s.warning_oldest_ready_age_s
      or m.failed::float8 / nullif(m.completed + m.failed, 0) >= s.warning_error_rate
      or m.dead_lettered > 0 then 'warning'
    else 'ok'
  end as status
from queue_health.queue q
cross join queue_health.settings s
left join lateral (
  select *
  from queue_health.metric m
  where m.queue_name = q.queue_name and m.source = q.source and m.source_schema = q.source_schema
  order by m.captured_at desc
  limit 1
) m on true
where q.dropped_at is null;
comment on view queue_health.queue_status is 'One row per queue that still exists, with its latest snapshot, rates per second over the last interval, error rate failed/(completed+failed), and status: stale (no snapshot in stale_after_intervals capture intervals), critical (oldest ready message >= critical_oldest_ready_age_s), warning (oldest ready >= warning_oldest_ready_age_s, error rate >= warning_error_rate, or dead letters), else ok. RLS applies.';
comment on column queue_health.queue_status.project_id is 'Project of the queue.';
comment on column queue_health.queue_status.source is 'pgmq or pgboss.';
comment on column queue_health.queue_status.source_schema is 'Schema of the queue.';
comment on column queue_health.queue_status.queue_name is 'Queue name.';
comment on column queue_health.queue_status.captured_at is 'When the latest snapshot was taken (null if never).';
comment on column queue_health.queue_status.snapshot_age_s is 'Seconds since the latest snapshot.';
comment on column queue_health.queue_status.enqueue_rate is 'Messages enqueued per second over the last interval.';
comment on column queue_health.queue_status.complete_rate is 'Messages completed per second over the last interval.';
comment on column queue_health.queue_status.fail_rate is 'Messages failed per second over the last interval.';
comment on column queue_health.queue_status.error_rate is 'failed / (completed + failed) in the last interval; null when both are 0.';
comment on column queue_health.queue_status.status is 'ok, warning, critical or stale (see the view comment).';

-- capture_run.error and .errors hold queue names and SQL error text from every project's queues:
-- tenants do not read them (no column privilege); these functions give each caller the part
-- that concerns the projects they belong to.

create function queue_health._sees_all_capture_errors()
returns boolean
stable
security definer
set search_path = ''
language sql
as $$
  -- The operator: the service role (JWT or role), or a session that set no role (the owner,
  -- connected directly). A tenant's session always runs as a role it set (authenticated).
  select coalesce((select auth.role()) = 'service_role', false)
      or coalesce(current_setting('role', true), 'none') in ('service_role', 'none')
$$;
comment on function queue_health._sees_all_capture_errors() is 'True for the operator (service role, or the owner connected without set role), who sees every capture error; tenants see only their projects''.';
revoke execute on function queue_health._sees_all_capture_errors() from public, anon, authenticated;

create function queue_health.capture_run_errors(p_run_id bigint)
returns jsonb
stable
security definer
set search_path = ''
language sql
as $$
  -- An error belongs to the project named in it (alerting) or to its queue's project; errors of
  -- no project (a whole source failed) are shown to tenants without their text.
  select coalesce(jsonb_agg(
           case when queue_health._sees_all_capture_errors() or x.project_id is not null then x.e
                else jsonb_build_object('source', x.e -> 'source', 'source_schema', null, 'queue_name', null,
                                        'error', 'capture error outside your projects (details: operator only)')
           end order by x.ord), '[]'::jsonb)
    from (
      select e.value as e, e.ordinality as ord, coalesce(e.value ->> 'project_id', q.project_id) as project_id
        from queue_health.capture_run r
       cross join lateral jsonb_array_elements(r.errors) with ordinality e
        left join queue_health.queue q
          on q.source = e.value ->> 'source' and q.source_schema = e.value ->> 'source_schema'
         and q.queue_name = e.value ->> 'queue_name'
       where r.id = p_run_id
    ) x
   where queue_health._sees_all_capture_errors()
      or x.project_id is null
      or x.project_id = any (queue_health.member_project_ids())
$$;
comment on function queue_health.capture_run_errors(bigint) is 'The errors of capture run p_run_id the caller may see: all of them for the operator (service role, owner); for a tenant those of queues and projects they are a member of, and errors of no project without their text. [{source, source_schema, queue_name, project_id?, error}].';
revoke execute on function queue_health.capture_run_errors(bigint) from public, anon, authenticated;
grant execute on function queue_health.capture_run_errors(bigint) to authenticated, service_role;

create function queue_health.capture_run_error(p_run_id bigint)
returns text
stable
security definer
set search_path = ''
language sql
as $$
  select case
    when queue_health._sees_all_capture_errors() then (select r.error from queue_health.capture_run r where r.id = p_run_id)
    else (select case when jsonb_array_length(v.e) > 0 then
                   jsonb_array_length(v.e) || ' error(s); first: ' || (v.e -> 0 ->> 'error') end
            from (select queue_health.capture_run_errors(p_run_id) as e) v)
  end
$$;
comment on function queue_health.capture_run_error(bigint) is 'Summary of what went wrong in capture run p_run_id, as the caller may see it: capture_run.error for the operator; for a tenant, a count and the first of capture_run_errors() (null when none concerns them).';
revoke execute on function queue_health.capture_run_error(bigint) from public, anon, authenticated;
grant execute on function queue_health.capture_run_error(bigint) to authenticated, service_role;

-- capture_status, the monitor's own health, is defined by the alerting migration: it includes
-- whether alert evaluation is failing (queue_health.alert_evaluation).

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
  source_schema text
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
        m.source_schema
      from queue_health.metric m
      where m.queue_name = p_queue and (p_source is null or m.source = p_source)
        and m.captured_at >= p_from and m.captured_at < p_to
      order by m.captured_at, m.source, m.source_schema;
    return;
  end if;

  -- Rollup rows up to the watermark; after it (the last few minutes), the same aggregation on
  -- the fly from raw rows, so a chart reaches the present.
  v_unit := case v_resolution when '1m' then 'minute' else 'hour' end;
  select w.rolled_up_to into v_watermark from queue_health.rollup_watermark w where w.resolution = v_resolution;
  v_watermark := coalesce(v_watermark, '-infinity');
  return query execute format($sql$
    select r.bucket, r.project_id, r.source, r.queue_name, $5,
      r.depth_avg, r.ready_avg, r.in_flight_avg, r.delayed_avg, r.oldest_ready_age_s_max,
      r.enqueued, r.completed, r.failed, r.retried, r.dead_lettered, r.source_schema
    from queue_health.%1$I r
    where r.queue_name = $1 and ($4::text is null or r.source = $4)
      and r.bucket >= pg_catalog.date_trunc(%2$L, $2, 'UTC') and r.bucket < $3 and r.bucket < $6
    union all
    select pg_catalog.date_trunc(%2$L, m.captured_at, 'UTC'),
      (pg_catalog.array_agg(m.project_id order by m.captured_at desc))[1],
      m.source, m.queue_name, $5,
      avg(m.depth)::float8, avg(m.ready)::float8, avg(m.in_flight)::float8, avg(m.delayed)::float8,
      max(m.oldest_ready_age_s),
      coalesce(sum(m.enqueued), 0)::bigint, coalesce(sum(m.completed), 0)::bigint,
      coalesce(sum(m.failed), 0)::bigint, coalesce(sum(m.retried), 0)::bigint,
      coalesce(sum(m.dead_lettered), 0)::bigint, m.source_schema
    from queue_health.metric m
    where m.queue_name = $1 and ($4::text is null or m.source = $4)
      and m.captured_at >= greatest($6, pg_catalog.date_trunc(%2$L, $2, 'UTC')) and m.captured_at < $3
    group by 1, m.source, m.source_schema, m.queue_name
    order by 1, 3, 16
    $sql$, 'metric_' || v_resolution, v_unit)
    using p_queue, p_from, p_to, p_source, v_resolution, v_watermark;
end;
$$;
comment on function queue_health.queue_history(text, timestamptz, timestamptz, text) is 'History of one queue (optionally one source) over [p_from, p_to): raw snapshots for ranges up to 6 hours, 1-minute buckets up to 7 days, else 1-hour buckets. In buckets, gauges are averages, oldest_ready_age_s the maximum and counts sums. Security invoker: RLS applies.';
revoke execute on function queue_health.queue_history(text, timestamptz, timestamptz, text) from public, anon, authenticated;
grant execute on function queue_health.queue_history(text, timestamptz, timestamptz, text) to authenticated, service_role;

-- Section: RLS policies (policies named as sentences; helper calls wrapped in (select ...))
-- The service role has BYPASSRLS, so no policy applies to it: none is written for it (a
-- "using (true)" policy to service_role would do nothing and suggest that RLS guards it). What
-- it may touch is decided by the grants below.
-- Small tables ask is_member() per row; the large ones (queue, metric, rollups) compare with the
-- caller's project list, computed once per query by member_project_ids() (which asks is_member()).

create policy "Projects are visible to their members"
  on queue_health.project for select to authenticated
  using ((select queue_health.is_member(id)));
create policy "Project admins can rename their project"
  on queue_health.project for update to authenticated
  using ((select queue_health.is_member(id, 'admin')))
  with check ((select queue_health.is_member(id, 'admin')));
create policy "Members can see who belongs to their projects"
  on queue_health.project_member for select to authenticated
  using ((select queue_health.is_member(project_id)));
create policy "Project admins can add members"
  on queue_health.project_member for insert to authenticated
  with check ((select queue_health.is_member(project_id, 'admin')));
create policy "Project admins can change members' roles"
  on queue_health.project_member for update to authenticated
  using ((select queue_health.is_member(project_id, 'admin')))
  with check ((select queue_health.is_member(project_id, 'admin')));
create policy "Project admins can remove members"
  on queue_health.project_member for delete to authenticated
  using ((select queue_health.is_member(project_id, 'admin')));
-- Mapping rules decide which project sees a queue, so an admin of one project must not be able to
-- pull another project's queues into theirs: members read their project's rules, only the
-- service role writes them.
create policy "Queue mappings are visible to members of the target project"
  on queue_health.project_queue_map for select to authenticated
  using ((select queue_health.is_member(project_id)));
create policy "Queues are visible to members of their project"
  on queue_health.queue for select to authenticated
  using (project_id = any ((select queue_health.member_project_ids())::text[]));
create policy "Metrics are visible to members of the queue's project"
  on queue_health.metric for select to authenticated
  using (project_id = any ((select queue_health.member_project_ids())::text[]));
create policy "Minute rollups are visible to members of the queue's project"
  on queue_health.metric_1m for select to authenticated
  using (project_id = any ((select queue_health.member_project_ids())::text[]));
create policy "Hour rollups are visible to members of the queue's project"
  on queue_health.metric_1h for select to authenticated
  using (project_id = any ((select queue_health.member_project_ids())::text[]));
create policy "Rollup progress is visible to members of any project"
  on queue_health.rollup_watermark for select to authenticated
  using ((select queue_health.is_member_of_any()));
create policy "Capture runs are visible to members of any project"
  on queue_health.capture_run for select to authenticated
  using ((select queue_health.is_member_of_any()));
create policy "Settings are visible to members of any project"
  on queue_health.settings for select to authenticated
  using ((select queue_health.is_member_of_any()));
-- Section: table privileges (closed by default; RLS narrows what is granted)

revoke all on queue_health.project, queue_health.project_member, queue_health.project_queue_map,
  queue_health.queue, queue_health.metric, queue_health.metric_1m, queue_health.metric_1h,
  queue_health.rollup_watermark, queue_health.capture_run, queue_health.settings,
  queue_health.queue_status
  from public, anon, authenticated;
grant select on queue_health.project, queue_health.project_member, queue_health.project_queue_map,
  queue_health.queue, queue_health.metric, queue_health.metric_1m, queue_health.metric_1h,
  queue_health.rollup_watermark, queue_health.settings,
  queue_health.queue_status
  to authenticated;
-- Not error / errors: they hold every project's queue names and SQL errors (capture_run_errors()
-- gives a tenant their own).
grant select (id, started_at, finished_at, duration_ms, queues, rows, status) on queue_health.capture_run
  to authenticated;
grant update (name) on queue_health.project to authenticated;
grant insert, update (role), delete on queue_health.project_member to authenticated;
grant all on queue_health.project, queue_health.project_member, queue_health.project_queue_map,
  queue_health.queue, queue_health.metric, queue_health.metric_1m, queue_health.metric_1h,
  queue_health.rollup_watermark, queue_health.capture_run, queue_health.settings
  to service_role;
grant select on queue_health.queue_status to service_role;
grant usage on all sequences in schema queue_health to service_role;
