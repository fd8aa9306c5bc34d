-- Queue Health: capture. capture() turns the samplers' rows into metric rows and registry
-- updates, in one transaction, recording each run in capture_run; run_captures_*() is the loop the
-- pg_cron job runs between minutes; capture_run_errors() shows each caller the errors it may see.

create type queue_health.capture_run_status as enum ('ok', 'skipped', 'error', 'partial');
comment on type queue_health.capture_run_status is 'Outcome of a capture: ok, skipped (another capture held the lock), partial (some sources or queues failed), error (nothing stored).';

create table queue_health.capture_run (
  id bigint generated always as identity primary key,
  started_at timestamptz not null,
  finished_at timestamptz,
  duration_ms double precision,
  queues int not null default 0,
  rows int not null default 0,
  status queue_health.capture_run_status not null,
  error text,
  errors jsonb not null default '[]'::jsonb,
  constraint capture_run_finished_after_start check (finished_at is null or finished_at >= started_at),
  constraint capture_run_counts_non_negative check (queues >= 0 and rows >= 0),
  constraint capture_run_errors_array check (jsonb_typeof(errors) = 'array'),
  constraint capture_run_error_when_failed check (status <> 'error' or error is not null)
);
comment on table queue_health.capture_run is 'One row per queue_health.capture() call: when, how long, how many queues and rows, and what failed.';
comment on column queue_health.capture_run.id is 'Run id (returned as run_id by capture()).';
comment on column queue_health.capture_run.started_at is 'The capture''s p_now.';
comment on column queue_health.capture_run.finished_at is 'started_at plus the measured duration.';
comment on column queue_health.capture_run.duration_ms is 'Wall-clock duration of the capture, ms.';
comment on column queue_health.capture_run.queues is 'Queues sampled (including ones whose sample failed).';
comment on column queue_health.capture_run.rows is 'Metric rows written.';
comment on column queue_health.capture_run.status is 'ok, skipped, partial or error.';
comment on column queue_health.capture_run.error is 'Summary of what went wrong (a source failure, or the skip reason).';
comment on column queue_health.capture_run.errors is 'Per-source and per-queue errors: [{source, source_schema, queue_name, error}].';
comment on constraint capture_run_finished_after_start on queue_health.capture_run is 'A run cannot finish before it started.';
comment on constraint capture_run_counts_non_negative on queue_health.capture_run is 'Counts are never negative.';
comment on constraint capture_run_errors_array on queue_health.capture_run is 'errors is a json array.';
comment on constraint capture_run_error_when_failed on queue_health.capture_run is 'A run with status error says why.';

create index capture_run_started_at_idx on queue_health.capture_run (started_at desc);
alter table queue_health.capture_run enable row level security;

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

create policy "Capture runs are visible to members of any project"
  on queue_health.capture_run for select to authenticated
  using ((select queue_health.is_member_of_any()));
revoke all on queue_health.capture_run from public, anon, authenticated;

-- Not error / errors: they hold every project's queue names and SQL errors (capture_run_errors()
-- gives a tenant their own).
grant select (id, started_at, finished_at, duration_ms, queues, rows, status) on queue_health.capture_run
  to authenticated;
grant all on queue_health.capture_run to service_role;
grant usage on all sequences in schema queue_health to service_role;
