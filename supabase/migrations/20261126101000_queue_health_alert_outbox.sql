-- Queue Health: the notification outbox. Notifications are written in the same transaction as
-- the alert transitions they report, grouped per (project, channel) as Alertmanager does; the
-- queue-alert Edge Function claims them (claim_notifications), and reports with
-- complete_notification() / fail_notification(); send_pace spaces sends per provider.

create type queue_health.notification_status as enum ('pending', 'sending', 'sent', 'failed', 'dead');
comment on type queue_health.notification_status is 'Outbox row status: pending -> sending (claimed, leased) -> sent | failed (retry at next_attempt_at) | dead (permanent error or attempts exhausted).';

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
alter table queue_health.notification_group enable row level security;
alter table queue_health.notification enable row level security;

create policy "Notification groups are visible to project members" on queue_health.notification_group
  for select to authenticated using ((select queue_health.is_member(project_id)));

create policy "Notifications are visible to project members" on queue_health.notification
  for select to authenticated using ((select queue_health.is_member(project_id)));
revoke all on queue_health.notification_group, queue_health.notification, queue_health.send_pace from public, anon, authenticated;
grant select on queue_health.notification_group, queue_health.notification to authenticated;
grant select, insert, update, delete on queue_health.notification_group, queue_health.notification, queue_health.send_pace to service_role;
