-- Queue Health: alert rules. Rules with Prometheus semantics (for, keep_firing_for), silences,
-- per-project alert settings (group_wait, group_interval, repeat_interval), their validation and
-- per-project quotas, and the default rules every project gets.

create table queue_health.project_alert_settings (
  project_id text primary key references queue_health.project (id) on delete cascade,
  group_wait interval not null default interval '30 seconds',
  group_interval interval not null default interval '5 minutes',
  repeat_interval interval not null default interval '4 hours',
  dashboard_url text,
  constraint project_alert_settings_group_wait_not_negative check (group_wait >= interval '0'),
  constraint project_alert_settings_group_interval_positive check (group_interval > interval '0'),
  constraint project_alert_settings_repeat_interval_positive check (repeat_interval > interval '0')
);
comment on table queue_health.project_alert_settings is 'Per-project notification timing defaults (used where a rule leaves them null) and the dashboard link put into notifications. A project without a row uses the column defaults.';
comment on column queue_health.project_alert_settings.project_id is 'The project these defaults apply to.';
comment on column queue_health.project_alert_settings.group_wait is 'How long a new notification group waits for more alerts before its first notification (Alertmanager group_wait).';
comment on column queue_health.project_alert_settings.group_interval is 'Minimum time between two notifications of one group when its alerts change (Alertmanager group_interval).';
comment on column queue_health.project_alert_settings.repeat_interval is 'How long to wait before repeating a notification for alerts that are still firing (Alertmanager repeat_interval).';
comment on column queue_health.project_alert_settings.dashboard_url is 'Link put into every notification payload as dashboard_url (null: none).';

create table queue_health.alert_rule (
  id uuid primary key default gen_random_uuid(),
  project_id text not null references queue_health.project (id) on delete cascade,
  name text not null,
  description text,
  -- selector
  source text,
  source_schema text,
  queue_name text,
  queue_pattern text,
  labels jsonb not null default '{}'::jsonb,
  -- condition
  condition text not null,
  comparator text not null default '>',
  threshold double precision not null default 0,
  window_duration interval,
  min_volume bigint not null default 0,
  for_duration interval not null default interval '0',
  keep_firing_for interval not null default interval '0',
  severity queue_health.alert_severity not null default 'warning',
  -- notification
  channel_ids uuid[],
  send_resolved boolean not null default true,
  repeat_interval interval,
  group_wait interval,
  group_interval interval,
  summary text,
  runbook_url text,
  enabled boolean not null default true,
  is_default boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid default auth.uid(),
  unique (project_id, name),
  constraint alert_rule_threshold_finite check (threshold not in ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)),
  constraint alert_rule_queue_name_or_pattern check (queue_name is null or queue_pattern is null)
);
comment on table queue_health.alert_rule is 'Alert rules: which queues (selector), what condition, how long (for / keep_firing_for), how bad (severity) and whom to tell (channels). Validated by a trigger whose errors name the field.';
comment on column queue_health.alert_rule.id is 'Rule id.';
comment on column queue_health.alert_rule.project_id is 'The project whose queues the rule watches.';
comment on column queue_health.alert_rule.name is 'Rule name, unique per project; {{rule}} in templates.';
comment on column queue_health.alert_rule.description is 'Free text for people.';
comment on column queue_health.alert_rule.source is 'Only queues of this source (pgmq | pgboss); null: any.';
comment on column queue_health.alert_rule.source_schema is 'Only queues of this source schema (e.g. pgboss); null: any.';
comment on column queue_health.alert_rule.queue_name is 'Only the queue with exactly this name; null: any (see queue_pattern).';
comment on column queue_health.alert_rule.queue_pattern is 'Only queues whose name is LIKE this pattern (e.g. ''email_%''); null: any.';
comment on column queue_health.alert_rule.labels is 'Only queues whose labels contain this object (jsonb @>); {} matches all.';
comment on column queue_health.alert_rule.condition is 'What is measured: a metric (ready, in_flight, delayed, depth, oldest_ready_age_s, enqueued, completed, failed, retried, dead_lettered, wait_p50_ms, wait_p95_ms, run_p50_ms, run_p95_ms, sample_ms, snapshot_age_s), a rate (enqueue_rate, complete_rate, fail_rate, error_rate) or a built-in (stalled, growing_backlog, failure_rate, dead_letters, no_data, monitor_stale).';
comment on column queue_health.alert_rule.comparator is 'How the value is compared with the threshold: > >= < <= == !=.';
comment on column queue_health.alert_rule.threshold is 'The number the value is compared with (failure/error rates as a fraction: 0.05 = 5 %; no_data / monitor_stale in capture intervals).';
comment on column queue_health.alert_rule.window_duration is 'Look-back window for counts, rates and built-ins (required by stalled, growing_backlog, failure_rate); null: the latest snapshot only.';
comment on column queue_health.alert_rule.min_volume is 'error_rate / failure_rate: minimum completed + failed jobs in the window before the rate counts.';
comment on column queue_health.alert_rule.for_duration is 'How long the condition must hold before the alert fires (Prometheus `for`); meanwhile it is pending.';
comment on column queue_health.alert_rule.keep_firing_for is 'How long a firing alert keeps firing after the condition cleared (Prometheus keep_firing_for); damps flapping.';
comment on column queue_health.alert_rule.severity is 'info | warning | critical.';
comment on column queue_health.alert_rule.channel_ids is 'Channels (of the same project) to notify; null: every enabled channel of the project; {}: none (state only).';
comment on column queue_health.alert_rule.send_resolved is 'Notify when a notified alert resolves.';
comment on column queue_health.alert_rule.repeat_interval is 'Repeat a notification for a still-firing alert after this long; null: the project default (4 h).';
comment on column queue_health.alert_rule.group_wait is 'Wait this long after a group''s first alert before notifying; null: the project default (30 s).';
comment on column queue_health.alert_rule.group_interval is 'Minimum time between notifications of a group that changed; null: the project default (5 min).';
comment on column queue_health.alert_rule.summary is 'Annotation template; {{rule}}, {{queue}}, {{source}}, {{value}}, {{threshold}}, {{severity}}, {{condition}}, {{project}} are replaced.';
comment on column queue_health.alert_rule.runbook_url is 'Annotation template for a runbook link (http/https), same placeholders as summary.';
comment on column queue_health.alert_rule.enabled is 'Disabled rules are not evaluated; their pending/firing alerts end (firing ones resolve).';
comment on column queue_health.alert_rule.is_default is 'Installed by install_default_rules().';
comment on column queue_health.alert_rule.created_at is 'When the rule was created.';
comment on column queue_health.alert_rule.updated_at is 'When the rule was last changed.';
comment on column queue_health.alert_rule.created_by is 'The user who created it (auth.uid()), null for the service role and defaults.';
comment on constraint alert_rule_threshold_finite on queue_health.alert_rule is 'alert_rule.threshold must be a finite number.';
comment on constraint alert_rule_queue_name_or_pattern on queue_health.alert_rule is 'A rule selects queues by exact name or by pattern, not both.';

create table queue_health.silence (
  id uuid primary key default gen_random_uuid(),
  project_id text not null references queue_health.project (id) on delete cascade,
  rule_id uuid references queue_health.alert_rule (id) on delete cascade,
  source text,
  queue_pattern text,
  severity queue_health.alert_severity,
  starts_at timestamptz not null default now(),
  ends_at timestamptz not null,
  created_by uuid default auth.uid(),
  comment text not null,
  created_at timestamptz not null default now(),
  constraint silence_ends_after_start check (ends_at > starts_at),
  constraint silence_comment_present check (length(btrim(comment)) > 0)
);
comment on table queue_health.silence is 'Time-boxed matchers that suppress notifications (not evaluation) of matching alerts between starts_at and ends_at. Expired silences simply stop matching.';
comment on column queue_health.silence.id is 'Silence id.';
comment on column queue_health.silence.project_id is 'Only alerts of this project.';
comment on column queue_health.silence.rule_id is 'Only alerts of this rule; null: any rule.';
comment on column queue_health.silence.source is 'Only alerts of queues of this source; null: any.';
comment on column queue_health.silence.queue_pattern is 'Only alerts whose queue name is LIKE this; null: any queue (and project-level alerts).';
comment on column queue_health.silence.severity is 'Only alerts of rules with this severity; null: any.';
comment on column queue_health.silence.starts_at is 'The silence applies from this instant (inclusive).';
comment on column queue_health.silence.ends_at is 'The silence stops applying at this instant (exclusive).';
comment on column queue_health.silence.created_by is 'Who created it (auth.uid()).';
comment on column queue_health.silence.comment is 'Why (required).';
comment on column queue_health.silence.created_at is 'When the silence was created.';
comment on constraint silence_ends_after_start on queue_health.silence is 'silence.ends_at must be after silence.starts_at.';
comment on constraint silence_comment_present on queue_health.silence is 'silence.comment must say why.';

create index silence_project_window_idx on queue_health.silence (project_id, ends_at);

-- The foreign key's index: deleting a rule deletes its silences (without it, a scan per rule).
create index silence_rule_idx on queue_health.silence (rule_id);

create function queue_health._check_interval(
  p_field text, p_value interval, p_min interval, p_max interval, p_min_setting text, p_max_setting text)
returns void
immutable
set search_path = ''
language plpgsql
as $$
begin
  if p_value is not null and (p_value < p_min or p_value > p_max) then
    raise exception '% must be between % and %: got %', p_field, p_min, p_max, p_value
      using errcode = 'check_violation',
            hint = format('The bounds are queue_health.settings.%s and .%s (the operator sets them).',
                          coalesce(p_min_setting, '(none)'), p_max_setting);
  end if;
end;
$$;
comment on function queue_health._check_interval(text, interval, interval, interval, text, text) is 'Raises check_violation naming the field, the bounds and the settings behind them when p_value (not null) lies outside [p_min, p_max].';
revoke execute on function queue_health._check_interval(text, interval, interval, interval, text, text) from public, anon;
grant execute on function queue_health._check_interval(text, interval, interval, interval, text, text) to authenticated, service_role;

create function queue_health._enforce_quota()
returns trigger
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_settings queue_health.settings := queue_health._settings();
  v_limit int;
  v_setting text;
  v_what text;
  v_count bigint;
begin
  if tg_op = 'UPDATE' and new.project_id is not distinct from old.project_id then
    return new;
  end if;
  -- A user who may not write to the project is refused by RLS right after this trigger: the
  -- project's quota is none of their business.
  if current_setting('role', true) in ('authenticated', 'anon')
     and not queue_health.is_member(new.project_id, 'admin') then
    return new;
  end if;
  -- One writer per (table, project) at a time, so concurrent inserts cannot both pass the count.
  perform pg_advisory_xact_lock(hashtextextended('queue_health.quota/' || tg_table_name || '/' || new.project_id, 0));
  case tg_table_name
    when 'alert_rule' then
      v_limit := v_settings.max_rules_per_project;
      v_setting := 'max_rules_per_project';
      v_what := 'alert rules';
      select count(*) into v_count from queue_health.alert_rule r where r.project_id = new.project_id;
    when 'channel' then
      v_limit := v_settings.max_channels_per_project;
      v_setting := 'max_channels_per_project';
      v_what := 'channels';
      select count(*) into v_count from queue_health.channel c where c.project_id = new.project_id;
    when 'silence' then
      v_limit := v_settings.max_silences_per_project;
      v_setting := 'max_silences_per_project';
      v_what := 'silences that have not ended';
      select count(*) into v_count from queue_health.silence x
       where x.project_id = new.project_id and x.ends_at > now();
    else
      raise exception '_enforce_quota() is not meant for table %', tg_table_name;
  end case;
  if v_count >= v_limit then
    raise exception 'project % has reached its quota of % % (queue_health.settings.%)',
      new.project_id, v_limit, v_what, v_setting
      using errcode = 'program_limit_exceeded',
            hint = format('Delete %s the project no longer needs, or ask the operator to raise queue_health.settings.%s.',
                          v_what, v_setting);
  end if;
  return new;
end;
$$;
comment on function queue_health._enforce_quota() is 'Per-project quotas (settings.max_rules_per_project, max_channels_per_project, max_silences_per_project): refuses a row past its project''s quota with SQLSTATE 54000 (program_limit_exceeded), naming the quota and the setting.';
revoke execute on function queue_health._enforce_quota() from public, anon, authenticated;

create trigger alert_rule_quota
  before insert or update of project_id on queue_health.alert_rule
  for each row execute function queue_health._enforce_quota();

create trigger channel_quota
  before insert or update of project_id on queue_health.channel
  for each row execute function queue_health._enforce_quota();

create trigger silence_quota
  before insert or update of project_id on queue_health.silence
  for each row execute function queue_health._enforce_quota();

create function queue_health._validate_alert_rule()
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
    'stalled', 'growing_backlog', 'failure_rate', 'dead_letters', 'no_data', 'monitor_stale'];
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
  if new.window_duration is null and new.condition in ('stalled', 'growing_backlog', 'failure_rate') then
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
comment on function queue_health._validate_alert_rule() is 'Refuses invalid alert rules with a message naming the field. Runs as the caller so RLS still hides other projects'' channels.';
revoke execute on function queue_health._validate_alert_rule() from public, anon, authenticated;

create trigger alert_rule_validate
  before insert or update on queue_health.alert_rule
  for each row execute function queue_health._validate_alert_rule();

create function queue_health._validate_project_alert_settings()
returns trigger
set search_path = ''
language plpgsql
as $$
declare
  v_settings queue_health.settings := queue_health._settings();
  v_tenant boolean := queue_health._is_tenant();
begin
  perform queue_health._check_interval('project_alert_settings.group_wait', new.group_wait,
    interval '0', v_settings.max_alert_interval, null, 'max_alert_interval');
  perform queue_health._check_interval('project_alert_settings.group_interval', new.group_interval,
    case when v_tenant then v_settings.min_group_interval else interval '1 microsecond' end,
    v_settings.max_alert_interval, 'min_group_interval', 'max_alert_interval');
  perform queue_health._check_interval('project_alert_settings.repeat_interval', new.repeat_interval,
    case when v_tenant then v_settings.min_repeat_interval else interval '1 microsecond' end,
    v_settings.max_alert_interval, 'min_repeat_interval', 'max_alert_interval');
  return new;
end;
$$;
comment on function queue_health._validate_project_alert_settings() is 'Bounds a project''s notification timing: group_wait within [0, max_alert_interval], group_interval and repeat_interval within [min_group_interval / min_repeat_interval (tenants only), max_alert_interval]; the message names the field and the setting.';
revoke execute on function queue_health._validate_project_alert_settings() from public, anon, authenticated;

create trigger project_alert_settings_validate
  before insert or update on queue_health.project_alert_settings
  for each row execute function queue_health._validate_project_alert_settings();

create function queue_health._validate_silence()
returns trigger
set search_path = ''
language plpgsql
as $$
begin
  if new.rule_id is not null and not exists (
      select 1 from queue_health.alert_rule r where r.id = new.rule_id and r.project_id = new.project_id) then
    raise exception 'silence.rule_id: % is not a rule of project %', new.rule_id, new.project_id
      using errcode = 'foreign_key_violation';
  end if;
  if new.ends_at is null or new.starts_at is null or new.ends_at <= new.starts_at then
    raise exception 'silence.ends_at must be after silence.starts_at' using errcode = 'check_violation';
  end if;
  if new.comment is null or length(btrim(new.comment)) = 0 then
    raise exception 'silence.comment must say why' using errcode = 'check_violation';
  end if;
  return new;
end;
$$;
comment on function queue_health._validate_silence() is 'Refuses silences naming another project''s rule, ending before they start, or without a comment.';
revoke execute on function queue_health._validate_silence() from public, anon, authenticated;

create trigger silence_validate
  before insert or update on queue_health.silence
  for each row execute function queue_health._validate_silence();

create function queue_health.install_default_rules(p_project_id text)
returns integer
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_count integer;
begin
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
  return v_count;
end;
$$;
comment on function queue_health.install_default_rules(text) is 'Installs the documented default rules for a project (all enabled, routed to every enabled channel of the project); existing rules with the same names are left alone. Returns how many were added.';
revoke execute on function queue_health.install_default_rules(text) from public, anon, authenticated;
grant execute on function queue_health.install_default_rules(text) to service_role;

create function queue_health._install_default_rules_on_project()
returns trigger
security definer
set search_path = ''
language plpgsql
as $$
begin
  perform queue_health.install_default_rules(new.id);
  return new;
end;
$$;
comment on function queue_health._install_default_rules_on_project() is 'Trigger: every new project gets the default rules.';
revoke execute on function queue_health._install_default_rules_on_project() from public, anon, authenticated;

create trigger project_install_default_alert_rules
  after insert on queue_health.project
  for each row execute function queue_health._install_default_rules_on_project();

do $$
begin
  perform queue_health.install_default_rules(p.id) from queue_health.project p;
end
$$;
alter table queue_health.project_alert_settings enable row level security;
alter table queue_health.alert_rule enable row level security;
alter table queue_health.silence enable row level security;

-- Rules, channels, silences, project alert settings: members read, admins write.
create policy "Alert rules are visible to project members" on queue_health.alert_rule
  for select to authenticated using ((select queue_health.is_member(project_id)));

create policy "Alert rules are created by project admins" on queue_health.alert_rule
  for insert to authenticated with check ((select queue_health.is_member(project_id, 'admin')));

create policy "Alert rules are changed by project admins" on queue_health.alert_rule
  for update to authenticated using ((select queue_health.is_member(project_id, 'admin')))
  with check ((select queue_health.is_member(project_id, 'admin')));

create policy "Alert rules are deleted by project admins" on queue_health.alert_rule
  for delete to authenticated using ((select queue_health.is_member(project_id, 'admin')));

create policy "Silences are visible to project members" on queue_health.silence
  for select to authenticated using ((select queue_health.is_member(project_id)));

create policy "Silences are created by project admins" on queue_health.silence
  for insert to authenticated with check ((select queue_health.is_member(project_id, 'admin')));

create policy "Silences are changed by project admins" on queue_health.silence
  for update to authenticated using ((select queue_health.is_member(project_id, 'admin')))
  with check ((select queue_health.is_member(project_id, 'admin')));

create policy "Silences are deleted by project admins" on queue_health.silence
  for delete to authenticated using ((select queue_health.is_member(project_id, 'admin')));

create policy "Alert settings are visible to project members" on queue_health.project_alert_settings
  for select to authenticated using ((select queue_health.is_member(project_id)));

create policy "Alert settings are created by project admins" on queue_health.project_alert_settings
  for insert to authenticated with check ((select queue_health.is_member(project_id, 'admin')));

create policy "Alert settings are changed by project admins" on queue_health.project_alert_settings
  for update to authenticated using ((select queue_health.is_member(project_id, 'admin')))
  with check ((select queue_health.is_member(project_id, 'admin')));

create policy "Alert settings are deleted by project admins" on queue_health.project_alert_settings
  for delete to authenticated using ((select queue_health.is_member(project_id, 'admin')));

-- channel_secret and dispatch_settings: no policy at all; only the service role (bypassrls) and
-- the table owner reach them.
revoke all on queue_health.project_alert_settings, queue_health.alert_rule, queue_health.silence from public, anon, authenticated;
grant select, insert, update, delete on queue_health.alert_rule, queue_health.silence, queue_health.project_alert_settings to authenticated;
grant select, insert, update, delete on queue_health.project_alert_settings, queue_health.alert_rule, queue_health.silence to service_role;
