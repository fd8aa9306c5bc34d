-- Queue Health: what every source shares. The contract between sources and capture (the
-- queue_health.sample type) and the helpers both samplers use: their settings, when an unchanged
-- queue is read again, planner row counts, and the per-session allowance for prepared statements.
-- Both samplers cost O(number of queues) on the queue tables (index-bounded counts, exact up to
-- settings.exact_count_limit rows and estimated above it), never raise for one bad queue, and read
-- the previous snapshot's state from queue_health.queue.cursor themselves. The metric definitions
-- are in docs/metrics.md.

-- A source (pgmq, pg-boss) turns one queue system into rows of this type. capture() stores them.

create type queue_health.sample as (
  source text,                      -- 'pgmq' | 'pgboss'
  source_schema text,               -- 'pgmq', or the pg-boss schema ('pgboss', 'pgboss_v10', ...)
  queue_name text,
  ready bigint,
  in_flight bigint,
  delayed bigint,
  depth bigint,
  depth_estimated boolean,
  oldest_ready_age_s double precision,
  enqueued bigint,
  completed bigint,
  failed bigint,
  retried bigint,
  dead_lettered bigint,
  wait_p50_ms double precision,
  wait_p95_ms double precision,
  run_p50_ms double precision,
  run_p95_ms double precision,
  sample_ms double precision,
  cursor jsonb,                     -- the source's state for the next delta; stored in queue.cursor
  error text                        -- set when sampling this queue failed (other columns null)
);
comment on type queue_health.sample is 'One queue''s sample as a source returns it; capture() turns samples into metric rows.';

create function queue_health._source_settings()
returns jsonb
stable
security definer
set search_path = ''
language sql
as $$
  -- The settings row's columns; the documented defaults when the row is missing.
  select jsonb_build_object(
    'exact_count_limit', coalesce(s.exact_count_limit, 10000),
    'window_read_limit', coalesce(s.window_read_limit, 2000),
    'unchanged_reread_interval', coalesce(s.unchanged_reread_interval::text, '1 minute'),
    'excluded_pgboss_schemas', coalesce(to_jsonb(s.excluded_pgboss_schemas), '["pgboss_v10"]'::jsonb),
    'pgboss_cache_max_age', coalesce(s.pgboss_cache_max_age::text, '2 minutes')
  )
  from (select) one
  left join queue_health.settings s on s.id
$$;
comment on function queue_health._source_settings() is 'The settings the samplers use (exact_count_limit, window_read_limit, unchanged_reread_interval, excluded_pgboss_schemas, pgboss_cache_max_age) from queue_health.settings, with the documented defaults when its row is missing.';
revoke execute on function queue_health._source_settings() from public, anon, authenticated;
grant execute on function queue_health._source_settings() to service_role;

create function queue_health._reread_interval(p_settings jsonb)
returns interval
volatile
set search_path = ''
language plpgsql
as $$
declare
  v_interval interval := (p_settings ->> 'unchanged_reread_interval')::interval;
begin
  -- How long a queue that shows no change may go without being read (docs/metrics.md). Without
  -- table statistics (track_counts off) an unchanged queue cannot be told: 0, read them all.
  -- A session publishes its table statistics when a statement ends (within ~1 s, ~10 s if it then
  -- goes idle, 60 s at most under contention), so a write the fingerprint has not seen yet shows
  -- up by itself a capture or so later. The exception is a statement that commits as it goes and
  -- has not ended (a procedure or DO block consuming in a loop, a long pg_cron job): its writes
  -- are visible and its statistics are not, for as long as it runs. The re-read interval is for
  -- that case: it applies while some client session (other than this one) has been running one
  -- statement for longer than it, or when the activity of others cannot be seen (no
  -- pg_read_all_stats); otherwise unchanged queues are re-read five times less often, a backstop.
  -- Only client backends and pg_cron's job workers (backend_type 'pg_cron', where jobs run in
  -- background workers) write queues: walsenders (hosted Realtime keeps one streaming all the
  -- time, 'active' since it connected), autovacuum, the pg_cron launcher and other background
  -- processes do not count.
  -- (Real time, not p_now: it is about the sessions running now. The function behind
  -- pg_stat_activity, without the view's joins, which cost far more to plan.)
  if current_setting('track_counts') <> 'on' or v_interval <= interval '0' then
    return interval '0';
  end if;
  if exists (
       select from pg_catalog.pg_stat_get_activity(null) a
       where a.pid <> pg_catalog.pg_backend_pid()
         and a.backend_type in ('client backend', 'pg_cron')
         and ((a.state = 'active' and a.query_start < pg_catalog.now() - v_interval)
              or a.state is null)) then
    return v_interval;
  end if;
  return v_interval * 5;
end;
$$;
comment on function queue_health._reread_interval(jsonb) is 'How long a queue that shows no change may repeat its snapshot without being read: settings.unchanged_reread_interval while another client session (a client backend or a pg_cron job worker; not a walsender, autovacuum or other background process) runs a statement longer than that (or others'' activity cannot be seen), five times it otherwise; 0 (always read) with the setting at 0 or track_counts off.';
revoke execute on function queue_health._reread_interval(jsonb) from public, anon, authenticated;
grant execute on function queue_health._reread_interval(jsonb) to service_role;

create function queue_health._planner_rows(p_rel regclass)
returns bigint
volatile
set search_path = ''
language plpgsql
as $$
declare
  v_plan jsonb;
begin
  -- The planner's row estimate for a table (what Supabase Studio does for big tables): costs
  -- planning only, and is as good as the table statistics (ANALYZE / autovacuum). It runs as its
  -- caller (the samplers, security definer themselves) and takes a table, never SQL text: the
  -- statement is built here, the table's name quoted by regclass.
  execute format('explain (format json) select 1 from %s', p_rel) into v_plan;
  return round((v_plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric)::bigint;
end;
$$;
comment on function queue_health._planner_rows(regclass) is 'Row count the planner estimates for the table p_rel (EXPLAIN of select 1 from it, not executed); runs as its caller, who must be allowed to read the table.';
revoke execute on function queue_health._planner_rows(regclass) from public, anon, authenticated;
grant execute on function queue_health._planner_rows(regclass) to service_role;

create function queue_health._may_prepare()
returns boolean
volatile
set search_path = ''
language sql
as $$
  -- The samplers run the statements they would otherwise plan on every capture as prepared
  -- statements of the session, named queue_health_<md5 of the text> (each holds its plan in the
  -- session's memory: a pg-boss schema's statement far more than a pgmq queue's estimate), while
  -- the session holds fewer than 200 of them; past that, they are planned on every capture as
  -- before.
  select count(*) < 200 from pg_catalog.pg_prepared_statements p where p.name like 'queue\_health\_%'
$$;
comment on function queue_health._may_prepare() is 'Whether this session may prepare one more of the samplers'' statements (it holds fewer than 200 named queue_health_*).';
revoke execute on function queue_health._may_prepare() from public, anon, authenticated;
grant execute on function queue_health._may_prepare() to service_role;
