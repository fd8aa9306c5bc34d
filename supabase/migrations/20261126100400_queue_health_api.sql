-- Queue Health: what the queue-health Edge Function needs beyond the views.
-- Prometheus scrape tokens (per project, stored only as a SHA-256 hash, revocable), and the
-- firing alerts with their rule, as queue-health reports them.

-- Section: scrape tokens

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

-- Section: functions

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

-- Section: RLS policies

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

-- Section: firing alerts, as queue-health reports them

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
