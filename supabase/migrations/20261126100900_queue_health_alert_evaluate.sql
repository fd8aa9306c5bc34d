-- Queue Health: alert evaluation. evaluate_alerts() reads each rule's value from the metric
-- history (_alert_readings), moves one alert row per (rule, queue) through
-- inactive -> pending -> firing -> resolved, keeps every transition in alert_event, and hands
-- notified changes to the outbox; one project's failure never stops another's.

create type queue_health.alert_state as enum ('inactive', 'pending', 'firing', 'resolved');
comment on type queue_health.alert_state is 'State of one (rule, queue) alert: inactive -> pending (condition true, waiting out `for`) -> firing -> resolved.';

create type queue_health.alert_window as (
  covered boolean,            -- the latest snapshot lies in (p_now - window, p_now]
  enqueued bigint,            -- sums over the window's snapshots (null: not covered, or no value now)
  completed bigint,
  failed bigint,
  retried bigint,
  dead_lettered bigint,
  interval_s double precision,
  idle bigint,                -- snapshots in the window with nothing waiting (ready + in flight = 0)
  completed_first bigint,     -- completed in the first half of the window
  completed_second bigint,    -- completed in the second half
  first_found boolean,        -- a snapshot within the look-back before the window began exists
  first_depth bigint          -- its depth
);
comment on type queue_health.alert_window is 'What _alert_readings() sums for one queue over one window (shared by the rules with that window).';

create table queue_health.alert (
  id uuid primary key default gen_random_uuid(),
  rule_id uuid not null references queue_health.alert_rule (id) on delete cascade,
  project_id text not null references queue_health.project (id) on delete cascade,
  source text not null,
  source_schema text not null,
  queue_name text not null,
  state queue_health.alert_state not null default 'inactive',
  value double precision,
  started_at timestamptz,
  fired_at timestamptz,
  resolved_at timestamptz,
  keep_firing_since timestamptz,
  last_evaluated_at timestamptz not null,
  created_at timestamptz not null default now(),
  unique (rule_id, source, source_schema, queue_name),
  constraint alert_started_at_when_active check (state not in ('pending', 'firing') or started_at is not null),
  constraint alert_fired_at_when_firing check (state <> 'firing' or fired_at is not null),
  constraint alert_resolved_at_only_when_resolved check ((state = 'resolved') = (resolved_at is not null)),
  constraint alert_keep_firing_since_only_when_firing check (keep_firing_since is null or state = 'firing')
);
comment on table queue_health.alert is 'One row per (rule, queue) that has ever been active: its current state and the last value seen. Project-level alerts (monitor_stale) use ''*'' for source, source_schema and queue_name.';
comment on column queue_health.alert.id is 'Alert id (alert_id in notification payloads).';
comment on column queue_health.alert.rule_id is 'The rule.';
comment on column queue_health.alert.project_id is 'The rule''s project.';
comment on column queue_health.alert.source is 'Queue source, ''*'' for project-level alerts.';
comment on column queue_health.alert.source_schema is 'Queue source schema, ''*'' for project-level alerts.';
comment on column queue_health.alert.queue_name is 'Queue name, ''*'' for project-level alerts.';
comment on column queue_health.alert.state is 'inactive | pending | firing | resolved.';
comment on column queue_health.alert.value is 'The value read at the last evaluation while pending or firing, or at the transition to inactive/resolved (null: no data).';
comment on column queue_health.alert.started_at is 'When the condition became true (start of pending); null when inactive.';
comment on column queue_health.alert.fired_at is 'When the alert started firing.';
comment on column queue_health.alert.resolved_at is 'When the alert resolved; set only in state resolved.';
comment on column queue_health.alert.keep_firing_since is 'First evaluation with the condition false while firing (keep_firing_for counts from here).';
comment on column queue_health.alert.last_evaluated_at is 'p_now of the last evaluation that found the alert active or pending/firing (quiet alerts are not rewritten); older evaluations are ignored.';
comment on column queue_health.alert.created_at is 'When the row was created.';
comment on constraint alert_started_at_when_active on queue_health.alert is 'A pending or firing alert knows when its condition became true.';
comment on constraint alert_fired_at_when_firing on queue_health.alert is 'A firing alert knows when it fired.';
comment on constraint alert_resolved_at_only_when_resolved on queue_health.alert is 'resolved_at is set exactly when the state is resolved.';
comment on constraint alert_keep_firing_since_only_when_firing on queue_health.alert is 'keep_firing_since only applies to firing alerts.';

create index alert_project_state_idx on queue_health.alert (project_id, state);

-- Every evaluation rewrites each pending and firing alert (value, last_evaluated_at): leave room on
-- each page so those are HOT updates (no index entries to write; measured in docs/benchmarks.md),
-- and vacuum the small, busy table often.
alter table queue_health.alert set (fillfactor = 50, autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.2);

create table queue_health.alert_event (
  id bigint generated always as identity primary key,
  alert_id uuid not null references queue_health.alert (id) on delete cascade,
  rule_id uuid not null,
  project_id text not null,
  source text not null,
  source_schema text not null,
  queue_name text not null,
  from_state queue_health.alert_state not null,
  to_state queue_health.alert_state not null,
  value double precision,
  threshold double precision,
  at timestamptz not null,
  constraint alert_event_changes_state check (from_state <> to_state)
);
comment on table queue_health.alert_event is 'Every alert state transition, with the value and threshold seen at that instant.';
comment on column queue_health.alert_event.id is 'Event id (increasing).';
comment on column queue_health.alert_event.alert_id is 'The alert that changed state.';
comment on column queue_health.alert_event.rule_id is 'Its rule.';
comment on column queue_health.alert_event.project_id is 'Its project.';
comment on column queue_health.alert_event.source is 'Queue source (''*'': project-level).';
comment on column queue_health.alert_event.source_schema is 'Queue source schema (''*'': project-level).';
comment on column queue_health.alert_event.queue_name is 'Queue name (''*'': project-level).';
comment on column queue_health.alert_event.from_state is 'State before.';
comment on column queue_health.alert_event.to_state is 'State after.';
comment on column queue_health.alert_event.value is 'Value read when the transition happened.';
comment on column queue_health.alert_event.threshold is 'The rule''s threshold at that time.';
comment on column queue_health.alert_event.at is 'p_now of the evaluation that made the transition.';

create index alert_event_alert_at_idx on queue_health.alert_event (alert_id, at desc);

create index alert_event_project_at_idx on queue_health.alert_event (project_id, at desc);

create index alert_event_at_idx on queue_health.alert_event (at);

create function queue_health._format_number(p_value double precision)
returns text
immutable
set search_path = ''
language sql
as $$
  select case
    when p_value is null then 'n/a'
    when p_value in ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8) then p_value::text
    when abs(p_value) >= 100 then round(p_value::numeric)::text
    else trim_scale(round(p_value::numeric, 3))::text
  end
$$;
comment on function queue_health._format_number(double precision) is 'A number as people read it in a notification: whole above 100, at most 3 decimals below.';
revoke execute on function queue_health._format_number(double precision) from public, anon, authenticated;

create function queue_health._render(
  p_template text, p_rule queue_health.alert_rule, p_alert queue_health.alert)
returns text
stable
set search_path = ''
language sql
as $$
  select replace(replace(replace(replace(replace(replace(replace(replace(p_template,
    '{{rule}}', p_rule.name),
    '{{queue}}', case when p_alert.queue_name = '*' then 'all queues' else p_alert.queue_name end),
    '{{source}}', case when p_alert.source = '*' then 'all sources' else p_alert.source end),
    '{{value}}', queue_health._format_number(p_alert.value)),
    '{{threshold}}', queue_health._format_number(p_rule.threshold)),
    '{{severity}}', p_rule.severity::text),
    '{{condition}}', p_rule.condition),
    '{{project}}', p_rule.project_id)
$$;
comment on function queue_health._render(text, queue_health.alert_rule, queue_health.alert) is 'Fills an annotation template ({{rule}}, {{queue}}, {{source}}, {{value}}, {{threshold}}, {{severity}}, {{condition}}, {{project}}); project-level alerts render {{queue}} as ''all queues''.';
revoke execute on function queue_health._render(text, queue_health.alert_rule, queue_health.alert) from public, anon, authenticated;

-- The alert readings: one statement for every (rule, queue), composed from the builders below
-- (_alert_sql_*: each returns one named part of its text) and run by _alert_readings(). Its
-- parameters, in every part: $1 p_now, $2 p_only_monitor, $3 p_project_id, $4 the capture
-- interval, $5 the look-back, $6 p_now - look-back, $7 the oldest time any window's probes read.

create function queue_health._alert_sql_rules_of_queue()
returns text
immutable
set search_path = ''
language sql
as $$
  -- The enabled rules whose selector matches queue q (no_data also watches dropped queues), and
  -- what they need read: the latest snapshot, the newest snapshot however old, the windows.
  select $sql$
     select array_agg(r.id) as rule_ids,
            bool_or(r.condition <> 'no_data') as needs_latest,
            bool_or(r.condition = 'snapshot_age_s') as needs_any_snapshot,
            -- the distinct windows to sum, and those that also need the snapshot before them
            array_agg(distinct r.window_duration) filter (
              where r.window_duration is not null
                and r.condition in ('enqueued', 'completed', 'failed', 'retried', 'dead_lettered',
                                    'dead_letters', 'enqueue_rate', 'complete_rate', 'fail_rate',
                                    'error_rate', 'failure_rate', 'stalled', 'growing_backlog')) as windows,
            array_agg(distinct r.window_duration) filter (
              where r.window_duration is not null and r.condition = 'growing_backlog') as mid_windows
       from queue_health.alert_rule r
      where r.project_id = q.project_id and r.enabled and r.condition <> 'monitor_stale'
        and (q.dropped_at is null or r.condition = 'no_data')
        and (r.source is null or q.source = r.source)
        and (r.source_schema is null or q.source_schema = r.source_schema)
        and (r.queue_name is null or q.queue_name = r.queue_name)
        and (r.queue_pattern is null or q.queue_name like r.queue_pattern)
        and q.labels @> r.labels
  $sql$
$$;
comment on function queue_health._alert_sql_rules_of_queue() is 'Part of the alert readings'' statement: the enabled rules matching queue q (rs), with the windows they sum.';
revoke execute on function queue_health._alert_sql_rules_of_queue() from public, anon, authenticated;

create function queue_health._alert_sql_latest_snapshot()
returns text
immutable
set search_path = ''
language sql
as $$
  -- The newest snapshot within the look-back: the registry's copy of the queue's newest row
  -- (totals_at, kept by capture()) when that row is at or before p_now, else read from metric
  -- (an evaluation at an earlier p_now, rows inserted other than by capture).
  select $sql$
      select q.totals_at as captured_at, q.ready, q.in_flight, q.delayed, q.depth,
             q.oldest_ready_age_s, q.enqueued, q.completed, q.failed, q.retried, q.dead_lettered,
             q.wait_p50_ms, q.wait_p95_ms, q.run_p50_ms, q.run_p95_ms, q.sample_ms, q.interval_s,
             q.cum_enqueued, q.cum_completed, q.cum_failed, q.cum_retried, q.cum_dead_lettered,
             q.cum_interval_s, q.cum_idle
       where rs.needs_latest and q.totals_at <= $1 and q.totals_at > $6
      union all
      (select m.captured_at, m.ready, m.in_flight, m.delayed, m.depth,
              m.oldest_ready_age_s, m.enqueued, m.completed, m.failed, m.retried, m.dead_lettered,
              m.wait_p50_ms, m.wait_p95_ms, m.run_p50_ms, m.run_p95_ms, m.sample_ms, m.interval_s,
              m.cum_enqueued, m.cum_completed, m.cum_failed, m.cum_retried, m.cum_dead_lettered,
              m.cum_interval_s, m.cum_idle
         from queue_health.metric m
        where rs.needs_latest and not coalesce(q.totals_at <= $1, false)
          and m.queue_name = q.queue_name and m.source = q.source and m.source_schema = q.source_schema
          and m.captured_at <= $1 and m.captured_at > $6
        order by m.captured_at desc
        limit 1)
  $sql$
$$;
comment on function queue_health._alert_sql_latest_snapshot() is 'Part of the alert readings'' statement: queue q''s newest snapshot within the look-back (l), from the registry or metric.';
revoke execute on function queue_health._alert_sql_latest_snapshot() from public, anon, authenticated;

create function queue_health._alert_sql_window_sums()
returns text
immutable
set search_path = ''
language sql
as $$
  -- Per distinct window of the queue's rules (sums[i] for windows[i]), from the running totals
  -- (metric.cum_*): a sum over (p_now - window, p_now] is the latest snapshot's total minus the
  -- total of the snapshot before the window (b); three index probes per window, however many
  -- snapshots it holds. b, within the look-back, is also the snapshot stalled / growing_backlog
  -- compare with. Without b (the queue is younger than the window, or retention removed older
  -- rows) the base is the window's oldest row's total before its own values (o).
  select $sql$
      select array_agg(row(t.covered,
                           case when t.covered and l.enqueued is not null then l.cum_enqueued - t.base_enqueued end,
                           case when t.covered and l.completed is not null then l.cum_completed - t.base_completed end,
                           case when t.covered and l.failed is not null then l.cum_failed - t.base_failed end,
                           case when t.covered and l.retried is not null then l.cum_retried - t.base_retried end,
                           case when t.covered and l.dead_lettered is not null then l.cum_dead_lettered - t.base_dead_lettered end,
                           case when t.covered then l.cum_interval_s - t.base_interval_s end,
                           case when t.covered then l.cum_idle - t.base_idle end,
                           case when t.covered then coalesce(mid.cum_completed, t.base_completed) - t.base_completed else 0 end,
                           case when t.covered then l.cum_completed - coalesce(mid.cum_completed, t.base_completed) else 0 end,
                           coalesce(b.captured_at > $1 - d.window_duration - $5, false),
                           case when b.captured_at > $1 - d.window_duration - $5 then b.depth end
                          )::queue_health.alert_window
                       order by d.i) as sums
        from unnest(rs.windows) with ordinality as d(window_duration, i)
        left join lateral (
          select m.captured_at, m.depth, m.cum_enqueued, m.cum_completed, m.cum_failed, m.cum_retried,
                 m.cum_dead_lettered, m.cum_interval_s, m.cum_idle
            from queue_health.metric m
           where m.queue_name = q.queue_name and m.source = q.source and m.source_schema = q.source_schema
             and m.captured_at <= $1 - d.window_duration
             -- Within the look-back before the window: an older b would only give the sums'
             -- base, which o gives as well (the running totals before o's own counts are those
             -- of the row before it). The last two bounds are implied, but constants: the
             -- planner prunes the partitions ahead of p_now and those older than every window
             -- before planning them.
             and m.captured_at > $1 - d.window_duration - $5
             and m.captured_at <= $1
             and m.captured_at > $7
           order by m.captured_at desc
           limit 1) b on true
        left join lateral (
          select m.cum_enqueued - coalesce(m.enqueued, 0) as cum_enqueued,
                 m.cum_completed - coalesce(m.completed, 0) as cum_completed,
                 m.cum_failed - coalesce(m.failed, 0) as cum_failed,
                 m.cum_retried - coalesce(m.retried, 0) as cum_retried,
                 m.cum_dead_lettered - coalesce(m.dead_lettered, 0) as cum_dead_lettered,
                 m.cum_interval_s - coalesce(m.interval_s, 0) as cum_interval_s,
                 m.cum_idle - case when coalesce(m.ready, 0) = 0 and coalesce(m.in_flight, 0) = 0 then 1 else 0 end as cum_idle
            from queue_health.metric m
           where b.captured_at is null and l.captured_at > $1 - d.window_duration
             and m.queue_name = q.queue_name and m.source = q.source and m.source_schema = q.source_schema
             and m.captured_at > $1 - d.window_duration and m.captured_at <= $1
             and m.captured_at > $7 -- implied, a constant (as in b)
           order by m.captured_at
           limit 1) o on true
       cross join lateral (
         select l.captured_at > $1 - d.window_duration as covered,
                coalesce(b.cum_enqueued, o.cum_enqueued) as base_enqueued,
                coalesce(b.cum_completed, o.cum_completed) as base_completed,
                coalesce(b.cum_failed, o.cum_failed) as base_failed,
                coalesce(b.cum_retried, o.cum_retried) as base_retried,
                coalesce(b.cum_dead_lettered, o.cum_dead_lettered) as base_dead_lettered,
                coalesce(b.cum_interval_s, o.cum_interval_s) as base_interval_s,
                coalesce(b.cum_idle, o.cum_idle) as base_idle) t
        -- growing_backlog: completions up to the window's midpoint
        left join lateral (
          select m.cum_completed
            from queue_health.metric m
           where d.window_duration = any (rs.mid_windows) and t.covered
             and m.queue_name = q.queue_name and m.source = q.source and m.source_schema = q.source_schema
             and m.captured_at <= $1 - d.window_duration / 2
             and m.captured_at > $1 - d.window_duration
             and m.captured_at <= $1 and m.captured_at > $7 -- as in b
           order by m.captured_at desc
           limit 1) mid on true
       where l.captured_at is not null
  $sql$
$$;
comment on function queue_health._alert_sql_window_sums() is 'Part of the alert readings'' statement: queue q''s sums over each distinct window of its rules (w.sums, one queue_health.alert_window per rs.windows), from the running totals.';
revoke execute on function queue_health._alert_sql_window_sums() from public, anon, authenticated;

create function queue_health._alert_sql_probes()
returns text
immutable
set search_path = ''
language sql
as $$
  -- Queue by queue: each queue's latest snapshot is read once and shared by all the rules that
  -- watch it, and each distinct window of those rules is summed once. The per-queue work sits in
  -- laterals and arrays rather than in CTEs joined to each other: the planner cannot estimate how
  -- many queues a selector matches (it guesses 1 row) and would join such CTEs by nested loops,
  -- quadratic in the number of queues.
  select format($sql$
    select q.source, q.source_schema, q.queue_name, q.last_seen_at, q.dropped_at, rs.rule_ids,
           l.captured_at, l.ready, l.in_flight, l.delayed, l.depth, l.oldest_ready_age_s, l.enqueued,
           l.completed, l.failed, l.retried, l.dead_lettered, l.wait_p50_ms, l.wait_p95_ms,
           l.run_p50_ms, l.run_p95_ms, l.sample_ms, l.interval_s,
           -- snapshot_age_s: the newest snapshot, however old
           -- (a function, planned only when called: rarely, and its probe spans every partition)
           case when l.captured_at is null and rs.needs_any_snapshot
                then queue_health._newest_snapshot_at(q.source, q.source_schema, q.queue_name, $1)
           else l.captured_at end as snapshot_at,
           rs.windows, w.sums
      from queue_health.queue q
     cross join lateral (%s) rs
      left join lateral (%s) l on true
      left join lateral (%s) w on true
     where not $2 and rs.rule_ids is not null
       and ($3 is null or q.project_id = $3)
  $sql$, queue_health._alert_sql_rules_of_queue(), queue_health._alert_sql_latest_snapshot(),
    queue_health._alert_sql_window_sums())
$$;
comment on function queue_health._alert_sql_probes() is 'Part of the alert readings'' statement: one row per queue watched by an enabled rule (probe), with its rules, latest snapshot and window sums.';
revoke execute on function queue_health._alert_sql_probes() from public, anon, authenticated;

create function queue_health._alert_sql_window_count()
returns text
immutable
set search_path = ''
language sql
as $$
  -- x: for rule r on probe p, w: the sums over the rule's window; count: what a count, rate or
  -- error rate reads (the window's sum, else the latest snapshot's); seconds: the time it covers;
  -- finished: jobs completed or failed in it.
  select $sql$
       select ix.w,
              case when r.window_duration is null then
                case when r.condition in ('enqueued', 'enqueue_rate') then p.enqueued::float8
                     when r.condition in ('completed', 'complete_rate') then p.completed::float8
                     when r.condition in ('failed', 'fail_rate', 'error_rate', 'failure_rate') then p.failed::float8
                     when r.condition = 'retried' then p.retried::float8
                     else p.dead_lettered::float8
                end
              else
                case when r.condition in ('enqueued', 'enqueue_rate') then (ix.w).enqueued::float8
                     when r.condition in ('completed', 'complete_rate') then (ix.w).completed::float8
                     when r.condition in ('failed', 'fail_rate', 'error_rate', 'failure_rate') then (ix.w).failed::float8
                     when r.condition = 'retried' then (ix.w).retried::float8
                     else (ix.w).dead_lettered::float8
                end
              end as count,
              case when r.window_duration is null then p.interval_s else (ix.w).interval_s end as seconds,
              case when r.window_duration is null then (coalesce(p.completed, 0) + coalesce(p.failed, 0))::float8
                   else (coalesce((ix.w).completed, 0) + coalesce((ix.w).failed, 0))::float8
              end as finished
         from (select p.sums[array_position(p.windows, r.window_duration)] as w) ix
  $sql$
$$;
comment on function queue_health._alert_sql_window_count() is 'Part of the alert readings'' statement: for rule r on queue p, the window''s sums and what a count, rate or error rate reads (x: w, count, seconds, finished).';
revoke execute on function queue_health._alert_sql_window_count() from public, anon, authenticated;

create function queue_health._alert_sql_value()
returns text
immutable
set search_path = ''
language sql
as $$
  -- v: what rule r reads on queue p, by condition family: the built-in silences (no_data,
  -- snapshot_age_s), the latest snapshot's gauges, the counts and rates of x, and the built-ins
  -- stalled and growing_backlog.
  select $sql$
       select case
           when r.condition = 'no_data' then
             (extract(epoch from $1 - p.last_seen_at) / extract(epoch from $4))::float8
           when r.condition = 'snapshot_age_s' then extract(epoch from $1 - p.snapshot_at)::float8
           when p.captured_at is null then null
           when r.condition = 'ready' then p.ready::float8
           when r.condition = 'in_flight' then p.in_flight::float8
           when r.condition = 'delayed' then p.delayed::float8
           when r.condition = 'depth' then p.depth::float8
           when r.condition = 'oldest_ready_age_s' then p.oldest_ready_age_s
           when r.condition = 'wait_p50_ms' then p.wait_p50_ms
           when r.condition = 'wait_p95_ms' then p.wait_p95_ms
           when r.condition = 'run_p50_ms' then p.run_p50_ms
           when r.condition = 'run_p95_ms' then p.run_p95_ms
           when r.condition = 'sample_ms' then p.sample_ms
           when r.condition in ('enqueued', 'completed', 'failed', 'retried', 'dead_lettered', 'dead_letters') then x.count
           when r.condition in ('enqueue_rate', 'complete_rate', 'fail_rate') then x.count / nullif(x.seconds, 0)
           when r.condition in ('error_rate', 'failure_rate') then x.count / nullif(x.finished, 0)
           -- the jobs waiting now, when work waited at every snapshot of the window; else 0
           when r.condition = 'stalled' then
             case when (x.w).idle = 0 and coalesce((x.w).completed, 0) = 0
                  then coalesce(p.ready, 0)::float8 + coalesce(p.in_flight, 0)::float8
                  when (x.w).covered then 0 end
           when r.condition = 'growing_backlog' and (x.w).first_found then (p.depth - (x.w).first_depth)::float8
         end as value
  $sql$
$$;
comment on function queue_health._alert_sql_value() is 'Part of the alert readings'' statement: the value rule r reads on queue p (v), per condition.';
revoke execute on function queue_health._alert_sql_value() from public, anon, authenticated;

create function queue_health._alert_sql_eligible()
returns text
immutable
set search_path = ''
language sql
as $$
  -- Whether the condition's preconditions hold for rule r on queue p (null: no recent snapshot,
  -- the state is unknown).
  select $sql$
           case
             when r.condition = 'no_data' then true
             when r.condition = 'snapshot_age_s' then v.value is not null
             when p.captured_at is null then null
             when r.condition in ('error_rate', 'failure_rate') then
               v.value is not null and x.finished >= greatest(r.min_volume, 1)
             when r.condition = 'stalled' then
               -- Work waiting (ready + in flight; delayed jobs are not due) at every snapshot of
               -- the window, nothing completed in it, and the queue was already observed when the
               -- window began.
               coalesce((x.w).covered and coalesce((x.w).completed, 0) = 0 and (x.w).first_found, false)
             when r.condition = 'growing_backlog' then
               -- Depth grew from the window's start to now, while completions in the second half
               -- of the window did not exceed those in the first half.
               coalesce(v.value is not null and (x.w).completed_second <= (x.w).completed_first, false)
             when r.condition in ('ready', 'in_flight', 'delayed', 'depth', 'oldest_ready_age_s',
                                  'wait_p50_ms', 'wait_p95_ms', 'run_p50_ms', 'run_p95_ms', 'sample_ms',
                                  'enqueued', 'completed', 'failed', 'retried', 'dead_lettered',
                                  'dead_letters', 'enqueue_rate', 'complete_rate', 'fail_rate') then
               v.value is not null
             else false
           end
  $sql$
$$;
comment on function queue_health._alert_sql_eligible() is 'Part of the alert readings'' statement: whether rule r''s preconditions hold on queue p (null: unknown).';
revoke execute on function queue_health._alert_sql_eligible() from public, anon, authenticated;

create function queue_health._alert_sql_monitor_stale()
returns text
immutable
set search_path = ''
language sql
as $$
  -- monitor_stale: one project-level reading per rule, capture intervals since the last ok/partial
  -- capture finished; null (unknown) before the first one, on a fresh installation whose
  -- capture_status says it never captured.
  select $sql$
    select r.id, '*', '*', '*', r.comparator, r.threshold, m.value,
           case when m.value is not null then true end, false
      from queue_health.alert_rule r
     cross join (
       select (extract(epoch from $1 - (
                 select coalesce(c.finished_at, c.started_at)
                   from queue_health.capture_run c
                  where c.status::text in ('ok', 'partial') and c.started_at <= $1
                  order by c.started_at desc
                  limit 1))
               / extract(epoch from $4))::float8 as value) m
     where r.enabled and r.condition = 'monitor_stale'
       and ($3 is null or r.project_id = $3)
  $sql$
$$;
comment on function queue_health._alert_sql_monitor_stale() is 'Part of the alert readings'' statement: the monitor_stale rules'' project-level readings.';
revoke execute on function queue_health._alert_sql_monitor_stale() from public, anon, authenticated;

create function queue_health._alert_sql_readings()
returns text
immutable
set search_path = ''
language sql
as $$
  -- One statement for every (rule, queue): a handful of index probes per queue, no function call
  -- per pair. Every read is an index range on metric (queue_name, source, source_schema,
  -- captured_at) bounded in time, so partitions outside [p_now - window - look-back, p_now] are
  -- pruned.
  select format($sql$
  select array_agg(t::queue_health.alert_reading) from (
  with probe as materialized (%s),
  reading as (
    select r.id as rule_id, p.source, p.source_schema, p.queue_name, r.comparator, r.threshold, v.value,
           %s as eligible,
           r.condition = 'no_data' and coalesce(p.dropped_at <= $1, false) as forced
      from probe p
     cross join lateral unnest(p.rule_ids) as pr(id)
      join queue_health.alert_rule r on r.id = pr.id
     cross join lateral (%s) x
     cross join lateral (%s) v
    union all
    %s
  )
  select rd.rule_id, rd.source, rd.source_schema, rd.queue_name, rd.value, rd.eligible, rd.forced,
         coalesce(rd.eligible and (rd.forced or case rd.comparator
           when '>' then rd.value > rd.threshold
           when '>=' then rd.value >= rd.threshold
           when '<' then rd.value < rd.threshold
           when '<=' then rd.value <= rd.threshold
           when '==' then rd.value = rd.threshold
           when '!=' then rd.value <> rd.threshold
         end), false)
    from reading rd
  ) t
  $sql$, queue_health._alert_sql_probes(), queue_health._alert_sql_eligible(),
    queue_health._alert_sql_window_count(), queue_health._alert_sql_value(),
    queue_health._alert_sql_monitor_stale())
$$;
comment on function queue_health._alert_sql_readings() is 'The alert readings'' statement (run by _alert_readings()): value, eligible, forced and active for every enabled rule and every queue it matches, as one array of queue_health.alert_reading. Parameters: $1 p_now, $2 p_only_monitor, $3 p_project_id, $4 capture interval, $5 look-back, $6 p_now - look-back, $7 lower bound of every window''s probes.';
revoke execute on function queue_health._alert_sql_readings() from public, anon, authenticated;

create type queue_health.alert_reading as (
  rule_id uuid, source text, source_schema text, queue_name text, value double precision,
  eligible boolean, forced boolean, active boolean);
comment on type queue_health.alert_reading is 'One row of _alert_readings(): what one rule reads on one queue (''*'' for a project-level rule) at one time.';

create function queue_health._alert_readings(p_now timestamptz, p_only_monitor boolean, p_project_id text default null)
returns table (
  rule_id uuid, source text, source_schema text, queue_name text, value double precision,
  eligible boolean, forced boolean, active boolean)
-- Volatile: it prepares its statement, which a stable function may not.
volatile
set search_path = ''
-- The planner's cost for this statement (thousands of index probes) passes jit_above_cost, and
-- compiling it takes far longer than running it.
set jit = off
-- One plan per session, kept: custom plans (the default for a statement with parameters) plan it
-- again on every call; the capture runner calls it every 10 s for a minute in one session. The
-- generic plan prunes the metric partitions when it starts instead of when it is planned (a new
-- session's first call costs a little more, every later one less).
set plan_cache_mode = force_generic_plan
language plpgsql
as $$
declare
  -- The statement's name, from its text: immutable, so computed when this line is first planned
  -- in the session, not on every call.
  v_name text := 'queue_health_' || md5(queue_health._alert_sql_readings());
  v_interval interval := queue_health._capture_interval();
  -- Like Prometheus' look-back: a snapshot older than max(5 min, 3 capture intervals) is no data.
  -- Unlike Prometheus, no data is not recovery: the reading is unknown (eligible null) and the
  -- alert keeps its state; no_data and monitor_stale are the rules that report the silence.
  v_lookback interval := greatest(interval '5 minutes', v_interval * 3);
  -- The longest window of the enabled rules: with it, the probes for the snapshot before a
  -- window have a constant lower bound, and the partitions older than every window (with 48 h of
  -- raw retention, two or three days of them) are pruned when the plan starts.
  v_max_window interval := coalesce((
      select max(r.window_duration) from queue_health.alert_rule r
       where r.enabled and r.window_duration is not null
         and (p_project_id is null or r.project_id = p_project_id)), interval '0');
  -- The probes' constant lower bounds, as parameters of the statement: the generic plan prunes
  -- the partitions older than them once, when it starts, instead of per probe.
  v_recent timestamptz := p_now - v_lookback;
  v_windows_since timestamptz := p_now - v_max_window - v_lookback;
  v_args text;
  v_rows queue_health.alert_reading[];
begin
  -- Prepared once per session under a name derived from its text, as the samplers' statements
  -- (_may_prepare()), and run with EXECUTE, which cannot take USING parameters: they go in as
  -- literals (exact: timestamps and intervals print and read back in the same session's
  -- settings). A statement the session does not hold (its first call, after DISCARD ALL /
  -- DEALLOCATE) is prepared when EXECUTE says so; past the session's limit it is planned on every
  -- call. The rows come back as one array: EXECUTE of a prepared statement cannot feed RETURN
  -- QUERY.
  v_args := format('%L, %L, %L, %L, %L, %L, %L',
    p_now, p_only_monitor, p_project_id, v_interval, v_lookback, v_recent, v_windows_since);
  begin
    execute format('execute %I(%s)', v_name, v_args) into v_rows;
  exception when invalid_sql_statement_name then
    if queue_health._may_prepare() then
      execute format('prepare %I (timestamptz, boolean, text, interval, interval, timestamptz, timestamptz) as %s',
        v_name, queue_health._alert_sql_readings());
      execute format('execute %I(%s)', v_name, v_args) into v_rows;
    else
      execute queue_health._alert_sql_readings() into v_rows
        using p_now, p_only_monitor, p_project_id, v_interval, v_lookback, v_recent, v_windows_since;
    end if;
  end;
  return query select * from unnest(v_rows);
end;
$$;
comment on function queue_health._alert_readings(timestamptz, boolean, text) is 'What every enabled rule of p_project_id (null: of every project; or only the monitor_stale rules) reads at p_now for every queue its selector matches: value, eligible (the condition''s preconditions hold; null: no recent snapshot, state unknown), forced (no_data on a dropped queue) and active (the condition holds). One row per (rule, queue), and one (rule, ''*'', ''*'', ''*'') row per monitor_stale rule.';
revoke execute on function queue_health._alert_readings(timestamptz, boolean, text) from public, anon, authenticated;

create function queue_health._is_silenced(
  p_alert queue_health.alert, p_rule queue_health.alert_rule, p_now timestamptz)
returns boolean
stable
set search_path = ''
language sql
as $$
  select exists (
    select 1
      from queue_health.silence s
     where s.project_id = p_alert.project_id
       and s.starts_at <= p_now and s.ends_at > p_now
       and (s.rule_id is null or s.rule_id = p_rule.id)
       and (s.source is null or s.source = p_alert.source)
       and (s.queue_pattern is null or p_alert.queue_name like s.queue_pattern)
       and (s.severity is null or s.severity = p_rule.severity))
$$;
comment on function queue_health._is_silenced(queue_health.alert, queue_health.alert_rule, timestamptz) is 'Whether a silence active at p_now matches the alert.';
revoke execute on function queue_health._is_silenced(queue_health.alert, queue_health.alert_rule, timestamptz) from public, anon, authenticated;

create table queue_health.alert_evaluation (
  project_id text primary key references queue_health.project (id) on delete cascade,
  failing boolean not null default false,
  failures int not null default 0,
  last_error text,
  last_error_at timestamptz,
  recovered_at timestamptz,
  deferred_at timestamptz,
  constraint alert_evaluation_error_when_failing check (not failing or last_error is not null)
);
comment on table queue_health.alert_evaluation is 'Per project: whether its alert evaluation (or notification flush) is failing, and whether it was deferred by the evaluation budget. Each project is evaluated on its own, so one project''s failure is recorded here and the others proceed. A project that never failed nor was deferred has no row.';
comment on column queue_health.alert_evaluation.project_id is 'The project.';
comment on column queue_health.alert_evaluation.failing is 'True from a failed evaluation until the next full evaluation of the project succeeds.';
comment on column queue_health.alert_evaluation.failures is 'Failed evaluations in a row (0 once one succeeds).';
comment on column queue_health.alert_evaluation.last_error is 'The last failure''s message (visible to the project''s members only).';
comment on column queue_health.alert_evaluation.last_error_at is 'p_now of the last failure.';
comment on column queue_health.alert_evaluation.recovered_at is 'p_now of the first successful evaluation after a failure or deferral.';
comment on column queue_health.alert_evaluation.deferred_at is 'Set when the evaluation budget ran out before this project (it goes first next time); cleared once it is evaluated.';
comment on constraint alert_evaluation_error_when_failing on queue_health.alert_evaluation is 'A failing project says why.';

create function queue_health._record_alerting_failure(p_project_id text, p_error text, p_now timestamptz)
returns void
set search_path = ''
language sql
as $$
  insert into queue_health.alert_evaluation as e (project_id, failing, failures, last_error, last_error_at)
  values (p_project_id, true, 1, left(coalesce(p_error, 'unknown error'), 1000), p_now)
  on conflict (project_id) do update
    set failing = true, failures = e.failures + 1, last_error = excluded.last_error,
        last_error_at = excluded.last_error_at;
$$;
comment on function queue_health._record_alerting_failure(text, text, timestamptz) is 'Marks a project''s alerting as failing (alert_evaluation), with the error.';
revoke execute on function queue_health._record_alerting_failure(text, text, timestamptz) from public, anon, authenticated;

create function queue_health._evaluate_project(p_now timestamptz, p_only_monitor boolean, p_project_id text)
returns jsonb
set search_path = ''
set jit = off  -- like _alert_readings: JIT compiles longer than these statements run
language plpgsql
as $$
-- Set-based within the project: one statement reads every rule's value for every queue
-- (_alert_readings), one statement moves the alerts that change and records their transitions.
-- Quiet alerts (condition false, state inactive or resolved) are filtered out before any write,
-- so a healthy monitor writes nothing here.
declare
  v_rules integer;
  v_transitions integer;
  v_notifications integer;
begin
  select count(*) into v_rules
    from queue_health.alert_rule r
   where r.project_id = p_project_id
     and r.enabled and (not p_only_monitor or r.condition = 'monitor_stale');

  -- The state machine, as Prometheus: condition true: inactive/resolved -> pending (started_at =
  -- p_now), pending -> firing once p_now - started_at >= for (so with for = 0 in the same
  -- evaluation). Condition false: pending -> inactive; firing stays firing until the condition has
  -- been false for keep_firing_for (counted from keep_firing_since, the first false evaluation),
  -- then resolved. Alerts of disabled rules end: pending -> inactive, firing -> resolved at once.
  with reading as (
    select * from queue_health._alert_readings(p_now, p_only_monitor, p_project_id)
  ),
  -- The alerts of the rules evaluated now, and the pending/firing alerts of disabled rules.
  current_alert as (
    select a.*, r.enabled
      from queue_health.alert a
      join queue_health.alert_rule r on r.id = a.rule_id
     where a.project_id = p_project_id
       and (not p_only_monitor or r.condition = 'monitor_stale')
       and (r.enabled or a.state in ('pending', 'firing'))
  ),
  -- A queue that stopped matching its rule (dropped, renamed, selector changed) has an alert and no
  -- reading: its condition is false.
  step as (
    select a.id as alert_id,
           coalesce(c.rule_id, a.rule_id) as rule_id,
           coalesce(c.source, a.source) as source,
           coalesce(c.source_schema, a.source_schema) as source_schema,
           coalesce(c.queue_name, a.queue_name) as queue_name,
           case when a.enabled is false then a.value else c.value end as value,
           coalesce(c.active, false) as active,
           coalesce(a.state, 'inactive') as state,
           a.started_at, a.fired_at, a.resolved_at, a.keep_firing_since
      from reading c
      full join current_alert a
        on a.rule_id = c.rule_id and a.source = c.source and a.source_schema = c.source_schema
       and a.queue_name = c.queue_name
     -- unknown (no recent snapshot of a queue that still exists): the alert keeps its state
     where (c.eligible is not null or c.rule_id is null)
       -- a later evaluation already ran: time does not go backwards
       and (a.last_evaluated_at is null or a.last_evaluated_at <= p_now)
       -- quiet alerts cost no writes, and rows are created on first activity only
       and (coalesce(c.active, false) or a.state in ('pending', 'firing'))
  ),
  next as materialized (
    select coalesce(s.alert_id, gen_random_uuid()) as id, s.alert_id, s.rule_id, r.project_id,
           s.source, s.source_schema, s.queue_name, s.value, r.threshold, s.state, n.state as new_state,
           case when s.active and s.state in ('inactive', 'resolved') then p_now
                when n.state = 'inactive' then null
                else s.started_at end as started_at,
           case when s.active and s.state in ('inactive', 'resolved') then
                  case when n.state = 'firing' then p_now end
                when s.state = 'pending' and n.state = 'firing' then p_now
                else s.fired_at end as fired_at,
           case when s.active and s.state in ('inactive', 'resolved') then null
                when s.state = 'firing' and n.state = 'resolved' then p_now
                else s.resolved_at end as resolved_at,
           case when s.active then null
                when s.state = 'firing' and n.state = 'firing' then coalesce(s.keep_firing_since, p_now)
                when s.state = 'firing' then null
                else s.keep_firing_since end as keep_firing_since
      from step s
      join queue_health.alert_rule r on r.id = s.rule_id
     cross join lateral (
       select (case
           when s.active and s.state in ('inactive', 'resolved') then
             case when interval '0' >= r.for_duration then 'firing' else 'pending' end
           when s.active and s.state = 'pending' then
             case when p_now - s.started_at >= r.for_duration then 'firing' else 'pending' end
           when s.active then s.state::text
           when s.state = 'pending' then 'inactive'
           when s.state = 'firing' then
             case when p_now - coalesce(s.keep_firing_since, p_now) >= r.keep_firing_for or not r.enabled
                  then 'resolved' else 'firing' end
           else s.state::text
         end)::queue_health.alert_state as state
     ) n
  ),
  created as (
    insert into queue_health.alert
      (id, rule_id, project_id, source, source_schema, queue_name, state, value, started_at, fired_at,
       resolved_at, keep_firing_since, last_evaluated_at)
    select n.id, n.rule_id, n.project_id, n.source, n.source_schema, n.queue_name, n.new_state, n.value,
           n.started_at, n.fired_at, n.resolved_at, n.keep_firing_since, p_now
      from next n
     where n.alert_id is null
  ),
  changed as (
    update queue_health.alert a
       set state = n.new_state, value = n.value, started_at = n.started_at, fired_at = n.fired_at,
           resolved_at = n.resolved_at, keep_firing_since = n.keep_firing_since, last_evaluated_at = p_now
      from next n
     where a.id = n.alert_id
  )
  insert into queue_health.alert_event
    (alert_id, rule_id, project_id, source, source_schema, queue_name, from_state, to_state, value, threshold, at)
  select n.id, n.rule_id, n.project_id, n.source, n.source_schema, n.queue_name, n.state, n.new_state,
         n.value, n.threshold, p_now
    from next n
   where n.new_state <> n.state;
  get diagnostics v_transitions = row_count;

  v_notifications := queue_health._flush_notifications(p_now, p_project_id);
  return jsonb_build_object('rules', v_rules, 'transitions', v_transitions, 'notifications', v_notifications);
end;
$$;
comment on function queue_health._evaluate_project(timestamptz, boolean, text) is 'One project''s evaluation: its enabled rules (or only its monitor_stale rules), state transitions and outbox. Returns {rules, transitions, notifications}.';
revoke execute on function queue_health._evaluate_project(timestamptz, boolean, text) from public, anon, authenticated;

create function queue_health._evaluate(p_now timestamptz, p_only_monitor boolean)
returns jsonb
set search_path = ''
language plpgsql
as $$
-- Project by project, each in its own exception block (a subtransaction): a project whose
-- evaluation fails (a bad value, a rule from before the bounds existed) is recorded in
-- alert_evaluation and rolled back alone; the others proceed. Projects not started within
-- settings.alert_evaluation_budget are deferred, and go first next time.
declare
  v_started timestamptz := clock_timestamp();
  v_budget interval := coalesce((queue_health._settings()).alert_evaluation_budget, interval '5 seconds');
  v_project text;
  v_part jsonb;
  v_t timestamptz;
  v_error text;
  v_rules integer := 0;
  v_transitions integer := 0;
  v_notifications integer := 0;
  v_evaluated integer := 0;
  v_failed jsonb := '[]'::jsonb;
  v_deferred text[] := '{}'::text[];
  v_project_ms jsonb := '{}'::jsonb;
  v_projects text[];
  v_dispatch text;
begin
  -- One evaluation at a time (capture, queue-alert and the cron job all call this): the alert and
  -- group rows are read-modify-written.
  perform pg_advisory_xact_lock(hashtext('queue_health.evaluate_alerts'));

  for v_project in
    select p.id
      from queue_health.project p
      left join queue_health.alert_evaluation e on e.project_id = p.id
     where exists (select 1 from queue_health.alert_rule r where r.project_id = p.id)
        or exists (select 1 from queue_health.notification_group g where g.project_id = p.id)
     order by e.deferred_at is null, e.deferred_at, p.id
  loop
    if clock_timestamp() - v_started > v_budget then
      v_deferred := v_deferred || v_project;
      continue;
    end if;
    v_t := clock_timestamp();
    begin
      v_part := queue_health._evaluate_project(p_now, p_only_monitor, v_project);
      v_rules := v_rules + (v_part ->> 'rules')::int;
      v_transitions := v_transitions + (v_part ->> 'transitions')::int;
      v_notifications := v_notifications + (v_part ->> 'notifications')::int;
      v_evaluated := v_evaluated + 1;
      if not p_only_monitor then
        update queue_health.alert_evaluation e
           set failing = false, failures = 0, deferred_at = null, recovered_at = p_now
         where e.project_id = v_project and (e.failing or e.deferred_at is not null);
      end if;
    exception when others then
      get stacked diagnostics v_error = message_text;
      raise warning 'queue_health: alert evaluation of project % failed: %', v_project, v_error;
      v_failed := v_failed || jsonb_build_array(jsonb_build_object('project_id', v_project, 'error', v_error));
      perform queue_health._record_alerting_failure(v_project, v_error, p_now);
    end;
    v_project_ms := v_project_ms || jsonb_build_object(v_project,
      round((extract(epoch from clock_timestamp() - v_t) * 1000)::numeric, 3));
  end loop;

  if cardinality(v_deferred) > 0 then
    raise warning 'queue_health: alert evaluation budget (%) exceeded: % project(s) deferred to the next evaluation',
      v_budget, cardinality(v_deferred)
      using hint = 'Raise queue_health.settings.alert_evaluation_budget, or look at what the evaluated projects cost (project_ms).';
    insert into queue_health.alert_evaluation as e (project_id, deferred_at)
    select d.id, p_now from unnest(v_deferred) d(id)
    on conflict (project_id) do update set deferred_at = coalesce(e.deferred_at, excluded.deferred_at);
  end if;

  if v_notifications > 0 then
    select array_agg(distinct g.project_id order by g.project_id) into v_projects
      from queue_health.notification_group g
     where g.last_sent_at = p_now;
    v_dispatch := queue_health._dispatch(v_projects, false);
  end if;

  return jsonb_build_object(
    'evaluated_at', p_now,
    'rules', v_rules,
    'transitions', v_transitions,
    'pending', (select count(*) from queue_health.alert a where a.state = 'pending'),
    'firing', (select count(*) from queue_health.alert a where a.state = 'firing'),
    'notifications', v_notifications,
    'dispatch', coalesce(v_dispatch, 'none'),
    'projects', v_evaluated,
    'failed', v_failed,
    'deferred', to_jsonb(v_deferred),
    'project_ms', v_project_ms,
    'duration_ms', round((extract(epoch from clock_timestamp() - v_started) * 1000)::numeric, 3));
end;
$$;
comment on function queue_health._evaluate(timestamptz, boolean) is 'The body of evaluate_alerts(): each project with rules or notification groups on its own (_evaluate_project in an exception block; a failure is recorded in alert_evaluation and returned in failed), within settings.alert_evaluation_budget (the rest is returned in deferred), then dispatch.';
revoke execute on function queue_health._evaluate(timestamptz, boolean) from public, anon, authenticated;

create function queue_health.evaluate_alerts(p_now timestamptz default now())
returns jsonb
security definer
set search_path = ''
language plpgsql
as $$
begin
  return queue_health._evaluate(p_now, false);
end;
$$;
comment on function queue_health.evaluate_alerts(timestamptz) is 'Evaluates every enabled alert rule at p_now against the latest metrics, moves alerts through inactive/pending/firing/resolved (recorded in alert_event), writes due notifications to the outbox in the same transaction and dispatches them. Each project is evaluated on its own: one that fails is recorded in alert_evaluation and listed in failed, the others proceed; projects past settings.alert_evaluation_budget are listed in deferred and go first next time. Returns {evaluated_at, rules, transitions, pending, firing, notifications, dispatch, projects, failed: [{project_id, error}], deferred: [project_id], project_ms: {project_id: ms}, duration_ms}. Called by capture(), queue-alert and pg_cron.';
revoke execute on function queue_health.evaluate_alerts(timestamptz) from public, anon, authenticated;
grant execute on function queue_health.evaluate_alerts(timestamptz) to service_role;

create function queue_health.evaluate_monitor_stale()
returns jsonb
security definer
set search_path = ''
language plpgsql
as $$
begin
  return queue_health._evaluate(now(), true);
end;
$$;
comment on function queue_health.evaluate_monitor_stale() is 'Evaluates only the monitor_stale rules, at now() (no time travel for callers): the dead man''s switch that must run when captures do not. Service role only (it takes the evaluation lock captures wait on and dispatches every project''s notifications); queue-health calls it as the service role, at most every QUEUE_HEALTH_EVALUATE_EVERY_MS.';
revoke execute on function queue_health.evaluate_monitor_stale() from public, anon, authenticated;
grant execute on function queue_health.evaluate_monitor_stale() to service_role;
alter table queue_health.alert enable row level security;
alter table queue_health.alert_event enable row level security;
alter table queue_health.alert_evaluation enable row level security;

-- Alert state, history and the outbox: members read; only evaluate_alerts() and queue-alert write.
create policy "Alerts are visible to project members" on queue_health.alert
  for select to authenticated using ((select queue_health.is_member(project_id)));

create policy "Alert events are visible to project members" on queue_health.alert_event
  for select to authenticated using ((select queue_health.is_member(project_id)));

create policy "Evaluation failures are visible to project members" on queue_health.alert_evaluation
  for select to authenticated using (project_id = any ((select queue_health.member_project_ids())::text[]));
revoke all on queue_health.alert, queue_health.alert_event from public, anon, authenticated;
grant select on queue_health.alert, queue_health.alert_event to authenticated;
grant select, insert, update, delete on queue_health.alert, queue_health.alert_event to service_role;
revoke all on queue_health.alert_evaluation from public, anon, authenticated;
grant select on queue_health.alert_evaluation to authenticated;
grant select, insert, update, delete on queue_health.alert_evaluation to service_role;
