-- Queue Health: the on-call channel kinds. SMS through Twilio's Messages API, PagerDuty's Events
-- API v2 and an existing Alertmanager join email, Slack and webhooks; this file admits the kinds
-- and checks their configuration and secrets. Sending them is queue-alert's business.

alter table queue_health.channel drop constraint channel_kind_known;
alter table queue_health.channel add constraint channel_kind_known
  check (kind in ('email', 'slack', 'webhook', 'sms', 'pagerduty', 'alertmanager'));

comment on column queue_health.channel.kind is 'email (Resend), slack (incoming webhook), webhook (signed JSON POST), sms (Twilio Messages API), pagerduty (Events API v2) or alertmanager (an Alertmanager''s /api/v2/alerts).';
comment on column queue_health.channel.config is 'Non-secret settings: email {"to": [..] (at most settings.max_email_recipients), "from": "..", "reply_to": ".."} (queue-alert uses from/reply_to only when the operator lists them, else RESEND_FROM and none); webhook {"url": "https://.."}; slack {} (its URL is a secret); sms {"to": ["+E.164", ..] (at most 10), "from": "+E.164"} or {"to": [..], "messaging_service_sid": "MG.."}; pagerduty {} (optional "source", "component", "group", "class"); alertmanager {"url": "https://alertmanager.example.com"} (the base URL; alerts go to <url>/api/v2/alerts).';
comment on column queue_health.channel_health.kind is 'email, slack, webhook, sms, pagerduty or alertmanager.';
comment on table queue_health.channel_secret is 'Channel secrets: slack {"url"}, webhook {"signing_secret"}, sms {"account_sid", "auth_token"}, pagerduty {"routing_key"}, alertmanager {"bearer_token"} or {"username", "password"} (optional). Readable and writable by the service role only; returned only by claim_notifications().';

create function queue_health._e164_list(p_value jsonb)
returns text[]
immutable
set search_path = ''
language sql
as $$
  -- An array of strings, or one comma-separated string, as a text array; null for anything else.
  select case jsonb_typeof(p_value)
           when 'string' then regexp_split_to_array(btrim(p_value #>> '{}'), '\s*,\s*')
           when 'array' then (select array_agg(e.v #>> '{}' order by e.n)
                                from jsonb_array_elements(p_value) with ordinality e(v, n)
                               where jsonb_typeof(e.v) = 'string')
         end
$$;
comment on function queue_health._e164_list(jsonb) is 'An SMS channel''s recipients ("to": an array of strings or one comma-separated string) as text[]; elements that are not strings are left out, so the caller compares lengths.';
revoke execute on function queue_health._e164_list(jsonb) from public, anon;
-- The channel trigger runs as the tenant writing the channel; this reads nothing.
grant execute on function queue_health._e164_list(jsonb) to authenticated, service_role;

create function queue_health._is_e164(p_number text)
returns boolean
immutable
set search_path = ''
language sql
as $$
  -- ITU-T E.164: a + and at most 15 digits, the first (the country code's) not 0.
  select coalesce(p_number ~ '^\+[1-9][0-9]{1,14}$', false)
$$;
comment on function queue_health._is_e164(text) is 'True for a phone number in E.164 form (+ then 2 to 15 digits, no leading 0), the form Twilio''s To and From take.';
revoke execute on function queue_health._is_e164(text) from public, anon;
-- The channel trigger runs as the tenant writing the channel; this reads nothing.
grant execute on function queue_health._is_e164(text) to authenticated, service_role;

create function queue_health._validate_sms_config(p_config jsonb)
returns void
immutable
set search_path = ''
language plpgsql
as $$
declare
  v_raw jsonb := coalesce(p_config -> 'to', p_config -> 'recipients');
  v_to text[];
  v_bad text;
begin
  v_to := queue_health._e164_list(v_raw);
  if v_to is null or cardinality(v_to) = 0
      or (jsonb_typeof(v_raw) = 'array' and cardinality(v_to) <> jsonb_array_length(v_raw)) then
    raise exception 'channel.config.to must be a non-empty array of phone numbers in E.164 form (e.g. "+14155550123") for an sms channel'
      using errcode = 'check_violation';
  end if;
  if cardinality(v_to) > 10 then
    raise exception 'channel.config.to lists % phone numbers: at most 10 for an sms channel', cardinality(v_to)
      using errcode = 'check_violation';
  end if;
  select t into v_bad from unnest(v_to) t where not queue_health._is_e164(t) limit 1;
  if found then
    raise exception 'channel.config.to: % is not a phone number in E.164 form (a + and the country code, digits only, e.g. "+14155550123")',
      quote_literal(left(v_bad, 40))
      using errcode = 'check_violation';
  end if;
  if p_config ? 'from' and p_config ? 'messaging_service_sid' then
    raise exception 'channel.config must name either from or messaging_service_sid for an sms channel, not both'
      using errcode = 'check_violation';
  end if;
  if p_config ? 'from' then
    if jsonb_typeof(p_config -> 'from') <> 'string' or not queue_health._is_e164(p_config ->> 'from') then
      raise exception 'channel.config.from must be your Twilio phone number in E.164 form (e.g. "+14155550100")'
        using errcode = 'check_violation';
    end if;
  elsif p_config ? 'messaging_service_sid' then
    if coalesce(p_config ->> 'messaging_service_sid', '') !~ '^MG[0-9a-fA-F]{32}$' then
      raise exception 'channel.config.messaging_service_sid must be a Twilio Messaging Service SID ("MG" and 32 hex digits)'
        using errcode = 'check_violation';
    end if;
  else
    raise exception 'channel.config.from (a Twilio phone number in E.164 form) or channel.config.messaging_service_sid is required for an sms channel'
      using errcode = 'check_violation';
  end if;
end;
$$;
comment on function queue_health._validate_sms_config(jsonb) is 'Raises check_violation, naming the field, unless an sms channel''s config has 1 to 10 E.164 recipients and exactly one sender: an E.164 "from" or a "messaging_service_sid".';
revoke execute on function queue_health._validate_sms_config(jsonb) from public, anon;
-- The channel trigger runs as the tenant writing the channel; this reads nothing.
grant execute on function queue_health._validate_sms_config(jsonb) to authenticated, service_role;

create function queue_health._validate_oncall_config(p_kind text, p_config jsonb)
returns void
immutable
set search_path = ''
language plpgsql
as $$
declare
  v_key text;
begin
  if p_kind = 'sms' then
    perform queue_health._validate_sms_config(p_config);
  elsif p_kind = 'pagerduty' then
    foreach v_key in array array['source', 'component', 'group', 'class'] loop
      if p_config ? v_key and (jsonb_typeof(p_config -> v_key) <> 'string'
          or length(p_config ->> v_key) not between 1 and 255) then
        raise exception 'channel.config.% must be a string of 1 to 255 characters for a pagerduty channel', v_key
          using errcode = 'check_violation';
      end if;
    end loop;
  elsif p_kind = 'alertmanager' then
    if coalesce(p_config ->> 'url', '') !~ '^https?://[^\s/?#]+(/[^\s?#]*)?$' then
      raise exception 'channel.config.url must be the http(s) base URL of your Alertmanager (e.g. "https://alertmanager.example.com") for an alertmanager channel'
        using errcode = 'check_violation';
    end if;
  end if;
end;
$$;
comment on function queue_health._validate_oncall_config(text, jsonb) is 'Checks the config of the sms, pagerduty and alertmanager kinds (nothing for the others), raising check_violation with a message naming the field.';
revoke execute on function queue_health._validate_oncall_config(text, jsonb) from public, anon;
-- The channel trigger runs as the tenant writing the channel; this reads nothing.
grant execute on function queue_health._validate_oncall_config(text, jsonb) to authenticated, service_role;

create or replace function queue_health._validate_channel()
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
  if new.kind is null or new.kind not in ('email', 'slack', 'webhook', 'sms', 'pagerduty', 'alertmanager') then
    raise exception 'channel.kind must be email, slack, webhook, sms, pagerduty or alertmanager: got %',
      coalesce(quote_literal(new.kind), 'null')
      using errcode = 'check_violation';
  end if;
  if new.config is null or jsonb_typeof(new.config) <> 'object' then
    raise exception 'channel.config must be a JSON object' using errcode = 'check_violation';
  end if;
  -- Secrets first: a message about a malformed field must not be the reason a secret was kept.
  if new.config ?| array['secret', 'signing_secret', 'webhook_url', 'token', 'api_key', 'auth_token',
                         'routing_key', 'integration_key', 'password', 'bearer_token']
      or (new.kind = 'slack' and new.config ? 'url') then
    raise exception 'channel.config must not hold secrets: put them in queue_health.channel_secret (service role)'
      using errcode = 'check_violation';
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
  perform queue_health._validate_oncall_config(new.kind, new.config);
  return new;
end;
$$;
comment on function queue_health._validate_channel() is 'Refuses invalid channels (an email channel with more than settings.max_email_recipients recipients, a malformed from/reply_to, an sms number not in E.164 form, an alertmanager channel without a base URL, among them), and secrets in channel.config, with a message naming the field.';

create or replace function queue_health._validate_channel_secret()
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
  if v_kind = 'sms' then
    if coalesce(new.secret ->> 'account_sid', '') !~ '^AC[0-9a-fA-F]{32}$' then
      raise exception 'channel_secret.secret.account_sid must be your Twilio Account SID ("AC" and 32 hex digits) for an sms channel'
        using errcode = 'check_violation';
    end if;
    if length(coalesce(new.secret ->> 'auth_token', '')) < 16 then
      raise exception 'channel_secret.secret.auth_token must be your Twilio auth token (at least 16 characters) for an sms channel'
        using errcode = 'check_violation';
    end if;
  end if;
  if v_kind = 'pagerduty' and coalesce(new.secret ->> 'routing_key', '') !~ '^[A-Za-z0-9]{32}$' then
    raise exception 'channel_secret.secret.routing_key must be the 32-character integration key of a PagerDuty Events API v2 integration'
      using errcode = 'check_violation';
  end if;
  if v_kind = 'alertmanager' then
    if new.secret ? 'bearer_token' and (new.secret ? 'username' or new.secret ? 'password') then
      raise exception 'channel_secret.secret must hold either bearer_token or username and password for an alertmanager channel, not both'
        using errcode = 'check_violation';
    end if;
    if new.secret ? 'bearer_token' and length(coalesce(new.secret ->> 'bearer_token', '')) = 0 then
      raise exception 'channel_secret.secret.bearer_token must be a non-empty string for an alertmanager channel'
        using errcode = 'check_violation';
    end if;
    if (new.secret ? 'username' or new.secret ? 'password')
        and (length(coalesce(new.secret ->> 'username', '')) = 0 or (new.secret ->> 'username') ~ ':'
             or length(coalesce(new.secret ->> 'password', '')) = 0) then
      raise exception 'channel_secret.secret.username (without ":") and password must both be non-empty strings for an alertmanager channel'
        using errcode = 'check_violation';
    end if;
  end if;
  new.updated_at := now();
  return new;
end;
$$;
comment on function queue_health._validate_channel_secret() is 'Refuses channel secrets that the channel''s kind cannot use (a Slack URL, a webhook signing secret, Twilio''s account SID and auth token, a PagerDuty routing key, an Alertmanager bearer token or basic-auth pair); the message names the field, never the value.';
