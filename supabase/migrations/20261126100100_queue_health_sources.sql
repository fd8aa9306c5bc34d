-- Queue Health: sources. Turn pgmq queues and pg-boss queues into queue_health.sample rows.
--
-- Both samplers are feature-detected (a database with pgmq, pg-boss, both or neither works),
-- cost O(number of queues) on the queue tables (index-bounded counts, exact up to
-- settings.exact_count_limit rows and estimated above it), never raise for one bad queue, and read
-- the previous snapshot's state from queue_health.queue.cursor themselves. The metric definitions
-- are in docs/metrics.md.

-- Section: shared helpers

create function queue_health._source_settings()
returns jsonb
stable
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_row jsonb;
begin
  -- Read through to_jsonb so that a settings table without one of these columns still works.
  if to_regclass('queue_health.settings') is not null then
    execute 'select to_jsonb(s) from queue_health.settings s limit 1' into v_row;
  end if;
  v_row := coalesce(v_row, '{}'::jsonb);
  return jsonb_build_object(
    'exact_count_limit', coalesce((v_row ->> 'exact_count_limit')::bigint, 1000),
    'excluded_pgboss_schemas', coalesce(v_row -> 'excluded_pgboss_schemas', '["pgboss_v10"]'::jsonb),
    'pgboss_cache_max_age', coalesce(v_row ->> 'pgboss_cache_max_age', '2 minutes')
  );
end;
$$;
comment on function queue_health._source_settings() is 'The settings the samplers use (exact_count_limit, excluded_pgboss_schemas, pgboss_cache_max_age) from queue_health.settings, with the documented defaults when the table or a column is absent.';
revoke execute on function queue_health._source_settings() from public;
grant execute on function queue_health._source_settings() to service_role;

create function queue_health._planner_rows(p_query text)
returns bigint
volatile
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_plan jsonb;
begin
  -- The planner's row estimate for a query (what Supabase Studio does for big tables): costs
  -- planning only, and is as good as the table statistics (ANALYZE / autovacuum).
  execute 'explain (format json) ' || p_query into v_plan;
  return round((v_plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric)::bigint;
end;
$$;
comment on function queue_health._planner_rows(text) is 'Row count the planner estimates for p_query (EXPLAIN, not executed). p_query must be built with format(%I/%L) by the caller.';
revoke execute on function queue_health._planner_rows(text) from public;
grant execute on function queue_health._planner_rows(text) to service_role;

-- Section: pgmq

create function queue_health._pgmq_estimate_total(p_rel regclass, p_has_id_index boolean)
returns bigint
volatile
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_min bigint;
  v_max bigint;
  v_range bigint;
  v_density bigint;
begin
  -- 1. The msg_id range from the two ends of the primary key index: exact when the live ids are
  --    contiguous (a FIFO queue consumed in order), an over-estimate when messages in the middle
  --    were deleted first.
  if p_has_id_index then
    execute format('select msg_id from %s order by msg_id asc limit 1', p_rel) into v_min;
    execute format('select msg_id from %s order by msg_id desc limit 1', p_rel) into v_max;
    if v_min is not null then
      v_range := v_max - v_min + 1;
    end if;
  end if;
  -- 2. The planner's method without planning: tuples per page from the last ANALYZE/VACUUM times
  --    the pages the table (each partition) has now. Unknown while a table was never analyzed
  --    (reltuples = -1): then the id range alone, or EXPLAIN's width-based guess without one.
  select case when bool_and(c.reltuples >= 0) then
      round(sum(case when c.relpages > 0
        then c.reltuples / c.relpages
          * (pg_catalog.pg_relation_size(c.oid) / current_setting('block_size')::numeric)
        else c.reltuples end))::bigint
    end
    into v_density
    from pg_catalog.pg_class c
    where c.relkind = 'r'
      and (c.oid = p_rel or c.oid in (
        select t.relid from pg_catalog.pg_partition_tree(p_rel) t where t.isleaf));
  if v_density is null and v_range is null then
    v_density := queue_health._planner_rows(format('select 1 from %s', p_rel));
  end if;
  return case
    when v_range is not null and v_density is not null then least(v_range, v_density)
    else coalesce(v_range, v_density)
  end;
end;
$$;
comment on function queue_health._pgmq_estimate_total(regclass, boolean) is 'Estimated message count of a pgmq queue table in O(1): the lesser of the msg_id index range and the planner''s estimate (reltuples/relpages times current pages).';
revoke execute on function queue_health._pgmq_estimate_total(regclass, boolean) from public;
grant execute on function queue_health._pgmq_estimate_total(regclass, boolean) to service_role;

create function queue_health._sample_pgmq_queue(
  p_queue_name text,
  p_now timestamptz,
  p_limit bigint,
  p_prev jsonb
)
returns queue_health.sample
volatile
security definer
set search_path = ''
-- A queue table locked by a concurrent DROP/ALTER must cost this queue its sample, not stall the
-- whole capture: _sample_pgmq() sets lock_timeout = 500ms for the whole call (set here, per
-- queue, the save and restore of the setting cost more than the sampling of a small queue).
language plpgsql
as $$
declare
  v_started timestamptz := clock_timestamp();
  v_sample queue_health.sample;
  v_rel regclass;
  v_archive regclass;
  v_seq regclass;
  v_has_vt_index boolean;
  v_has_id_index boolean;
  v_exact boolean;
  v_split_exact boolean := false;
  v_ready bigint;
  v_waiting bigint;            -- vt > now: in flight or delayed
  v_in_flight bigint;
  v_delayed bigint;
  v_scanned bigint;
  v_redelivered bigint := 0;   -- in-flight messages with read_ct > 1 read since the previous snapshot
  v_redelivered_since text;     -- how "read since the previous snapshot" is decided for this layout
  v_columns text := 'read_ct, vt'; -- only the columns needed: never message, headers, ...
  v_in_flight_vt_max timestamptz;
  v_oldest_vt timestamptz;
  v_total bigint;
  v_pct real;
  v_s_all bigint;
  v_s_ready bigint;
  v_s_in_flight bigint;
  v_s_redelivered bigint;
  v_s_vt_max timestamptz;
  v_last_value bigint;
  v_is_called boolean;
  v_seq_start bigint;
  v_seq_increment bigint;
  v_sent bigint;
  v_prev_at timestamptz := (p_prev ->> 'at')::timestamptz;
  v_prev_sent bigint := (p_prev ->> 'sent')::bigint;
  v_prev_depth bigint := coalesce((p_prev ->> 'depth')::bigint, 0);
  v_prev_vt_max timestamptz := coalesce((p_prev ->> 'in_flight_vt_max')::timestamptz, v_prev_at, '-infinity');
  v_archived bigint;
begin
  v_sample.source := 'pgmq';
  v_sample.source_schema := 'pgmq';
  v_sample.queue_name := p_queue_name;
  begin
    v_rel := to_regclass(format('pgmq.%I', 'q_' || lower(p_queue_name)));
    if v_rel is null then
      return null; -- dropped after discovery: the queue is gone, not broken
    end if;

    -- Which indexes this queue has: standard and unlogged queues have the msg_id primary key and
    -- the vt index; pg_partman-partitioned queues may have neither.
    select
      coalesce(bool_or(a.attname = 'vt'), false),
      coalesce(bool_or(a.attname = 'msg_id'), false)
    into v_has_vt_index, v_has_id_index
    from pg_catalog.pg_index i
    join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
    where i.indrelid = v_rel and i.indpred is null;

    -- A redelivery is a read of a message that had been read before (read_ct > 1 while in flight).
    -- It started since the previous snapshot when last_read_at (pgmq 1.10+) is later than that
    -- snapshot; without last_read_at, when its vt is later than the latest in-flight vt seen at
    -- the previous snapshot (exact while a queue's consumers use one visibility timeout).
    if exists (select 1 from pg_catalog.pg_attribute a
               where a.attrelid = v_rel and a.attname = 'last_read_at' and not a.attisdropped) then
      v_redelivered_since := 'last_read_at > $3';
      v_columns := v_columns || ', last_read_at';
    else
      v_redelivered_since := 'vt > $4';
    end if;

    if v_has_vt_index then
      -- Counts bounded by p_limit entries of the vt index, index-only. In vt order, so the first
      -- ready entry is also the longest-ready message (exact at any size).
      execute format(
        'select count(*), min(vt) from (select vt from %s where vt <= $1 order by vt limit $2) s',
        v_rel) using p_now, p_limit into v_ready, v_oldest_vt;
      if p_limit = 0 then
        execute format('select vt from %s where vt <= $1 order by vt limit 1', v_rel)
          using p_now into v_oldest_vt;
      end if;
      -- One budget for the whole queue: the waiting messages (vt > now) are counted with what the
      -- ready ones left of it, so depth is exact exactly while the queue holds fewer than p_limit.
      v_waiting := 0;
      v_split_exact := false;
      if v_ready < p_limit then
        execute format('select count(*) from (select 1 from %s where vt > $1 limit $2) s', v_rel)
          using p_now, p_limit - v_ready into v_waiting;
        if v_waiting < p_limit - v_ready then
          -- All waiting messages fit under the bound: split them exactly (read_ct is in the heap).
          execute format(
            'select count(*) filter (where read_ct > 0),
                    count(*) filter (where read_ct > 1 and %s),
                    max(vt) filter (where read_ct > 0)
               from (select %s from %s where vt > $1) s', v_redelivered_since, v_columns, v_rel)
            using p_now, p_limit, v_prev_at, v_prev_vt_max
            into v_in_flight, v_redelivered, v_in_flight_vt_max;
          v_delayed := v_waiting - v_in_flight;
          v_split_exact := true;
        end if;
      end if;
      v_exact := v_split_exact;
    else
      -- No vt index: look at no more than p_limit rows in physical order. Exact when the table
      -- holds fewer rows than that.
      execute format(
        'select count(*), count(*) filter (where vt <= $1),
                count(*) filter (where vt > $1 and read_ct > 0),
                count(*) filter (where vt > $1 and read_ct > 1 and %s),
                max(vt) filter (where vt > $1 and read_ct > 0),
                min(vt) filter (where vt <= $1)
           from (select %s from %s limit $2) s', v_redelivered_since, v_columns, v_rel)
        using p_now, p_limit, v_prev_at, v_prev_vt_max
        into v_scanned, v_ready, v_in_flight, v_redelivered, v_in_flight_vt_max, v_oldest_vt;
      v_exact := v_scanned < p_limit;
      v_waiting := v_scanned - v_ready;
      v_delayed := v_waiting - v_in_flight;
    end if;

    if not v_exact then
      -- Above the bound: estimate the total, then split it. Whatever was counted exactly stays
      -- exact; the rest is split in the proportions of a block sample (tablesample system) of
      -- about 1000 rows: a constant number of pages whatever the queue's size.
      v_total := greatest(
        coalesce(queue_health._pgmq_estimate_total(v_rel, v_has_id_index), 0),
        case when v_has_vt_index then v_ready + v_waiting else v_scanned end);
      v_pct := least(100, 100.0 * 1000 / greatest(v_total, 1))::real;
      execute format(
        'select count(*), count(*) filter (where vt <= $1),
                count(*) filter (where vt > $1 and read_ct > 0),
                count(*) filter (where vt > $1 and read_ct > 1 and %s),
                max(vt) filter (where vt > $1 and read_ct > 0)
           from (select %s from %s tablesample system ($2)) s', v_redelivered_since, v_columns, v_rel)
        using p_now, v_pct, v_prev_at, v_prev_vt_max
        into v_s_all, v_s_ready, v_s_in_flight, v_s_redelivered, v_s_vt_max;
      if v_has_vt_index and not v_split_exact then
        -- The waiting messages were only counted: what we know of them comes from the sample.
        v_in_flight := 0;
        v_redelivered := 0;
        v_in_flight_vt_max := v_s_vt_max;
      end if;
      if v_s_all = 0 then
        -- An empty block sample (tiny tables): use the rows counted above.
        v_s_all := v_ready + v_waiting;
        v_s_ready := v_ready;
        v_s_in_flight := v_in_flight;
        v_s_redelivered := v_redelivered;
      end if;
      if v_has_vt_index and v_ready < p_limit then
        -- ready is exact; the rest are waiting, split by the sample.
        v_waiting := greatest(v_total - v_ready, v_waiting);
        if v_s_all - v_s_ready > 0 then
          v_in_flight := round(v_waiting::numeric * v_s_in_flight / (v_s_all - v_s_ready))::bigint;
          v_redelivered := round(v_waiting::numeric * v_s_redelivered / (v_s_all - v_s_ready))::bigint;
        end if;
        v_delayed := v_waiting - v_in_flight;
      else
        v_ready := greatest(round(v_total::numeric * v_s_ready / greatest(v_s_all, 1))::bigint, v_ready);
        v_in_flight := round(v_total::numeric * v_s_in_flight / greatest(v_s_all, 1))::bigint;
        v_redelivered := greatest(v_redelivered,
          round(v_total::numeric * v_s_redelivered / greatest(v_s_all, 1))::bigint);
        v_delayed := greatest(v_total - v_ready - v_in_flight, 0);
      end if;
    end if;

    v_sample.ready := v_ready;
    v_sample.in_flight := v_in_flight;
    v_sample.delayed := v_delayed;
    v_sample.depth := v_ready + v_in_flight + v_delayed;
    v_sample.depth_estimated := not v_exact;
    v_sample.oldest_ready_age_s := coalesce(greatest(extract(epoch from p_now - v_oldest_vt), 0), 0);

    -- Messages ever sent: the msg_id identity sequence (respecting is_called, start and step).
    v_seq := pg_catalog.pg_get_serial_sequence(v_rel::text, 'msg_id')::regclass;
    if v_seq is not null then
      execute format('select last_value, is_called from %s', v_seq) into v_last_value, v_is_called;
      select s.seqstart, s.seqincrement into v_seq_start, v_seq_increment
        from pg_catalog.pg_sequence s where s.seqrelid = v_seq;
      v_sent := (v_last_value - v_seq_start) / v_seq_increment + case when v_is_called then 1 else 0 end;
    end if;

    -- Archived since the previous snapshot (bounded, archived_at index): reported in the cursor.
    v_archive := to_regclass(format('pgmq.%I', 'a_' || lower(p_queue_name)));
    if v_archive is not null and v_prev_at is not null then
      execute format(
        'select count(*) from (select 1 from %s where archived_at > $1 and archived_at <= $2 limit $3) s',
        v_archive) using v_prev_at, p_now, p_limit into v_archived;
    end if;

    if p_prev is null then
      -- First sight: nothing happened "since the previous snapshot".
      v_sample.enqueued := 0;
      v_sample.completed := 0;
      v_sample.retried := 0;
    else
      if v_sent is not null and v_prev_sent is not null and v_sent < v_prev_sent then
        -- The sequence went backwards: the queue was dropped and created again.
        v_prev_sent := 0;
        v_prev_depth := 0;
      end if;
      v_sample.enqueued := greatest(v_sent - v_prev_sent, 0);
      -- Conservation: what arrived minus what the queue grew by has left it (deleted or archived).
      v_sample.completed := greatest(v_sample.enqueued - (v_sample.depth - v_prev_depth), 0);
      v_sample.retried := v_redelivered;
    end if;
    v_sample.failed := 0;
    v_sample.dead_lettered := 0;
    v_sample.cursor := jsonb_build_object(
      'v', 1,
      'at', p_now,
      'sent', v_sent,
      'depth', v_sample.depth,
      -- Reads after this snapshot get a vt beyond this (see retried).
      'in_flight_vt_max', greatest(v_in_flight_vt_max, p_now),
      'archived', v_archived,
      'exact', v_exact,
      'scan', case when v_has_vt_index then 'vt_index' else 'bounded_rows' end
    );
    v_sample.sample_ms := extract(epoch from clock_timestamp() - v_started) * 1000;
    return v_sample;
  exception
    when undefined_table then
      return null; -- dropped while we sampled it
    when others then
      if to_regclass(format('pgmq.%I', 'q_' || lower(p_queue_name))) is null then
        return null; -- dropped concurrently ("could not open relation"): gone, not broken
      end if;
      return row('pgmq', 'pgmq', p_queue_name, null, null, null, null, null, null, null, null,
        null, null, null, null, null, null, null, extract(epoch from clock_timestamp() - v_started) * 1000, p_prev,
        sqlstate || ': ' || sqlerrm)::queue_health.sample;
  end;
end;
$$;
comment on function queue_health._sample_pgmq_queue(text, timestamptz, bigint, jsonb) is 'Samples one pgmq queue (see docs/metrics.md). Returns null when the queue no longer exists, a sample with error set when sampling failed; never raises.';
revoke execute on function queue_health._sample_pgmq_queue(text, timestamptz, bigint, jsonb) from public;
grant execute on function queue_health._sample_pgmq_queue(text, timestamptz, bigint, jsonb) to service_role;

create function queue_health._sample_pgmq(p_now timestamptz default now())
returns setof queue_health.sample
volatile
security definer
set search_path = ''
-- Never wait long behind DDL on pgmq.meta or a queue table: this applies to every queue's
-- sampling too (the per-queue function inherits it), so one locked queue costs at most this.
set lock_timeout = '500ms'
language plpgsql
as $$
declare
  v_limit bigint := (queue_health._source_settings() ->> 'exact_count_limit')::bigint;
begin
  if to_regclass('pgmq.meta') is null then
    return; -- pgmq is not installed
  end if;
  -- One statement for all queues (set-based: the previous cursors come from one join, the
  -- dead-letter pairs from one hash join), so the cost per queue is only its own sampling.
  -- Dead-letter convention: pgmq has no dead-letter queues of its own; applications move
  -- poison messages to a queue named <name>_dlq. What arrived there counts as <name>'s dead_lettered.
  -- Dynamic because pgmq.meta may not exist when this function is created (or linted).
  return query execute $q$
    with s as materialized (
      select x.*
      from (select m.queue_name::text as name from pgmq.meta m) m
      left join queue_health.queue q
        on q.source = 'pgmq' and q.source_schema = 'pgmq' and q.queue_name = m.name
      cross join lateral queue_health._sample_pgmq_queue(m.name, $1, $2,
        case when q.cursor is null or jsonb_typeof(q.cursor) <> 'object' then null
             else jsonb_build_object('at', q.last_seen_at) || q.cursor end) x
      where x.source is not null
    )
    select s.source, s.source_schema, s.queue_name, s.ready, s.in_flight, s.delayed, s.depth,
      s.depth_estimated, s.oldest_ready_age_s, s.enqueued, s.completed, s.failed, s.retried,
      case when s.error is null and s.enqueued is not null and d.queue_name is not null
        then coalesce(d.enqueued, 0) else s.dead_lettered end,
      s.wait_p50_ms, s.wait_p95_ms, s.run_p50_ms, s.run_p95_ms, s.sample_ms, s.cursor, s.error
    from s
    left join s d on d.queue_name = s.queue_name || '_dlq' and d.error is null
    order by s.queue_name
  $q$ using p_now, v_limit;
end;
$$;
comment on function queue_health._sample_pgmq(timestamptz) is 'One sample per pgmq queue (pgmq.meta), or none when pgmq is absent. Cost O(queues): index-bounded counts, exact up to settings.exact_count_limit, estimated above (depth_estimated). Never raises for one queue.';
revoke execute on function queue_health._sample_pgmq(timestamptz) from public;
grant execute on function queue_health._sample_pgmq(timestamptz) to service_role;

