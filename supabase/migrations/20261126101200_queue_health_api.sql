-- Queue Health: what people and the queue-health Edge Function read. Every view (queue_status,
-- capture_status, channel_health, firing_alert), queue_history(), alert summaries, and the
-- Prometheus scrape tokens (per project, stored only as a SHA-256 hash, revocable).

create view queue_health.queue_status
with (security_invoker = true)
as
select
  q.project_id,
  q.source,
  q.source_schema,
  q.queue_name,
  m.captured_at,
  extract(epoch from now() - m.captured_at)::float8 as snapshot_age_s,
  m.ready,
  m.in_flight,
  m.delayed,
  m.depth,
  m.depth_estimated,
  m.oldest_ready_age_s,
  m.enqueued,
  m.completed,
  m.failed,
  m.retried,
  m.dead_lettered,
  m.interval_s,
  m.enqueued / nullif(m.interval_s, 0) as enqueue_rate,
  m.completed / nullif(m.interval_s, 0) as complete_rate,
  m.failed / nullif(m.interval_s, 0) as fail_rate,
  m.failed::float8 / nullif(m.completed + m.failed, 0) as error_rate,
  m.wait_p50_ms,
  m.wait_p95_ms,
  m.run_p50_ms,
  m.run_p95_ms,
  case
    when m.captured_at is null
      or now() - m.captured_at > s.capture_interval * s.stale_after_intervals then 'stale'
    when m.oldest_ready_age_s >= s.critical_oldest_ready_age_s then 'critical'
    when m.oldest_ready_age_s >= s.warning_oldest_ready_age_s
      or m.failed::float8 / nullif(m.completed + m.failed, 0) >= s.warning_error_rate
      or m.dead_lettered > 0 then 'warning'
    else 'ok'
  end as status
from queue_health.queue q
cross join queue_health.settings s
left join lateral (
  select *
  from queue_health.metric m
  where m.queue_name = q.queue_name and m.source = q.source and m.source_schema = q.source_schema
  order by m.captured_at desc
  limit 1
) m on true
where q.dropped_at is null;
comment on view queue_health.queue_status is 'One row per queue that still exists, with its latest snapshot, rates per second over the last interval, error rate failed/(completed+failed), and status: stale (no snapshot in stale_after_intervals capture intervals), critical (oldest ready message >= critical_oldest_ready_age_s), warning (oldest ready >= warning_oldest_ready_age_s, error rate >= warning_error_rate, or dead letters), else ok. RLS applies.';
comment on column queue_health.queue_status.project_id is 'Project of the queue.';
comment on column queue_health.queue_status.source is 'pgmq or pgboss.';
comment on column queue_health.queue_status.source_schema is 'Schema of the queue.';
comment on column queue_health.queue_status.queue_name is 'Queue name.';
comment on column queue_health.queue_status.captured_at is 'When the latest snapshot was taken (null if never).';
comment on column queue_health.queue_status.snapshot_age_s is 'Seconds since the latest snapshot.';
comment on column queue_health.queue_status.enqueue_rate is 'Messages enqueued per second over the last interval.';
comment on column queue_health.queue_status.complete_rate is 'Messages completed per second over the last interval.';
comment on column queue_health.queue_status.fail_rate is 'Messages failed per second over the last interval.';
comment on column queue_health.queue_status.error_rate is 'failed / (completed + failed) in the last interval; null when both are 0.';
comment on column queue_health.queue_status.status is 'ok, warning, critical or stale (see the view comment).';

-- capture_status, the monitor's own health, is defined by the alerting migration: it includes
-- whether alert evaluation is failing (queue_health.alert_evaluation).

create function queue_health.queue_history(
  p_queue text,
  p_from timestamptz,
  p_to timestamptz,
  p_source text default null
)
returns table (
  bucket timestamptz,
  project_id text,
  source text,
  queue_name text,
  resolution text,
  depth double precision,
  ready double precision,
  in_flight double precision,
  delayed double precision,
  oldest_ready_age_s double precision,
  enqueued bigint,
  completed bigint,
  failed bigint,
  retried bigint,
  dead_lettered bigint,
  source_schema text
)
stable
security invoker
set search_path = ''
language plpgsql
as $$
declare
  v_resolution text;
  v_unit text;
  v_watermark timestamptz;
begin
  if p_queue is null or p_from is null or p_to is null then
    raise exception 'p_queue, p_from and p_to are required' using errcode = '22004';
  end if;
  if p_to < p_from then
    raise exception 'p_to (%) must not be before p_from (%)', p_to, p_from using errcode = '22023';
  end if;
  v_resolution := case
    when p_to - p_from <= interval '6 hours' then 'raw'
    when p_to - p_from <= interval '7 days' then '1m'
    else '1h' end;

  if v_resolution = 'raw' then
    return query
      select m.captured_at, m.project_id, m.source, m.queue_name, v_resolution,
        m.depth::float8, m.ready::float8, m.in_flight::float8, m.delayed::float8,
        m.oldest_ready_age_s, m.enqueued, m.completed, m.failed, m.retried, m.dead_lettered,
        m.source_schema
      from queue_health.metric m
      where m.queue_name = p_queue and (p_source is null or m.source = p_source)
        and m.captured_at >= p_from and m.captured_at < p_to
      order by m.captured_at, m.source, m.source_schema;
    return;
  end if;

  -- Rollup rows up to the watermark; after it (the last few minutes), the same aggregation on
  -- the fly from raw rows, so a chart reaches the present.
  v_unit := case v_resolution when '1m' then 'minute' else 'hour' end;
  select w.rolled_up_to into v_watermark from queue_health.rollup_watermark w where w.resolution = v_resolution;
  v_watermark := coalesce(v_watermark, '-infinity');
  return query execute format($sql$
    select r.bucket, r.project_id, r.source, r.queue_name, $5,
      r.depth_avg, r.ready_avg, r.in_flight_avg, r.delayed_avg, r.oldest_ready_age_s_max,
      r.enqueued, r.completed, r.failed, r.retried, r.dead_lettered, r.source_schema
    from queue_health.%1$I r
    where r.queue_name = $1 and ($4::text is null or r.source = $4)
      and r.bucket >= pg_catalog.date_trunc(%2$L, $2, 'UTC') and r.bucket < $3 and r.bucket < $6
    union all
    select pg_catalog.date_trunc(%2$L, m.captured_at, 'UTC'),
      (pg_catalog.array_agg(m.project_id order by m.captured_at desc))[1],
      m.source, m.queue_name, $5,
      avg(m.depth)::float8, avg(m.ready)::float8, avg(m.in_flight)::float8, avg(m.delayed)::float8,
      max(m.oldest_ready_age_s),
      coalesce(sum(m.enqueued), 0)::bigint, coalesce(sum(m.completed), 0)::bigint,
      coalesce(sum(m.failed), 0)::bigint, coalesce(sum(m.retried), 0)::bigint,
      coalesce(sum(m.dead_lettered), 0)::bigint, m.source_schema
    from queue_health.metric m
    where m.queue_name = $1 and ($4::text is null or m.source = $4)
      and m.captured_at >= greatest($6, pg_catalog.date_trunc(%2$L, $2, 'UTC')) and m.captured_at < $3
    group by 1, m.source, m.source_schema, m.queue_name
    order by 1, 3, 16
    $sql$, 'metric_' || v_resolution, v_unit)
    using p_queue, p_from, p_to, p_source, v_resolution, v_watermark;
end;
$$;
comment on function queue_health.queue_history(text, timestamptz, timestamptz, text) is 'History of one queue (optionally one source) over [p_from, p_to): raw snapshots for ranges up to 6 hours, 1-minute buckets up to 7 days, else 1-hour buckets. In buckets, gauges are averages, oldest_ready_age_s the maximum and counts sums. Security invoker: RLS applies.';
revoke execute on function queue_health.queue_history(text, timestamptz, timestamptz, text) from public, anon, authenticated;
grant execute on function queue_health.queue_history(text, timestamptz, timestamptz, text) to authenticated, service_role;
revoke all on queue_health.queue_status from public, anon, authenticated;
grant select on queue_health.queue_status to authenticated;
grant select on queue_health.queue_status to service_role;

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
revoke all on queue_health.channel_health from public, anon, authenticated;
grant select on queue_health.channel_health to authenticated;
grant select on queue_health.channel_health to service_role;

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

create table queue_health.scrape_token (
  id uuid primary key default gen_random_uuid(),
  project_id text not null references queue_health.project (id) on delete cascade,
  name text not null default 'prometheus',
  token_hash text not null unique check (token_hash ~ '^[0-9a-f]{64}$'),
  token_prefix text not null,
  created_by uuid,
  created_at timestamptz not null default now(),
  expires_at timestamptz,
  last_used_at timestamptz,
  revoked_at timestamptz,
  constraint scrape_token_revoked_after_created check (revoked_at is null or revoked_at >= created_at)
);
comment on table queue_health.scrape_token is 'Bearer tokens that let a Prometheus scraper read one project''s health; only a hash is stored.';
comment on column queue_health.scrape_token.id is 'Token id (what revoke_scrape_token takes).';
comment on column queue_health.scrape_token.project_id is 'The one project whose data the token can read.';
comment on column queue_health.scrape_token.name is 'A label for people, e.g. the scraper that uses it.';
comment on column queue_health.scrape_token.token_hash is 'Hex SHA-256 of the plaintext token; the plaintext is shown once, at creation.';
comment on column queue_health.scrape_token.token_prefix is 'The first characters of the token, so people can tell tokens apart.';
comment on column queue_health.scrape_token.created_by is 'auth.uid() of the creator; null when the service role created it.';
comment on column queue_health.scrape_token.created_at is 'When the token was created.';
comment on column queue_health.scrape_token.expires_at is 'When the token stops working by itself; null for never.';
comment on column queue_health.scrape_token.last_used_at is 'Last successful use (updated at most once a minute).';
comment on column queue_health.scrape_token.revoked_at is 'When the token was revoked; a revoked token never works again.';
comment on constraint scrape_token_revoked_after_created on queue_health.scrape_token is 'A token cannot be revoked before it exists.';

create index scrape_token_project_idx on queue_health.scrape_token (project_id);

create function queue_health.create_scrape_token(
  p_project_id text,
  p_name text default 'prometheus',
  p_expires_at timestamptz default null
)
returns table (id uuid, token text)
volatile
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_token text;
  v_id uuid;
begin
  if not queue_health.is_member(p_project_id, 'admin') then
    raise exception 'only an admin of project % can create scrape tokens', p_project_id
      using errcode = '42501';
  end if;
  if not exists (select 1 from queue_health.project p where p.id = p_project_id) then
    raise exception 'project % does not exist', p_project_id using errcode = '23503';
  end if;
  -- Two v4 UUIDs: 244 random bits from the server's CSPRNG (gen_random_uuid is built in).
  v_token := 'qhst_' || replace(gen_random_uuid()::text, '-', '')
    || replace(gen_random_uuid()::text, '-', '');
  insert into queue_health.scrape_token (project_id, name, token_hash, token_prefix, created_by,
    expires_at)
  values (p_project_id, coalesce(p_name, 'prometheus'),
    encode(sha256(convert_to(v_token, 'UTF8')), 'hex'), left(v_token, 12), auth.uid(),
    p_expires_at)
  returning scrape_token.id into v_id;
  return query select v_id, v_token;
end;
$$;
comment on function queue_health.create_scrape_token(text, text, timestamptz) is
  'Creates a Prometheus scrape token for a project (project admins and the service role); returns the plaintext once.';
revoke execute on function queue_health.create_scrape_token(text, text, timestamptz) from public, anon, authenticated;
grant execute on function queue_health.create_scrape_token(text, text, timestamptz) to authenticated, service_role;

create function queue_health.revoke_scrape_token(p_id uuid, p_now timestamptz default now())
returns boolean
volatile
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_project_id text;
begin
  select t.project_id into v_project_id from queue_health.scrape_token t where t.id = p_id;
  if v_project_id is null or not queue_health.is_member(v_project_id, 'admin') then
    -- The same answer for "no such token" and "not yours": nothing to learn by probing.
    return false;
  end if;
  update queue_health.scrape_token t
     set revoked_at = greatest(p_now, t.created_at)
   where t.id = p_id and t.revoked_at is null;
  return found;
end;
$$;
comment on function queue_health.revoke_scrape_token(uuid, timestamptz) is
  'Revokes a scrape token (project admins and the service role); true when it was active until now.';
revoke execute on function queue_health.revoke_scrape_token(uuid, timestamptz) from public, anon, authenticated;
grant execute on function queue_health.revoke_scrape_token(uuid, timestamptz) to authenticated, service_role;

create function queue_health.scrape_token_project(p_token_hash text, p_now timestamptz default now())
returns text
volatile
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_id uuid;
  v_project_id text;
  v_last_used_at timestamptz;
begin
  select t.id, t.project_id, t.last_used_at
    into v_id, v_project_id, v_last_used_at
    from queue_health.scrape_token t
   where t.token_hash = lower(p_token_hash)
     and t.revoked_at is null
     and (t.expires_at is null or t.expires_at > p_now);
  if v_id is null then
    return null;
  end if;
  -- At most one write a minute per token, so a 5 s scrape interval does not churn the table.
  if v_last_used_at is null or v_last_used_at < p_now - interval '1 minute' then
    update queue_health.scrape_token t set last_used_at = p_now where t.id = v_id;
  end if;
  return v_project_id;
end;
$$;
comment on function queue_health.scrape_token_project(text, timestamptz) is
  'The project a valid (not revoked, not expired) scrape token belongs to, by the token''s hex SHA-256; null otherwise. Service role only.';
revoke execute on function queue_health.scrape_token_project(text, timestamptz) from public, anon, authenticated;
grant execute on function queue_health.scrape_token_project(text, timestamptz) to service_role;
alter table queue_health.scrape_token enable row level security;

create policy "Scrape tokens are visible to project admins"
  on queue_health.scrape_token for select to authenticated
  using ((select queue_health.is_member(project_id, 'admin')));

-- Reading goes through RLS; the hash column is not granted to authenticated at all. Writes go
-- through create_scrape_token / revoke_scrape_token only.
revoke all on queue_health.scrape_token from public, anon, authenticated;
grant select (id, project_id, name, token_prefix, created_by, created_at, expires_at, last_used_at,
  revoked_at) on queue_health.scrape_token to authenticated;
grant all on queue_health.scrape_token to service_role;

create function queue_health.alert_summary(p_rule queue_health.alert_rule, p_alert queue_health.alert)
returns text
stable
security definer
set search_path = ''
language sql
as $$
  -- Security definer only to reach the private _render(); it formats the two rows it is given
  -- (which the caller could already read) and reads no table.
  select queue_health._render(
    coalesce(p_rule.summary, '{{rule}}: {{queue}} at {{value}} (threshold {{threshold}})'),
    p_rule, p_alert)
$$;
comment on function queue_health.alert_summary(queue_health.alert_rule, queue_health.alert) is
  'The one-line summary of an alert: its rule''s summary template filled with the alert''s values.';
revoke execute on function queue_health.alert_summary(queue_health.alert_rule, queue_health.alert) from public, anon, authenticated;
grant execute on function queue_health.alert_summary(queue_health.alert_rule, queue_health.alert) to authenticated, service_role;

create view queue_health.firing_alert
with (security_invoker = true)
as
select
  a.id as alert_id,
  a.rule_id,
  r.name as rule_name,
  r.condition,
  r.severity,
  a.project_id,
  nullif(a.source, '*') as source,
  nullif(a.source_schema, '*') as source_schema,
  nullif(a.queue_name, '*') as queue_name,
  a.value,
  r.comparator,
  r.threshold,
  a.started_at,
  a.fired_at,
  a.last_evaluated_at,
  queue_health.alert_summary(r, a) as summary,
  r.runbook_url
from queue_health.alert a
join queue_health.alert_rule r on r.id = a.rule_id
where a.state = 'firing';
comment on view queue_health.firing_alert is 'Alerts firing now, with their rule (name, condition, severity, threshold) and rendered summary. Project-level alerts (monitor_stale) have null source, source_schema and queue_name. RLS applies (members of the alert''s project).';
comment on column queue_health.firing_alert.alert_id is 'queue_health.alert id.';
comment on column queue_health.firing_alert.rule_id is 'The rule that fires.';
comment on column queue_health.firing_alert.rule_name is 'The rule''s name.';
comment on column queue_health.firing_alert.condition is 'What the rule watches (a metric or a built-in condition).';
comment on column queue_health.firing_alert.severity is 'info, warning or critical.';
comment on column queue_health.firing_alert.project_id is 'Project of the alert.';
comment on column queue_health.firing_alert.source is 'pgmq or pgboss; null for project-level alerts.';
comment on column queue_health.firing_alert.source_schema is 'Schema of the queue; null for project-level alerts.';
comment on column queue_health.firing_alert.queue_name is 'The queue; null for project-level alerts.';
comment on column queue_health.firing_alert.value is 'The value seen at the last evaluation.';
comment on column queue_health.firing_alert.comparator is 'How value is compared with threshold.';
comment on column queue_health.firing_alert.threshold is 'The rule''s threshold.';
comment on column queue_health.firing_alert.started_at is 'When the condition became true.';
comment on column queue_health.firing_alert.fired_at is 'When the alert fired (after the rule''s for duration).';
comment on column queue_health.firing_alert.last_evaluated_at is 'When the alert was last evaluated.';
comment on column queue_health.firing_alert.summary is 'One-line summary (the rule''s template, filled in).';
comment on column queue_health.firing_alert.runbook_url is 'Where to read what to do.';
revoke all on queue_health.firing_alert from public, anon, authenticated;
grant select on queue_health.firing_alert to authenticated, service_role;
