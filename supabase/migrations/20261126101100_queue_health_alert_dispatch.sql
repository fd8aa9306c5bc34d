-- Queue Health: dispatch. Wakes the queue-alert Edge Function when notifications are due: a
-- pg_net POST (sent after commit) with the URL and key from Vault or dispatch_settings, or a
-- NOTIFY for a listener when pg_net is absent; dispatch_mode() says which and how to fix it.

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

-- pg_net carries the dispatch to queue-alert (an HTTP POST sent after commit). On hosted Supabase
-- postgres may enable it (supautils lists it among the privileged extensions); where it cannot be
-- had, the install goes on and schedule() reports that alerts cannot leave the database.
do $$
begin
  if exists (select 1 from pg_catalog.pg_extension where extname = 'pg_net') then
    return;
  end if;
  -- In schema extensions, as the dashboard enables it: in public (the default) the security
  -- advisor warns (extension_in_public). Its functions are in schema net either way.
  if pg_catalog.to_regnamespace('extensions') is not null then
    create extension pg_net with schema extensions;
  else
    create extension pg_net;
  end if;
  -- Created here, so uninstall() may drop it again (one the user had is never recorded).
  insert into queue_health.uninstall_extension (name) values ('pg_net');
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
alter table queue_health.dispatch_settings enable row level security;
revoke all on queue_health.dispatch_settings from public, anon, authenticated;
grant select, insert, update, delete on queue_health.dispatch_settings to service_role;
