-- Queue Health: alert conditions on the queue signals (issue 22): flow_status, drain_eta,
-- expected_wait, poison, consumer_silent, producer_silent, anomaly and slo_burn, evaluated by the
-- same statement as every other condition (_alert_readings) with the same for / keep_firing_for,
-- grouping and silences; the default rules of the signals, and the burn-rate rules installed with
-- each latency objective. The builders redefined here read the seasonal baseline
-- (queue_baseline, hour_of_week(), is_anomalous()) only for rules that need it.

-- Section: rule columns

alter table queue_health.alert_rule
  add column statuses queue_health.flow_status[],
  add column metric text,
  add column objective_id uuid references queue_health.queue_objective (id) on delete set null;
comment on column queue_health.alert_rule.statuses is 'flow_status: the flow statuses that make the condition hold (default {stalled,stopped}); null for every other condition.';
comment on column queue_health.alert_rule.metric is 'anomaly: the signal compared with its baseline for this hour of the week: enqueue_rate, out_rate (messages/s, smoothed), depth or ready_age (oldest_ready_age_s); null for every other condition.';
comment on column queue_health.alert_rule.objective_id is 'Set on the burn-rate rules installed with a latency objective: deleting the objective disables them.';
comment on column queue_health.alert_rule.condition is 'What is measured: a metric (ready, in_flight, delayed, depth, oldest_ready_age_s, enqueued, completed, failed, retried, dead_lettered, wait_p50_ms, wait_p95_ms, run_p50_ms, run_p95_ms, sample_ms, snapshot_age_s), a rate (enqueue_rate, complete_rate, fail_rate, error_rate), a built-in (stalled, growing_backlog, failure_rate, dead_letters, no_data, monitor_stale) or a signal (flow_status, drain_eta, expected_wait, poison, consumer_silent, producer_silent, anomaly, slo_burn).';

create index alert_rule_objective_idx on queue_health.alert_rule (objective_id) where objective_id is not null;

-- Section: validation

-- The 0.1.0 validation with the signal conditions added to its list (and slo_burn needing a window).
create or replace function queue_health._validate_alert_rule()
returns trigger
set search_path = ''
language plpgsql
as $$
declare
  v_metric_conditions constant text[] := array[
    'ready', 'in_flight', 'delayed', 'depth', 'oldest_ready_age_s', 'enqueued', 'completed', 'failed',
    'retried', 'dead_lettered', 'wait_p50_ms', 'wait_p95_ms', 'run_p50_ms', 'run_p95_ms', 'sample_ms',
    'snapshot_age_s', 'enqueue_rate', 'complete_rate', 'fail_rate', 'error_rate'];
  v_builtins constant text[] := array[
    'stalled', 'growing_backlog', 'failure_rate', 'dead_letters', 'no_data', 'monitor_stale',
    'flow_status', 'drain_eta', 'expected_wait', 'poison', 'consumer_silent', 'producer_silent',
    'anomaly', 'slo_burn'];
  v_bad uuid;
  v_settings queue_health.settings;
  v_tenant boolean;
begin
  if new.name is null or length(btrim(new.name)) = 0 or length(new.name) > 200 then
    raise exception 'alert_rule.name must be 1 to 200 characters: got %', coalesce(quote_literal(new.name), 'null')
      using errcode = 'check_violation';
  end if;
  if new.condition is null or not (new.condition = any (v_metric_conditions || v_builtins)) then
    raise exception 'alert_rule.condition must be one of %: got %',
      array_to_string(v_metric_conditions || v_builtins, ', '), coalesce(quote_literal(new.condition), 'null')
      using errcode = 'check_violation';
  end if;
  if new.comparator is null or new.comparator not in ('>', '>=', '<', '<=', '==', '!=') then
    raise exception 'alert_rule.comparator must be one of >, >=, <, <=, ==, !=: got %', coalesce(quote_literal(new.comparator), 'null')
      using errcode = 'check_violation';
  end if;
  if new.threshold is null or new.threshold in ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8) then
    raise exception 'alert_rule.threshold must be a finite number: got %', coalesce(new.threshold::text, 'null')
      using errcode = 'check_violation';
  end if;
  if new.condition in ('error_rate', 'failure_rate') and (new.threshold < 0 or new.threshold > 1) then
    raise exception 'alert_rule.threshold must be a fraction between 0 and 1 for %: got %', new.condition, new.threshold
      using errcode = 'check_violation';
  end if;
  if new.window_duration is not null and new.window_duration <= interval '0' then
    raise exception 'alert_rule.window_duration must be positive: got %', new.window_duration
      using errcode = 'check_violation';
  end if;
  if new.window_duration is null and new.condition in ('stalled', 'growing_backlog', 'failure_rate', 'slo_burn') then
    raise exception 'alert_rule.window_duration is required for %', new.condition
      using errcode = 'check_violation';
  end if;
  if new.min_volume is null or new.min_volume < 0 then
    raise exception 'alert_rule.min_volume must be 0 or more: got %', coalesce(new.min_volume::text, 'null')
      using errcode = 'check_violation';
  end if;
  if new.for_duration is null or new.for_duration < interval '0' then
    raise exception 'alert_rule.for_duration must be 0 or more: got %', coalesce(new.for_duration::text, 'null')
      using errcode = 'check_violation';
  end if;
  if new.keep_firing_for is null or new.keep_firing_for < interval '0' then
    raise exception 'alert_rule.keep_firing_for must be 0 or more: got %', coalesce(new.keep_firing_for::text, 'null')
      using errcode = 'check_violation';
  end if;
  if new.repeat_interval is not null and new.repeat_interval <= interval '0' then
    raise exception 'alert_rule.repeat_interval must be positive: got %', new.repeat_interval
      using errcode = 'check_violation';
  end if;
  if new.group_wait is not null and new.group_wait < interval '0' then
    raise exception 'alert_rule.group_wait must be 0 or more: got %', new.group_wait
      using errcode = 'check_violation';
  end if;
  if new.group_interval is not null and new.group_interval <= interval '0' then
    raise exception 'alert_rule.group_interval must be positive: got %', new.group_interval
      using errcode = 'check_violation';
  end if;
  if new.source is not null and new.source not in ('pgmq', 'pgboss') then
    raise exception 'alert_rule.source must be pgmq, pgboss or null: got %', quote_literal(new.source)
      using errcode = 'check_violation';
  end if;
  if new.queue_name is not null and new.queue_pattern is not null then
    raise exception 'alert_rule.queue_pattern must be null when alert_rule.queue_name is set (exact name or pattern, not both)'
      using errcode = 'check_violation';
  end if;
  if new.labels is null or jsonb_typeof(new.labels) <> 'object' then
    raise exception 'alert_rule.labels must be a JSON object: got %', coalesce(new.labels::text, 'null')
      using errcode = 'check_violation';
  end if;
  if new.condition = 'monitor_stale' and (new.source is not null or new.source_schema is not null
      or new.queue_name is not null or new.queue_pattern is not null or new.labels <> '{}'::jsonb) then
    raise exception 'alert_rule.queue_pattern, queue_name, source, source_schema and labels must be empty for monitor_stale (a project-level rule)'
      using errcode = 'check_violation';
  end if;
  if new.runbook_url is not null and new.runbook_url !~ '^https?://' then
    raise exception 'alert_rule.runbook_url must start with http:// or https://: got %', quote_literal(new.runbook_url)
      using errcode = 'check_violation';
  end if;
  -- Bounds (issue 19): no interval a tenant sets may push a timestamp out of range or make
  -- notifications repeat every few seconds.
  v_settings := queue_health._settings();
  v_tenant := queue_health._is_tenant();
  perform queue_health._check_interval('alert_rule.window_duration', new.window_duration,
    interval '1 second', v_settings.raw_retention, null, 'raw_retention');
  perform queue_health._check_interval('alert_rule.for_duration', new.for_duration,
    interval '0', v_settings.max_alert_interval, null, 'max_alert_interval');
  perform queue_health._check_interval('alert_rule.keep_firing_for', new.keep_firing_for,
    interval '0', v_settings.max_alert_interval, null, 'max_alert_interval');
  perform queue_health._check_interval('alert_rule.group_wait', new.group_wait,
    interval '0', v_settings.max_alert_interval, null, 'max_alert_interval');
  perform queue_health._check_interval('alert_rule.group_interval', new.group_interval,
    case when v_tenant then v_settings.min_group_interval else interval '1 microsecond' end,
    v_settings.max_alert_interval, 'min_group_interval', 'max_alert_interval');
  perform queue_health._check_interval('alert_rule.repeat_interval', new.repeat_interval,
    case when v_tenant then v_settings.min_repeat_interval else interval '1 microsecond' end,
    v_settings.max_alert_interval, 'min_repeat_interval', 'max_alert_interval');
  if new.channel_ids is not null then
    select c.id into v_bad
      from unnest(new.channel_ids) as c(id)
     where not exists (
       select 1 from queue_health.channel ch where ch.id = c.id and ch.project_id = new.project_id)
     limit 1;
    if found then
      raise exception 'alert_rule.channel_ids: % is not a channel of project %', v_bad, new.project_id
        using errcode = 'foreign_key_violation';
    end if;
  end if;
  new.updated_at := now();
  return new;
end;
$$;
comment on function queue_health._validate_alert_rule() is 'Refuses invalid alert rules with a message naming the field (the signal conditions'' own fields: _validate_signal_rule()). Runs as the caller so RLS still hides other projects'' channels.';
revoke execute on function queue_health._validate_alert_rule() from public, anon, authenticated;

create function queue_health._validate_signal_rule()
returns trigger
set search_path = ''
language plpgsql
as $$
-- Runs after alert_rule_validate (triggers fire in name order), so the condition is a known one.
begin
  if new.condition = 'flow_status' then
    new.statuses := coalesce(new.statuses, array['stalled', 'stopped']::queue_health.flow_status[]);
    if cardinality(new.statuses) = 0 or array_position(new.statuses, null) is not null then
      raise exception 'alert_rule.statuses must name at least one flow status (%) for flow_status: got %',
        array_to_string(enum_range(null::queue_health.flow_status), ', '), new.statuses
        using errcode = 'check_violation';
    end if;
  elsif new.statuses is not null then
    raise exception 'alert_rule.statuses applies to condition flow_status only: got % for %', new.statuses, new.condition
      using errcode = 'check_violation';
  end if;
  if new.condition = 'anomaly' then
    if new.metric is null or new.metric not in ('enqueue_rate', 'out_rate', 'depth', 'ready_age') then
      raise exception 'alert_rule.metric must be one of enqueue_rate, out_rate, depth, ready_age for anomaly: got %',
        coalesce(quote_literal(new.metric), 'null')
        using errcode = 'check_violation';
    end if;
  elsif new.metric is not null then
    raise exception 'alert_rule.metric applies to condition anomaly only: got % for %', quote_literal(new.metric), new.condition
      using errcode = 'check_violation';
  end if;
  -- These conditions compare with a limit of their own (a status list, k x the usual gap, k MADs):
  -- the comparator stays >, and k (threshold) left at 0 means the documented 3.
  if new.condition in ('flow_status', 'consumer_silent', 'producer_silent', 'anomaly') and new.comparator <> '>' then
    raise exception 'alert_rule.comparator must be > for % (the condition has its own limit): got %', new.condition, quote_literal(new.comparator)
      using errcode = 'check_violation';
  end if;
  if new.condition in ('consumer_silent', 'producer_silent', 'anomaly') then
    if new.threshold = 0 then
      new.threshold := 3;
    elsif new.threshold < 0 then
      raise exception 'alert_rule.threshold is k for %, and must be positive (3 when left at 0): got %', new.condition, new.threshold
        using errcode = 'check_violation';
    end if;
  end if;
  -- Runs as the caller: an objective of another project (or one RLS hides) is not found.
  if new.objective_id is not null and (tg_op = 'INSERT' or new.objective_id is distinct from old.objective_id
      or new.project_id is distinct from old.project_id)
     and not exists (select 1 from queue_health.queue_objective o
                      where o.id = new.objective_id and o.project_id = new.project_id) then
    raise exception 'alert_rule.objective_id: % is not a latency objective of project %', new.objective_id, new.project_id
      using errcode = 'foreign_key_violation';
  end if;
  if new.condition = 'slo_burn' then
    if new.comparator not in ('>', '>=') then
      raise exception 'alert_rule.comparator must be > or >= for slo_burn: got %', quote_literal(new.comparator)
        using errcode = 'check_violation';
    end if;
    if new.threshold <= 0 then
      raise exception 'alert_rule.threshold must be a positive burn rate for slo_burn (e.g. 14.4): got %', new.threshold
        using errcode = 'check_violation';
    end if;
    if new.window_duration < interval '12 minutes' then
      raise exception 'alert_rule.window_duration must be at least 12 minutes for slo_burn (its short window is 1/12 of it): got %', new.window_duration
        using errcode = 'check_violation';
    end if;
  end if;
  return new;
end;
$$;
comment on function queue_health._validate_signal_rule() is 'Trigger after alert_rule_validate: the signal conditions'' own fields (statuses for flow_status, default {stalled,stopped}; metric for anomaly; comparator > and k > 0, 0 meaning 3, for consumer_silent / producer_silent / anomaly; a positive threshold and a window of at least 12 minutes for slo_burn; objective_id an objective of the same project), with messages naming the field.';
revoke execute on function queue_health._validate_signal_rule() from public, anon, authenticated;

create trigger alert_rule_validate_signals
  before insert or update on queue_health.alert_rule
  for each row execute function queue_health._validate_signal_rule();

-- Section: readable values

create function queue_health._format_value(p_value double precision, p_condition text)
returns text
immutable
set search_path = ''
language sql
as $$
  select case
    -- flow_status reads the status' position in the enum (1 = idle): show its name
    when p_condition = 'flow_status' and p_value between 1 and cardinality(enum_range(null::queue_health.flow_status))
      then (enum_range(null::queue_health.flow_status))[p_value::int]::text
    when p_condition in ('drain_eta', 'expected_wait') and p_value = 'Infinity'::float8 then 'never'
    else queue_health._format_number(p_value)
  end
$$;
comment on function queue_health._format_value(double precision, text) is 'A rule''s value as people read it: the status name for flow_status, never for an infinite drain_eta / expected_wait, else _format_number().';
revoke execute on function queue_health._format_value(double precision, text) from public, anon, authenticated;

create or replace function queue_health._render(
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
    '{{value}}', queue_health._format_value(p_alert.value, p_rule.condition)),
    '{{threshold}}', queue_health._format_number(p_rule.threshold)),
    '{{severity}}', p_rule.severity::text),
    '{{condition}}', p_rule.condition),
    '{{project}}', p_rule.project_id)
$$;
comment on function queue_health._render(text, queue_health.alert_rule, queue_health.alert) is 'Fills an annotation template ({{rule}}, {{queue}}, {{source}}, {{value}}, {{threshold}}, {{severity}}, {{condition}}, {{project}}); project-level alerts render {{queue}} as ''all queues''; {{value}} is the status name for flow_status and never for an infinite drain_eta / expected_wait.';

-- Section: the readings' builders (see 20261126100900): the new conditions' parts, and probes
-- of the baseline and the burn rates that run only for the queues whose rules need them.

create or replace function queue_health._alert_sql_rules_of_queue()
returns text
immutable
set search_path = ''
language sql
as $$
  -- The enabled rules whose selector matches queue q (no_data also watches dropped queues), and
  -- what they need read: the latest snapshot, the newest snapshot however old, the windows, the
  -- baseline for this hour of the week, the burn-rate windows.
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
              where r.window_duration is not null and r.condition = 'growing_backlog') as mid_windows,
            -- the baseline: always for these, for consumer_silent only while work is ready
            coalesce(bool_or(r.condition in ('producer_silent', 'anomaly')), false) as needs_baseline,
            coalesce(bool_or(r.condition = 'consumer_silent'), false) as watches_consumers,
            -- (duplicates, rare, are removed by the probe that reads them: no sort per queue here)
            array_agg(r.window_duration) filter (where r.condition = 'slo_burn') as slo_windows
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
comment on function queue_health._alert_sql_rules_of_queue() is 'Part of the alert readings'' statement: the enabled rules matching queue q (rs), with the windows they sum, whether they need the seasonal baseline and their burn-rate windows.';

create or replace function queue_health._alert_sql_latest_snapshot()
returns text
immutable
set search_path = ''
language sql
as $$
  -- The newest snapshot within the look-back: the registry's copy of the queue's newest row
  -- (totals_at, kept by capture()) when that row is at or before p_now, else read from metric
  -- (an evaluation at an earlier p_now, rows inserted other than by capture). With the signals.
  select $sql$
      select q.totals_at as captured_at, q.ready, q.in_flight, q.delayed, q.depth,
             q.oldest_ready_age_s, q.enqueued, q.completed, q.failed, q.retried, q.dead_lettered,
             q.wait_p50_ms, q.wait_p95_ms, q.run_p50_ms, q.run_p95_ms, q.sample_ms, q.interval_s,
             q.cum_enqueued, q.cum_completed, q.cum_failed, q.cum_retried, q.cum_dead_lettered,
             q.cum_interval_s, q.cum_idle, q.poison, q.in_rate, q.out_rate, q.drain_eta_s,
             q.expected_wait_s, q.flow_status, q.last_enqueue_at, q.last_dequeue_at
       where rs.needs_latest and q.totals_at <= $1 and q.totals_at > $6
      union all
      (select m.captured_at, m.ready, m.in_flight, m.delayed, m.depth,
              m.oldest_ready_age_s, m.enqueued, m.completed, m.failed, m.retried, m.dead_lettered,
              m.wait_p50_ms, m.wait_p95_ms, m.run_p50_ms, m.run_p95_ms, m.sample_ms, m.interval_s,
              m.cum_enqueued, m.cum_completed, m.cum_failed, m.cum_retried, m.cum_dead_lettered,
              m.cum_interval_s, m.cum_idle, m.poison, m.in_rate, m.out_rate, m.drain_eta_s,
              m.expected_wait_s, m.flow_status, m.last_enqueue_at, m.last_dequeue_at
         from queue_health.metric m
        where rs.needs_latest and not coalesce(q.totals_at <= $1, false)
          and m.queue_name = q.queue_name and m.source = q.source and m.source_schema = q.source_schema
          and m.captured_at <= $1 and m.captured_at > $6
        order by m.captured_at desc
        limit 1)
  $sql$
$$;
comment on function queue_health._alert_sql_latest_snapshot() is 'Part of the alert readings'' statement: queue q''s newest snapshot within the look-back (l), from the registry or metric, with its signals.';

create function queue_health._alert_sql_signal_probes()
returns text
immutable
set search_path = ''
language sql
as $$
  -- The baseline of queue q for p_now's hour of the week (bl), only when one of its rules needs
  -- it (consumer_silent: only while something is ready). The limit keeps the lateral a subquery
  -- of its own: pulled up into the join, its gate would become a join filter applied after the
  -- probe, which would then run for every queue.
  select $sql$
      left join lateral (
        select b.enqueue_rate_median, b.enqueue_rate_mad, b.out_rate_median, b.out_rate_mad,
               b.depth_median, b.depth_mad, b.ready_age_median, b.ready_age_mad, b.samples, b.history_days
          from queue_health.queue_baseline b
         where (rs.needs_baseline or (rs.watches_consumers and l.ready > 0))
           and b.queue_name = q.queue_name and b.source = q.source and b.source_schema = q.source_schema
           and b.hour_of_week = queue_health.hour_of_week($1)
         limit 1) bl on true
  $sql$
$$;
comment on function queue_health._alert_sql_signal_probes() is 'Part of the alert readings'' statement: queue q''s seasonal baseline for this hour of the week (bl), read only when a rule of the queue needs it.';

create function queue_health._alert_sql_burn_rates()
returns text
immutable
set search_path = ''
language sql
as $$
  -- Queue q's distinct slo_burn windows (slo_windows) and its burn rates over each and over a
  -- twelfth of it (slo_long[i], slo_short[i] for slo_windows[i]). Scalar subqueries behind a
  -- CASE: for a queue without slo_burn rules nothing runs at all.
  select $sql$
           case when rs.slo_windows is not null and l.captured_at is not null then
             (select array_agg(distinct u.w order by u.w) from unnest(rs.slo_windows) as u(w)) end as slo_windows,
           case when rs.slo_windows is not null and l.captured_at is not null then
             (select array_agg(queue_health.slo_burn_rate(q.source, q.source_schema, q.queue_name, d.w, $1) order by d.w)
                from (select distinct u.w from unnest(rs.slo_windows) as u(w)) d) end as slo_long,
           case when rs.slo_windows is not null and l.captured_at is not null then
             (select array_agg(queue_health.slo_burn_rate(q.source, q.source_schema, q.queue_name, d.w / 12, $1) order by d.w)
                from (select distinct u.w from unnest(rs.slo_windows) as u(w)) d) end as slo_short
  $sql$
$$;
comment on function queue_health._alert_sql_burn_rates() is 'Part of the alert readings'' statement: queue q''s distinct slo_burn windows and its burn rates over each (slo_long) and over a twelfth of each (slo_short), computed only for queues with slo_burn rules.';
revoke execute on function queue_health._alert_sql_burn_rates() from public, anon, authenticated;
revoke execute on function queue_health._alert_sql_signal_probes() from public, anon, authenticated;

create or replace function queue_health._alert_sql_probes()
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
           rs.windows, w.sums,
           q.first_seen_at, l.poison, l.in_rate, l.out_rate, l.drain_eta_s, l.expected_wait_s,
           l.flow_status, l.last_enqueue_at, l.last_dequeue_at,
           bl.enqueue_rate_median, bl.enqueue_rate_mad, bl.out_rate_median, bl.out_rate_mad,
           bl.depth_median, bl.depth_mad, bl.ready_age_median, bl.ready_age_mad, bl.samples,
           bl.history_days,
           %s
      from queue_health.queue q
     cross join lateral (%s) rs
      left join lateral (%s) l on true
      left join lateral (%s) w on true
      %s
     where not $2 and rs.rule_ids is not null
       and ($3 is null or q.project_id = $3)
  $sql$, queue_health._alert_sql_burn_rates(), queue_health._alert_sql_rules_of_queue(),
    queue_health._alert_sql_latest_snapshot(), queue_health._alert_sql_window_sums(),
    queue_health._alert_sql_signal_probes())
$$;
comment on function queue_health._alert_sql_probes() is 'Part of the alert readings'' statement: one row per queue watched by an enabled rule (probe), with its rules, latest snapshot and its signals, window sums, and (when its rules need them) baseline and burn rates.';

create or replace function queue_health._alert_sql_value()
returns text
immutable
set search_path = ''
language sql
as $$
  -- v: what rule r reads on queue p, by condition family: the built-in silences (no_data,
  -- snapshot_age_s), the latest snapshot's gauges, the counts and rates of x, the built-ins
  -- stalled and growing_backlog, and the signals.
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
           -- the status' position in the enum (1 = idle; _format_value() shows its name); the
           -- enum's list is read once per statement (an init plan), not once per row
           when r.condition = 'flow_status' then
             array_position((select enum_range(null::queue_health.flow_status)), p.flow_status)::float8
           when r.condition = 'drain_eta' then p.drain_eta_s
           when r.condition = 'expected_wait' then p.expected_wait_s
           when r.condition = 'poison' then p.poison::float8
           -- seconds since consumers last took work (since the queue was first seen: never)
           when r.condition = 'consumer_silent' then
             extract(epoch from $1 - coalesce(p.last_dequeue_at, p.first_seen_at))::float8
           when r.condition = 'producer_silent' then
             extract(epoch from $1 - coalesce(p.last_enqueue_at, p.first_seen_at))::float8
           when r.condition = 'anomaly' then
             case r.metric when 'enqueue_rate' then p.in_rate when 'out_rate' then p.out_rate
                           when 'depth' then p.depth::float8 when 'ready_age' then p.oldest_ready_age_s end
           -- the lower of the two burn rates: both exceed the threshold when it does
           when r.condition = 'slo_burn' then
             least(p.slo_long[array_position(p.slo_windows, r.window_duration)],
                   p.slo_short[array_position(p.slo_windows, r.window_duration)])
         end as value,
         case r.metric when 'enqueue_rate' then p.enqueue_rate_median when 'out_rate' then p.out_rate_median
                       when 'depth' then p.depth_median when 'ready_age' then p.ready_age_median end as median,
         case r.metric when 'enqueue_rate' then p.enqueue_rate_mad when 'out_rate' then p.out_rate_mad
                       when 'depth' then p.depth_mad when 'ready_age' then p.ready_age_mad end as mad
  $sql$
$$;
comment on function queue_health._alert_sql_value() is 'Part of the alert readings'' statement: the value rule r reads on queue p (v), per condition; for anomaly, also the baseline''s median and MAD of the rule''s metric.';

create or replace function queue_health._alert_sql_eligible()
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
                                  'dead_letters', 'enqueue_rate', 'complete_rate', 'fail_rate',
                                  'flow_status', 'drain_eta', 'expected_wait', 'poison', 'slo_burn') then
               v.value is not null
             -- work is ready for consumers
             when r.condition = 'consumer_silent' then coalesce(p.ready > 0 and v.value is not null, false)
             -- the baseline says work normally arrives at this hour
             when r.condition = 'producer_silent' then
               coalesce(v.value is not null and p.enqueue_rate_median > 0 and p.samples >= 2, false)
             -- two weeks (settings.baseline_min_days) of history behind the baseline
             when r.condition = 'anomaly' then
               coalesce(v.value is not null and v.median is not null
                        and p.history_days >= (queue_health._settings()).baseline_min_days, false)
             else false
           end
  $sql$
$$;
comment on function queue_health._alert_sql_eligible() is 'Part of the alert readings'' statement: whether rule r''s preconditions hold on queue p (null: unknown).';

create function queue_health._alert_sql_holds()
returns text
immutable
set search_path = ''
language sql
as $$
  -- Conditions with a limit of their own (null: the comparator with the threshold decides):
  -- flow_status, a status the rule names; consumer_silent, silent for longer than k (threshold)
  -- times the usual gap between dequeues for this hour of the week (1 / the baseline's median out
  -- rate; 60 s without a usable baseline), and at least 60 s; producer_silent, the same with
  -- enqueues; anomaly, outside median +- k MAD.
  select $sql$
           case r.condition
             when 'flow_status' then p.flow_status = any (r.statuses)
             when 'consumer_silent' then
               v.value > greatest(60, r.threshold * case when p.out_rate_median > 0 and p.samples >= 2
                                                         then 1 / p.out_rate_median else 60 end)
             when 'producer_silent' then
               v.value > greatest(60, r.threshold / case when p.enqueue_rate_median > 0 then p.enqueue_rate_median end)
             when 'anomaly' then queue_health.is_anomalous(v.value, v.median, v.mad, r.threshold)
           end
  $sql$
$$;
comment on function queue_health._alert_sql_holds() is 'Part of the alert readings'' statement: for the conditions with a limit of their own (flow_status, consumer_silent, producer_silent, anomaly), whether it holds; null for the others (the comparator decides).';
revoke execute on function queue_health._alert_sql_holds() from public, anon, authenticated;

create or replace function queue_health._alert_sql_readings()
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
           r.condition = 'no_data' and coalesce(p.dropped_at <= $1, false) as forced,
           %s as holds
      from probe p
     cross join lateral unnest(p.rule_ids) as pr(id)
      join queue_health.alert_rule r on r.id = pr.id
     cross join lateral (%s) x
     cross join lateral (%s) v
    union all
    select m.*, null::boolean from (%s) m
  )
  select rd.rule_id, rd.source, rd.source_schema, rd.queue_name, rd.value, rd.eligible, rd.forced,
         coalesce(rd.eligible and (rd.forced or coalesce(rd.holds, case rd.comparator
           when '>' then rd.value > rd.threshold
           when '>=' then rd.value >= rd.threshold
           when '<' then rd.value < rd.threshold
           when '<=' then rd.value <= rd.threshold
           when '==' then rd.value = rd.threshold
           when '!=' then rd.value <> rd.threshold
         end)), false)
    from reading rd
  ) t
  $sql$, queue_health._alert_sql_probes(), queue_health._alert_sql_eligible(),
    queue_health._alert_sql_holds(), queue_health._alert_sql_window_count(),
    queue_health._alert_sql_value(), queue_health._alert_sql_monitor_stale())
$$;
comment on function queue_health._alert_sql_readings() is 'The alert readings'' statement (run by _alert_readings()): value, eligible, forced and active for every enabled rule and every queue it matches, as one array of queue_health.alert_reading; conditions with a limit of their own decide through holds (_alert_sql_holds), the others through the comparator. Parameters: $1 p_now, $2 p_only_monitor, $3 p_project_id, $4 capture interval, $5 look-back, $6 p_now - look-back, $7 lower bound of every window''s probes.';

-- Section: default rules

create function queue_health._install_signal_default_rules(p_project_id text)
returns integer
set search_path = ''
language plpgsql
as $$
-- Conservative: a healthy queue never meets them (its flow is idle / ok / falling_behind, it
-- has no poison, its consumers take work). Existing rules of the same names are left alone.
declare
  v_count integer;
begin
  insert into queue_health.alert_rule
    (project_id, name, condition, comparator, threshold, statuses, for_duration, severity, summary,
     is_default, enabled)
  values
    (p_project_id, 'flow_stopped', 'flow_status', '>', 0, array['stalled', 'stopped']::queue_health.flow_status[],
     interval '5 minutes', 'critical', '{{queue}} is {{value}}: work waits and consumers finish none of it', true, true),
    (p_project_id, 'poison', 'poison', '>', 0, null, interval '10 minutes',
     'warning', '{{queue}}: {{value}} poison messages (taken again and again, never finished)', true, true),
    (p_project_id, 'consumer_silent', 'consumer_silent', '>', 3, null, interval '5 minutes',
     'warning', '{{queue}}: work is ready and no consumer has taken any for {{value}} s', true, true)
  on conflict (project_id, name) do nothing;
  get diagnostics v_count = row_count;
  return v_count;
end;
$$;
comment on function queue_health._install_signal_default_rules(text) is 'Installs the default rules of the signals (flow_stopped, poison, consumer_silent) for a project; existing rules with the same names are left alone. Returns how many were added. Called by install_default_rules() and, once, for the projects that existed before them.';
revoke execute on function queue_health._install_signal_default_rules(text) from public, anon, authenticated;
grant execute on function queue_health._install_signal_default_rules(text) to service_role;

create or replace function queue_health.install_default_rules(p_project_id text)
returns integer
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_count integer;
begin
  -- Security definer: called by the trigger on a new project, whose creator is not yet a member.
  insert into queue_health.alert_rule
    (project_id, name, condition, comparator, threshold, window_duration, min_volume, for_duration,
     severity, summary, is_default, enabled)
  values
    (p_project_id, 'oldest_ready_age', 'oldest_ready_age_s', '>', 60, null, 0, interval '2 minutes',
     'warning', '{{queue}}: oldest ready job has waited {{value}} s (threshold {{threshold}} s)', true, true),
    (p_project_id, 'stalled', 'stalled', '>', 0, interval '5 minutes', 0, interval '0',
     'critical', '{{queue}} is stalled: {{value}} jobs waiting and none completed in 5 minutes', true, true),
    (p_project_id, 'failure_rate', 'failure_rate', '>', 0.05, interval '10 minutes', 20, interval '0',
     'warning', '{{queue}}: {{value}} of jobs failed over 10 minutes (threshold {{threshold}})', true, true),
    (p_project_id, 'dead_letters', 'dead_letters', '>', 0, interval '10 minutes', 0, interval '0',
     'warning', '{{queue}}: {{value}} jobs dead-lettered in the last 10 minutes', true, true),
    (p_project_id, 'monitor_stale', 'monitor_stale', '>', 3, null, 0, interval '0',
     'critical', 'Queue Health has not captured for {{value}} capture intervals (threshold {{threshold}})', true, true)
  on conflict (project_id, name) do nothing;
  get diagnostics v_count = row_count;
  return v_count + queue_health._install_signal_default_rules(p_project_id);
end;
$$;
comment on function queue_health.install_default_rules(text) is 'Installs the documented default rules for a project (all enabled, routed to every enabled channel of the project): those of 0.1.0 and those of the signals; existing rules with the same names are left alone. Returns how many were added.';

-- The projects that existed before: the signals' defaults only (a 0.1.0 default a project has
-- deleted stays deleted).
do $$
begin
  perform queue_health._install_signal_default_rules(p.id) from queue_health.project p;
end
$$;

-- Section: the burn-rate rules of a latency objective

create function queue_health._install_objective_rules()
returns trigger
set search_path = ''
language plpgsql
as $$
-- Runs as the caller: objectives are written by project admins (who may write rules) and the
-- service role. The SRE workbook's two multiwindow rules: page at 14.4x over 1 h and 5 min
-- (2 % of a 30-day budget in an hour), ticket at 6x over 6 h and 30 min (5 % in 6 hours). An
-- objective set again re-enables its rules (keeping any edits made to them). Each keeps firing
-- for its short window after the burn dips below the threshold: a rate hovering around 14.4 made
-- the page fire, resolve and fire again within a minute (local/test/signal_scenarios_test.ts).
declare
  v_queue text := format('%s/%s%s', new.source, coalesce(new.source_schema || '.', ''), new.queue_name);
begin
  insert into queue_health.alert_rule as r
    (project_id, name, source, source_schema, queue_name, condition, comparator, threshold,
     window_duration, keep_firing_for, severity, summary, is_default, enabled, objective_id)
  values
    (new.project_id, left('slo_fast_burn ' || v_queue, 200), new.source, new.source_schema, new.queue_name,
     'slo_burn', '>', 14.4, interval '1 hour', interval '5 minutes', 'critical',
     '{{queue}} burns its latency error budget {{value}}x too fast over 1 h and 5 min (threshold {{threshold}}x)',
     true, true, new.id),
    (new.project_id, left('slo_slow_burn ' || v_queue, 200), new.source, new.source_schema, new.queue_name,
     'slo_burn', '>', 6, interval '6 hours', interval '30 minutes', 'warning',
     '{{queue}} burns its latency error budget {{value}}x too fast over 6 h and 30 min (threshold {{threshold}}x)',
     true, true, new.id)
  on conflict (project_id, name) do update
    set enabled = true, objective_id = excluded.objective_id
    where r.is_default and (r.objective_id is distinct from excluded.objective_id or not r.enabled);
  return new;
end;
$$;
comment on function queue_health._install_objective_rules() is 'Trigger after a latency objective is inserted: installs (or re-enables) its two burn-rate rules, slo_fast_burn (critical, 14.4x over 1 h and 5 min, keep firing 5 min) and slo_slow_burn (warning, 6x over 6 h and 30 min, keep firing 30 min), selecting exactly its queue.';
revoke execute on function queue_health._install_objective_rules() from public, anon, authenticated;

create trigger queue_objective_install_rules
  after insert on queue_health.queue_objective
  for each row execute function queue_health._install_objective_rules();

create function queue_health._disable_objective_rules()
returns trigger
set search_path = ''
language plpgsql
as $$
-- Disabled, not deleted: their firing alerts then resolve (and notify) at the next evaluation,
-- and the rules come back, with any edits, if the objective is set again.
begin
  update queue_health.alert_rule r set enabled = false
   where r.objective_id = old.id and r.enabled;
  return old;
end;
$$;
comment on function queue_health._disable_objective_rules() is 'Trigger before a latency objective is deleted: disables the burn-rate rules installed with it (their firing alerts resolve at the next evaluation).';
revoke execute on function queue_health._disable_objective_rules() from public, anon, authenticated;

create trigger queue_objective_disable_rules
  before delete on queue_health.queue_objective
  for each row execute function queue_health._disable_objective_rules();

-- Section: notification payloads

-- The payload of 0.1.0 with value_text, and without the values JSON cannot carry (Infinity: a
-- drain_eta that never ends) or that mean nothing as numbers (a flow status' position), which
-- queue-alert would refuse as not numbers.
create function queue_health._notification_alerts(p_ids uuid[], p_now timestamptz)
returns jsonb
stable
set search_path = ''
language sql
as $$
  -- Everything a notification says of one alert that does not depend on the channel: the
  -- rendering (_render, _format_value) is most of a payload's cost, and a flush that notifies many
  -- channels of the same alerts does it once per alert (_flush_notifications keeps the objects).
  -- resolved_at (as it would read for a resolved alert) and state are set per notification by
  -- _notification_payload_of(), which also removes _sort_queue (the raw queue name, '*' for a
  -- monitor-wide alert, to sort by).
  select coalesce(jsonb_object_agg(a.id::text, jsonb_build_object(
           'alert_id', a.id,
           'rule_id', r.id,
           'rule_name', r.name,
           'condition', r.condition,
           'severity', r.severity,
           'source', nullif(a.source, '*'),
           'source_schema', nullif(a.source_schema, '*'),
           'queue', nullif(a.queue_name, '*'),
           -- JSON has no Infinity, and a flow status' position means nothing to a reader: such
           -- values are null here, and every value is in value_text as the summary shows it
           'value', case when r.condition <> 'flow_status'
                              and a.value not in ('Infinity'::float8, '-Infinity'::float8, 'NaN'::float8)
                         then a.value end,
           'value_text', queue_health._format_value(a.value, r.condition),
           'threshold', r.threshold,
           'started_at', a.started_at,
           'fired_at', a.fired_at,
           'resolved_at', coalesce(a.resolved_at, p_now),
           'summary', queue_health._render(
             coalesce(r.summary, '{{rule}}: {{condition}} is {{value}} on {{queue}} (threshold {{threshold}})'), r, a),
           'runbook_url', queue_health._render(r.runbook_url, r, a),
           -- the queue's own labels, for routing (Alertmanager labels, PagerDuty details)
           'queue_labels', coalesce(q.labels, '{}'::jsonb),
           '_sort_queue', a.queue_name)), '{}'::jsonb)
    from queue_health.alert a
    join queue_health.alert_rule r on r.id = a.rule_id
    left join queue_health.queue q
      on q.source = a.source and q.source_schema = a.source_schema and q.queue_name = a.queue_name
   where a.id = any (p_ids)
$$;
comment on function queue_health._notification_alerts(uuid[], timestamptz) is 'The channel-independent part of each alert p_ids in a notification (its rule, queue, value and as read, threshold, times, rendered summary and runbook link, the queue''s labels), as {alert_id: object}: what _notification_payload_of() assembles a payload from.';
revoke execute on function queue_health._notification_alerts(uuid[], timestamptz) from public, anon, authenticated;

create function queue_health._notification_payload_of(
  p_id uuid, p_channel queue_health.channel, p_firing uuid[], p_resolved uuid[], p_now timestamptz,
  p_alerts jsonb)
returns jsonb
stable
set search_path = ''
language sql
as $$
  -- Firing alerts first, then by severity (highest first), queue and rule name.
  select jsonb_build_object(
           'v', 1,
           'notification_id', p_id,
           'project_id', p_channel.project_id,
           'channel', jsonb_build_object('id', p_channel.id, 'name', p_channel.name, 'kind', p_channel.kind),
           'status', case when cardinality(p_firing) > 0 then 'firing' else 'resolved' end,
           'severity', max((x.o ->> 'severity')::queue_health.alert_severity)::text,
           'counts', jsonb_build_object('firing', cardinality(p_firing), 'resolved', cardinality(p_resolved)),
           'alerts', jsonb_agg(
             (x.o - '_sort_queue') || jsonb_build_object(
               'state', case when x.firing then 'firing' else 'resolved' end,
               'resolved_at', case when x.firing then null else x.o -> 'resolved_at' end)
             order by x.firing desc, (x.o ->> 'severity')::queue_health.alert_severity desc,
                      x.o ->> '_sort_queue', x.o ->> 'rule_name'),
           'dashboard_url', (select s.dashboard_url from queue_health.project_alert_settings s
                              where s.project_id = p_channel.project_id))
    from (select distinct u.id from unnest(p_firing || p_resolved) u(id)) i
    cross join lateral (select p_alerts -> i.id::text as o, i.id = any (p_firing) as firing) x
   where x.o is not null
$$;
comment on function queue_health._notification_payload_of(uuid, queue_health.channel, uuid[], uuid[], timestamptz, jsonb) is 'The payload (v1) of notification p_id to p_channel from the alerts'' objects p_alerts (_notification_alerts()): its firing alerts p_firing and resolved alerts p_resolved, firing first, then by severity, queue and rule.';
revoke execute on function queue_health._notification_payload_of(uuid, queue_health.channel, uuid[], uuid[], timestamptz, jsonb) from public, anon, authenticated;

create or replace function queue_health._notification_payload(
  p_id uuid, p_channel queue_health.channel, p_firing uuid[], p_resolved uuid[], p_now timestamptz)
returns jsonb
stable
set search_path = ''
language sql
as $$
  select queue_health._notification_payload_of(p_id, p_channel, p_firing, p_resolved, p_now,
    queue_health._notification_alerts(p_firing || p_resolved, p_now))
$$;
comment on function queue_health._notification_payload(uuid, queue_health.channel, uuid[], uuid[], timestamptz) is 'The payload (v1) of notification p_id to p_channel: its firing alerts p_firing and resolved alerts p_resolved, each with its rule, rendered summary and runbook link; value is null when not a finite number or for flow_status, value_text is the value as people read it (never, the status name), queue_labels the queue''s labels ({} for none, or for a monitor-wide alert). _notification_payload_of() over _notification_alerts().';
