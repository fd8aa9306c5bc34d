-- Queue Health: alerting.
-- Rules with Prometheus semantics (for, keep_firing_for), one state row per (rule, queue), every
-- transition kept, silences, and an outbox grouped per (project, channel) as Alertmanager does
-- (group_wait, group_interval, repeat_interval). Delivery is the queue-alert Edge Function's job:
-- it claims outbox rows with claim_notifications() and reports with complete_/fail_notification().
--
-- Data flows one way: metric rows -> evaluate_alerts() -> alert / alert_event -> notification
-- (outbox) -> dispatch (pg_net POST to queue-alert, else NOTIFY) -> queue-alert.

-- Section: types

create type queue_health.alert_severity as enum ('info', 'warning', 'critical');
comment on type queue_health.alert_severity is 'How bad an alert is; ordered, so max() gives the highest.';

create type queue_health.alert_state as enum ('inactive', 'pending', 'firing', 'resolved');
comment on type queue_health.alert_state is 'State of one (rule, queue) alert: inactive -> pending (condition true, waiting out `for`) -> firing -> resolved.';

create type queue_health.notification_status as enum ('pending', 'sending', 'sent', 'failed', 'dead');
comment on type queue_health.notification_status is 'Outbox row status: pending -> sending (claimed, leased) -> sent | failed (retry at next_attempt_at) | dead (permanent error or attempts exhausted).';

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

-- Section: per-project alerting settings and dispatch settings

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

create table queue_health.dispatch_settings (
  id boolean primary key default true,
  queue_alert_url text,
  queue_alert_key text,
  constraint dispatch_settings_single_row check (id),
  constraint dispatch_settings_queue_alert_url_http check (queue_alert_url is null or queue_alert_url ~ '^https?://')
);
comment on table queue_health.dispatch_settings is 'How new notifications wake queue-alert when pg_net is installed: POST to queue_alert_url with the key as bearer token. Vault secrets queue_health_alert_url / queue_health_alert_key take precedence. Service role only (holds a key).';
comment on column queue_health.dispatch_settings.id is 'Always true: the table has one row at most.';
comment on column queue_health.dispatch_settings.queue_alert_url is 'URL of the queue-alert Edge Function, e.g. https://<ref>.supabase.co/functions/v1/queue-alert.';
comment on column queue_health.dispatch_settings.queue_alert_key is 'Bearer token for queue-alert (the service role key or queue-alert''s own secret). Prefer the Vault secret queue_health_alert_key.';

-- Section: channels

create table queue_health.channel (
  id uuid primary key default gen_random_uuid(),
  project_id text not null references queue_health.project (id) on delete cascade,
  name text not null,
  kind text not null,
  config jsonb not null default '{}'::jsonb,
  enabled boolean not null default true,
  created_at timestamptz not null default now(),
  created_by uuid default auth.uid(),
  unique (project_id, name),
  constraint channel_kind_known check (kind in ('email', 'slack', 'webhook')),
  constraint channel_config_object check (jsonb_typeof(config) = 'object')
);
comment on table queue_health.channel is 'Where a project''s notifications go. Non-secret configuration only; secrets live in channel_secret.';
comment on column queue_health.channel.id is 'Channel id; rules list these in alert_rule.channel_ids.';
comment on column queue_health.channel.project_id is 'The project the channel belongs to; only its rules can use it.';
comment on column queue_health.channel.name is 'Name shown in notifications and channel_health; unique per project.';
comment on column queue_health.channel.kind is 'email (Resend), slack (incoming webhook) or webhook (signed JSON POST).';
comment on column queue_health.channel.config is 'Non-secret settings: email {"to": [..] (at most settings.max_email_recipients), "from": "..", "reply_to": ".."} (queue-alert uses from/reply_to only when the operator lists them, else RESEND_FROM and none); webhook {"url": "https://.."}; slack {} (its URL is a secret).';
comment on column queue_health.channel.enabled is 'Disabled channels get no new notifications.';
comment on column queue_health.channel.created_at is 'When the channel was created.';
comment on column queue_health.channel.created_by is 'The user who created it (auth.uid()), null for the service role.';

create table queue_health.channel_secret (
  channel_id uuid primary key references queue_health.channel (id) on delete cascade,
  secret jsonb not null,
  updated_at timestamptz not null default now(),
  constraint channel_secret_object check (jsonb_typeof(secret) = 'object')
);
comment on table queue_health.channel_secret is 'Channel secrets: slack {"url"}, webhook {"signing_secret"}. Readable and writable by the service role only; returned only by claim_notifications().';
comment on column queue_health.channel_secret.channel_id is 'The channel the secret belongs to.';
comment on column queue_health.channel_secret.secret is 'The secret values (never shown by any view or other function).';
comment on column queue_health.channel_secret.updated_at is 'When the secret was last written.';

-- Section: rules

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

-- Section: silences

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

-- Section: alert state

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
-- each page so those are HOT updates (no index entries; 2 000 firing alerts: evaluation ~180 ->
-- ~130 ms), and vacuum the small, busy table often.
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

-- Section: outbox

create table queue_health.notification_group (
  channel_id uuid primary key references queue_health.channel (id) on delete cascade,
  project_id text not null references queue_health.project (id) on delete cascade,
  group_key text not null,
  flush_at timestamptz not null,
  last_sent_at timestamptz,
  last_firing uuid[] not null default '{}',
  created_at timestamptz not null
);
comment on table queue_health.notification_group is 'Aggregation state of one (project, channel) group, as Alertmanager keeps per group: when it may next notify and which alerts its last notification reported firing. Deleted when the group has nothing left to say.';
comment on column queue_health.notification_group.channel_id is 'The channel (a channel belongs to one project, so this is the group).';
comment on column queue_health.notification_group.project_id is 'The channel''s project.';
comment on column queue_health.notification_group.group_key is 'project_id/channel_id, copied into notifications.';
comment on column queue_health.notification_group.flush_at is 'No notification before this instant (created_at + group_wait, then last_sent_at + group_interval).';
comment on column queue_health.notification_group.last_sent_at is 'When the group last produced a notification.';
comment on column queue_health.notification_group.last_firing is 'Alert ids reported firing in the last notification.';
comment on column queue_health.notification_group.created_at is 'When the group got its first alert.';
-- The foreign key's index: members read their projects' groups (RLS), a project's deletion
-- deletes them.
create index notification_group_project_idx on queue_health.notification_group (project_id);

create table queue_health.notification (
  id uuid primary key default gen_random_uuid(),
  project_id text not null references queue_health.project (id) on delete cascade,
  channel_id uuid not null references queue_health.channel (id) on delete cascade,
  group_key text not null,
  status queue_health.notification_status not null default 'pending',
  payload jsonb not null,
  attempts int not null default 0,
  max_attempts int not null default 8,
  next_attempt_at timestamptz not null default now(),
  lease_until timestamptz,
  last_error text,
  last_error_at timestamptz,
  provider_message_id text,
  created_at timestamptz not null default now(),
  sent_at timestamptz,
  constraint notification_max_attempts_positive check (max_attempts > 0),
  constraint notification_attempts_not_negative check (attempts >= 0),
  constraint notification_sent_at_only_when_sent check ((status = 'sent') = (sent_at is not null)),
  constraint notification_lease_when_sending check (status <> 'sending' or lease_until is not null)
);
comment on table queue_health.notification is 'Outbox: one message to one channel, written in the same transaction as the alert transitions it reports. queue-alert claims, sends and marks rows.';
comment on column queue_health.notification.id is 'Notification id: the Resend Idempotency-Key and the webhook delivery id.';
comment on column queue_health.notification.project_id is 'The project.';
comment on column queue_health.notification.channel_id is 'The channel to send to.';
comment on column queue_health.notification.group_key is 'The group it came from (project_id/channel_id).';
comment on column queue_health.notification.status is 'pending | sending | sent | failed | dead.';
comment on column queue_health.notification.payload is 'The versioned message body (v 1), without secrets.';
comment on column queue_health.notification.attempts is 'How many times it has been claimed.';
comment on column queue_health.notification.max_attempts is 'After this many failed attempts it goes dead.';
comment on column queue_health.notification.next_attempt_at is 'Not claimable before this instant.';
comment on column queue_health.notification.lease_until is 'While sending: when the claim expires and another worker may take the row.';
comment on column queue_health.notification.last_error is 'The last delivery error (no secrets).';
comment on column queue_health.notification.last_error_at is 'When the last error happened.';
comment on column queue_health.notification.provider_message_id is 'The provider''s id for the sent message (Resend email id, ...).';
comment on column queue_health.notification.created_at is 'When the notification was written.';
comment on column queue_health.notification.sent_at is 'When it was delivered; set only when sent.';
comment on constraint notification_sent_at_only_when_sent on queue_health.notification is 'sent_at is set exactly when the status is sent.';
comment on constraint notification_lease_when_sending on queue_health.notification is 'A row being sent has a lease.';

create index notification_due_idx on queue_health.notification (next_attempt_at) where status in ('pending', 'failed');
create index notification_lease_idx on queue_health.notification (lease_until) where status = 'sending';
create index notification_channel_idx on queue_health.notification (channel_id, created_at desc);
create index notification_project_idx on queue_health.notification (project_id, created_at desc);
-- claim_notifications(): each project's oldest due rows, read per project (fair claiming).
create index notification_project_due_idx on queue_health.notification (project_id, next_attempt_at, created_at)
  where status in ('pending', 'failed');
create index notification_project_lease_idx on queue_health.notification (project_id, lease_until)
  where status = 'sending';

-- Section: validation (messages name the field)

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

alter table queue_health.settings
  add column max_email_recipients int not null default 50,
  add constraint settings_max_email_recipients_range check (max_email_recipients between 1 and 50);
comment on column queue_health.settings.max_email_recipients is 'Most recipients an email channel may list (1-50; 50 is also Resend''s limit per email). Checked when a channel is created or changed.';
comment on constraint settings_max_email_recipients_range on queue_health.settings is 'An email channel lists 1 to 50 recipients at most: Resend takes no more per email.';

create function queue_health._max_email_recipients()
returns int
stable
security definer
set search_path = ''
language sql
as $$
  select coalesce((select s.max_email_recipients from queue_health.settings s where s.id), 50);
$$;
comment on function queue_health._max_email_recipients() is 'settings.max_email_recipients, for the channel trigger, whoever writes the channel (a definer: the limit holds even where RLS hides settings from the writer).';
revoke execute on function queue_health._max_email_recipients() from public, anon;
grant execute on function queue_health._max_email_recipients() to authenticated, service_role;

create function queue_health._validate_channel()
returns trigger
set search_path = ''
language plpgsql
as $$
declare
  v_to jsonb;
  v_max int;
  v_key text;
begin
  if new.name is null or length(btrim(new.name)) = 0 or length(new.name) > 200 then
    raise exception 'channel.name must be 1 to 200 characters: got %', coalesce(quote_literal(new.name), 'null')
      using errcode = 'check_violation';
  end if;
  if new.kind is null or new.kind not in ('email', 'slack', 'webhook') then
    raise exception 'channel.kind must be email, slack or webhook: got %', coalesce(quote_literal(new.kind), 'null')
      using errcode = 'check_violation';
  end if;
  if new.config is null or jsonb_typeof(new.config) <> 'object' then
    raise exception 'channel.config must be a JSON object' using errcode = 'check_violation';
  end if;
  if new.kind = 'email' then
    -- Recipients as "to" (or "recipients"): an array of addresses, or one comma-separated string.
    v_to := coalesce(new.config -> 'to', new.config -> 'recipients');
    if jsonb_typeof(v_to) = 'string' then
      v_to := to_jsonb(regexp_split_to_array(btrim(v_to #>> '{}'), '\s*,\s*'));
    end if;
    if jsonb_typeof(v_to) is distinct from 'array' or jsonb_array_length(v_to) = 0
        or exists (select 1 from jsonb_array_elements(v_to) e(v)
                    where jsonb_typeof(e.v) <> 'string' or e.v #>> '{}' !~ '^[^@\s]+@[^@\s]+$') then
      raise exception 'channel.config.to must be a non-empty array of email addresses for an email channel'
        using errcode = 'check_violation';
    end if;
    v_max := queue_health._max_email_recipients();
    if jsonb_array_length(v_to) > v_max then
      raise exception 'channel.config.to lists % recipients: at most % (queue_health.settings.max_email_recipients)',
        jsonb_array_length(v_to), v_max
        using errcode = 'check_violation';
    end if;
    -- The sender and reply-to are the operator's (queue-alert uses one only when the operator
    -- lists it); a channel may name one, as a single address without line breaks.
    foreach v_key in array array['from', 'reply_to'] loop
      if new.config ? v_key and (jsonb_typeof(new.config -> v_key) <> 'string'
          or length(new.config ->> v_key) > 320
          or new.config ->> v_key ~ '[\r\n,;]'
          or new.config ->> v_key !~ '^([^<>@]*<)?[^@\s<>]+@[^@\s<>]+>?$') then
        raise exception 'channel.config.% must be one email address ("a@b" or "Name <a@b>")', v_key
          using errcode = 'check_violation';
      end if;
    end loop;
  end if;
  if new.kind = 'webhook' and coalesce(new.config ->> 'url', '') !~ '^https?://' then
    raise exception 'channel.config.url must be an http(s) URL for a webhook channel'
      using errcode = 'check_violation';
  end if;
  if new.config ?| array['secret', 'signing_secret', 'webhook_url', 'token', 'api_key']
      or (new.kind = 'slack' and new.config ? 'url') then
    raise exception 'channel.config must not hold secrets: put them in queue_health.channel_secret (service role)'
      using errcode = 'check_violation';
  end if;
  return new;
end;
$$;
comment on function queue_health._validate_channel() is 'Refuses invalid channels (an email channel with more than settings.max_email_recipients recipients, or a malformed from/reply_to, among them), and secrets in channel.config, with a message naming the field.';
revoke execute on function queue_health._validate_channel() from public, anon, authenticated;

create trigger channel_validate
  before insert or update on queue_health.channel
  for each row execute function queue_health._validate_channel();

create function queue_health._validate_channel_secret()
returns trigger
set search_path = ''
language plpgsql
as $$
declare
  v_kind text;
begin
  select c.kind into v_kind from queue_health.channel c where c.id = new.channel_id;
  if v_kind = 'slack' and coalesce(new.secret ->> 'url', '') !~ '^https?://' then
    raise exception 'channel_secret.secret.url must be the Slack incoming-webhook URL (http/https)'
      using errcode = 'check_violation';
  end if;
  if v_kind = 'webhook' and length(coalesce(new.secret ->> 'signing_secret', '')) < 16 then
    raise exception 'channel_secret.secret.signing_secret must be at least 16 characters for a webhook channel'
      using errcode = 'check_violation';
  end if;
  new.updated_at := now();
  return new;
end;
$$;
comment on function queue_health._validate_channel_secret() is 'Refuses channel secrets that the channel''s kind cannot use; the message names the field, never the value.';
revoke execute on function queue_health._validate_channel_secret() from public, anon, authenticated;

create trigger channel_secret_validate
  before insert or update on queue_health.channel_secret
  for each row execute function queue_health._validate_channel_secret();

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

create function queue_health._forget_channel()
returns trigger
security definer
set search_path = ''
language plpgsql
as $$
begin
  update queue_health.alert_rule r
     set channel_ids = array_remove(r.channel_ids, old.id)
   where old.id = any (r.channel_ids);
  return old;
end;
$$;
comment on function queue_health._forget_channel() is 'Removes a deleted channel from every rule''s channel_ids.';
revoke execute on function queue_health._forget_channel() from public, anon, authenticated;

create trigger channel_forget
  after delete on queue_health.channel
  for each row execute function queue_health._forget_channel();

-- Section: evaluation helpers

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

-- Section: notifications (grouping, as Alertmanager)

create function queue_health._notification_payload(
  p_id uuid, p_channel queue_health.channel, p_firing uuid[], p_resolved uuid[], p_now timestamptz)
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
           'severity', max(r.severity)::text,
           'counts', jsonb_build_object('firing', cardinality(p_firing), 'resolved', cardinality(p_resolved)),
           'alerts', jsonb_agg(jsonb_build_object(
             'alert_id', a.id,
             'rule_id', r.id,
             'rule_name', r.name,
             'condition', r.condition,
             'severity', r.severity,
             'state', case when a.id = any (p_firing) then 'firing' else 'resolved' end,
             'source', nullif(a.source, '*'),
             'source_schema', nullif(a.source_schema, '*'),
             'queue', nullif(a.queue_name, '*'),
             'value', a.value,
             'threshold', r.threshold,
             'started_at', a.started_at,
             'fired_at', a.fired_at,
             'resolved_at', case when a.id = any (p_firing) then null else coalesce(a.resolved_at, p_now) end,
             'summary', queue_health._render(
               coalesce(r.summary, '{{rule}}: {{condition}} is {{value}} on {{queue}} (threshold {{threshold}})'), r, a),
             'runbook_url', queue_health._render(r.runbook_url, r, a))
             order by (a.id = any (p_firing)) desc, r.severity desc, a.queue_name, r.name),
           'dashboard_url', (select s.dashboard_url from queue_health.project_alert_settings s
                              where s.project_id = p_channel.project_id))
    from queue_health.alert a
    join queue_health.alert_rule r on r.id = a.rule_id
   where a.id = any (p_firing || p_resolved)
$$;
comment on function queue_health._notification_payload(uuid, queue_health.channel, uuid[], uuid[], timestamptz) is 'The payload (v1) of notification p_id to p_channel: its firing alerts p_firing and resolved alerts p_resolved, each with its rule, rendered summary and runbook link.';
revoke execute on function queue_health._notification_payload(uuid, queue_health.channel, uuid[], uuid[], timestamptz) from public, anon, authenticated;

create function queue_health._flush_notifications(p_now timestamptz, p_project_id text default null)
returns integer
set search_path = ''
language plpgsql
as $$
-- Per channel (= per (project, channel) group):
--   firing   = firing, unsilenced alerts of enabled rules routed to the channel;
--   resolved = alerts the last notification reported firing that no longer fire (send_resolved,
--              unsilenced).
-- A group with nothing to say is deleted. A new group waits group_wait; afterwards it notifies
-- at most every group_interval, when an alert started firing or resolved, or when repeat_interval
-- has passed since the last notification while something still fires.
declare
  v_ch queue_health.channel;
  v_g queue_health.notification_group;
  v_firing uuid[];
  v_resolved uuid[];
  v_wait interval;
  v_group_interval interval;
  v_repeat interval;
  v_send boolean;
  v_id uuid;
  v_payload jsonb;
  v_count integer := 0;
begin
  for v_ch in
    select c.*
      from queue_health.channel c
     where c.enabled and (p_project_id is null or c.project_id = p_project_id)
       and (exists (select 1 from queue_health.notification_group g where g.channel_id = c.id)
            or exists (
              select 1
                from queue_health.alert a
                join queue_health.alert_rule r on r.id = a.rule_id
               where a.project_id = c.project_id and a.state = 'firing' and r.enabled
                 and (r.channel_ids is null or c.id = any (r.channel_ids))))
     order by c.project_id, c.id
  loop
    select * into v_g from queue_health.notification_group g where g.channel_id = v_ch.id for update;

    select coalesce(array_agg(a.id order by a.id), '{}') into v_firing
      from queue_health.alert a
      join queue_health.alert_rule r on r.id = a.rule_id
     where a.project_id = v_ch.project_id and a.state = 'firing' and r.enabled
       and (r.channel_ids is null or v_ch.id = any (r.channel_ids))
       and not queue_health._is_silenced(a, r, p_now);

    select coalesce(array_agg(a.id order by a.id), '{}') into v_resolved
      from queue_health.alert a
      join queue_health.alert_rule r on r.id = a.rule_id
     where v_g.channel_id is not null and a.id = any (v_g.last_firing) and a.state <> 'firing'
       and r.send_resolved
       and not queue_health._is_silenced(a, r, p_now);

    if cardinality(v_firing) = 0 and cardinality(v_resolved) = 0 then
      if v_g.channel_id is not null then
        delete from queue_health.notification_group g where g.channel_id = v_ch.id;
      end if;
      continue;
    end if;

    -- Timing: the shortest of the rules involved, each falling back to its project's defaults.
    select min(coalesce(r.group_wait, s.group_wait, interval '30 seconds')),
           min(coalesce(r.group_interval, s.group_interval, interval '5 minutes')),
           min(coalesce(r.repeat_interval, s.repeat_interval, interval '4 hours'))
      into v_wait, v_group_interval, v_repeat
      from queue_health.alert a
      join queue_health.alert_rule r on r.id = a.rule_id
      left join queue_health.project_alert_settings s on s.project_id = r.project_id
     where a.id = any (v_firing || v_resolved);

    if v_g.channel_id is null then
      insert into queue_health.notification_group (channel_id, project_id, group_key, flush_at, created_at)
      values (v_ch.id, v_ch.project_id, v_ch.project_id || '/' || v_ch.id, p_now + v_wait, p_now)
      returning * into v_g;
    end if;

    if p_now < v_g.flush_at then
      continue;
    end if;

    v_send := cardinality(v_resolved) > 0
      or exists (select 1 from unnest(v_firing) f(id) where not (f.id = any (v_g.last_firing)))
      or (cardinality(v_firing) > 0 and v_g.last_sent_at is not null and v_g.last_sent_at + v_repeat <= p_now);

    if not v_send then
      -- Forget alerts that stopped firing without a resolved notification, so that firing again
      -- counts as new.
      update queue_health.notification_group g
         set last_firing = coalesce((
           select array_agg(a.id order by a.id) from queue_health.alert a
            where a.id = any (g.last_firing) and a.state = 'firing'), '{}')
       where g.channel_id = v_ch.id;
      continue;
    end if;

    v_id := gen_random_uuid();
    v_payload := queue_health._notification_payload(v_id, v_ch, v_firing, v_resolved, p_now);

    insert into queue_health.notification (id, project_id, channel_id, group_key, payload, next_attempt_at, created_at)
    values (v_id, v_ch.project_id, v_ch.id, v_g.group_key, v_payload, p_now, p_now);

    update queue_health.notification_group g
       set last_firing = v_firing, last_sent_at = p_now, flush_at = p_now + v_group_interval
     where g.channel_id = v_ch.id;
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;
comment on function queue_health._flush_notifications(timestamptz, text) is 'Writes due notifications to the outbox, one per (project, channel) group of p_project_id (null: every project), with Alertmanager''s group_wait / group_interval / repeat_interval; returns how many.';
revoke execute on function queue_health._flush_notifications(timestamptz, text) from public, anon, authenticated;

-- pg_net carries the dispatch to queue-alert (an HTTP POST sent after commit). On hosted Supabase
-- postgres may enable it (supautils lists it among the privileged extensions); where it cannot be
-- had, the install goes on and schedule() reports that alerts cannot leave the database.
do $$
begin
  -- In schema extensions, as the dashboard enables it: in public (the default) the security
  -- advisor warns (extension_in_public). Its functions are in schema net either way.
  if pg_catalog.to_regnamespace('extensions') is not null then
    create extension if not exists pg_net with schema extensions;
  else
    create extension if not exists pg_net;
  end if;
exception when others then
  raise notice 'queue_health: pg_net could not be enabled (%): alerts are delivered only when queue-alert is invoked by other means.', sqlerrm
    using hint = 'On Supabase: Database > Extensions > pg_net, then select queue_health.schedule(); see docs/install.md.';
end
$$;

create function queue_health._dispatch_target(out url text, out key text, out url_source text, out key_source text)
stable
set search_path = ''
language plpgsql
as $$
-- The Vault secrets queue_health_alert_url / queue_health_alert_key, else dispatch_settings.
declare
  v_vault_url text;
  v_vault_key text;
begin
  select d.queue_alert_url, d.queue_alert_key into url, key from queue_health.dispatch_settings d;
  url_source := case when url is not null then 'dispatch_settings' end;
  key_source := case when key is not null then 'dispatch_settings' end;
  if to_regclass('vault.decrypted_secrets') is not null then
    -- format(): the vault schema may not exist when this is compiled or linted.
    execute format('select max(decrypted_secret) filter (where name = $1), max(decrypted_secret) filter (where name = $2)
                      from %I.%I where name in ($1, $2)', 'vault', 'decrypted_secrets')
      into v_vault_url, v_vault_key
      using 'queue_health_alert_url', 'queue_health_alert_key';
    if v_vault_url is not null then
      url := v_vault_url;
      url_source := 'vault';
    end if;
    if v_vault_key is not null then
      key := v_vault_key;
      key_source := 'vault';
    end if;
  end if;
end;
$$;
comment on function queue_health._dispatch_target() is 'Where dispatch POSTs and with which bearer key: the Vault secrets queue_health_alert_url / queue_health_alert_key, each else its dispatch_settings column; and where each came from (vault, dispatch_settings or null).';
revoke execute on function queue_health._dispatch_target() from public, anon, authenticated;

create function queue_health._has_pg_net()
returns boolean
stable
set search_path = ''
language sql
as $$
  select exists (select 1 from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
                  where n.nspname = 'net' and p.proname = 'http_post');
$$;
comment on function queue_health._has_pg_net() is 'Whether net.http_post (pg_net) exists in this database.';
revoke execute on function queue_health._has_pg_net() from public, anon, authenticated;

create function queue_health._dispatch_mode(p_pg_net boolean, p_url text, p_key text)
returns text
immutable
set search_path = ''
language sql
as $$
  select case when not p_pg_net then 'notify'
              when p_url is null or p_key is null then 'not_configured'
              else 'http' end;
$$;
comment on function queue_health._dispatch_mode(boolean, text, text) is 'How new notifications wake queue-alert: http (pg_net and both URL and key), not_configured (pg_net, but the URL or the key is missing: NOTIFY only) or notify (no pg_net: NOTIFY only, which nothing listens to on hosted Supabase).';
revoke execute on function queue_health._dispatch_mode(boolean, text, text) from public, anon, authenticated;

create function queue_health._dispatch_fix(p_mode text, p_url_set boolean, p_key_set boolean)
returns text
immutable
set search_path = ''
language sql
as $$
  select case when p_mode = 'http' then null
    else concat_ws(' ',
      case when p_mode = 'notify' then 'Enable pg_net (create extension if not exists pg_net;), then create the Vault secrets queue-alert is called with:'
           else 'Create the Vault secrets queue-alert is called with:' end,
      case when p_mode = 'notify' or not p_url_set then
        'select vault.create_secret(''https://<project-ref>.supabase.co/functions/v1/queue-alert'', ''queue_health_alert_url'');' end,
      case when p_mode = 'notify' or not p_key_set then
        'select vault.create_secret(''<your sb_secret_... key, or QUEUE_ALERT_SECRET>'', ''queue_health_alert_key'');' end,
      'Then check with select queue_health.dispatch_mode(); (see docs/install.md).')
  end;
$$;
comment on function queue_health._dispatch_fix(text, boolean, boolean) is 'The steps (copy-paste SQL) that make dispatch use pg_net, for a mode other than http; null for http.';
revoke execute on function queue_health._dispatch_fix(text, boolean, boolean) from public, anon, authenticated;

create function queue_health.dispatch_mode()
returns jsonb
stable
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_target record;
  v_pg_net boolean := queue_health._has_pg_net();
  v_mode text;
begin
  select * into v_target from queue_health._dispatch_target();
  v_mode := queue_health._dispatch_mode(v_pg_net, v_target.url, v_target.key);
  return jsonb_build_object(
    'mode', v_mode,
    'pg_net', v_pg_net,
    'url_configured', v_target.url is not null,
    'key_configured', v_target.key is not null,
    'url_source', v_target.url_source,
    'key_source', v_target.key_source,
    'alerts_leave_database', v_mode = 'http',
    'fix', queue_health._dispatch_fix(v_mode, v_target.url is not null, v_target.key is not null));
end;
$$;
comment on function queue_health.dispatch_mode() is 'How alerts leave the database: {mode: http | notify | not_configured, pg_net, url_configured, key_configured, url_source, key_source (vault or dispatch_settings), alerts_leave_database, fix (what to run when they do not)}. Never returns the URL or key themselves.';
revoke execute on function queue_health.dispatch_mode() from public, anon, authenticated;
grant execute on function queue_health.dispatch_mode() to service_role;

create function queue_health._dispatch(p_project_ids text[], p_evaluate boolean)
returns text
set search_path = ''
language plpgsql
as $$
-- pg_net's http_post is queued and sent by its background worker after commit; NOTIFY is also
-- delivered on commit only. Either way nothing is announced that did not commit.
declare
  v_target record;
  v_project text;
begin
  if coalesce(cardinality(p_project_ids), 0) = 0 then
    return 'none';
  end if;
  if queue_health._has_pg_net() then
    begin
      select * into v_target from queue_health._dispatch_target();
      if v_target.url is not null and v_target.key is not null then
        execute format('select %I.%I(url := $1, body := $2, headers := $3)', 'net', 'http_post')
          using v_target.url,
                jsonb_build_object('reason', 'dispatch', 'project_ids', to_jsonb(p_project_ids), 'evaluate', p_evaluate),
                jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || v_target.key);
        return 'http';
      end if;
    exception when others then
      raise warning 'queue_health: dispatch through pg_net failed, falling back to NOTIFY: %', sqlerrm;
    end;
  end if;
  foreach v_project in array p_project_ids loop
    perform pg_notify('queue_health_dispatch', v_project);
  end loop;
  return 'notify';
end;
$$;
comment on function queue_health._dispatch(text[], boolean) is 'Wakes queue-alert: net.http_post to the configured queue-alert URL (body {reason, project_ids, evaluate}) when pg_net is installed and configured (Vault secrets queue_health_alert_url / queue_health_alert_key, else dispatch_settings), otherwise pg_notify(''queue_health_dispatch'', project_id) per project. p_evaluate false tells queue-alert that an evaluation just ran.';
revoke execute on function queue_health._dispatch(text[], boolean) from public, anon, authenticated;

-- Section: evaluation

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

create function queue_health._due_projects(p_now timestamptz default now())
returns text[]
stable
set search_path = ''
language sql
as $$
  select array_agg(distinct n.project_id order by n.project_id)
    from queue_health.notification n
   where (n.status in ('pending', 'failed') and n.next_attempt_at <= p_now)
      or (n.status = 'sending' and n.lease_until < p_now);
$$;
comment on function queue_health._due_projects(timestamptz) is 'Projects with a notification due at p_now: pending or failed and next_attempt_at passed, or sending with its lease expired.';
revoke execute on function queue_health._due_projects(timestamptz) from public, anon, authenticated;

create function queue_health.dispatch_due(p_now timestamptz default now())
returns jsonb
security definer
set search_path = ''
language plpgsql
as $$
-- What queue-alert calls when a retry it scheduled comes due (a few seconds after a 429 with
-- Retry-After, say): the same wake-up as the sweep's, without waiting for the next minute.
declare
  v_projects text[] := queue_health._due_projects(p_now);
begin
  return jsonb_build_object('due_projects', coalesce(to_jsonb(v_projects), '[]'::jsonb),
                            'dispatch', queue_health._dispatch(v_projects, false));
end;
$$;
comment on function queue_health.dispatch_due(timestamptz) is 'Wakes queue-alert (pg_net, else NOTIFY) for every project with a notification due at p_now; returns {due_projects, dispatch}. queue-alert calls it when a retry it scheduled comes due, so retries go out within seconds rather than at the next minute''s sweep.';
revoke execute on function queue_health.dispatch_due(timestamptz) from public, anon, authenticated;
grant execute on function queue_health.dispatch_due(timestamptz) to service_role;

create function queue_health.sweep_notifications(p_now timestamptz default now())
returns jsonb
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_flushed integer := 0;
  v_dead integer;
  v_projects text[];
  v_dispatch text;
  v_project text;
  v_error text;
  v_failed jsonb := '[]'::jsonb;
begin
  perform pg_advisory_xact_lock(hashtext('queue_health.evaluate_alerts'));
  -- Project by project, each in its own subtransaction: one project's failure is recorded
  -- against it (alert_evaluation) and the others' groups are still flushed.
  for v_project in
    select distinct c.project_id from queue_health.channel c where c.enabled order by c.project_id
  loop
    begin
      v_flushed := v_flushed + queue_health._flush_notifications(p_now, v_project);
    exception when others then
      get stacked diagnostics v_error = message_text;
      raise warning 'queue_health: notification flush of project % failed: %', v_project, v_error;
      v_failed := v_failed || jsonb_build_array(jsonb_build_object('project_id', v_project, 'error', v_error));
      perform queue_health._record_alerting_failure(v_project, v_error, p_now);
    end;
  end loop;

  -- A row whose lease expired on its last allowed attempt will not be retried.
  update queue_health.notification n
     set status = 'dead', lease_until = null, last_error = coalesce(n.last_error || '; ', '') || 'lease expired on the last attempt',
         last_error_at = p_now
   where n.status = 'sending' and n.lease_until < p_now and n.attempts >= n.max_attempts;
  get diagnostics v_dead = row_count;

  v_projects := queue_health._due_projects(p_now);
  v_dispatch := queue_health._dispatch(v_projects, true);

  -- Retention: delivered and dead notifications 30 days; alert history 90 days, and alerts that
  -- have been quiet (inactive or resolved) for 90 days.
  delete from queue_health.notification n
   where n.status in ('sent', 'dead') and n.created_at < p_now - interval '30 days';
  delete from queue_health.alert_event e where e.at < p_now - interval '90 days';
  delete from queue_health.alert a
   where a.state in ('inactive', 'resolved') and a.last_evaluated_at < p_now - interval '90 days';

  return jsonb_build_object('flushed', v_flushed, 'dead', v_dead, 'failed', v_failed,
                            'due_projects', coalesce(to_jsonb(v_projects), '[]'::jsonb), 'dispatch', v_dispatch);
end;
$$;
comment on function queue_health.sweep_notifications(timestamptz) is 'Every minute (pg_cron ''queue-health-alert-sweep''): writes notifications of groups whose group_wait/group_interval has passed, marks rows whose lease expired on their last attempt dead, re-dispatches anything due so nothing waits on a lost NOTIFY or HTTP call, and applies retention (sent/dead notifications 30 days, alert_event 90 days, alerts quiet for 90 days).';
revoke execute on function queue_health.sweep_notifications(timestamptz) from public, anon, authenticated;
grant execute on function queue_health.sweep_notifications(timestamptz) to service_role;

-- Section: outbox API for queue-alert (service role only)

create function queue_health.claim_notifications(
  p_limit int default 20, p_lease interval default interval '2 minutes', p_now timestamptz default now())
returns table (
  id uuid, project_id text, channel_id uuid, kind text, config jsonb, secret jsonb, payload jsonb,
  attempts int, max_attempts int)
set search_path = ''
language plpgsql
as $$
declare
  v_cap int;
  v_order uuid[];
begin
  if p_limit is null or p_limit < 1 then
    raise exception 'p_limit must be at least 1: got %', coalesce(p_limit::text, 'null') using errcode = 'invalid_parameter_value';
  end if;
  if p_lease is null or p_lease <= interval '0' then
    raise exception 'p_lease must be positive: got %', coalesce(p_lease::text, 'null') using errcode = 'invalid_parameter_value';
  end if;

  -- An expired lease on the last allowed attempt is not taken again: dead.
  update queue_health.notification n
     set status = 'dead', lease_until = null, last_error = coalesce(n.last_error || '; ', '') || 'lease expired on the last attempt',
         last_error_at = p_now
   where n.status = 'sending' and n.lease_until < p_now and n.attempts >= n.max_attempts;

  -- Round-robin across projects first, then across each project's channels: a project's first
  -- row goes before any project's second, and within a project each channel's oldest before any
  -- channel's second. A project with a thousand channels or a huge backlog then takes one turn
  -- per round like every other, and at most settings.claim_per_project_limit rows per claim.
  -- Candidates are read per project (each project's oldest due rows, an index range), so one
  -- project's backlog cannot crowd the others out of the candidates either.
  v_cap := least(p_limit, coalesce((queue_health._settings()).claim_per_project_limit, p_limit));
  -- The turn order is computed first, into an array: joined in the same statement, the planner
  -- (which cannot tell how few rows the per-project reads return) hashed the whole outbox to find
  -- them, so one project's 10 000-row backlog made every claim read 10 000 rows.
  with candidate as (
    select c.id, c.project_id, c.channel_id, c.next_attempt_at, c.created_at
      from queue_health.project p
     cross join lateral (
       select x.id, x.project_id, x.channel_id, x.next_attempt_at, x.created_at
         from (
           (select n.id, n.project_id, n.channel_id, n.next_attempt_at, n.created_at
              from queue_health.notification n
             where n.project_id = p.id and n.status in ('pending', 'failed') and n.next_attempt_at <= p_now
             order by n.next_attempt_at, n.created_at
             limit v_cap * 4)
           union all
           (select n.id, n.project_id, n.channel_id, n.next_attempt_at, n.created_at
              from queue_health.notification n
             where n.project_id = p.id and n.status = 'sending' and n.lease_until < p_now
             order by n.lease_until
             limit v_cap * 4)) x
        order by x.next_attempt_at, x.created_at
        limit v_cap * 4) c
  ),
  by_channel as (
    select c.*, row_number() over (partition by c.channel_id order by c.next_attempt_at, c.created_at) as channel_turn
      from candidate c
  ),
  ranked as (
    select b.id, b.next_attempt_at, b.created_at,
           row_number() over (partition by b.project_id
                              order by b.channel_turn, b.next_attempt_at, b.created_at) as turn
      from by_channel b
  )
  select array_agg(r.id order by r.turn, r.next_attempt_at, r.created_at) into v_order
    from (select * from ranked r where r.turn <= v_cap
           order by r.turn, r.next_attempt_at, r.created_at
           limit p_limit * 4) r;

  return query
  with due as (
    select n.id
      from unnest(v_order) with ordinality o(id, ord)
      join queue_health.notification n on n.id = o.id
     -- still due when locked (another worker may have claimed and sent it meanwhile)
     where ((n.status in ('pending', 'failed') and n.next_attempt_at <= p_now)
            or (n.status = 'sending' and n.lease_until < p_now))
     order by o.ord
     limit p_limit
     for update of n skip locked
  )
  update queue_health.notification n
     set status = 'sending', attempts = n.attempts + 1, lease_until = p_now + p_lease
    from due, queue_health.channel c
    left join queue_health.channel_secret s on s.channel_id = c.id
   where n.id = due.id and c.id = n.channel_id
  returning n.id, n.project_id, n.channel_id, c.kind, c.config, s.secret, n.payload, n.attempts, n.max_attempts;
end;
$$;
comment on function queue_health.claim_notifications(int, interval, timestamptz) is 'queue-alert: claims up to p_limit due notifications (pending/failed with next_attempt_at <= p_now, or sending with an expired lease), round-robin across projects, then across each project''s channels (each one''s oldest first), at most settings.claim_per_project_limit per project, with FOR UPDATE SKIP LOCKED, marks them sending with attempts + 1 and lease_until = p_now + p_lease, and returns them with the channel''s kind, config and secret. Service role only: the only function that returns secrets.';
revoke execute on function queue_health.claim_notifications(int, interval, timestamptz) from public, anon, authenticated;
grant execute on function queue_health.claim_notifications(int, interval, timestamptz) to service_role;

create function queue_health.complete_notification(
  p_id uuid, p_provider_message_id text default null, p_now timestamptz default now())
returns queue_health.notification_status
set search_path = ''
language plpgsql
as $$
declare
  v_status queue_health.notification_status;
begin
  update queue_health.notification n
     set status = 'sent', sent_at = p_now, lease_until = null,
         provider_message_id = coalesce(p_provider_message_id, n.provider_message_id)
   where n.id = p_id and n.status in ('sending', 'pending', 'failed')
  returning n.status into v_status;
  if v_status is null then
    select n.status into v_status from queue_health.notification n where n.id = p_id;
    if v_status is null then
      raise exception 'notification % does not exist', p_id using errcode = 'no_data_found';
    end if;
  end if;
  return v_status;
end;
$$;
comment on function queue_health.complete_notification(uuid, text, timestamptz) is 'queue-alert: marks a notification sent (with the provider''s message id); returns the resulting status (''sent''; a dead row stays dead).';
revoke execute on function queue_health.complete_notification(uuid, text, timestamptz) from public, anon, authenticated;
grant execute on function queue_health.complete_notification(uuid, text, timestamptz) to service_role;

create function queue_health.fail_notification(
  p_id uuid, p_error text, p_retry_at timestamptz, p_permanent boolean default false,
  p_now timestamptz default now())
returns queue_health.notification_status
set search_path = ''
language plpgsql
as $$
declare
  v_status queue_health.notification_status;
begin
  update queue_health.notification n
     set status = case when p_permanent or n.attempts >= n.max_attempts then 'dead'
                       else 'failed' end::queue_health.notification_status,
         next_attempt_at = case when p_permanent or n.attempts >= n.max_attempts then n.next_attempt_at
                                else greatest(coalesce(p_retry_at, p_now), p_now) end,
         lease_until = null,
         last_error = left(coalesce(p_error, 'unknown error'), 2000),
         last_error_at = p_now
   where n.id = p_id and n.status in ('sending', 'pending', 'failed')
  returning n.status into v_status;
  if v_status is null then
    select n.status into v_status from queue_health.notification n where n.id = p_id;
    if v_status is null then
      raise exception 'notification % does not exist', p_id using errcode = 'no_data_found';
    end if;
  end if;
  return v_status;
end;
$$;
comment on function queue_health.fail_notification(uuid, text, timestamptz, boolean, timestamptz) is 'queue-alert: records a failed attempt; dead when p_permanent or attempts >= max_attempts, else failed with next_attempt_at = p_retry_at. Returns the resulting status (a sent row stays sent).';
revoke execute on function queue_health.fail_notification(uuid, text, timestamptz, boolean, timestamptz) from public, anon, authenticated;
grant execute on function queue_health.fail_notification(uuid, text, timestamptz, boolean, timestamptz) to service_role;

-- Pacing shared by every queue-alert invocation: Slack takes about one message per second per
-- webhook and Resend a few requests per second per team, whichever invocation sends them (the
-- dispatcher's and a cron sweep's can overlap). A turn is reserved here, in real time, before
-- each request; each invocation still keeps its own pacer should this be unavailable.
create table queue_health.send_pace (
  key text primary key,      -- what is paced, hashed by queue-alert (SHA-256 hex): never a URL
  next_at timestamptz not null -- when the next request may start
);
comment on table queue_health.send_pace is 'queue-alert: the next free turn per paced key (a Slack webhook URL''s SHA-256, ''resend''); see take_send_turn(). One row per key ever paced.';
alter table queue_health.send_pace enable row level security;

create function queue_health.take_send_turn(p_key text, p_interval_ms double precision, p_max_wait_ms double precision)
returns double precision
volatile
set search_path = ''
language plpgsql
as $$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_next timestamptz;
  v_turn timestamptz;
begin
  if p_key is null or p_key = '' then
    raise exception 'p_key must not be empty' using errcode = 'invalid_parameter_value';
  end if;
  if p_interval_ms is null or p_interval_ms < 0 or p_interval_ms > 3600000 then
    raise exception 'p_interval_ms must be between 0 and 3600000: got %', coalesce(p_interval_ms::text, 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  insert into queue_health.send_pace (key, next_at) values (p_key, v_now) on conflict (key) do nothing;
  -- The row lock makes concurrent callers take successive turns.
  select p.next_at into v_next from queue_health.send_pace p where p.key = p_key for update;
  v_now := pg_catalog.clock_timestamp();
  v_turn := greatest(v_now, v_next);
  if p_max_wait_ms is not null and v_turn > v_now + p_max_wait_ms * interval '1 millisecond' then
    return null; -- too far off: nothing is taken
  end if;
  update queue_health.send_pace p
     set next_at = v_turn + p_interval_ms * interval '1 millisecond'
   where p.key = p_key;
  return pg_catalog.date_part('epoch', v_turn - v_now) * 1000;
end;
$$;
comment on function queue_health.take_send_turn(text, double precision, double precision) is 'queue-alert: reserves the next turn of p_key, at least p_interval_ms after the previous turn taken by any caller (database clock), and returns how many ms to wait for it; null, taking nothing, when that is more than p_max_wait_ms away (null: no limit).';
revoke execute on function queue_health.take_send_turn(text, double precision, double precision) from public, anon, authenticated;
grant execute on function queue_health.take_send_turn(text, double precision, double precision) to service_role;

-- Section: channel health

create view queue_health.channel_health
with (security_invoker = true)
as
select c.id as channel_id,
       c.project_id,
       c.name,
       c.kind,
       c.enabled,
       (select max(n.sent_at) from queue_health.notification n
         where n.channel_id = c.id and n.status = 'sent') as last_success_at,
       e.last_error_at,
       e.last_error,
       (select count(*) from queue_health.notification n
         where n.channel_id = c.id and n.status in ('pending', 'sending', 'failed')) as pending,
       (select count(*) from queue_health.notification n
         where n.channel_id = c.id and n.status = 'dead') as dead
  from queue_health.channel c
  left join lateral (
    select n.last_error_at, n.last_error
      from queue_health.notification n
     where n.channel_id = c.id and n.last_error_at is not null
     order by n.last_error_at desc
     limit 1) e on true;
comment on view queue_health.channel_health is 'Per channel: last successful delivery, last error (time and message), notifications waiting (pending/sending/failed) and dead. Never shows secrets; RLS applies (members of the channel''s project).';
comment on column queue_health.channel_health.channel_id is 'The channel.';
comment on column queue_health.channel_health.project_id is 'Its project.';
comment on column queue_health.channel_health.name is 'Its name.';
comment on column queue_health.channel_health.kind is 'email, slack or webhook.';
comment on column queue_health.channel_health.enabled is 'Whether it gets new notifications.';
comment on column queue_health.channel_health.last_success_at is 'When a notification to it was last delivered.';
comment on column queue_health.channel_health.last_error_at is 'When a delivery to it last failed.';
comment on column queue_health.channel_health.last_error is 'That failure''s error (no secrets).';
comment on column queue_health.channel_health.pending is 'Notifications waiting: pending, sending or failed (to be retried).';
comment on column queue_health.channel_health.dead is 'Notifications given up on (permanent error or attempts exhausted).';

-- Section: default rules

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

-- Section: RLS policies

alter table queue_health.project_alert_settings enable row level security;
alter table queue_health.dispatch_settings enable row level security;
alter table queue_health.channel enable row level security;
alter table queue_health.channel_secret enable row level security;
alter table queue_health.alert_rule enable row level security;
alter table queue_health.silence enable row level security;
alter table queue_health.alert enable row level security;
alter table queue_health.alert_event enable row level security;
alter table queue_health.notification_group enable row level security;
alter table queue_health.notification enable row level security;
alter table queue_health.alert_evaluation enable row level security;

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

create policy "Channels are visible to project members" on queue_health.channel
  for select to authenticated using ((select queue_health.is_member(project_id)));
create policy "Channels are created by project admins" on queue_health.channel
  for insert to authenticated with check ((select queue_health.is_member(project_id, 'admin')));
create policy "Channels are changed by project admins" on queue_health.channel
  for update to authenticated using ((select queue_health.is_member(project_id, 'admin')))
  with check ((select queue_health.is_member(project_id, 'admin')));
create policy "Channels are deleted by project admins" on queue_health.channel
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

-- Alert state, history and the outbox: members read; only evaluate_alerts() and queue-alert write.
create policy "Alerts are visible to project members" on queue_health.alert
  for select to authenticated using ((select queue_health.is_member(project_id)));
create policy "Alert events are visible to project members" on queue_health.alert_event
  for select to authenticated using ((select queue_health.is_member(project_id)));
create policy "Notification groups are visible to project members" on queue_health.notification_group
  for select to authenticated using ((select queue_health.is_member(project_id)));
create policy "Evaluation failures are visible to project members" on queue_health.alert_evaluation
  for select to authenticated using (project_id = any ((select queue_health.member_project_ids())::text[]));
create policy "Notifications are visible to project members" on queue_health.notification
  for select to authenticated using ((select queue_health.is_member(project_id)));

-- channel_secret and dispatch_settings: no policy at all; only the service role (bypassrls) and
-- the table owner reach them.

-- Section: grants

revoke all on queue_health.project_alert_settings, queue_health.dispatch_settings, queue_health.channel,
  queue_health.channel_secret, queue_health.alert_rule, queue_health.silence, queue_health.alert,
  queue_health.alert_event, queue_health.notification_group, queue_health.notification,
  queue_health.channel_health, queue_health.send_pace
  from public, anon, authenticated;

grant select, insert, update, delete on queue_health.alert_rule, queue_health.channel, queue_health.silence,
  queue_health.project_alert_settings to authenticated;
grant select on queue_health.alert, queue_health.alert_event, queue_health.notification_group,
  queue_health.notification, queue_health.channel_health to authenticated;

grant select, insert, update, delete on queue_health.project_alert_settings, queue_health.dispatch_settings,
  queue_health.channel, queue_health.channel_secret, queue_health.alert_rule, queue_health.silence,
  queue_health.alert, queue_health.alert_event, queue_health.notification_group, queue_health.notification,
  queue_health.send_pace
  to service_role;
grant select on queue_health.channel_health to service_role;

revoke all on queue_health.alert_evaluation from public, anon, authenticated;
grant select on queue_health.alert_evaluation to authenticated;
grant select, insert, update, delete on queue_health.alert_evaluation to service_role;

-- Section: the monitor's own health
-- Captures on schedule, and alert evaluation not failing for any project the caller can see: the
-- monitor is not healthy while alerting is broken.
create view queue_health.capture_status
with (security_invoker = true)
as
select
  last_run.id as last_run_id,
  last_run.started_at as last_run_at,
  last_run.status as last_run_status,
  last_run.duration_ms as last_run_duration_ms,
  last_run.queues as last_run_queues,
  last_run.rows as last_run_rows,
  queue_health.capture_run_error(last_run.id) as last_run_error,
  last_ok.started_at as last_success_at,
  extract(epoch from now() - last_ok.started_at)::float8 as lag_s,
  (select count(*) from queue_health.capture_run r
    where r.started_at > now() - interval '1 hour' and r.status in ('error', 'partial')) as errors_last_hour,
  (select count(*) from queue_health.capture_run r
    where r.started_at > now() - interval '1 hour' and r.status = 'skipped') as skipped_last_hour,
  s.capture_interval,
  coalesce(now() - last_ok.started_at <= s.capture_interval * s.stale_after_intervals
    and last_run.status <> 'error', false) and ae.failing = 0 as healthy,
  coalesce(now() - last_ok.started_at <= s.capture_interval * s.stale_after_intervals
    and last_run.status <> 'error', false) as captures_healthy,
  ae.failing as alerting_failing_projects,
  ae.first_error as alerting_error
from queue_health.settings s
-- alert_evaluation has RLS: a tenant counts only the projects they belong to
cross join lateral (
  select count(*) filter (where e.failing) as failing,
         min(e.project_id || ': ' || e.last_error) filter (where e.failing) as first_error
    from queue_health.alert_evaluation e
) ae
left join lateral (
  select r.id, r.started_at, r.status, r.duration_ms, r.queues, r.rows
    from queue_health.capture_run r where r.status <> 'skipped' order by r.started_at desc, r.id desc limit 1
) last_run on true
left join lateral (
  select r.started_at
    from queue_health.capture_run r where r.status in ('ok', 'partial') order by r.started_at desc, r.id desc limit 1
) last_ok on true;
comment on view queue_health.capture_status is 'Is the monitor itself healthy: the last (non-skipped) capture, the last successful one (ok or partial), lag in seconds, errors and skips in the last hour. healthy = a successful capture within stale_after_intervals capture intervals and the last run not an error. RLS applies (members of any project).';
comment on column queue_health.capture_status.lag_s is 'Seconds since the last successful capture.';
comment on column queue_health.capture_status.errors_last_hour is 'Captures with status error or partial in the last hour.';
comment on column queue_health.capture_status.skipped_last_hour is 'Captures skipped because another was running, in the last hour.';
comment on column queue_health.capture_status.healthy is 'True when captures are succeeding on schedule and no project the caller can see has failing alert evaluation.';
comment on column queue_health.capture_status.captures_healthy is 'True when captures are succeeding on schedule.';
comment on column queue_health.capture_status.last_run_error is 'What went wrong in the last run, as the caller may see it (queue_health.capture_run_error()): everything for the operator, only their projects'' errors for a tenant.';
comment on column queue_health.capture_status.alerting_failing_projects is 'Projects the caller can see whose alert evaluation is failing (queue_health.alert_evaluation); healthy is false while it is above 0.';
comment on column queue_health.capture_status.alerting_error is 'The first of those projects and its error (project_id: message).';
revoke all on queue_health.capture_status from public, anon, authenticated;
grant select on queue_health.capture_status to authenticated, service_role;

