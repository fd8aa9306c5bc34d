-- Queue Health: alert channels. Where notifications go (email through Resend, Slack, signed
-- webhooks), their secrets kept apart from what members can read, and the checks on both.

create type queue_health.alert_severity as enum ('info', 'warning', 'critical');
comment on type queue_health.alert_severity is 'How bad an alert is; ordered, so max() gives the highest.';

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
alter table queue_health.channel enable row level security;
alter table queue_health.channel_secret enable row level security;

create policy "Channels are visible to project members" on queue_health.channel
  for select to authenticated using ((select queue_health.is_member(project_id)));

create policy "Channels are created by project admins" on queue_health.channel
  for insert to authenticated with check ((select queue_health.is_member(project_id, 'admin')));

create policy "Channels are changed by project admins" on queue_health.channel
  for update to authenticated using ((select queue_health.is_member(project_id, 'admin')))
  with check ((select queue_health.is_member(project_id, 'admin')));

create policy "Channels are deleted by project admins" on queue_health.channel
  for delete to authenticated using ((select queue_health.is_member(project_id, 'admin')));
revoke all on queue_health.channel, queue_health.channel_secret from public, anon, authenticated;
grant select, insert, update, delete on queue_health.channel to authenticated;
grant select, insert, update, delete on queue_health.channel, queue_health.channel_secret to service_role;
