-- Queue Health: the pg-boss source. Turns the queues of every pg-boss schema (v10, v11, v12) into
-- queue_health.sample rows; shared helpers (_source_settings, _planner_rows) are in
-- 20261126100100_queue_health_sources.sql. The metric definitions are in docs/metrics.md.

-- Section: pg-boss

create function queue_health._pgboss_schemas()
returns table (schema_name text, version int, layout jsonb)
stable
security definer
set search_path = ''
set lock_timeout = '500ms'
language plpgsql
as $$
declare
  v_excluded text[] := array(
    select jsonb_array_elements_text(queue_health._source_settings() -> 'excluded_pgboss_schemas'));
begin
  -- A pg-boss schema is any schema with version, job and queue tables (never assume 'pgboss').
  for schema_name in
    select n.nspname::text
    from pg_catalog.pg_namespace n
    where not (n.nspname = any(v_excluded))
      and (select count(*) from pg_catalog.pg_class c
           where c.relnamespace = n.oid and c.relname in ('version', 'job', 'queue')
             and c.relkind in ('r', 'p')) = 3
    order by 1
  loop
    begin
      execute format('select max(version) from %I.version', schema_name) into version;
      -- Layout by feature detection, not by version number.
      select jsonb_object_agg(t.relname || '.' || a.attname, true)
        into layout
        from pg_catalog.pg_attribute a
        join pg_catalog.pg_class t on t.oid = a.attrelid
        join pg_catalog.pg_namespace n on n.oid = t.relnamespace
        where n.nspname = schema_name and t.relname in ('job', 'queue')
          and a.attnum > 0 and not a.attisdropped
          and a.attname in ('blocked', 'monitor_on', 'queued_count', 'ready_count',
                            'deferred_count', 'blocked_count', 'active_count');
      layout := coalesce(layout, '{}'::jsonb);
      -- pg-boss 12's (name, created_on) and (name, completed_on) indexes, wherever they exist.
      layout := layout || coalesce((
        select jsonb_object_agg('index.' || a2.attname, true)
        from pg_catalog.pg_index i
        join pg_catalog.pg_class t on t.oid = i.indrelid
        join pg_catalog.pg_namespace n on n.oid = t.relnamespace
        join pg_catalog.pg_attribute a1 on a1.attrelid = i.indrelid and a1.attnum = i.indkey[0]
        join pg_catalog.pg_attribute a2 on a2.attrelid = i.indrelid and a2.attnum = i.indkey[1]
        where n.nspname = schema_name and t.relname like 'job%'
          and a1.attname = 'name' and a2.attname in ('created_on', 'completed_on')), '{}'::jsonb);
      return next;
    exception when others then
      null; -- the schema vanished or is unreadable: not a pg-boss schema for this capture
    end;
  end loop;
end;
$$;
comment on function queue_health._pgboss_schemas() is 'The pg-boss schemas in this database (tables version, job and queue), minus settings.excluded_pgboss_schemas, with their schema version and which optional columns they have.';
revoke execute on function queue_health._pgboss_schemas() from public;
grant execute on function queue_health._pgboss_schemas() to service_role;

create function queue_health._sample_pgboss_queue(
  p_schema text,
  p_layout jsonb,
  p_queue_name text,
  p_now timestamptz,
  p_limit bigint,
  p_cache_max_age interval,
  p_prev jsonb
)
returns queue_health.sample
volatile
security definer
set search_path = ''
-- lock_timeout (500ms) is set once by _sample_pgboss() for the whole call: set here, per queue,
-- its save and restore would cost more than sampling a small queue.
language plpgsql
as $$
declare
  v_started timestamptz := clock_timestamp();
  v_sample queue_health.sample;
  v_job text := format('%I.job', p_schema);
  v_not_blocked text := case when p_layout ? 'job.blocked' then ' and not blocked' else '' end;
  v_or_blocked text := case when p_layout ? 'job.blocked' then ' or blocked' else '' end;
  v_ready bigint;
  v_delayed bigint;
  v_in_flight bigint;
  v_source jsonb := '{}'::jsonb; -- where each gauge came from: exact | cache | planner
  v_cache jsonb;
  v_cache_age double precision;
  v_cache_fresh boolean := false;
  v_oldest timestamptz;
  v_prev_at timestamptz := (p_prev ->> 'at')::timestamptz;
  v_window double precision;
  v_n bigint;
  v_first timestamptz;
  v_completed bigint;
  v_failed bigint;
  v_dead bigint;
  v_wait double precision[];
  v_run double precision[];
  v_capped text[] := '{}'::text[];
  v_scale numeric;
  v_exists boolean;
begin
  v_sample.source := 'pgboss';
  v_sample.source_schema := p_schema;
  v_sample.queue_name := p_queue_name;
  begin
    -- pg-boss 11+ caches counts per queue (its monitor, about every minute): read it once.
    if p_layout ? 'queue.monitor_on' then
      execute format('select to_jsonb(q) from %I.queue q where name = $1', p_schema)
        using p_queue_name into v_cache;
      v_cache_age := extract(epoch from p_now - (v_cache ->> 'monitor_on')::timestamptz);
      v_cache_fresh := v_cache_age is not null
        and v_cache_age <= extract(epoch from p_cache_max_age);
    end if;
    v_source := jsonb_build_object('ready', 'exact', 'delayed', 'exact', 'in_flight', 'exact');

    -- Gauges, each counted exactly up to p_limit rows, index-only where pg-boss has the index:
    -- ready and (v10/v11) delayed through the fetch index (name, start_after) where
    -- state < 'active'. v12's (name, state, blocked, start_after) index has the predicate
    -- state in (created, retry, active, failed), which the planner cannot prove from
    -- state < 'active' (an enum range): there, name the two states so that index is usable.
    execute format(
      'select count(*) from (select 1 from %s where name = $1 and %s and start_after <= $2%s limit $3) s',
      v_job,
      case when p_layout ? 'job.blocked' then format('state in (%L, %L)', 'created', 'retry')
           else format('state < %L', 'active') end,
      v_not_blocked) using p_queue_name, p_now, p_limit into v_ready;
    if p_layout ? 'job.blocked' then
      -- v12: deferred and blocked are two ranges of its (name, state, blocked, start_after) index.
      execute format(
        'select count(*) from (select 1 from %s where name = $1 and state in (%L, %L)
           and not blocked and start_after > $2 limit $3) s', v_job, 'created', 'retry')
        using p_queue_name, p_now, p_limit into v_delayed;
      execute format(
        'select count(*) from (select 1 from %s where name = $1 and state in (%L, %L)
           and blocked limit $2) s', v_job, 'created', 'retry')
        using p_queue_name, greatest(p_limit - v_delayed, 0) into v_n;
      v_delayed := v_delayed + v_n;
    else
      execute format(
        'select count(*) from (select 1 from %s where name = $1 and state < %L and start_after > $2 limit $3) s',
        v_job, 'active') using p_queue_name, p_now, p_limit into v_delayed;
    end if;
    -- Active jobs: v12 has a (name, state, …) index. v10/v11 have no index on state, so finding
    -- them scans the queue's retained jobs: v11 takes pg-boss's cache while it is fresh instead.
    if v_cache_fresh and not p_layout ? 'job.blocked' then
      v_in_flight := (v_cache ->> 'active_count')::bigint;
      v_source := v_source || '{"in_flight": "cache"}';
    else
      execute format(
        'select count(*) from (select 1 from %s where name = $1 and state = %L limit $2) s',
        v_job, 'active') using p_queue_name, p_limit into v_in_flight;
    end if;

    if v_ready >= p_limit or v_delayed >= p_limit or v_in_flight >= p_limit then
      -- Above the bound: pg-boss's cache while fresh, otherwise the planner. Either way
      -- depth_estimated is set.
      if v_ready >= p_limit then
        if v_cache_fresh then
          v_ready := greatest(p_limit, case when v_cache ? 'ready_count'
            then (v_cache ->> 'ready_count')::bigint
            else (v_cache ->> 'queued_count')::bigint - (v_cache ->> 'deferred_count')::bigint end);
          v_source := v_source || '{"ready": "cache"}';
        else
          v_ready := greatest(p_limit, queue_health._planner_rows(format(
            'select 1 from %s where name = %L and state < %L and start_after <= %L%s',
            v_job, p_queue_name, 'active', p_now, v_not_blocked)));
          v_source := v_source || '{"ready": "planner"}';
        end if;
      end if;
      if v_delayed >= p_limit then
        if v_cache_fresh then
          v_delayed := greatest(p_limit, (v_cache ->> 'deferred_count')::bigint
            + coalesce((v_cache ->> 'blocked_count')::bigint, 0));
          v_source := v_source || '{"delayed": "cache"}';
        else
          v_delayed := greatest(p_limit, queue_health._planner_rows(format(
            'select 1 from %s where name = %L and state < %L and (start_after > %L%s)',
            v_job, p_queue_name, 'active', p_now, v_or_blocked)));
          v_source := v_source || '{"delayed": "planner"}';
        end if;
      end if;
      if v_in_flight >= p_limit and v_source ->> 'in_flight' = 'exact' then
        if v_cache_fresh then
          v_in_flight := greatest(p_limit, (v_cache ->> 'active_count')::bigint);
          v_source := v_source || '{"in_flight": "cache"}';
        else
          v_in_flight := greatest(p_limit, queue_health._planner_rows(format(
            'select 1 from %s where name = %L and state = %L', v_job, p_queue_name, 'active')));
          v_source := v_source || '{"in_flight": "planner"}';
        end if;
      end if;
    end if;

    v_sample.ready := v_ready;
    v_sample.delayed := v_delayed;
    v_sample.in_flight := v_in_flight;
    v_sample.depth := v_ready + v_delayed + v_in_flight;
    v_sample.depth_estimated := v_source <> '{"ready": "exact", "delayed": "exact", "in_flight": "exact"}'::jsonb;

    -- Oldest ready job: the first entry per state of pg-boss's (name, start_after) fetch index
    -- (v10/v11) or its (name, state, blocked, start_after) index (v12): one probe each.
    execute format(
      'select least(
         (select start_after from %1$s where name = $1 and state = %2$L and start_after <= $2%4$s
          order by start_after limit 1),
         (select start_after from %1$s where name = $1 and state = %3$L and start_after <= $2%4$s
          order by start_after limit 1))',
      v_job, 'created', 'retry', v_not_blocked) using p_queue_name, p_now into v_oldest;
    v_sample.oldest_ready_age_s := coalesce(greatest(extract(epoch from p_now - v_oldest), 0), 0);

    if v_prev_at is null then
      v_sample.enqueued := 0;
      v_sample.completed := 0;
      v_sample.failed := 0;
      v_sample.retried := 0;
      v_sample.dead_lettered := 0;
    elsif not (p_layout ? 'index.created_on' and p_layout ? 'index.completed_on') then
      -- v10/v11: no index on the timestamps, so any of these counts scans the queue's jobs (v10:
      -- its partition; v11: its rows of job_common by the (name, id) key). Do it once, exactly.
      execute format(
        'select count(*) filter (where created_on > $2 and created_on <= $3),
                count(*) filter (where state = %2$L and completed_on > $2 and completed_on <= $3),
                count(*) filter (where state = %3$L and completed_on > $2 and completed_on <= $3),
                count(*) filter (where state = %3$L and completed_on > $2 and completed_on <= $3
                                   and dead_letter is not null and dead_letter <> name),
                percentile_cont(array[0.5, 0.95]) within group (order by extract(epoch from started_on - created_on) * 1000)
                  filter (where state in (%2$L, %3$L) and completed_on > $2 and completed_on <= $3
                            and started_on is not null),
                percentile_cont(array[0.5, 0.95]) within group (order by extract(epoch from completed_on - started_on) * 1000)
                  filter (where state in (%2$L, %3$L) and completed_on > $2 and completed_on <= $3
                            and started_on is not null),
                count(*) filter (where retry_count > 0 and started_on > $2 and started_on <= $3)
           from %1$s
           where name = $1 and (created_on > $2 or completed_on > $2 or started_on > $2)',
        v_job, 'completed', 'failed')
        using p_queue_name, v_prev_at, p_now
        into v_sample.enqueued, v_sample.completed, v_sample.failed, v_sample.dead_lettered,
          v_wait, v_run, v_sample.retried;
      v_sample.wait_p50_ms := v_wait[1];
      v_sample.wait_p95_ms := v_wait[2];
      v_sample.run_p50_ms := v_run[1];
      v_sample.run_p95_ms := v_run[2];
    else
      v_window := extract(epoch from p_now - v_prev_at);
      -- Created since the previous snapshot: the newest p_limit rows (v12: (name, created_on) index).
      -- Above the bound, extrapolated from the rate of those newest rows.
      execute format(
        'select count(*), min(created_on) from (select created_on from %s
           where name = $1 and created_on > $2 and created_on <= $3
           order by created_on desc limit $4) s', v_job)
        using p_queue_name, v_prev_at, p_now, p_limit into v_n, v_first;
      if v_n >= p_limit and p_limit > 0 and v_first < p_now then
        v_n := greatest(v_n, round(v_n * v_window::numeric / extract(epoch from p_now - v_first)::numeric)::bigint);
        v_capped := array_append(v_capped, 'enqueued');
      end if;
      v_sample.enqueued := v_n;

      -- Finished since the previous snapshot (v12: (name, completed_on) index): completed, failed,
      -- dead-lettered, and the wait/run percentiles of those jobs.
      execute format(
        'select count(*), count(*) filter (where state = %L), count(*) filter (where state = %L),
                count(*) filter (where state = %L and dead_letter is not null and dead_letter <> name),
                min(completed_on),
                percentile_cont(array[0.5, 0.95]) within group (order by extract(epoch from started_on - created_on) * 1000)
                  filter (where started_on is not null),
                percentile_cont(array[0.5, 0.95]) within group (order by extract(epoch from completed_on - started_on) * 1000)
                  filter (where started_on is not null)
           from (select name, state, created_on, started_on, completed_on, dead_letter from %s
                 where name = $1 and completed_on > $2 and completed_on <= $3 and state in (%L, %L)
                 order by completed_on desc limit $4) s',
        'completed', 'failed', 'failed', v_job, 'completed', 'failed')
        using p_queue_name, v_prev_at, p_now, p_limit
        into v_n, v_completed, v_failed, v_dead, v_first, v_wait, v_run;
      if v_n >= p_limit and p_limit > 0 and v_first < p_now then
        v_scale := greatest(1, v_window::numeric / extract(epoch from p_now - v_first)::numeric);
        v_completed := round(v_completed * v_scale)::bigint;
        v_failed := round(v_failed * v_scale)::bigint;
        v_dead := round(v_dead * v_scale)::bigint;
        v_capped := array_append(v_capped, 'finished');
      end if;
      v_sample.completed := v_completed;
      v_sample.failed := v_failed;
      v_sample.dead_lettered := v_dead;
      v_sample.wait_p50_ms := v_wait[1];
      v_sample.wait_p95_ms := v_wait[2];
      v_sample.run_p50_ms := v_run[1];
      v_sample.run_p95_ms := v_run[2];

      -- Retry attempts started since the previous snapshot: pg-boss bumps retry_count and stamps
      -- started_on each time it hands out a job that had been started before.
      execute format(
        'select count(*) from (select 1 from %s
           where name = $1 and retry_count > 0 and started_on > $2 and started_on <= $3
             and (state in (%L, %L) or completed_on > $2)
           limit $4) s', v_job, 'active', 'retry')
        using p_queue_name, v_prev_at, p_now, p_limit into v_n;
      if v_n >= p_limit then
        v_capped := array_append(v_capped, 'retried');
      end if;
      v_sample.retried := v_n;
    end if;

    v_sample.cursor := jsonb_build_object(
      'v', 1,
      'at', p_now,
      'counts', v_source,
      'cache_age_s', v_cache_age,
      'capped', to_jsonb(v_capped)
    );
    v_sample.sample_ms := extract(epoch from clock_timestamp() - v_started) * 1000;
    return v_sample;
  exception
    when others then
      -- A queue deleted (v10: its partition dropped) or a schema dropped while we sampled it is
      -- gone, not broken: skip it.
      begin
        execute format('select exists (select 1 from %I.queue where name = $1)', p_schema)
          using p_queue_name into v_exists;
      exception when others then
        v_exists := false;
      end;
      if not v_exists then
        return null;
      end if;
      return row('pgboss', p_schema, p_queue_name, null, null, null, null, null, null, null, null,
        null, null, null, null, null, null, null, extract(epoch from clock_timestamp() - v_started) * 1000, p_prev,
        sqlstate || ': ' || sqlerrm)::queue_health.sample;
  end;
end;
$$;
comment on function queue_health._sample_pgboss_queue(text, jsonb, text, timestamptz, bigint, interval, jsonb) is 'Samples one pg-boss queue (see docs/metrics.md). Returns a sample with error set when sampling failed, null when the queue or its schema vanished; never raises.';
revoke execute on function queue_health._sample_pgboss_queue(text, jsonb, text, timestamptz, bigint, interval, jsonb) from public;
grant execute on function queue_health._sample_pgboss_queue(text, jsonb, text, timestamptz, bigint, interval, jsonb) to service_role;

create function queue_health._sample_pgboss(p_now timestamptz default now())
returns setof queue_health.sample
volatile
security definer
set search_path = ''
-- pg-boss's deleteQueue() locks the schema's queue table while it drops a partition: wait at most
-- this long for it (the schema's queues are then reported as errors, see below).
set lock_timeout = '500ms'
language plpgsql
as $$
declare
  v_settings jsonb := queue_health._source_settings();
  v_limit bigint := (v_settings ->> 'exact_count_limit')::bigint;
  v_max_age interval := (v_settings ->> 'pgboss_cache_max_age')::interval;
  v_schema record;
  v_queue text;
  v_prev jsonb;
  v_sample queue_health.sample;
  v_error text;
begin
  for v_schema in select * from queue_health._pgboss_schemas() loop
    begin
      -- pg-boss's own internal queues (__pgboss__send-it, ...) are not the user's queues.
      -- The previous cursors of the schema's queues come with the list (one join, not a lookup
      -- per queue).
      for v_queue, v_prev in execute format(
        'select b.name, case when q.cursor is null or jsonb_typeof(q.cursor) <> %L then null
                else jsonb_build_object(%L, q.last_seen_at) || q.cursor end
           from %I.queue b
           left join queue_health.queue q
             on q.source = %L and q.source_schema = %L and q.queue_name = b.name
          where left(b.name, 10) <> %L order by b.name',
        'object', 'at', v_schema.schema_name, 'pgboss', v_schema.schema_name, '__pgboss__')
      loop
        v_sample := queue_health._sample_pgboss_queue(
          v_schema.schema_name, v_schema.layout, v_queue, p_now, v_limit, v_max_age, v_prev);
        if v_sample.source is not null then
          return next v_sample;
        end if;
      end loop;
    exception when others then
      v_error := sqlstate || ': ' || sqlerrm;
      -- The schema was dropped between discovery and listing its queues: nothing to sample.
      -- Otherwise (e.g. its queue table locked by deleteQueue()), its queues still exist: report
      -- the ones the registry knows as errors so that capture() does not mark them dropped.
      if to_regclass(format('%I.queue', v_schema.schema_name)) is not null then
        return query
          select 'pgboss', q.source_schema, q.queue_name, null::bigint, null::bigint, null::bigint,
            null::bigint, null::boolean, null::double precision, null::bigint, null::bigint,
            null::bigint, null::bigint, null::bigint, null::double precision,
            null::double precision, null::double precision, null::double precision,
            null::double precision, q.cursor, v_error
          from queue_health.queue q
          where q.source = 'pgboss' and q.source_schema = v_schema.schema_name
            and q.dropped_at is null;
      end if;
    end;
  end loop;
end;
$$;
comment on function queue_health._sample_pgboss(timestamptz) is 'One sample per queue of every pg-boss schema (v10, v11, v12) except settings.excluded_pgboss_schemas. Cost O(queues) for the gauges (index-bounded, exact up to settings.exact_count_limit, pg-boss''s cache or the planner above it); never raises for one queue.';
revoke execute on function queue_health._sample_pgboss(timestamptz) from public;
grant execute on function queue_health._sample_pgboss(timestamptz) to service_role;
