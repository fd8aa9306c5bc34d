-- Queue Health: maintenance. The one-minute and one-hour rollups of metric (metric_1m,
-- metric_1h, filled incrementally behind rollup_watermark), retention (dropping whole partitions),
-- and the trimming of pg_cron's run history; maintain() runs them all.

create table queue_health.metric_1m (
  bucket timestamptz not null,
  project_id text not null,
  source text not null,
  source_schema text not null,
  queue_name text not null,
  depth_min bigint,
  depth_avg double precision,
  depth_max bigint,
  depth_last bigint,
  ready_min bigint,
  ready_avg double precision,
  ready_max bigint,
  ready_last bigint,
  in_flight_min bigint,
  in_flight_avg double precision,
  in_flight_max bigint,
  in_flight_last bigint,
  delayed_min bigint,
  delayed_avg double precision,
  delayed_max bigint,
  delayed_last bigint,
  oldest_ready_age_s_max double precision,
  oldest_ready_age_s_last double precision,
  enqueued bigint not null default 0,
  completed bigint not null default 0,
  failed bigint not null default 0,
  retried bigint not null default 0,
  dead_lettered bigint not null default 0,
  wait_p95_ms_max double precision,
  run_p95_ms_max double precision,
  depth_estimated boolean not null default false,
  samples int not null,
  primary key (queue_name, source, source_schema, bucket),
  constraint metric_1m_bucket_aligned check (bucket = date_trunc('minute', bucket, 'UTC')),
  constraint metric_1m_samples_positive check (samples > 0)
);
comment on table queue_health.metric_1m is 'One-minute rollup of queue_health.metric, filled incrementally by queue_health.rollup(); rows older than settings.rollup_1m_retention are deleted by bucket.';
comment on constraint metric_1m_bucket_aligned on queue_health.metric_1m is 'bucket is the start of a whole minute.';
comment on constraint metric_1m_samples_positive on queue_health.metric_1m is 'A bucket exists only if at least one raw snapshot fell into it.';

create index metric_1m_bucket_idx on queue_health.metric_1m (bucket);

create table queue_health.metric_1h (like queue_health.metric_1m including defaults);
alter table queue_health.metric_1h
  add primary key (queue_name, source, source_schema, bucket),
  add constraint metric_1h_bucket_aligned check (bucket = date_trunc('hour', bucket, 'UTC')),
  add constraint metric_1h_samples_positive check (samples > 0);
comment on table queue_health.metric_1h is 'One-hour rollup of queue_health.metric (computed from raw rows, so averages are exact), filled incrementally by queue_health.rollup(); rows older than settings.rollup_1h_retention are deleted by bucket.';
comment on constraint metric_1h_bucket_aligned on queue_health.metric_1h is 'bucket is the start of a whole hour (UTC).';
comment on constraint metric_1h_samples_positive on queue_health.metric_1h is 'A bucket exists only if at least one raw snapshot fell into it.';

create index metric_1h_bucket_idx on queue_health.metric_1h (bucket);

do $$
declare
  v_table text;
  v_unit text;
begin
  foreach v_table in array array['metric_1m', 'metric_1h'] loop
    v_unit := case v_table when 'metric_1m' then 'minute' else 'hour' end;
    execute format('comment on column queue_health.%I.bucket is %L', v_table, 'Start of the ' || v_unit || ' (UTC) the row summarises.');
    execute format('comment on column queue_health.%I.project_id is %L', v_table, 'Project of the queue (its latest in the bucket).');
    execute format('comment on column queue_health.%I.source is %L', v_table, 'Queue system: pgmq or pgboss.');
    execute format('comment on column queue_health.%I.source_schema is %L', v_table, 'Schema of the queue.');
    execute format('comment on column queue_health.%I.queue_name is %L', v_table, 'Queue name.');
    execute format('comment on column queue_health.%I.depth_min is %L', v_table, 'Smallest depth seen in the bucket.');
    execute format('comment on column queue_health.%I.depth_avg is %L', v_table, 'Mean depth over the bucket''s snapshots.');
    execute format('comment on column queue_health.%I.depth_max is %L', v_table, 'Largest depth seen in the bucket.');
    execute format('comment on column queue_health.%I.depth_last is %L', v_table, 'Depth at the bucket''s last snapshot.');
    execute format('comment on column queue_health.%I.ready_min is %L', v_table, 'Smallest ready count in the bucket.');
    execute format('comment on column queue_health.%I.ready_avg is %L', v_table, 'Mean ready count.');
    execute format('comment on column queue_health.%I.ready_max is %L', v_table, 'Largest ready count.');
    execute format('comment on column queue_health.%I.ready_last is %L', v_table, 'Ready count at the last snapshot.');
    execute format('comment on column queue_health.%I.in_flight_min is %L', v_table, 'Smallest in-flight count in the bucket.');
    execute format('comment on column queue_health.%I.in_flight_avg is %L', v_table, 'Mean in-flight count.');
    execute format('comment on column queue_health.%I.in_flight_max is %L', v_table, 'Largest in-flight count.');
    execute format('comment on column queue_health.%I.in_flight_last is %L', v_table, 'In-flight count at the last snapshot.');
    execute format('comment on column queue_health.%I.delayed_min is %L', v_table, 'Smallest delayed count in the bucket.');
    execute format('comment on column queue_health.%I.delayed_avg is %L', v_table, 'Mean delayed count.');
    execute format('comment on column queue_health.%I.delayed_max is %L', v_table, 'Largest delayed count.');
    execute format('comment on column queue_health.%I.delayed_last is %L', v_table, 'Delayed count at the last snapshot.');
    execute format('comment on column queue_health.%I.oldest_ready_age_s_max is %L', v_table, 'Largest oldest-ready age in the bucket, seconds.');
    execute format('comment on column queue_health.%I.oldest_ready_age_s_last is %L', v_table, 'Oldest-ready age at the last snapshot, seconds.');
    execute format('comment on column queue_health.%I.enqueued is %L', v_table, 'Sum of enqueued over the bucket''s snapshots.');
    execute format('comment on column queue_health.%I.completed is %L', v_table, 'Sum of completed.');
    execute format('comment on column queue_health.%I.failed is %L', v_table, 'Sum of failed.');
    execute format('comment on column queue_health.%I.retried is %L', v_table, 'Sum of retried.');
    execute format('comment on column queue_health.%I.dead_lettered is %L', v_table, 'Sum of dead_lettered.');
    execute format('comment on column queue_health.%I.wait_p95_ms_max is %L', v_table, 'Largest wait_p95_ms in the bucket, ms.');
    execute format('comment on column queue_health.%I.run_p95_ms_max is %L', v_table, 'Largest run_p95_ms in the bucket, ms.');
    execute format('comment on column queue_health.%I.depth_estimated is %L', v_table, 'True when any snapshot in the bucket had an estimated depth.');
    execute format('comment on column queue_health.%I.samples is %L', v_table, 'Number of raw snapshots in the bucket (the weight for averages).');
  end loop;
end
$$;

create table queue_health.rollup_watermark (
  resolution text primary key,
  rolled_up_to timestamptz not null,
  updated_at timestamptz not null default now(),
  constraint rollup_watermark_resolution check (resolution in ('1m', '1h'))
);
comment on table queue_health.rollup_watermark is 'How far each rollup is complete: buckets before rolled_up_to are final. Lets queue_health.rollup() work incrementally.';
comment on column queue_health.rollup_watermark.resolution is '1m (metric_1m) or 1h (metric_1h).';
comment on column queue_health.rollup_watermark.rolled_up_to is 'Exclusive end of the rolled-up range (a bucket boundary).';
comment on column queue_health.rollup_watermark.updated_at is 'When the watermark last moved.';
comment on constraint rollup_watermark_resolution on queue_health.rollup_watermark is 'Only the two rollup resolutions exist.';
alter table queue_health.metric_1m enable row level security;
alter table queue_health.metric_1h enable row level security;
alter table queue_health.rollup_watermark enable row level security;

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

create policy "Minute rollups are visible to members of the queue's project"
  on queue_health.metric_1m for select to authenticated
  using (project_id = any ((select queue_health.member_project_ids())::text[]));

create policy "Hour rollups are visible to members of the queue's project"
  on queue_health.metric_1h for select to authenticated
  using (project_id = any ((select queue_health.member_project_ids())::text[]));

create policy "Rollup progress is visible to members of any project"
  on queue_health.rollup_watermark for select to authenticated
  using ((select queue_health.is_member_of_any()));
revoke all on queue_health.metric_1m, queue_health.metric_1h, queue_health.rollup_watermark from public, anon, authenticated;
grant select on queue_health.metric_1m, queue_health.metric_1h, queue_health.rollup_watermark to authenticated;
grant all on queue_health.metric_1m, queue_health.metric_1h, queue_health.rollup_watermark to service_role;
