-- Queue Health: the pg-boss source. Turns the queues of every pg-boss schema (v10, v11, v12) into
-- queue_health.sample rows; shared helpers (_source_settings) are in
-- 20261126100100_queue_health_source_common.sql. The metric definitions are in docs/metrics.md.
--
-- Cost model: per pg-boss schema, ONE statement (built once per schema per capture by
-- _pgboss_sample_sql) samples every queue of the schema. The planner plans it once; each queue
-- then costs only index-bounded probes on <schema>.job with name = the queue (run-time partition
-- pruning picks the queue's partition); a v12 queue unchanged since it was last read (its table's
-- statistics, no job created or finished, none due) repeats its snapshot after three probes.
-- Counts above settings.exact_count_limit come from pg-boss's fresh counts cache or, failing
-- that, from the table statistics (no EXPLAIN per queue); a gauge
-- that was estimated at twice the bound or more at the previous snapshot (cursor v2) and still is
-- by that estimate is not counted at all (the big-queue shortcut, as for pgmq). If the
-- statement fails for a schema (a queue's partition locked or dropped meanwhile, ...), that schema
-- falls back to the same statement run queue by queue, so one bad queue costs only itself.

create type queue_health._pgboss_window as (
  enqueued bigint,          -- jobs created in the window (v12: the newest exact_count_limit)
  enqueued_first timestamptz, -- v12: the oldest created_on among them (for the extrapolation)
  finished bigint,          -- v12: jobs finished in the window (the newest exact_count_limit)
  completed bigint,
  failed bigint,
  dead_lettered bigint,
  finished_first timestamptz, -- v12: the oldest completed_on among the finished ones counted
  wait_ms double precision[], -- {p50, p95} of started_on - created_on of the finished jobs
  run_ms double precision[],  -- {p50, p95} of completed_on - started_on
  retried bigint,
  retried_capped boolean      -- v12: more live or finished jobs than were read for retried
);

create type queue_health._pgboss_count as (
  n bigint,                 -- rows counted (at most exact_count_limit)
  first timestamptz         -- the smallest start_after among them
);
comment on type queue_health._pgboss_count is 'A bounded count and the smallest start_after seen by it (internal to _pgboss_sample_sql).';
comment on type queue_health._pgboss_window is 'What the pg-boss sampler reads about one queue since its previous snapshot (internal to _pgboss_sample_sql).';

create function queue_health._pgboss_schemas(p_excluded text[] default null)
returns table (schema_name text, layout jsonb)
stable
security definer
set search_path = ''
-- Planned once per session and kept (a SQL function's statement is planned on every call): the
-- capture runner calls it every 10 s for a minute in one session.
set plan_cache_mode = force_generic_plan
language plpgsql
as $$
begin
  -- A pg-boss schema is any schema with version, job and queue tables (never assume 'pgboss'),
  -- and its layout is found by feature detection, not by version number: which optional columns
  -- job and queue have, and whether pg-boss 12's (name, created_on) and (name, completed_on)
  -- indexes exist (on job or its partitions). One catalog statement for all schemas: a new
  -- session, as each pg_cron run is, plans and caches less than with a statement per schema
  -- (the schema's version table is not read: nothing depends on the number). p_excluded:
  -- settings.excluded_pgboss_schemas, which the sampler has read already; null reads them.
  return query
  with s as (
    select n.oid, n.nspname::text as name
      from pg_catalog.pg_class v
      join pg_catalog.pg_namespace n on n.oid = v.relnamespace
     where v.relname = 'version' and v.relkind in ('r', 'p')
       and not (n.nspname::text = any (coalesce(p_excluded, array(
             select jsonb_array_elements_text(queue_health._source_settings() -> 'excluded_pgboss_schemas')))))
       and (select count(*) from pg_catalog.pg_class c
             where c.relnamespace = n.oid and c.relname in ('job', 'queue') and c.relkind in ('r', 'p')) = 2
  )
  select s.name,
         coalesce((
           select jsonb_object_agg(t.relname || '.' || a.attname, true)
             from pg_catalog.pg_class t
             join pg_catalog.pg_attribute a on a.attrelid = t.oid
            where t.relnamespace = s.oid and t.relname in ('job', 'queue')
              and a.attnum > 0 and not a.attisdropped
              and a.attname in ('blocked', 'monitor_on', 'queued_count', 'ready_count',
                                'deferred_count', 'blocked_count', 'active_count',
                                'table_name', 'partition_name')), '{}'::jsonb)
         || coalesce((
           select jsonb_object_agg('index.' || a2.attname, true)
             from pg_catalog.pg_class t
             join pg_catalog.pg_index i on i.indrelid = t.oid
             join pg_catalog.pg_attribute a1 on a1.attrelid = i.indrelid and a1.attnum = i.indkey[0]
             join pg_catalog.pg_attribute a2 on a2.attrelid = i.indrelid and a2.attnum = i.indkey[1]
            where t.relnamespace = s.oid and t.relname like 'job%'
              and a1.attname = 'name' and a2.attname in ('created_on', 'completed_on')), '{}'::jsonb)
    from s
   order by 1;
end;
$$;
comment on function queue_health._pgboss_schemas(text[]) is 'The pg-boss schemas in this database (tables version, job and queue), minus p_excluded (default: settings.excluded_pgboss_schemas), with which optional columns and indexes they have (layout).';
revoke execute on function queue_health._pgboss_schemas(text[]) from public, anon, authenticated;
grant execute on function queue_health._pgboss_schemas(text[]) to service_role;

create function queue_health._histogram_fraction_le(p_bounds timestamptz[], p_x timestamptz)
returns double precision
immutable
set search_path = ''
language sql
as $$
  -- The fraction of a column's histogram (pg_stats.histogram_bounds: equal-frequency buckets) at
  -- or below p_x, interpolating linearly inside the bucket, as the planner does. Null without a
  -- histogram.
  select case
    when p_bounds is null or pg_catalog.cardinality(p_bounds) < 2 or p_x is null then null
    when p_x < p_bounds[1] then 0::double precision
    when p_x >= p_bounds[pg_catalog.cardinality(p_bounds)] then 1::double precision
    else (
      select (s.i - 1 + coalesce(
                extract(epoch from p_x - p_bounds[s.i])::double precision
                / nullif(extract(epoch from p_bounds[s.i + 1] - p_bounds[s.i])::double precision, 0),
                0))
             / (pg_catalog.cardinality(p_bounds) - 1)
      from (select max(k) as i from pg_catalog.generate_subscripts(p_bounds, 1) k
            where p_bounds[k] <= p_x) s)
  end
$$;
comment on function queue_health._histogram_fraction_le(timestamptz[], timestamptz) is 'Share of a pg_stats histogram (bounds) at or below p_x, linearly interpolated within its bucket; null without a histogram.';
revoke execute on function queue_health._histogram_fraction_le(timestamptz[], timestamptz) from public, anon, authenticated;
grant execute on function queue_health._histogram_fraction_le(timestamptz[], timestamptz) to service_role;

-- The pg-boss statement, built from small named parts (one builder per probe and per lateral
-- join, each returning SQL text), composed by _pgboss_sample_sql() at the end of this section.
-- Every name and value enters the text once, through format() (%I, %L), where it belongs: no
-- part is edited after it is built. The parts share two arguments: p_job, the relation the probes
-- read (quoted: <schema>.job, or one of its partitions), and p_queue, the SQL expression of the
-- queue they read (b.name, the statement's queue row, or one queue's name as a literal).

create function queue_health._pgboss_sql_ready(p_job text, p_queue text, p_v12 boolean)
returns text
immutable
set search_path = ''
language plpgsql
as $$
begin
  -- The ready count (a _pgboss_count: how many, and the smallest start_after among them), exact
  -- up to $2 (exact_count_limit) rows through pg-boss's indexes (index-only). v10/v11: through
  -- the fetch index (name, start_after) where state < 'active'. v12's (name, state, blocked,
  -- start_after) index has the predicate state in (created, retry, active, failed), which the
  -- planner cannot prove from state < 'active' (an enum range): there, name the two states so
  -- that index is usable.
  if p_v12 then
    return format($f$(select row(count(*), min(c.start_after))::queue_health._pgboss_count
        from (select j.start_after from %1$s j
        where j.name = %2$s and j.state in ('created', 'retry') and not j.blocked
          and j.start_after <= $1 limit $2) c)$f$, p_job, p_queue);
  end if;
  return format($f$(select row(count(*), min(c.start_after))::queue_health._pgboss_count
        from (select j.start_after from %1$s j
        where j.name = %2$s and j.state < 'active' and j.start_after <= $1 limit $2) c)$f$, p_job, p_queue);
end;
$$;
comment on function queue_health._pgboss_sql_ready(text, text, boolean) is 'Part of _pgboss_sample_sql: the probe that counts a pg-boss queue''s ready jobs (up to exact_count_limit) and their smallest start_after; p_v12 for pg-boss 12''s blocked column and index.';
revoke execute on function queue_health._pgboss_sql_ready(text, text, boolean) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_ready(text, text, boolean) to service_role;

create function queue_health._pgboss_sql_delayed(p_job text, p_queue text, p_v12 boolean)
returns text
immutable
set search_path = ''
language plpgsql
as $$
begin
  -- The delayed count, as the ready one (_pgboss_sql_ready). v12: deferred and blocked jobs, two
  -- ranges of the (name, state, blocked, start_after) index; the smallest start_after among
  -- unblocked jobs is when the next one falls due (blocked ones wait for a write that unblocks
  -- them).
  if p_v12 then
    return format($f$(select row(count(*), min(c.start_after))::queue_health._pgboss_count from (
        (select j.start_after from %1$s j where j.name = %2$s and j.state in ('created', 'retry')
           and not j.blocked and j.start_after > $1)
        union all
        (select null::timestamptz from %1$s j where j.name = %2$s and j.state in ('created', 'retry')
           and j.blocked)
        limit $2) c)$f$, p_job, p_queue);
  end if;
  return format($f$(select row(count(*), min(c.start_after))::queue_health._pgboss_count
        from (select j.start_after from %1$s j
        where j.name = %2$s and j.state < 'active' and j.start_after > $1 limit $2) c)$f$, p_job, p_queue);
end;
$$;
comment on function queue_health._pgboss_sql_delayed(text, text, boolean) is 'Part of _pgboss_sample_sql: the probe that counts a pg-boss queue''s delayed (v12: also blocked) jobs up to exact_count_limit, with the smallest start_after of the unblocked ones.';
revoke execute on function queue_health._pgboss_sql_delayed(text, text, boolean) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_delayed(text, text, boolean) to service_role;

create function queue_health._pgboss_sql_oldest(p_job text, p_queue text, p_v12 boolean)
returns text
immutable
set search_path = ''
language plpgsql
as $$
begin
  -- The oldest ready job's start_after when the ready count did not see them all: v12, the first
  -- entry per state of the (name, state, blocked, start_after) index; v10/v11, the first entry of
  -- the (name, start_after) fetch index.
  if p_v12 then
    return format($f$least(
        (select j.start_after from %1$s j where j.name = %2$s and j.state = 'created'
           and not j.blocked and j.start_after <= $1 order by j.start_after limit 1),
        (select j.start_after from %1$s j where j.name = %2$s and j.state = 'retry'
           and not j.blocked and j.start_after <= $1 order by j.start_after limit 1))$f$, p_job, p_queue);
  end if;
  return format($f$(select j.start_after from %1$s j where j.name = %2$s
        and j.state < 'active' and j.start_after <= $1 order by j.start_after limit 1)$f$, p_job, p_queue);
end;
$$;
comment on function queue_health._pgboss_sql_oldest(text, text, boolean) is 'Part of _pgboss_sample_sql: the probe that reads the start_after of a pg-boss queue''s oldest ready job from the first entries of its index.';
revoke execute on function queue_health._pgboss_sql_oldest(text, text, boolean) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_oldest(text, text, boolean) to service_role;

create function queue_health._pgboss_sql_cache(p_layout jsonb, p_part text)
returns text
immutable
set search_path = ''
language plpgsql
as $$
begin
  -- pg-boss 11+ caches counts per queue in its queue row (b; its monitor refreshes them about
  -- every minute). p_part: 'age' (seconds since monitor_on), 'fresh' (no older than $3,
  -- pgboss_cache_max_age), or the cached value of the gauge 'ready', 'delayed' or 'in_flight'.
  -- Without a cache (v10): null, and never fresh.
  if not p_layout ? 'queue.monitor_on' then
    return case p_part when 'age' then 'null::numeric' when 'fresh' then 'false' else 'null::bigint' end;
  end if;
  if p_part not in ('age', 'fresh', 'ready', 'delayed', 'in_flight') then
    raise exception 'unknown part of the pg-boss counts cache: %', p_part;
  end if;
  return case p_part
    when 'age' then 'extract(epoch from $1 - b.monitor_on)'
    when 'fresh' then '(b.monitor_on is not null and extract(epoch from $1 - b.monitor_on) <= extract(epoch from $3))'
    when 'ready' then case when p_layout ? 'queue.ready_count' then 'b.ready_count::bigint'
      else 'b.queued_count::bigint - b.deferred_count::bigint' end
    when 'delayed' then 'b.deferred_count::bigint'
      || case when p_layout ? 'queue.blocked_count' then ' + coalesce(b.blocked_count, 0)::bigint' else '' end
    else 'b.active_count::bigint' end;
end;
$$;
comment on function queue_health._pgboss_sql_cache(jsonb, text) is 'Part of _pgboss_sample_sql: an expression over pg-boss''s counts cache in its queue row (p_part: age, fresh, ready, delayed or in_flight), for the schema''s layout; null (never fresh) without one (v10).';
revoke execute on function queue_health._pgboss_sql_cache(jsonb, text) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_cache(jsonb, text) to service_role;

create function queue_health._pgboss_sql_in_flight(p_job text, p_queue text, p_layout jsonb)
returns text
immutable
set search_path = ''
language plpgsql
as $$
declare
  v_count text := format($f$(select count(*) from (select 1 from %1$s j
      where j.name = %2$s and j.state = 'active' limit $2) c)$f$, p_job, p_queue);
begin
  -- The in-flight (active) count, exact up to $2 rows. v11 has no index on state: finding its
  -- active jobs scans the queue's retained jobs, so while the cache is fresh, take active_count
  -- from it whatever its size (the count is then null).
  if p_layout ? 'queue.monitor_on' and not p_layout ? 'job.blocked' then
    return format('case when %s then null else %s end',
      queue_health._pgboss_sql_cache(p_layout, 'fresh'), v_count);
  end if;
  return v_count;
end;
$$;
comment on function queue_health._pgboss_sql_in_flight(text, text, jsonb) is 'Part of _pgboss_sample_sql: the probe that counts a pg-boss queue''s active jobs up to exact_count_limit (v11: not while its counts cache is fresh).';
revoke execute on function queue_health._pgboss_sql_in_flight(text, text, jsonb) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_in_flight(text, text, jsonb) to service_role;

create function queue_health._pgboss_sql_estimate(p_layout jsonb, p_statistics boolean)
returns text
immutable
set search_path = ''
language plpgsql
as $$
declare
  -- The table (partition of job) that holds the queue's jobs, whose statistics st has.
  v_rel text := case when p_layout ? 'queue.table_name' then 'b.table_name::text'
    when p_layout ? 'queue.partition_name' then 'b.partition_name::text' else 'null::text' end;
begin
  -- The table statistics' estimate of the queue's {ready, delayed, in flight} (st, see
  -- _pgboss_sql_statistics). Without p_statistics the statement has no st and the estimate is
  -- null: a gauge counted to the bound without a fresh cache is then reported at the bound with
  -- 'statistics' in cursor.counts, and _sample_pgboss() runs the full statement instead.
  if not p_statistics then
    return 'null::float8[]';
  end if;
  return format($f$(select array[q.n * st.f_ready, q.n * st.f_delayed, q.n * st.f_active]
                from st cross join lateral (select st.rows_now
                  * coalesce(st.name_freqs[array_position(st.names, b.name::text)], st.name_other) as n) q
                where st.rel = %s)$f$, v_rel);
end;
$$;
comment on function queue_health._pgboss_sql_estimate(jsonb, boolean) is 'Part of _pgboss_sample_sql: the table statistics'' estimate of a pg-boss queue''s {ready, delayed, in flight} (from st), or null without p_statistics.';
revoke execute on function queue_health._pgboss_sql_estimate(jsonb, boolean) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_estimate(jsonb, boolean) to service_role;

create function queue_health._pgboss_sql_big(p_gauge text)
returns text
immutable
set search_path = ''
language plpgsql
as $$
begin
  -- The gauge p_gauge was estimated (cache or statistics, not counted exactly) at the previous
  -- snapshot (r.cursor), at no less than twice the bound (the values are in the cursor from v2
  -- on): the first half of the big-queue shortcut (see _pgboss_sql_lateral_skip).
  return format($f$case when $2 > 0 and r.cursor -> 'counts' ->> %1$L in ('cache', 'statistics')
          and jsonb_typeof(r.cursor -> %1$L) = 'number'
        then (r.cursor ->> %1$L)::numeric >= 2 * $2 else false end$f$, p_gauge);
end;
$$;
comment on function queue_health._pgboss_sql_big(text) is 'Part of _pgboss_sample_sql: whether the gauge p_gauge (ready, delayed or in_flight) was estimated at twice exact_count_limit or more at the queue''s previous snapshot.';
revoke execute on function queue_health._pgboss_sql_big(text) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_big(text) to service_role;

create function queue_health._pgboss_sql_window_indexed(p_job text, p_queue text)
returns text
immutable
set search_path = ''
language plpgsql
as $$
begin
  -- v12 (a _pgboss_window): created since the previous snapshot, the newest $6
  -- (window_read_limit) through (name, created_on); finished since then, the newest $6 through
  -- (name, completed_on); retry attempts started since then (pg-boss bumps retry_count and stamps
  -- started_on each time it hands out a job that had been started before).
  return format($f$(select row(e.n, e.first, f.n, f.completed, f.failed, f.dead, f.first,
          f.wait, f.run, l.n + f.retried, l.full or f.full)::queue_health._pgboss_window
      from (select count(*) as n, min(s.created_on) as first
            from (select j.created_on from %1$s j
                  where j.name = %2$s and j.created_on > p.prev_at and j.created_on <= $1
                  order by j.created_on desc limit $6) s) e,
           -- Finished in the window (completed, failed, and cancelled, which also sets
           -- completed_on), the newest $6, read once for the counts, the percentiles and the
           -- retry attempts among them (state, dead_letter, retry_count are heap columns). The
           -- percentiles sort date_part's float8: extract's numeric is slower to sort.
           (select count(*) as n,
              count(*) filter (where s.state = 'completed') as completed,
              count(*) filter (where s.state = 'failed') as failed,
              count(*) filter (where s.state = 'failed' and s.dead_letter is not null
                                 and s.dead_letter <> s.name) as dead,
              min(s.completed_on) as first,
              percentile_cont(array[0.5, 0.95]) within group (order by pg_catalog.date_part('epoch', s.started_on - s.created_on) * 1000)
                filter (where s.started_on is not null and s.state in ('completed', 'failed')) as wait,
              percentile_cont(array[0.5, 0.95]) within group (order by pg_catalog.date_part('epoch', s.completed_on - s.started_on) * 1000)
                filter (where s.started_on is not null and s.state in ('completed', 'failed')) as run,
              count(*) filter (where s.retry_count > 0 and s.started_on > p.prev_at
                                 and s.started_on <= $1) as retried,
              count(*) >= $6 as full
            from (select j.name, j.state, j.created_on, j.started_on, j.completed_on, j.dead_letter,
                         j.retry_count
                  from %1$s j
                  where j.name = %2$s and j.completed_on > p.prev_at and j.completed_on <= $1
                  order by j.completed_on desc limit $6) s) f,
           -- Retry attempts started in the window: among the jobs finished in it (above) and the
           -- queue's live jobs (active, retry), of which at most least($2, 1000) are read (heap
           -- rows: retry_count and started_on are in no index; the live jobs grow with the
           -- backlog, so their unindexed read has the smaller, fixed budget). More than were read
           -- (of either): a lower bound, flagged in cursor.capped. When in_flight was not counted
           -- (k.skip_in_flight: at least twice $2 active jobs, so the read would stop at its
           -- budget and flag the count anyway), the live jobs are not read at all (a one-time
           -- filter): only the finished ones count, and retried is flagged as capped.
           (select count(*) filter (where s1.retry_count > 0 and s1.started_on > p.prev_at
                                      and s1.started_on <= $1) as n,
                   count(*) >= least($2, 1000) or k.skip_in_flight as full
              from (select j.retry_count, j.started_on from %1$s j
                    where j.name = %2$s and j.state in ('active', 'retry')
                      and not k.skip_in_flight limit least($2, 1000)) s1) l)$f$, p_job, p_queue);
end;
$$;
comment on function queue_health._pgboss_sql_window_indexed(text, text) is 'Part of _pgboss_sample_sql: what a pg-boss 12 queue did since its previous snapshot (created, finished, percentiles, retried), each read through its (name, created_on) or (name, completed_on) index up to window_read_limit rows.';
revoke execute on function queue_health._pgboss_sql_window_indexed(text, text) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_window_indexed(text, text) to service_role;

create function queue_health._pgboss_sql_window_scan(p_job text, p_queue text)
returns text
immutable
set search_path = ''
language plpgsql
as $$
begin
  -- v10/v11 (a _pgboss_window): no index on the timestamps, so any of these counts scans the
  -- queue's jobs (v10: its partition; v11: its rows of job_common by the (name, id) key). Do it
  -- once, exactly.
  return format($f$(select row(
          count(*) filter (where j.created_on > p.prev_at and j.created_on <= $1),
          null, null,
          count(*) filter (where j.state = 'completed' and j.completed_on > p.prev_at and j.completed_on <= $1),
          count(*) filter (where j.state = 'failed' and j.completed_on > p.prev_at and j.completed_on <= $1),
          count(*) filter (where j.state = 'failed' and j.completed_on > p.prev_at and j.completed_on <= $1
                             and j.dead_letter is not null and j.dead_letter <> j.name),
          null,
          percentile_cont(array[0.5, 0.95]) within group (order by pg_catalog.date_part('epoch', j.started_on - j.created_on) * 1000)
            filter (where j.state in ('completed', 'failed') and j.completed_on > p.prev_at
                      and j.completed_on <= $1 and j.started_on is not null),
          percentile_cont(array[0.5, 0.95]) within group (order by pg_catalog.date_part('epoch', j.completed_on - j.started_on) * 1000)
            filter (where j.state in ('completed', 'failed') and j.completed_on > p.prev_at
                      and j.completed_on <= $1 and j.started_on is not null),
          count(*) filter (where j.retry_count > 0 and j.started_on > p.prev_at and j.started_on <= $1),
          false
        )::queue_health._pgboss_window
      from %1$s j
      where j.name = %2$s
        and (j.created_on > p.prev_at or j.completed_on > p.prev_at or j.started_on > p.prev_at))$f$, p_job, p_queue);
end;
$$;
comment on function queue_health._pgboss_sql_window_scan(text, text) is 'Part of _pgboss_sample_sql: what a pg-boss 10 or 11 queue did since its previous snapshot, in one exact scan of its jobs.';
revoke execute on function queue_health._pgboss_sql_window_scan(text, text) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_window_scan(text, text) to service_role;

create function queue_health._pgboss_sql_capped(p_layout jsonb)
returns text
immutable
set search_path = ''
language plpgsql
as $$
begin
  -- v12 (_pgboss_sql_window_indexed): above the bound, created and finished are extrapolated from
  -- the time the counted rows span, retried stays at the bound; each listed in cursor.capped.
  -- v10/v11 count exactly: nothing is capped.
  if p_layout ?& array['index.created_on', 'index.completed_on'] then
    return $f$pg_catalog.array_remove(array[
        case when (x.w).enqueued >= $6 and (x.w).enqueued_first < $1 then 'enqueued' end,
        case when (x.w).finished >= $6 and (x.w).finished_first < $1 then 'finished' end,
        case when (x.w).retried >= $6 or (x.w).retried_capped then 'retried' end], null)$f$;
  end if;
  return $f$'{}'::text[]$f$;
end;
$$;
comment on function queue_health._pgboss_sql_capped(jsonb) is 'Part of _pgboss_sample_sql: the names of the counts since the previous snapshot that reached window_read_limit (cursor.capped).';
revoke execute on function queue_health._pgboss_sql_capped(jsonb) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_capped(jsonb) to service_role;

create function queue_health._pgboss_sql_fingerprint(p_schema text, p_table text)
returns text
immutable
set search_path = ''
language plpgsql
as $$
begin
  -- The statistics fingerprint of the queue's table, as pgmq's (_sample_pgmq()): relfilenode and
  -- the count of rows inserted, updated and deleted, this session's not yet reported ones
  -- included. The table's name: p_table's, a constant (the fingerprint is then computed once for
  -- all its queues), else each queue's.
  return format($f$(select c.relfilenode::text || ':' || (
          pg_catalog.pg_stat_get_tuples_inserted(c.oid) + pg_catalog.pg_stat_get_tuples_updated(c.oid)
        + pg_catalog.pg_stat_get_tuples_deleted(c.oid)
        + pg_catalog.pg_stat_get_xact_tuples_inserted(c.oid) + pg_catalog.pg_stat_get_xact_tuples_updated(c.oid)
        + pg_catalog.pg_stat_get_xact_tuples_deleted(c.oid))::text
      from pg_catalog.pg_class c
      where c.relnamespace = pg_catalog.to_regnamespace(pg_catalog.quote_ident(%2$L))
        and c.relname = %1$s and c.relkind = 'r')$f$,
    case when p_table is null then 'b.table_name::text' else format('%L', p_table) end, p_schema);
end;
$$;
comment on function queue_health._pgboss_sql_fingerprint(text, text) is 'Part of _pgboss_sample_sql: the statistics fingerprint (relfilenode and row change counts) of the table that holds a pg-boss queue''s jobs.';
revoke execute on function queue_health._pgboss_sql_fingerprint(text, text) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_fingerprint(text, text) to service_role;

create function queue_health._pgboss_sql_unchanged(p_job text, p_queue text)
returns text
immutable
set search_path = ''
language plpgsql
as $$
begin
  -- Unchanged since the queue was last read (docs/metrics.md): the same statistics fingerprint of
  -- the queue's table (f.fingerprint), no job created or finished since (immediate, unlike the
  -- statistics, which a session publishes up to ~10 s late), no delayed job due since, and read
  -- less than $7 ago (_reread_interval()). Such a queue repeats its previous gauges without a
  -- count; its counts since then are read when it is next read (the window starts at
  -- cursor.read_at), so a write the statistics had not shown yet is counted late, not lost.
  -- $7 = 0: every queue is read.
  return format($f$($7 > interval '0' and jsonb_typeof(r.cursor) = 'object'
        and r.cursor ->> 'v' = '2'
        and r.cursor ?& array['read_at', 'fingerprint', 'oldest', 'next_due', 'counts']
        and jsonb_typeof(r.cursor -> 'ready') = 'number'
        and jsonb_typeof(r.cursor -> 'delayed') = 'number'
        and jsonb_typeof(r.cursor -> 'in_flight') = 'number'
        and $1 >= (r.cursor ->> 'at')::timestamptz
        and $1 - (r.cursor ->> 'read_at')::timestamptz < $7
        and coalesce((r.cursor ->> 'next_due')::timestamptz, 'infinity') > $1
        and r.cursor ->> 'fingerprint' = f.fingerprint
        and not exists (select 1 from %1$s j where j.name = %2$s
                          and j.created_on > (r.cursor ->> 'read_at')::timestamptz)
        and not exists (select 1 from %1$s j where j.name = %2$s
                          and j.completed_on > (r.cursor ->> 'read_at')::timestamptz))$f$, p_job, p_queue);
end;
$$;
comment on function queue_health._pgboss_sql_unchanged(text, text) is 'Part of _pgboss_sample_sql: whether a pg-boss 12 queue is unchanged since it was last read (fingerprint, no job created or finished, none due, re-read interval not reached).';
revoke execute on function queue_health._pgboss_sql_unchanged(text, text) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_unchanged(text, text) to service_role;

create function queue_health._pgboss_sql_statistics(p_schema text)
returns text
immutable
set search_path = ''
language plpgsql
as $$
begin
  -- The statement's st: table statistics per partition of <schema>.job (read only for a queue
  -- above the bound without a fresh cache, see _pgboss_sql_estimate). st weighs on planning
  -- (pg_stats is a view over five catalogs), most of all in a new session, hence p_statistics.
  return format($st$with st as materialized (
      -- Table statistics (ANALYZE / autovacuum) per partition of job, the planner's arithmetic
      -- without planning: rows now (reltuples scaled to the current size), each queue name's
      -- share (pg_stats most common values, else an equal share of the rest), and the shares of
      -- the states, of blocked, and of start_after <= $1 (most common values and histogram).
      -- Read only when some queue is above the bound without a fresh cache.
      select c.relname::text as rel,
        case when c.reltuples >= 0 then c.reltuples::float8 * case when c.relpages > 0
          then pg_catalog.pg_relation_size(c.oid)::float8
               / (c.relpages::float8 * pg_catalog.current_setting('block_size')::float8)
          else 1 end end as rows_now,
        ps.name_vals::text[] as names,
        ps.name_freqs,
        case when ps.has_name then
          greatest(0, 1 - coalesce((select sum(f) from unnest(ps.name_freqs) f), 0) - ps.name_null_frac)
          / greatest(case when ps.name_n_distinct < 0 then -ps.name_n_distinct * greatest(c.reltuples, 0)
                          else ps.name_n_distinct end
                     - coalesce(cardinality(ps.name_freqs), 0), 1) end as name_other,
        w.f_waiting * (1 - bl.f) * sa.f_le as f_ready,
        w.f_waiting * ((1 - bl.f) * (1 - sa.f_le) + bl.f) as f_delayed,
        w.f_active
      from pg_catalog.pg_inherits i
      join pg_catalog.pg_class c on c.oid = i.inhrelid
      cross join lateral (
        -- The four columns' statistics in one read of pg_stats (a view over five catalogs: read
        -- once, it is planned once, not four times).
        select bool_or(s.attname = 'name') as has_name,
          max(s.most_common_vals::text) filter (where s.attname = 'name') as name_vals,
          max(s.most_common_freqs) filter (where s.attname = 'name') as name_freqs,
          max(s.null_frac) filter (where s.attname = 'name') as name_null_frac,
          max(s.n_distinct) filter (where s.attname = 'name') as name_n_distinct,
          bool_or(s.attname = 'state') as has_state,
          max(s.most_common_vals::text) filter (where s.attname = 'state') as state_vals,
          max(s.most_common_freqs) filter (where s.attname = 'state') as state_freqs,
          max(s.most_common_vals::text) filter (where s.attname = 'blocked') as blocked_vals,
          max(s.most_common_freqs) filter (where s.attname = 'blocked') as blocked_freqs,
          bool_or(s.attname = 'start_after') as has_start,
          max(s.most_common_vals::text) filter (where s.attname = 'start_after') as start_vals,
          max(s.most_common_freqs) filter (where s.attname = 'start_after') as start_freqs,
          max(s.null_frac) filter (where s.attname = 'start_after') as start_null_frac,
          max(s.histogram_bounds::text) filter (where s.attname = 'start_after') as start_bounds
        from pg_catalog.pg_stats s
        where s.schemaname = %2$L and s.tablename = c.relname and not s.inherited
          and s.attname in ('name', 'state', 'blocked', 'start_after')) ps
      cross join lateral (
        select case when ps.has_state then coalesce(sum(u.f) filter (where u.v in ('created', 'retry')), 0) end,
               case when ps.has_state then coalesce(sum(u.f) filter (where u.v = 'active'), 0) end
        from unnest(ps.state_vals::text[], ps.state_freqs) u(v, f)) w(f_waiting, f_active)
      cross join lateral (
        select coalesce(sum(u.f) filter (where u.v), 0)
        from unnest(ps.blocked_vals::boolean[], ps.blocked_freqs) u(v, f)) bl(f)
      cross join lateral (
        select case when ps.has_start then
          coalesce(sum(u.f) filter (where u.v <= $1), 0)
          + greatest(0, 1 - coalesce(sum(u.f), 0) - ps.start_null_frac)
            * coalesce(queue_health._histogram_fraction_le(ps.start_bounds::timestamptz[], $1), 0.5) end
        from unnest(ps.start_vals::timestamptz[], ps.start_freqs) u(v, f)) sa(f_le)
      where i.inhparent = %1$L::regclass
    )$st$, format('%I.job', p_schema), p_schema);
end;
$$;
comment on function queue_health._pgboss_sql_statistics(text) is 'Part of _pgboss_sample_sql: the with clause st, the table statistics (rows, queue name shares, state, blocked and start_after shares) of each partition of a pg-boss schema''s job table.';
revoke execute on function queue_health._pgboss_sql_statistics(text) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_statistics(text) to service_role;

create function queue_health._pgboss_sql_select(p_schema text, p_layout jsonb)
returns text
immutable
set search_path = ''
language plpgsql
as $$
begin
  -- The statement's select list: one queue_health.sample per queue, from the gauges reported (v),
  -- the counts since the previous snapshot (x, x2) and the next cursor.
  return format($f$select 'pgboss'::text, %1$L::text, b.name::text,
      v.ready, v.in_flight, v.delayed, v.ready + v.in_flight + v.delayed, v.estimated,
      coalesce(greatest(extract(epoch from $1 - o.oldest)::float8, 0), 0),
      case when x.prev_at is null or u.unchanged then 0::bigint
           when (x.w).enqueued >= $6 and (x.w).enqueued_first < $1
             then greatest((x.w).enqueued, round((x.w).enqueued * extract(epoch from $1 - x.prev_at)
                            / extract(epoch from $1 - (x.w).enqueued_first))::bigint)
           else (x.w).enqueued end,
      case when x.prev_at is null or u.unchanged then 0::bigint else round((x.w).completed * x2.scale)::bigint end,
      case when x.prev_at is null or u.unchanged then 0::bigint else round((x.w).failed * x2.scale)::bigint end,
      case when x.prev_at is null or u.unchanged then 0::bigint else (x.w).retried end,
      case when x.prev_at is null or u.unchanged then 0::bigint else round((x.w).dead_lettered * x2.scale)::bigint end,
      (x.w).wait_ms[1], (x.w).wait_ms[2], (x.w).run_ms[1], (x.w).run_ms[2],
      -- The queue's own time: from its first step (q) to here (this row's projection).
      (extract(epoch from clock_timestamp() - q.t0) * 1000)::float8,
      -- v2 adds the gauges' values (read back by the next snapshot, p below) and which gauges
      -- were not counted (k below); read_at, fingerprint, oldest (start_after of the oldest
      -- ready job) and next_due (when the next delayed job falls due; $1 when not known: more
      -- than the bound) are for the unchanged check (u below). An unchanged queue's cursor is
      -- its previous one at this snapshot's time.
      case when u.unchanged then r.cursor || jsonb_build_object('at', $1) else
      jsonb_build_object('v', 2, 'at', $1, 'read_at', $1, 'fingerprint', f.fingerprint,
        'oldest', o.oldest,
        'next_due', case when k.skip_delayed or (x.dly).n >= $2 then $1 else (x.dly).first end,
        'counts', jsonb_build_object('ready', g.ready_src, 'delayed', g.delayed_src, 'in_flight', g.in_flight_src),
        'ready', g.ready, 'delayed', g.delayed, 'in_flight', g.in_flight,
        'skipped', to_jsonb(pg_catalog.array_remove(array[
          case when k.skip_ready then 'ready' end,
          case when k.skip_delayed then 'delayed' end,
          case when k.skip_in_flight then 'in_flight' end], null)),
        'cache_age_s', k.cache_age,
        'capped', to_jsonb(case when x.prev_at is null then '{}'::text[] else %2$s end)) end,
      null::text$f$, p_schema, queue_health._pgboss_sql_capped(p_layout));
end;
$$;
comment on function queue_health._pgboss_sql_select(text, jsonb) is 'Part of _pgboss_sample_sql: the select list (one queue_health.sample per pg-boss queue, with its next cursor).';
revoke execute on function queue_health._pgboss_sql_select(text, jsonb) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_select(text, jsonb) to service_role;

create function queue_health._pgboss_sql_from(p_schema text)
returns text
immutable
set search_path = ''
language plpgsql
as $$
begin
  -- The queues (b, <schema>.queue), their registry rows (r), each queue's start (q) and what the
  -- previous snapshot says (p).
  return format($f$from %1$I.queue b
    left join queue_health.queue r
      on r.source = 'pgboss' and r.source_schema = %1$L and r.queue_name = b.name
    cross join lateral (
      -- The queue's start, evaluated per queue, in order. b.name is part of it so that the
      -- planner's cache of a lateral subquery's results (Memoize, keyed by what it refers to)
      -- never hands one queue's start to another.
      select clock_timestamp() as t0, b.name
      offset 0
    ) q
    cross join lateral (
      -- From the previous snapshot (the registry's cursor), once per queue (offset 0: not inlined
      -- into every probe's filter, where it would be evaluated per row): its time, and for each
      -- gauge whether it was estimated (not exact) at no less than twice the bound there.
      -- Cursors before v2 hold no values: every gauge is counted.
      select
        case when jsonb_typeof(r.cursor) = 'object'
          then coalesce((r.cursor ->> 'read_at')::timestamptz,
                        ((jsonb_build_object('at', r.last_seen_at) || r.cursor) ->> 'at')::timestamptz)
          end as prev_at,
        %2$s as big_ready,
        %3$s as big_delayed,
        %4$s as big_in_flight
      offset 0
    ) p$f$, p_schema, queue_health._pgboss_sql_big('ready'),
    queue_health._pgboss_sql_big('delayed'), queue_health._pgboss_sql_big('in_flight'));
end;
$$;
comment on function queue_health._pgboss_sql_from(text) is 'Part of _pgboss_sample_sql: the from clause (a pg-boss schema''s queues, their registry rows and previous snapshot).';
revoke execute on function queue_health._pgboss_sql_from(text) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_from(text) to service_role;

create function queue_health._pgboss_sql_lateral_unchanged(
  p_schema text, p_layout jsonb, p_job text, p_queue text, p_table text)
returns text
immutable
set search_path = ''
language plpgsql
as $$
declare
  v_fingerprint text := 'null::text';
  v_unchanged text := 'false';
begin
  -- f and u: the unchanged check, for v12 only, whose (name, created_on) and (name,
  -- completed_on) indexes make its two probes cheap, and whose queue rows name their table.
  if p_layout ?& array['job.blocked', 'queue.table_name', 'index.created_on', 'index.completed_on'] then
    v_fingerprint := queue_health._pgboss_sql_fingerprint(p_schema, p_table);
    v_unchanged := queue_health._pgboss_sql_unchanged(p_job, p_queue);
  end if;
  return format($f$cross join lateral (
      -- The statistics fingerprint of the queue's table, and whether the queue is unchanged
      -- since it was last read (_pgboss_sql_unchanged): then no probe below runs.
      select %1$s as fingerprint
      offset 0
    ) f
    cross join lateral (
      select %2$s as unchanged
      offset 0
    ) u$f$, v_fingerprint, v_unchanged);
end;
$$;
comment on function queue_health._pgboss_sql_lateral_unchanged(text, jsonb, text, text, text) is 'Part of _pgboss_sample_sql: the lateral joins f and u (the queue''s table fingerprint and whether the queue is unchanged since it was last read; never for v10/v11).';
revoke execute on function queue_health._pgboss_sql_lateral_unchanged(text, jsonb, text, text, text) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_lateral_unchanged(text, jsonb, text, text, text) to service_role;

create function queue_health._pgboss_sql_lateral_skip(p_layout jsonb, p_statistics boolean)
returns text
immutable
set search_path = ''
language plpgsql
as $$
begin
  -- k: the big-queue shortcut (which gauges are not counted).
  return format($f$cross join lateral (
      -- The big-queue shortcut: a gauge far above the bound at the previous snapshot whose
      -- estimate now (pg-boss's fresh cache, else the table statistics) still says at least twice
      -- the bound is not counted; the estimate is its value (g). A queue that has shrunk since is
      -- counted as any other. The statistics are read here only for such a queue.
      select c.cache_age, c.cache_fresh, e0.est,
        not u.unchanged and p.big_ready and coalesce(case when c.cache_fresh then %1$s else e0.est[1] end >= 2 * $2, false) as skip_ready,
        not u.unchanged and p.big_delayed and coalesce(case when c.cache_fresh then %2$s else e0.est[2] end >= 2 * $2, false) as skip_delayed,
        not u.unchanged and p.big_in_flight and coalesce(case when c.cache_fresh then %3$s else e0.est[3] end >= 2 * $2, false) as skip_in_flight
      from (select %4$s as cache_age, %5$s as cache_fresh) c
      cross join lateral (
        select case when not c.cache_fresh and not u.unchanged and (p.big_ready or p.big_delayed or p.big_in_flight)
          then %6$s end as est
        offset 0
      ) e0
      offset 0
    ) k$f$,
    queue_health._pgboss_sql_cache(p_layout, 'ready'), queue_health._pgboss_sql_cache(p_layout, 'delayed'),
    queue_health._pgboss_sql_cache(p_layout, 'in_flight'), queue_health._pgboss_sql_cache(p_layout, 'age'),
    queue_health._pgboss_sql_cache(p_layout, 'fresh'), queue_health._pgboss_sql_estimate(p_layout, p_statistics));
end;
$$;
comment on function queue_health._pgboss_sql_lateral_skip(jsonb, boolean) is 'Part of _pgboss_sample_sql: the lateral join k (the big-queue shortcut: gauges far above exact_count_limit, by the cache or the statistics, are not counted).';
revoke execute on function queue_health._pgboss_sql_lateral_skip(jsonb, boolean) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_lateral_skip(jsonb, boolean) to service_role;

create function queue_health._pgboss_sql_lateral_probes(p_layout jsonb, p_job text, p_queue text)
returns text
immutable
set search_path = ''
language plpgsql
as $$
declare
  v_v12 boolean := p_layout ? 'job.blocked';
begin
  -- x and x2: the probes, and the scale of the finished counts above the bound (v12).
  return format($f$cross join lateral (
      -- The probes, each evaluated once per queue (offset 0); a skipped gauge's is not run (null).
      select p.prev_at, k.cache_fresh,
        case when k.skip_ready or u.unchanged then null else %1$s end as rdy,
        case when k.skip_delayed or u.unchanged then null else %2$s end as dly,
        case when k.skip_in_flight or u.unchanged then null else %3$s end as in_flight_n,
        case when p.prev_at is null or u.unchanged then null else %4$s end as w
      offset 0
    ) x
    cross join lateral (
      select case when (x.w).finished >= $6 and (x.w).finished_first < $1
        then greatest(1, extract(epoch from $1 - x.prev_at) / extract(epoch from $1 - (x.w).finished_first))
        else 1 end as scale
    ) x2$f$,
    queue_health._pgboss_sql_ready(p_job, p_queue, v_v12),
    queue_health._pgboss_sql_delayed(p_job, p_queue, v_v12),
    queue_health._pgboss_sql_in_flight(p_job, p_queue, p_layout),
    case when p_layout ?& array['index.created_on', 'index.completed_on']
      then queue_health._pgboss_sql_window_indexed(p_job, p_queue)
      else queue_health._pgboss_sql_window_scan(p_job, p_queue) end);
end;
$$;
comment on function queue_health._pgboss_sql_lateral_probes(jsonb, text, text) is 'Part of _pgboss_sample_sql: the lateral joins x and x2 (each probe of a pg-boss queue, run once per queue unless skipped).';
revoke execute on function queue_health._pgboss_sql_lateral_probes(jsonb, text, text) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_lateral_probes(jsonb, text, text) to service_role;

create function queue_health._pgboss_sql_lateral_gauges(p_layout jsonb, p_statistics boolean)
returns text
immutable
set search_path = ''
language plpgsql
as $$
begin
  -- n, e and g: the counts, the estimate above the bound, and the gauges with their source
  -- (exact, cache or statistics).
  return format($f$cross join lateral (
      -- The counts as the gauges see them: a skipped gauge as if it had reached the bound (its
      -- estimate is then at least twice that). in_flight null without a skip: v11's fresh cache.
      select case when k.skip_ready then $2 else (x.rdy).n end as ready_n,
        case when k.skip_delayed then $2 else (x.dly).n end as delayed_n,
        case when k.skip_in_flight then $2 else x.in_flight_n end as in_flight_n
    ) n
    cross join lateral (
      select coalesce(k.est, case when not x.cache_fresh and (n.ready_n >= $2 or n.delayed_n >= $2 or n.in_flight_n >= $2)
        then %1$s end) as est
      offset 0
    ) e
    cross join lateral (
      select
        case when n.ready_n < $2 then n.ready_n
             when x.cache_fresh then greatest($2, %2$s)
             else greatest($2, round(e.est[1])::bigint) end as ready,
        case when n.ready_n < $2 then 'exact' when x.cache_fresh then 'cache' else 'statistics' end as ready_src,
        case when n.delayed_n < $2 then n.delayed_n
             when x.cache_fresh then greatest($2, %3$s)
             else greatest($2, round(e.est[2])::bigint) end as delayed,
        case when n.delayed_n < $2 then 'exact' when x.cache_fresh then 'cache' else 'statistics' end as delayed_src,
        case when n.in_flight_n is null then %4$s
             when n.in_flight_n < $2 then n.in_flight_n
             when x.cache_fresh then greatest($2, %4$s)
             else greatest($2, round(e.est[3])::bigint) end as in_flight,
        case when n.in_flight_n is null then 'cache' when n.in_flight_n < $2 then 'exact'
             when x.cache_fresh then 'cache' else 'statistics' end as in_flight_src
    ) g$f$, queue_health._pgboss_sql_estimate(p_layout, p_statistics),
    queue_health._pgboss_sql_cache(p_layout, 'ready'), queue_health._pgboss_sql_cache(p_layout, 'delayed'),
    queue_health._pgboss_sql_cache(p_layout, 'in_flight'));
end;
$$;
comment on function queue_health._pgboss_sql_lateral_gauges(jsonb, boolean) is 'Part of _pgboss_sample_sql: the lateral joins n, e and g (each gauge exact up to exact_count_limit, else from the fresh cache or the table statistics).';
revoke execute on function queue_health._pgboss_sql_lateral_gauges(jsonb, boolean) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_lateral_gauges(jsonb, boolean) to service_role;

create function queue_health._pgboss_sql_lateral_reported(p_layout jsonb, p_job text, p_queue text)
returns text
immutable
set search_path = ''
language plpgsql
as $$
begin
  -- o and v: the oldest ready job and the gauges reported (an unchanged queue's from its cursor).
  return format($f$cross join lateral (
      -- The oldest ready job's start_after: the ready count's smallest when it saw every ready
      -- job; otherwise (more than the bound, or not counted at all: n null) the first entry of
      -- the index; an unchanged queue's from its cursor. Evaluated once (offset 0).
      select case when u.unchanged then (r.cursor ->> 'oldest')::timestamptz
                  when (x.rdy).n < $2 then (x.rdy).first else %1$s end as oldest
      offset 0
    ) o
    cross join lateral (
      -- The gauges reported: an unchanged queue's are its previous ones.
      select case when u.unchanged then (r.cursor ->> 'ready')::bigint else g.ready end as ready,
        case when u.unchanged then (r.cursor ->> 'in_flight')::bigint else g.in_flight end as in_flight,
        case when u.unchanged then (r.cursor ->> 'delayed')::bigint else g.delayed end as delayed,
        case when u.unchanged
          then exists (select 1 from jsonb_each_text(r.cursor -> 'counts') c where c.value <> 'exact')
          else (g.ready_src <> 'exact' or g.delayed_src <> 'exact' or g.in_flight_src <> 'exact') end as estimated
    ) v$f$,
    queue_health._pgboss_sql_oldest(p_job, p_queue, p_layout ? 'job.blocked'));
end;
$$;
comment on function queue_health._pgboss_sql_lateral_reported(jsonb, text, text) is 'Part of _pgboss_sample_sql: the lateral joins o and v (the oldest ready job, and the gauges reported: an unchanged queue''s previous ones).';
revoke execute on function queue_health._pgboss_sql_lateral_reported(jsonb, text, text) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_lateral_reported(jsonb, text, text) to service_role;

create function queue_health._pgboss_sql_where(p_table text, p_other_than text, p_queue text)
returns text
immutable
set search_path = ''
language plpgsql
as $$
begin
  -- Which queues: never pg-boss's own internal ones (__pgboss__send-it, ...); those of p_table,
  -- or those not in p_other_than (the rest, through job); with p_queue, that one (the fallback):
  -- its row of <schema>.queue, by the parameter $5.
  return 'where left(b.name, 10) <> ''__pgboss__'''
    || case when p_table is not null then format(' and b.table_name::text = %L', p_table)
            when p_other_than is not null then format(' and b.table_name::text <> %L', p_other_than)
            else '' end
    || case when p_queue is not null then ' and b.name = $5::text' else '' end;
end;
$$;
comment on function queue_health._pgboss_sql_where(text, text, text) is 'Part of _pgboss_sample_sql: the where clause (the user''s queues of p_table, or not of p_other_than, or the one queue p_queue).';
revoke execute on function queue_health._pgboss_sql_where(text, text, text) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_where(text, text, text) to service_role;

create function queue_health._pgboss_sample_sql(
  p_schema text,
  p_layout jsonb,
  p_queue text default null,
  p_statistics boolean default true,
  p_table text default null,
  p_other_than text default null
)
returns text
immutable
set search_path = ''
language plpgsql
as $$
declare
  -- The probes read p_table (one partition of job, for the queues whose queue.table_name it is)
  -- when given, else job itself (run-time partition pruning picks each queue's partition). A
  -- partition planned directly costs much less than planning the partitioned job with it (the
  -- partitioned indexes' relation cache entries and the partition expansion), most of all in a
  -- new session.
  v_job text := format('%I.%I', p_schema, coalesce(p_table, 'job'));
  -- The queue each probe reads: the statement's queue row (b.name), or with p_queue that queue's
  -- name as a constant, so that the planner prunes job's partitions at plan time.
  v_queue text := case when p_queue is null then 'b.name' else format('%L', p_queue) end;
begin
  -- The statement's parameters: $1 p_now, $2 exact_count_limit, $3 pgboss_cache_max_age, $4 the
  -- schema's name (unused: the text holds it as a constant, see below; callers still pass it),
  -- $5 one queue's name (used only with p_queue), $6 window_read_limit, $7 how long an unchanged
  -- queue may go unread (_reread_interval(); 0: read every queue). b is the queue's row in
  -- <schema>.queue, r its registry row (previous cursor), f and u the unchanged check, x the
  -- queue's probes, e the estimate from the table statistics (only computed for a queue that
  -- needs it), g the gauges, v the gauges reported.
  --
  -- The schema's name is a constant (%L; $4 stays a declared parameter, unused): the statement
  -- is one schema's, and _sample_pgboss() runs it as a prepared statement with a generic plan,
  -- which would otherwise estimate the schema's queues (and their registry rows) from a
  -- parameter and join a thousand of them by nested loops (much slower than planned with the
  -- constant).
  return E'\n    '
    || case when p_statistics then E'\n    ' || queue_health._pgboss_sql_statistics(p_schema) || E'\n  ' else '' end
    || E'\n    ' || queue_health._pgboss_sql_select(p_schema, p_layout)
    || E'\n    ' || queue_health._pgboss_sql_from(p_schema)
    || E'\n    ' || queue_health._pgboss_sql_lateral_unchanged(p_schema, p_layout, v_job, v_queue, p_table)
    || E'\n    ' || queue_health._pgboss_sql_lateral_skip(p_layout, p_statistics)
    || E'\n    ' || queue_health._pgboss_sql_lateral_probes(p_layout, v_job, v_queue)
    || E'\n    ' || queue_health._pgboss_sql_lateral_gauges(p_layout, p_statistics)
    || E'\n    ' || queue_health._pgboss_sql_lateral_reported(p_layout, v_job, v_queue)
    || E'\n    ' || queue_health._pgboss_sql_where(p_table, p_other_than, p_queue)
    || E'\n    order by b.name\n  ';
end;
$$;
comment on function queue_health._pgboss_sample_sql(text, jsonb, text, boolean, text, text) is 'The one statement that samples every queue of a pg-boss schema (parameters $1 p_now, $2 exact_count_limit, $3 pgboss_cache_max_age, $4 schema (unused: the text names it), $5 the one queue (with p_queue), $6 window_read_limit, $7 re-read interval of unchanged queues, 0 to read all), built from the schema''s layout (see _pgboss_schemas); with p_queue, the statement for that queue alone (its partition pruned at plan time; pass it as $5 too); with p_table, for the queues whose queue.table_name is p_table, reading that table directly; with p_other_than, for the queues in any other table, through job.';
revoke execute on function queue_health._pgboss_sample_sql(text, jsonb, text, boolean, text, text) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sample_sql(text, jsonb, text, boolean, text, text) to service_role;

create function queue_health._sample_pgboss_queue(
  p_schema text,
  p_layout jsonb,
  p_queue_name text,
  p_now timestamptz,
  p_limit bigint,
  p_cache_max_age interval,
  p_prev jsonb,
  p_window_limit bigint
)
returns queue_health.sample
volatile
-- Runs as its caller: it reads the schema it is given, so as a security definer function it
-- would let whoever may call it read any schema's queue and job tables as the owner. Called by
-- _sample_pgboss() (security definer) for the schemas it discovered.
set search_path = ''
-- lock_timeout (500ms) is set once by _sample_pgboss() for the whole call: set here, per queue,
-- its save and restore would cost more than sampling a small queue.
language plpgsql
as $$
declare
  v_started timestamptz := clock_timestamp();
  v_sample queue_health.sample;
  v_exists boolean;
begin
  -- The schema's statement (_pgboss_sample_sql) for this queue alone: the fallback of
  -- _sample_pgboss() when the statement failed for the whole schema. Planned for this queue, so
  -- it touches only this queue's partition of job.
  execute queue_health._pgboss_sample_sql(p_schema, p_layout, p_queue_name) into v_sample
    using p_now, p_limit, p_cache_max_age, p_schema, p_queue_name, p_window_limit, interval '0';
  return v_sample; -- all null (source null) when the queue is gone
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
$$;
comment on function queue_health._sample_pgboss_queue(text, jsonb, text, timestamptz, bigint, interval, jsonb, bigint) is 'Samples one pg-boss queue with its schema''s statement (_pgboss_sample_sql). Returns a sample with error set when sampling failed, null (or a sample with source null) when the queue or its schema vanished; never raises.';
revoke execute on function queue_health._sample_pgboss_queue(text, jsonb, text, timestamptz, bigint, interval, jsonb, bigint) from public, anon, authenticated;
grant execute on function queue_health._sample_pgboss_queue(text, jsonb, text, timestamptz, bigint, interval, jsonb, bigint) to service_role;

create function queue_health._pgboss_needs_statistics(p_schema text, p_limit bigint)
returns boolean
stable
set search_path = ''
language plpgsql
as $$
begin
  -- The table statistics are read only for a gauge at the bound without a fresh pg-boss cache.
  -- While no queue of the schema had a gauge of half the bound or more at its previous snapshot
  -- (the registry's cursor), the statement is built without them, which saves most of its
  -- planning; should a gauge reach the bound anyway (a queue that grew that fast since), the
  -- full statement is run instead (_pgboss_sample_schema()), once: from then on the cursor says
  -- so.
  return exists (
    select 1 from queue_health.queue q
    where q.source = 'pgboss' and q.source_schema = p_schema and q.dropped_at is null
      and jsonb_typeof(q.cursor) = 'object'
      and (q.cursor ->> 'v' is distinct from '2'
        or coalesce(greatest(
             case when jsonb_typeof(q.cursor -> 'ready') = 'number' then (q.cursor ->> 'ready')::numeric end,
             case when jsonb_typeof(q.cursor -> 'delayed') = 'number' then (q.cursor ->> 'delayed')::numeric end,
             case when jsonb_typeof(q.cursor -> 'in_flight') = 'number' then (q.cursor ->> 'in_flight')::numeric end),
           0) * 2 >= p_limit));
end;
$$;
comment on function queue_health._pgboss_needs_statistics(text, bigint) is 'Whether the statement of the pg-boss schema p_schema needs the table statistics: some queue of it had a gauge of half of p_limit (exact_count_limit) or more at its previous snapshot, or a cursor before v2.';
revoke execute on function queue_health._pgboss_needs_statistics(text, bigint) from public, anon, authenticated;
grant execute on function queue_health._pgboss_needs_statistics(text, bigint) to service_role;

create function queue_health._pgboss_execute(
  p_schema text,
  p_sql text,
  p_prepare boolean,
  p_now timestamptz,
  p_limit bigint,
  p_max_age interval,
  p_window_limit bigint,
  p_reread interval
)
returns queue_health.sample[]
volatile
-- Runs as its caller (it runs the SQL text it is given): _sample_pgboss(), through
-- _pgboss_sample_schema(), with the statement _pgboss_sample_sql() built.
set search_path = ''
language plpgsql
as $$
declare
  v_sql text := format('select array_agg(t::queue_health.sample) from (%s) t', p_sql);
  v_rows queue_health.sample[];
  v_name text;
  v_args text;
begin
  if not p_prepare then
    execute v_sql into v_rows
      using p_now, p_limit, p_max_age, p_schema, null::text, p_window_limit, p_reread;
    return v_rows;
  end if;
  -- Prepared once per session (its text and the planner settings of _sample_pgboss() name it)
  -- with a generic plan, executed on the session's later captures: planning it costs more than
  -- it takes to run on idle queues. As for pgmq's big queues (_sample_pgmq_queue()), EXECUTE
  -- takes the parameters as literals, and a statement the session no longer holds is prepared
  -- again. Any other failure goes to the caller's queue-by-queue fallback, as before.
  -- EXECUTE takes its snapshot before the plan's locks, which would wait behind a deleteQueue()
  -- holding job and queue and then read as of before its commit (a deleted queue reported once
  -- more). The locks first, then the snapshot, as a statement parsed here would: a schema locked
  -- for longer than lock_timeout goes to the fallback, as before.
  execute format('lock table only %I.job, %I.queue in access share mode', p_schema, p_schema);
  v_name := 'queue_health_' || md5(v_sql || current_setting('enable_seqscan')
    || current_setting('enable_bitmapscan'));
  v_args := format('%L, %L, %L, %L, null, %L, %L', p_now, p_limit, p_max_age, p_schema,
    p_window_limit, p_reread);
  begin
    execute format('execute %I(%s)', v_name, v_args) into v_rows;
  exception when invalid_sql_statement_name then
    execute format(
      'prepare %I (timestamptz, bigint, interval, text, text, bigint, interval) as %s',
      v_name, v_sql);
    execute format('execute %I(%s)', v_name, v_args) into v_rows;
  end;
  return v_rows;
end;
$$;
comment on function queue_health._pgboss_execute(text, text, boolean, timestamptz, bigint, interval, bigint, interval) is 'Runs a statement of _pgboss_sample_sql() for the pg-boss schema p_schema (with p_prepare, as a prepared statement of the session, after locking the schema''s job and queue tables) and returns its samples.';
revoke execute on function queue_health._pgboss_execute(text, text, boolean, timestamptz, bigint, interval, bigint, interval) from public, anon, authenticated;
grant execute on function queue_health._pgboss_execute(text, text, boolean, timestamptz, bigint, interval, bigint, interval) to service_role;

create function queue_health._pgboss_sample_schema(
  p_schema text,
  p_layout jsonb,
  p_statistics boolean,
  p_common text,
  p_now timestamptz,
  p_limit bigint,
  p_max_age interval,
  p_window_limit bigint,
  p_reread interval,
  p_prepare boolean
)
returns queue_health.sample[]
volatile
-- Runs as its caller: _sample_pgboss() (security definer), for a schema it discovered.
set search_path = ''
language plpgsql
as $$
declare
  v_all queue_health.sample[] := '{}'::queue_health.sample[];
  v_rows queue_health.sample[];
  v_part_statistics boolean;
  v_more boolean;
begin
  -- One statement per schema (prepared once per session: _pgboss_execute()): each queue costs
  -- only its index probes. Collected into an array, so that a failure half-way returns nothing of
  -- this schema twice. With p_common (job_common), two: its queues from it directly, then the
  -- queues with a partition of their own (partition: true), if any, through job.
  for v_part in 1 .. case when p_common is null then 1 else 2 end loop
    if v_part = 2 then
      execute format('select exists (select 1 from %I.queue b where b.table_name::text <> $1
                        and left(b.name, 10) <> %L)', p_schema, '__pgboss__')
        into v_more using p_common;
      continue when not v_more;
    end if;
    -- Without the table statistics (p_statistics false) a gauge that reached the bound anyway
    -- is reported as 'statistics' without an estimate: then the full statement, once.
    v_part_statistics := p_statistics;
    loop
      v_rows := queue_health._pgboss_execute(p_schema,
        queue_health._pgboss_sample_sql(p_schema, p_layout, null, v_part_statistics,
          case when v_part = 1 then p_common end, case when v_part = 2 then p_common end),
        p_prepare, p_now, p_limit, p_max_age, p_window_limit, p_reread);
      exit when v_part_statistics or not exists (
        select 1 from unnest(v_rows) t, jsonb_each_text(t.cursor -> 'counts') c
        where c.value = 'statistics');
      v_part_statistics := true;
    end loop;
    v_all := v_all || coalesce(v_rows, '{}');
  end loop;
  return v_all;
end;
$$;
comment on function queue_health._pgboss_sample_schema(text, jsonb, boolean, text, timestamptz, bigint, interval, bigint, interval, boolean) is 'The samples of every queue of the pg-boss schema p_schema from its statement (_pgboss_sample_sql; with p_common, one for that table''s queues and one for the others), with the table statistics when p_statistics or when a gauge reached the bound without them. Raises when a statement fails (the caller then samples queue by queue).';
revoke execute on function queue_health._pgboss_sample_schema(text, jsonb, boolean, text, timestamptz, bigint, interval, bigint, interval, boolean) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sample_schema(text, jsonb, boolean, text, timestamptz, bigint, interval, bigint, interval, boolean) to service_role;

create function queue_health._pgboss_sample_each_queue(
  p_schema text,
  p_layout jsonb,
  p_now timestamptz,
  p_limit bigint,
  p_max_age interval,
  p_window_limit bigint
)
returns setof queue_health.sample
volatile
-- Runs as its caller: _sample_pgboss() (security definer), for a schema it discovered.
set search_path = ''
language plpgsql
as $$
declare
  v_names text[];
  v_prevs jsonb[];
  v_sample queue_health.sample;
  v_error text;
begin
  -- The fallback when the schema's statement failed: the same statement queue by queue
  -- (_sample_pgboss_queue()), so one bad queue costs only itself.
  begin
    -- job itself (not its partitions) first: while it is locked (pg-boss creating or dropping a
    -- queue's partition), every queue would wait for it in turn, so the schema is reported as
    -- a whole instead (below).
    execute format('lock table only %I.job in access share mode', p_schema);
    -- pg-boss's own internal queues (__pgboss__send-it, ...) are not the user's queues.
    -- The previous cursors of the schema's queues come with the list (one join).
    execute format(
      'select array_agg(b.name order by b.name),
              array_agg(case when q.cursor is null or jsonb_typeof(q.cursor) <> %L then null
                else jsonb_build_object(%L, q.last_seen_at) || q.cursor end order by b.name)
         from %I.queue b
         left join queue_health.queue q
           on q.source = %L and q.source_schema = %L and q.queue_name = b.name
        where left(b.name, 10) <> %L',
      'object', 'at', p_schema, 'pgboss', p_schema, '__pgboss__')
      into v_names, v_prevs;
  exception when others then
    v_error := sqlstate || ': ' || sqlerrm;
    -- The schema was dropped between discovery and listing its queues: nothing to sample.
    -- Otherwise (e.g. its queue or job table locked by deleteQueue()), its queues still exist: report
    -- the ones the registry knows as errors so that capture() does not mark them dropped.
    if to_regclass(format('%I.queue', p_schema)) is not null then
      return query
        select 'pgboss', q.source_schema, q.queue_name, null::bigint, null::bigint, null::bigint,
          null::bigint, null::boolean, null::double precision, null::bigint, null::bigint,
          null::bigint, null::bigint, null::bigint, null::double precision,
          null::double precision, null::double precision, null::double precision,
          null::double precision, q.cursor, v_error
        from queue_health.queue q
        where q.source = 'pgboss' and q.source_schema = p_schema
          and q.dropped_at is null;
    end if;
    return;
  end;
  for i in 1 .. coalesce(cardinality(v_names), 0) loop
    v_sample := queue_health._sample_pgboss_queue(
      p_schema, p_layout, v_names[i], p_now, p_limit, p_max_age, v_prevs[i], p_window_limit);
    if v_sample.source is not null then
      return next v_sample;
    end if;
  end loop;
end;
$$;
comment on function queue_health._pgboss_sample_each_queue(text, jsonb, timestamptz, bigint, interval, bigint) is 'The fallback of _sample_pgboss() for a pg-boss schema whose statement failed: one sample per queue (_sample_pgboss_queue), or, when the schema''s queues cannot be listed, an error row for each queue the registry knows.';
revoke execute on function queue_health._pgboss_sample_each_queue(text, jsonb, timestamptz, bigint, interval, bigint) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sample_each_queue(text, jsonb, timestamptz, bigint, interval, bigint) to service_role;

create function queue_health._sample_pgboss(p_now timestamptz default now())
returns setof queue_health.sample
volatile
security definer
set search_path = ''
-- pg-boss's deleteQueue() locks the schema's queue table while it drops a partition: wait at most
-- this long for it (the schema's queues are then reported as errors, see
-- _pgboss_sample_each_queue()).
set lock_timeout = '500ms'
-- The per-schema statement is big (a probe per gauge per partition of job) and its cost estimate
-- crosses jit_above_cost, yet it runs fast: JIT compiling it cost far more than running it.
set jit = off
-- Every probe is bounded (limit exact_count_limit) and meant to stop there; a bitmap scan first
-- collects every match (e.g. all 50 000 live jobs of a 1M-job queue for retried, or all of a v10
-- queue's delayed jobs), so plain index scans only (but see v11 below).
set enable_bitmapscan = off
-- The statement is planned for any queue (name = a parameter): the planner then takes a queue's
-- jobs to be spread over the whole shared job_common, and a sequential scan that stops after
-- exact_count_limit matches looks cheap; but a queue's jobs are clustered, so the scan reads every
-- other queue's first (seen: far slower per queue than the index). Index scans only (but see
-- v10).
set enable_seqscan = off
-- The per-schema statement is a prepared statement of the session: a generic plan from its first
-- execution on, planned once per session (_pgboss_execute()).
set plan_cache_mode = force_generic_plan
language plpgsql
as $$
declare
  v_settings jsonb := queue_health._source_settings();
  v_limit bigint := (v_settings ->> 'exact_count_limit')::bigint;
  v_window_limit bigint := (v_settings ->> 'window_read_limit')::bigint;
  v_max_age interval := (v_settings ->> 'pgboss_cache_max_age')::interval;
  v_reread interval;
  v_schema record;
  v_statistics boolean;
  v_common text;
  v_prepare boolean;
  v_rows queue_health.sample[];
begin
  -- No table named version anywhere: no pg-boss schema (one index probe; a pgmq-only database
  -- then never plans the discovery below, which a new session, as pg_cron's, would pay for).
  if not exists (select from pg_catalog.pg_class c where c.relname = 'version' and c.relkind in ('r', 'p')) then
    return;
  end if;
  -- The statistics must be current, not what an earlier read in this transaction cached; how
  -- long an unchanged queue may go without being read (v12 only, see _pgboss_sql_unchanged).
  perform pg_catalog.pg_stat_clear_snapshot();
  v_reread := queue_health._reread_interval(v_settings);
  -- Each schema's statement as a prepared statement of this session, while it may hold more.
  v_prepare := queue_health._may_prepare();
  for v_schema in select * from queue_health._pgboss_schemas(array(
      select jsonb_array_elements_text(v_settings -> 'excluded_pgboss_schemas'))) loop
    v_statistics := queue_health._pgboss_needs_statistics(v_schema.schema_name, v_limit);
    -- pg-boss 11 and 12 keep most queues in one partition, job_common (queue.table_name): its
    -- queues are sampled from it directly, which is cheaper to plan; the queues with a partition
    -- of their own (partition: true), if any, through job.
    v_common := case when v_schema.layout ? 'queue.table_name'
      and to_regclass(format('%I.job_common', v_schema.schema_name)) is not null then 'job_common' end;
    -- Set here, not in a function called below (its own SET clause would undo them on return).
    -- v11 keeps its queues in one job_common with no index on state: in_flight and the counts
    -- since the previous snapshot read the queue's rows through the (name, id) key, which a bitmap
    -- scan does best (in page order). Restored when this function returns.
    perform set_config('enable_bitmapscan',
      case when v_schema.layout ? 'queue.table_name' and not v_schema.layout ? 'job.blocked'
           then 'on' else 'off' end, true);
    -- v10 gives every queue a partition of its own: there a sequential scan reads only the queue's
    -- rows, and is the best way through all of them (in_flight, the counts since the previous
    -- snapshot: v10 has no index for either).
    perform set_config('enable_seqscan',
      case when v_schema.layout ? 'queue.partition_name' then 'on' else 'off' end, true);
    begin
      v_rows := queue_health._pgboss_sample_schema(v_schema.schema_name, v_schema.layout,
        v_statistics, v_common, p_now, v_limit, v_max_age, v_window_limit, v_reread, v_prepare);
      return query select * from unnest(v_rows);
      continue;
    exception when others then
      null; -- below: the same statement queue by queue, so one bad queue costs only itself
    end;
    return query select * from queue_health._pgboss_sample_each_queue(v_schema.schema_name,
      v_schema.layout, p_now, v_limit, v_max_age, v_window_limit);
  end loop;
end;
$$;
comment on function queue_health._sample_pgboss(timestamptz) is 'One sample per queue of every pg-boss schema (v10, v11, v12) except settings.excluded_pgboss_schemas: one statement per schema (_pgboss_sample_sql), queue by queue if that fails. Cost O(queues) for the gauges (index-bounded, exact up to settings.exact_count_limit, pg-boss''s fresh cache or the table statistics above it); never raises for one queue.';
revoke execute on function queue_health._sample_pgboss(timestamptz) from public, anon, authenticated;
grant execute on function queue_health._sample_pgboss(timestamptz) to service_role;
