-- Queue Health: core. The schema, tenants (project, project_member, membership checks), the
-- queue registry (queue, project_queue_map), installation settings, and the metric table with its
-- daily partitions and running totals, each with its row-level security and grants.
-- Data flows one way through the migrations that follow, in file order:
-- sources -> capture -> metric -> maintenance / Realtime -> alert rules -> evaluation -> outbox ->
-- dispatch; api holds every view, schedule every pg_cron job. docs/architecture.md lists each file.

create schema if not exists queue_health;
comment on schema queue_health is 'Queue Health: health monitoring for pgmq and pg-boss queues.';

create table queue_health.queue (
  id bigint generated always as identity primary key,
  source text not null check (source in ('pgmq', 'pgboss')),
  source_schema text not null,
  queue_name text not null,
  project_id text not null,
  labels jsonb not null default '{}'::jsonb,
  cursor jsonb,
  first_seen_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  dropped_at timestamptz,
  -- The queue's newest metric row, which is at totals_at: its running totals (metric.cum_*), and
  -- its gauges and counts, which alert evaluation reads here instead of probing metric for every
  -- queue; null when not known (capture() and the evaluation then read that row).
  totals_at timestamptz,
  ready bigint,
  in_flight bigint,
  delayed bigint,
  depth bigint,
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
  interval_s double precision,
  cum_enqueued bigint,
  cum_completed bigint,
  cum_failed bigint,
  cum_retried bigint,
  cum_dead_lettered bigint,
  cum_interval_s double precision,
  cum_idle bigint,
  unique (source, source_schema, queue_name)
);
comment on table queue_health.queue is 'Registry of every queue a source has ever reported. A queue that disappears gets dropped_at; its history is kept.';
comment on column queue_health.queue.id is 'Surrogate key.';
comment on column queue_health.queue.source is 'Queue system: pgmq or pgboss.';
comment on column queue_health.queue.source_schema is 'Schema the queue lives in: pgmq, or the pg-boss schema (pgboss, pgboss_v10, ...).';
comment on column queue_health.queue.queue_name is 'Queue name as the source knows it (any characters).';
comment on column queue_health.queue.project_id is 'Project the queue belongs to, decided by project_queue_map at discovery; default ''default''.';
comment on column queue_health.queue.labels is 'Free-form labels (json object) for selectors and dashboards.';
comment on column queue_health.queue.totals_at is 'Owned by capture(): the captured_at of the queue''s newest metric row, whose gauges, counts and running totals (cum_*) this row also holds (so neither a capture nor alert evaluation need read that row); null when not known, e.g. after a row was inserted other than by capture().';
comment on column queue_health.queue.ready is 'The newest metric row''s ready (see totals_at).';
comment on column queue_health.queue.in_flight is 'The newest metric row''s in_flight (see totals_at).';
comment on column queue_health.queue.delayed is 'The newest metric row''s delayed (see totals_at).';
comment on column queue_health.queue.depth is 'The newest metric row''s depth (see totals_at).';
comment on column queue_health.queue.oldest_ready_age_s is 'The newest metric row''s oldest_ready_age_s (see totals_at).';
comment on column queue_health.queue.enqueued is 'The newest metric row''s enqueued (see totals_at).';
comment on column queue_health.queue.completed is 'The newest metric row''s completed (see totals_at).';
comment on column queue_health.queue.failed is 'The newest metric row''s failed (see totals_at).';
comment on column queue_health.queue.retried is 'The newest metric row''s retried (see totals_at).';
comment on column queue_health.queue.dead_lettered is 'The newest metric row''s dead_lettered (see totals_at).';
comment on column queue_health.queue.wait_p50_ms is 'The newest metric row''s wait_p50_ms (see totals_at).';
comment on column queue_health.queue.wait_p95_ms is 'The newest metric row''s wait_p95_ms (see totals_at).';
comment on column queue_health.queue.run_p50_ms is 'The newest metric row''s run_p50_ms (see totals_at).';
comment on column queue_health.queue.run_p95_ms is 'The newest metric row''s run_p95_ms (see totals_at).';
comment on column queue_health.queue.sample_ms is 'The newest metric row''s sample_ms (see totals_at).';
comment on column queue_health.queue.interval_s is 'The newest metric row''s interval_s (see totals_at).';
comment on column queue_health.queue.cum_enqueued is 'The newest metric row''s cum_enqueued (see totals_at).';
comment on column queue_health.queue.cum_completed is 'The newest metric row''s cum_completed (see totals_at).';
comment on column queue_health.queue.cum_failed is 'The newest metric row''s cum_failed (see totals_at).';
comment on column queue_health.queue.cum_retried is 'The newest metric row''s cum_retried (see totals_at).';
comment on column queue_health.queue.cum_dead_lettered is 'The newest metric row''s cum_dead_lettered (see totals_at).';
comment on column queue_health.queue.cum_interval_s is 'The newest metric row''s cum_interval_s (see totals_at).';
comment on column queue_health.queue.cum_idle is 'The newest metric row''s cum_idle (see totals_at).';
comment on column queue_health.queue.cursor is 'Owned by the samplers: the sample.cursor a sampler returned last time for this queue (null the first time).';
comment on column queue_health.queue.first_seen_at is 'When a capture first saw this queue.';
comment on column queue_health.queue.last_seen_at is 'captured_at of the latest capture that sampled this queue.';
comment on column queue_health.queue.dropped_at is 'When a source that ran successfully stopped reporting this queue; null while it exists (cleared if it comes back).';

create type queue_health.member_role as enum ('viewer', 'admin');
comment on type queue_health.member_role is 'Role of a user in a project, in ascending order of rights: viewer reads, admin also manages members.';

create table queue_health.project (
  id text primary key,
  name text not null,
  created_at timestamptz not null default now(),
  constraint project_id_format check (id ~ '^[a-z0-9_-]{1,63}$')
);
comment on table queue_health.project is 'A tenant: queues, metrics and alerts belong to exactly one project. The row ''default'' always exists.';
comment on column queue_health.project.id is 'Project key, also the Realtime topic suffix (queue_health:<id>): lower-case [a-z0-9_-], at most 63 characters.';
comment on column queue_health.project.name is 'Human-readable name.';
comment on column queue_health.project.created_at is 'When the project was created.';
comment on constraint project_id_format on queue_health.project is 'Project ids are lower-case [a-z0-9_-] and at most 63 characters, so they are safe in topics and URLs.';

insert into queue_health.project (id, name) values ('default', 'Default');

create table queue_health.project_member (
  project_id text not null references queue_health.project (id) on update cascade on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role queue_health.member_role not null default 'viewer',
  created_at timestamptz not null default now(),
  primary key (project_id, user_id)
);
comment on table queue_health.project_member is 'Who may see (viewer) or manage (admin) a project. Consulted only through queue_health.is_member().';
comment on column queue_health.project_member.project_id is 'The project.';
comment on column queue_health.project_member.user_id is 'The Supabase Auth user (auth.users.id, the JWT sub).';
comment on column queue_health.project_member.role is 'viewer: read the project''s data; admin: also manage its members.';
comment on column queue_health.project_member.created_at is 'When the membership was granted.';

create index project_member_user_id_idx on queue_health.project_member (user_id);
alter table queue_health.queue
  alter column project_id set default 'default',
  add constraint queue_project_id_fkey foreign key (project_id)
    references queue_health.project (id) on update cascade,
  add constraint queue_seen_order check (last_seen_at >= first_seen_at),
  add constraint queue_dropped_after_first_seen check (dropped_at is null or dropped_at >= first_seen_at),
  add constraint queue_labels_object check (jsonb_typeof(labels) = 'object');
comment on constraint queue_source_check on queue_health.queue is 'source is one of the known sources.';
comment on constraint queue_seen_order on queue_health.queue is 'A queue is last seen no earlier than it was first seen.';
comment on constraint queue_dropped_after_first_seen on queue_health.queue is 'A queue can only be dropped after it was first seen.';
comment on constraint queue_labels_object on queue_health.queue is 'labels is a json object (key/value pairs), never an array or scalar.';

create index queue_project_id_idx on queue_health.queue (project_id);

-- Every capture updates every queue's row (cursor, last_seen_at): leave room on each page so those
-- are HOT updates, and vacuum the small, busy table often.
alter table queue_health.queue set (fillfactor = 50, autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.2);

create table queue_health.project_queue_map (
  id bigint generated always as identity primary key,
  project_id text not null references queue_health.project (id) on update cascade on delete cascade,
  source text,
  queue_pattern text not null,
  priority int not null default 100,
  created_at timestamptz not null default now(),
  constraint project_queue_map_source check (source is null or source in ('pgmq', 'pgboss'))
);
comment on table queue_health.project_queue_map is 'Which project a newly discovered queue belongs to: rules are tried in ascending priority (then id), the first match wins; unmatched queues go to ''default''. Written by the service role only, because a rule decides who can see a queue.';
comment on column queue_health.project_queue_map.id is 'Surrogate key; breaks ties between rules of equal priority (older first).';
comment on column queue_health.project_queue_map.project_id is 'Project that matching queues are assigned to.';
comment on column queue_health.project_queue_map.source is 'Only queues of this source (pgmq or pgboss); null matches both.';
comment on column queue_health.project_queue_map.queue_pattern is 'SQL LIKE pattern on the queue name, e.g. ''billing_%'' (escape _ and % with a backslash to match them literally).';
comment on column queue_health.project_queue_map.priority is 'Lower numbers are tried first.';
comment on column queue_health.project_queue_map.created_at is 'When the rule was added.';
comment on constraint project_queue_map_source on queue_health.project_queue_map is 'source is null (any) or one of the known sources.';

-- The foreign key's index: a project's rules for its members' reads (RLS) and its deletion.
create index project_queue_map_project_idx on queue_health.project_queue_map (project_id);

create function queue_health.is_member(p_project_id text, p_min_role queue_health.member_role default 'viewer')
returns boolean
stable
security definer
set search_path = ''
language sql
as $$
  -- The service role: by its JWT (requests through the API), or by the role itself (a direct
  -- connection that did `set role service_role`; only members of that role can).
  select coalesce((select auth.role()) = 'service_role', false)
    or coalesce(current_setting('role', true) = 'service_role', false)
    or exists (
      select 1
      from queue_health.project_member m
      where m.project_id = p_project_id
        and m.user_id = (select auth.uid())
        and m.role >= p_min_role
    )
$$;
comment on function queue_health.is_member(text, queue_health.member_role) is 'True when the caller (auth.uid() / auth.role() from the JWT) is the service role or a member of the project with at least p_min_role. The single place membership is decided: to use your own membership tables, create or replace this function with the same signature.';
revoke execute on function queue_health.is_member(text, queue_health.member_role) from public, anon, authenticated;
grant execute on function queue_health.is_member(text, queue_health.member_role) to authenticated, service_role;

create function queue_health.is_member_of_any(p_min_role queue_health.member_role default 'viewer')
returns boolean
stable
security definer
set search_path = ''
language sql
as $$
  select exists (select 1 from queue_health.project p where queue_health.is_member(p.id, p_min_role))
$$;
comment on function queue_health.is_member_of_any(queue_health.member_role) is 'True when queue_health.is_member() admits the caller to at least one project: the gate for data that belongs to no project (capture runs, settings).';
revoke execute on function queue_health.is_member_of_any(queue_health.member_role) from public, anon, authenticated;
grant execute on function queue_health.is_member_of_any(queue_health.member_role) to authenticated, service_role;

create function queue_health.member_project_ids(p_min_role queue_health.member_role default 'viewer')
returns text[]
stable
security definer
set search_path = ''
language sql
as $$
  select coalesce(array_agg(p.id order by p.id), '{}'::text[])
  from queue_health.project p
  where queue_health.is_member(p.id, p_min_role)
$$;
comment on function queue_health.member_project_ids(queue_health.member_role) is 'The projects queue_health.is_member() admits the caller to, as an array. Policies on large tables use project_id = any ((select queue_health.member_project_ids())::text[]) so membership is decided once per query (per project), not once per row.';
revoke execute on function queue_health.member_project_ids(queue_health.member_role) from public, anon, authenticated;
grant execute on function queue_health.member_project_ids(queue_health.member_role) to authenticated, service_role;

create table queue_health.metric (
  captured_at timestamptz not null,
  project_id text not null,
  source text not null,
  source_schema text not null,
  queue_name text not null,
  ready bigint,
  in_flight bigint,
  delayed bigint,
  depth bigint,
  depth_estimated boolean not null default false,
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
  interval_s double precision,
  -- Running totals: this row's value plus the previous row's total (per queue, in captured_at
  -- order), so a window's sum is a difference of two rows (queue_health._alert_readings).
  cum_enqueued bigint,
  cum_completed bigint,
  cum_failed bigint,
  cum_retried bigint,
  cum_dead_lettered bigint,
  cum_interval_s double precision,
  cum_idle bigint,
  constraint metric_source check (source in ('pgmq', 'pgboss')),
  constraint metric_gauges_non_negative check (
    coalesce(ready, 0) >= 0 and coalesce(in_flight, 0) >= 0 and coalesce(delayed, 0) >= 0
    and coalesce(depth, 0) >= 0 and coalesce(oldest_ready_age_s, 0) >= 0),
  constraint metric_interval_positive check (interval_s is null or interval_s >= 0)
) partition by range (captured_at);
comment on table queue_health.metric is 'One row per queue per capture (raw snapshots). Partitioned by day on captured_at (partitions metric_pYYYYMMDD, UTC days); retention drops whole partitions. No foreign keys: history outlives queues and projects.';
comment on column queue_health.metric.captured_at is 'The capture''s p_now (transaction time of the capture).';
comment on column queue_health.metric.project_id is 'Project of the queue when it was captured.';
comment on column queue_health.metric.source is 'Queue system: pgmq or pgboss.';
comment on column queue_health.metric.source_schema is 'Schema of the queue (pgmq, or the pg-boss schema).';
comment on column queue_health.metric.queue_name is 'Queue name.';
comment on column queue_health.metric.ready is 'Messages that can be taken now (count).';
comment on column queue_health.metric.in_flight is 'Messages being worked on (count).';
comment on column queue_health.metric.delayed is 'Messages scheduled for later (count).';
comment on column queue_health.metric.depth is 'ready + in_flight + delayed (count).';
comment on column queue_health.metric.depth_estimated is 'True when depth (and its parts) were estimated rather than counted exactly.';
comment on column queue_health.metric.oldest_ready_age_s is 'Age of the oldest ready message in seconds (the queue''s latency); null when nothing is ready.';
comment on column queue_health.metric.enqueued is 'Messages added since the previous snapshot of this queue.';
comment on column queue_health.metric.completed is 'Messages completed since the previous snapshot.';
comment on column queue_health.metric.failed is 'Messages failed since the previous snapshot.';
comment on column queue_health.metric.retried is 'Retries (redeliveries) since the previous snapshot.';
comment on column queue_health.metric.dead_lettered is 'Messages moved to a dead-letter queue since the previous snapshot.';
comment on column queue_health.metric.wait_p50_ms is 'Median wait (enqueue to start) of messages started since the previous snapshot, ms.';
comment on column queue_health.metric.wait_p95_ms is '95th percentile wait, ms.';
comment on column queue_health.metric.run_p50_ms is 'Median run time (start to completion) of messages completed since the previous snapshot, ms.';
comment on column queue_health.metric.run_p95_ms is '95th percentile run time, ms.';
comment on column queue_health.metric.sample_ms is 'What sampling this queue cost, ms.';
comment on column queue_health.metric.interval_s is 'Seconds since the previous snapshot of this queue; null the first time.';
comment on column queue_health.metric.cum_enqueued is 'Running total of enqueued over this queue''s rows up to and including this one (nulls count as 0). The sum over a window is this column''s difference between its newest row and the row before it.';
comment on column queue_health.metric.cum_completed is 'Running total of completed (as cum_enqueued).';
comment on column queue_health.metric.cum_failed is 'Running total of failed (as cum_enqueued).';
comment on column queue_health.metric.cum_retried is 'Running total of retried (as cum_enqueued).';
comment on column queue_health.metric.cum_dead_lettered is 'Running total of dead_lettered (as cum_enqueued).';
comment on column queue_health.metric.cum_interval_s is 'Running total of interval_s (as cum_enqueued).';
comment on column queue_health.metric.cum_idle is 'Running count of this queue''s snapshots with nothing waiting (ready + in_flight = 0), up to and including this one.';
comment on constraint metric_source on queue_health.metric is 'source is one of the known sources.';
comment on constraint metric_gauges_non_negative on queue_health.metric is 'Gauges (ready, in_flight, delayed, depth, oldest_ready_age_s) are never negative.';
comment on constraint metric_interval_positive on queue_health.metric is 'interval_s is a non-negative duration when known.';

-- "latest per queue" (order by captured_at desc limit 1) and "one queue over a range".
create index metric_queue_captured_at_idx
  on queue_health.metric (queue_name, source, source_schema, captured_at desc);

-- Two probes of a queue's metric rows for the rare cases (capture() at an earlier p_now, rows
-- inserted other than by capture(), snapshot_age_s): plpgsql, so that a statement calling them
-- plans them only when it calls them; a SQL function would be inlined into capture()'s and the
-- alert readings' statements, and its probe, which spans every partition, planned on every run.
create function queue_health._newest_snapshot_at(
  p_source text, p_source_schema text, p_queue_name text, p_now timestamptz)
returns timestamptz
stable
set search_path = ''
language plpgsql
as $$
begin
  return (select m.captured_at
            from queue_health.metric m
           where m.queue_name = p_queue_name and m.source = p_source and m.source_schema = p_source_schema
             and m.captured_at <= p_now
           order by m.captured_at desc
           limit 1);
end;
$$;
comment on function queue_health._newest_snapshot_at(text, text, text, timestamptz) is 'The capture time of the queue''s newest metric row at or before p_now, however old (''infinity'': the newest of all); null when it has none.';
revoke execute on function queue_health._newest_snapshot_at(text, text, text, timestamptz) from public, anon, authenticated;

create function queue_health._metric_totals_before(
  p_source text, p_source_schema text, p_queue_name text, p_now timestamptz)
returns table (
  cum_enqueued bigint, cum_completed bigint, cum_failed bigint, cum_retried bigint,
  cum_dead_lettered bigint, cum_interval_s double precision, cum_idle bigint)
stable
set search_path = ''
language plpgsql
as $$
begin
  return query
    select m.cum_enqueued, m.cum_completed, m.cum_failed, m.cum_retried, m.cum_dead_lettered,
           m.cum_interval_s, m.cum_idle
      from queue_health.metric m
     where m.queue_name = p_queue_name and m.source = p_source and m.source_schema = p_source_schema
       and m.captured_at < p_now
     order by m.captured_at desc
     limit 1;
end;
$$;
comment on function queue_health._metric_totals_before(text, text, text, timestamptz) is 'The running totals (cum_*) of the queue''s newest metric row before p_now; no row when it has none.';
revoke execute on function queue_health._metric_totals_before(text, text, text, timestamptz) from public, anon, authenticated;

-- The running-totals trigger calls it for whoever inserts metric rows (service_role may).
grant execute on function queue_health._metric_totals_before(text, text, text, timestamptz) to service_role;

-- The running totals (cum_*) of a row inserted without them: capture() computes them for its rows in
-- one statement; this fills them for rows written any other way (history loads, tests). Rows of
-- one queue must arrive in captured_at order for the totals to add up.
create function queue_health._metric_running_totals()
returns trigger
set search_path = ''
language plpgsql
as $$
declare
  v_prev record;
begin
  select * into v_prev
    from queue_health._metric_totals_before(new.source, new.source_schema, new.queue_name, new.captured_at);
  new.cum_enqueued := coalesce(v_prev.cum_enqueued, 0) + coalesce(new.enqueued, 0);
  new.cum_completed := coalesce(v_prev.cum_completed, 0) + coalesce(new.completed, 0);
  new.cum_failed := coalesce(v_prev.cum_failed, 0) + coalesce(new.failed, 0);
  new.cum_retried := coalesce(v_prev.cum_retried, 0) + coalesce(new.retried, 0);
  new.cum_dead_lettered := coalesce(v_prev.cum_dead_lettered, 0) + coalesce(new.dead_lettered, 0);
  new.cum_interval_s := coalesce(v_prev.cum_interval_s, 0) + coalesce(new.interval_s, 0);
  new.cum_idle := coalesce(v_prev.cum_idle, 0)
    + case when coalesce(new.ready, 0) = 0 and coalesce(new.in_flight, 0) = 0 then 1 else 0 end;
  -- The registry's copy of the newest row's totals is no longer known to be current.
  update queue_health.queue q
     set totals_at = null
   where q.source = new.source and q.source_schema = new.source_schema and q.queue_name = new.queue_name
     and q.totals_at is not null;
  return new;
end;
$$;
comment on function queue_health._metric_running_totals() is 'Trigger: fills the running totals (cum_*) of a metric row inserted without them, from the queue''s previous row.';
revoke execute on function queue_health._metric_running_totals() from public, anon, authenticated;

create trigger metric_running_totals
  before insert on queue_health.metric
  for each row
  when (new.cum_idle is null)
  execute function queue_health._metric_running_totals();
comment on trigger metric_running_totals on queue_health.metric is 'Fills cum_* for rows not written by capture().';

-- rollups read time ranges across all queues; BRIN suits append-only, time-ordered rows.
create index metric_captured_at_brin on queue_health.metric using brin (captured_at);

create table queue_health.settings (
  id boolean primary key default true,
  capture_interval interval not null default '10 seconds',
  raw_retention interval not null default '48 hours',
  rollup_1m_retention interval not null default '14 days',
  rollup_1h_retention interval not null default '400 days',
  capture_run_retention interval not null default '7 days',
  cron_history_retention interval not null default '3 days',
  exact_count_limit bigint not null default 10000,
  window_read_limit bigint not null default 2000,
  unchanged_reread_interval interval not null default '1 minute',
  excluded_pgboss_schemas text[] not null default array['pgboss_v10'],
  pgboss_cache_max_age interval not null default '2 minutes',
  warning_oldest_ready_age_s double precision not null default 60,
  critical_oldest_ready_age_s double precision not null default 300,
  warning_error_rate double precision not null default 0.05,
  stale_after_intervals int not null default 3,
  realtime_payload text not null default 'slim',
  max_rules_per_project int not null default 200,
  max_channels_per_project int not null default 50,
  max_silences_per_project int not null default 500,
  min_group_interval interval not null default '10 seconds',
  min_repeat_interval interval not null default '1 minute',
  max_alert_interval interval not null default '30 days',
  alert_evaluation_budget interval not null default '5 seconds',
  claim_per_project_limit int not null default 20,
  constraint settings_single_row check (id),
  constraint settings_retention_positive check (
    raw_retention >= interval '2 hours' and rollup_1m_retention > interval '0'
    and rollup_1h_retention > interval '0' and capture_run_retention > interval '0'
    and cron_history_retention > interval '0'),
  constraint settings_capture_interval_positive check (capture_interval >= interval '1 second'),
  constraint settings_exact_count_limit_non_negative check (exact_count_limit >= 0),
  constraint settings_window_read_limit_positive check (window_read_limit >= 1),
  constraint settings_unchanged_reread_interval_non_negative check (unchanged_reread_interval >= interval '0'),
  constraint settings_realtime_payload_known check (realtime_payload in ('slim', 'full', 'off')),
  constraint settings_quotas_positive check (
    max_rules_per_project >= 1 and max_channels_per_project >= 1 and max_silences_per_project >= 1
    and claim_per_project_limit >= 1),
  constraint settings_alert_intervals_ordered check (
    min_group_interval >= interval '0' and min_repeat_interval >= interval '0'
    and max_alert_interval >= greatest(min_group_interval, min_repeat_interval, interval '1 minute')
    and max_alert_interval <= interval '366 days'),
  constraint settings_alert_evaluation_budget_positive check (
    alert_evaluation_budget >= interval '100 milliseconds' and alert_evaluation_budget <= interval '10 minutes'),
  constraint settings_thresholds_ordered check (
    warning_oldest_ready_age_s <= critical_oldest_ready_age_s
    and warning_error_rate between 0 and 1 and stale_after_intervals >= 1)
);
comment on table queue_health.settings is 'Installation-wide settings: exactly one row (id = true).';
comment on column queue_health.settings.id is 'Always true: makes the table hold a single row.';
comment on column queue_health.settings.capture_interval is 'How often capture runs; set by queue_health.schedule() (whole seconds under a minute, whole minutes from a minute on, rounded up).';
comment on column queue_health.settings.raw_retention is 'How long raw metric rows are kept (whole day partitions are dropped once entirely older).';
comment on column queue_health.settings.rollup_1m_retention is 'How long metric_1m rows are kept.';
comment on column queue_health.settings.rollup_1h_retention is 'How long metric_1h rows are kept.';
comment on column queue_health.settings.capture_run_retention is 'How long capture_run rows are kept.';
comment on column queue_health.settings.cron_history_retention is 'How long pg_cron''s cron.job_run_details rows are kept by the queue-health-cron-cleanup job.';
comment on column queue_health.settings.exact_count_limit is 'Samplers count messages exactly up to this many per queue and estimate above it.';
comment on column queue_health.settings.window_read_limit is 'pg-boss v12: at most this many of a queue''s jobs created, and of those finished, since the previous capture are read per capture (the newest). Above it the counts are extrapolated from the time those jobs span, and the percentiles come from them; cursor.capped says which. Keeps a capture''s cost fixed however busy the queue.';
comment on column queue_health.settings.unchanged_reread_interval is 'A pgmq queue whose table shows no writes since the previous capture (statistics, msg_id sequence, next visibility time), or a pg-boss 12 queue (statistics of its table, no job created or finished, no delayed job due), is not read again until this long after it was last read while some session runs a statement longer than this (whose statistics are not published until it ends), or five times this long otherwise; its snapshot repeats the last one. 0 reads every queue on every capture.';
comment on column queue_health.settings.excluded_pgboss_schemas is 'pg-boss schemas never sampled (Supabase Storage keeps its own pg-boss in pgboss_v10).';
comment on column queue_health.settings.pgboss_cache_max_age is 'pg-boss cached queue counts older than this are not trusted; the sampler counts instead.';
comment on column queue_health.settings.warning_oldest_ready_age_s is 'queue_status shows warning when the oldest ready message is at least this old, seconds.';
comment on column queue_health.settings.critical_oldest_ready_age_s is 'queue_status shows critical when the oldest ready message is at least this old, seconds.';
comment on column queue_health.settings.warning_error_rate is 'queue_status shows warning when failed / (completed + failed) of the latest snapshot reaches this (0..1).';
comment on column queue_health.settings.stale_after_intervals is 'A queue''s snapshot (and the monitor) is stale when older than this many capture intervals.';
comment on column queue_health.settings.realtime_payload is 'What each capture broadcasts to Realtime (every broadcast is also stored in realtime.messages, ~3 days on hosted Supabase): slim (payload v2: per queue its ids and the gauges the dashboard shows), full (payload v1: the whole per-queue row), off (nothing; dashboards poll). docs/realtime.md has the bytes of each.';
comment on column queue_health.settings.max_rules_per_project is 'Quota: at most this many alert rules per project (SQLSTATE 54000 past it). docs/alerts.md "Quotas and bounds".';
comment on column queue_health.settings.max_channels_per_project is 'Quota: at most this many channels per project (SQLSTATE 54000 past it).';
comment on column queue_health.settings.max_silences_per_project is 'Quota: at most this many silences per project that have not ended yet (SQLSTATE 54000 past it).';
comment on column queue_health.settings.min_group_interval is 'Tenants (project admins) may not set group_interval (rule or project default) below this; the operator (service role, postgres) may.';
comment on column queue_health.settings.min_repeat_interval is 'Tenants may not set repeat_interval (rule or project default) below this; the operator may.';
comment on column queue_health.settings.max_alert_interval is 'No one may set group_wait, group_interval, repeat_interval, for_duration or keep_firing_for above this (windows are bounded by raw_retention instead).';
comment on column queue_health.settings.alert_evaluation_budget is 'Time budget of one alert evaluation: projects are evaluated one at a time, and those not started within the budget are deferred to the next evaluation (first in line then), which the result and capture_run say.';
comment on column queue_health.settings.claim_per_project_limit is 'claim_notifications() hands at most this many rows of one project to one claim (rows are taken round-robin across projects, then channels).';
comment on constraint settings_quotas_positive on queue_health.settings is 'Quotas and the per-project claim cap are at least 1.';
comment on constraint settings_alert_intervals_ordered on queue_health.settings is 'Minimums are not negative; the maximum is at least the minimums and a minute, and at most 366 days (so now() + it never leaves the timestamp range).';
comment on constraint settings_alert_evaluation_budget_positive on queue_health.settings is 'The evaluation budget is between 100 ms and 10 minutes.';
comment on constraint settings_single_row on queue_health.settings is 'Only the row with id = true may exist.';
comment on constraint settings_retention_positive on queue_health.settings is 'Retention periods are positive; raw rows live at least 2 hours so the hourly rollup, computed from raw rows, always finds them.';
comment on constraint settings_capture_interval_positive on queue_health.settings is 'Captures run at most once a second.';
comment on constraint settings_exact_count_limit_non_negative on queue_health.settings is 'The exact-count bound is zero or more.';
comment on constraint settings_window_read_limit_positive on queue_health.settings is 'At least one job is read per window.';
comment on constraint settings_unchanged_reread_interval_non_negative on queue_health.settings is 'The re-read interval of unchanged queues is zero (always read) or more.';
comment on constraint settings_realtime_payload_known on queue_health.settings is 'The Realtime payload is slim, full or off.';
comment on constraint settings_thresholds_ordered on queue_health.settings is 'The warning age is at most the critical age; the error rate is a fraction; stale needs at least one interval.';

insert into queue_health.settings default values;

-- in 20261126100200_queue_health_capture.sql). anon gets nothing in this schema.

grant usage on schema queue_health to authenticated, service_role;
alter table queue_health.project enable row level security;
alter table queue_health.project_member enable row level security;
alter table queue_health.project_queue_map enable row level security;
alter table queue_health.queue enable row level security;
alter table queue_health.metric enable row level security;
alter table queue_health.settings enable row level security;

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

create policy "Settings are visible to members of any project"
  on queue_health.settings for select to authenticated
  using ((select queue_health.is_member_of_any()));
revoke all on queue_health.project, queue_health.project_member, queue_health.project_queue_map, queue_health.queue, queue_health.metric, queue_health.settings from public, anon, authenticated;
grant select on queue_health.project, queue_health.project_member, queue_health.project_queue_map, queue_health.queue, queue_health.metric, queue_health.settings to authenticated;
grant update (name) on queue_health.project to authenticated;
grant insert, update (role), delete on queue_health.project_member to authenticated;
grant all on queue_health.project, queue_health.project_member, queue_health.project_queue_map, queue_health.queue, queue_health.metric, queue_health.settings to service_role;

create function queue_health._settings()
returns queue_health.settings
stable
security definer
set search_path = ''
language sql
as $$
  select s from queue_health.settings s where s.id
$$;
comment on function queue_health._settings() is 'The settings row, for validation triggers that run as a caller who may not read it.';
revoke execute on function queue_health._settings() from public, anon, authenticated;
grant execute on function queue_health._settings() to authenticated, service_role;

create function queue_health._is_tenant()
returns boolean
stable
set search_path = ''
language sql
as $$
  -- The operator is the owner (postgres) or the service role, both members of service_role on
  -- Supabase; everyone else (authenticated users, project admins) is a tenant.
  select not pg_catalog.pg_has_role(current_user, 'service_role', 'member')
$$;
comment on function queue_health._is_tenant() is 'True when the current role is a tenant (not the service role, nor a member of it such as postgres): tenants are held to the minimum notification intervals.';
revoke execute on function queue_health._is_tenant() from public, anon;
grant execute on function queue_health._is_tenant() to authenticated, service_role;
alter table queue_health.settings
  add column max_email_recipients int not null default 50,
  add constraint settings_max_email_recipients_range check (max_email_recipients between 1 and 50);
comment on column queue_health.settings.max_email_recipients is 'Most recipients an email channel may list (1-50; 50 is also Resend''s limit per email). Checked when a channel is created or changed.';
comment on constraint settings_max_email_recipients_range on queue_health.settings is 'An email channel lists 1 to 50 recipients at most: Resend takes no more per email.';

-- The schema's release. Every release's migrations end by replacing this function, so
-- `select queue_health.version()` says which release a database has (the CLI's `status --db-url`).
create function queue_health.version()
returns text
immutable
set search_path = ''
language sql
as $$
  select '0.1.0'
$$;
comment on function queue_health.version() is 'The Queue Health release whose migrations this database has, e.g. 0.1.0.';
revoke execute on function queue_health.version() from public, anon, authenticated;
grant execute on function queue_health.version() to service_role;

-- What uninstall() may take away besides the schema: the extensions the install created itself
-- because they were absent (pg_net in the dispatch migration, pg_cron in the schedule migration).
-- An extension the user already had is never recorded, so uninstall() never drops it.
create table queue_health.uninstall_extension (
  name text primary key,
  created_at timestamptz not null default now()
);
comment on table queue_health.uninstall_extension is 'Extensions the install created because they were absent (pg_net, pg_cron): uninstall() drops these, and only these, when nothing else uses them. The owner''s only.';
comment on column queue_health.uninstall_extension.name is 'The extension''s name (pg_extension.extname).';
comment on column queue_health.uninstall_extension.created_at is 'When the install created it.';
alter table queue_health.uninstall_extension enable row level security;
revoke all on queue_health.uninstall_extension from public, anon, authenticated, service_role;
