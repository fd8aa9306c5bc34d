-- The platform a hosted Supabase project gives our migrations, rebuilt on a plain Debian
-- PostgreSQL: roles with their attributes and memberships, and the schemas of Auth, Realtime and
-- Vault with the owners and grants they have on hosted. Run by the local stack as the superuser
-- (supabase_admin) before the migrations, which then run as `postgres`, as `supabase db push`
-- does. Every statement is guarded, so it is safe to run again and does nothing where an object
-- already exists. Each fact and the upstream file it comes from: docs/development.md, "Hosted
-- parity"; local/test/platform_parity_test.ts checks them.

-- Section: roles (supabase/postgres migrations/db/init-scripts/00000000000000-initial-schema.sql,
-- migrations/10000000000000_demote-postgres.sql and the grants that followed)
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'postgres') then
    create role postgres login password 'postgres';
  end if;
  -- demote-postgres: what postgres keeps once it is no longer a superuser.
  alter role postgres nosuperuser createdb createrole login replication bypassrls;

  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  -- 20230529180330_alter_api_roles_for_inherit
  alter role anon inherit;
  alter role authenticated inherit;
  alter role service_role inherit;

  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit password 'postgres';
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin noinherit createrole login noreplication;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_realtime_admin') then
    create role supabase_realtime_admin noinherit createrole login replication;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_functions_admin') then
    create role supabase_functions_admin noinherit createrole login noreplication;
  end if;
end
$$;

grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to supabase_realtime_admin;
-- 20230201083204_grant_auth_roles_to_postgres, 20230306081037_grant_pg_monitor_to_postgres,
-- 20240606060239_grant_predefined_roles_to_postgres
grant anon, authenticated, service_role to postgres;
grant pg_monitor, pg_read_all_data, pg_signal_backend to postgres;
-- 20250421084701_revoke_admin_roles_from_postgres: postgres is no member of the services' roles.
revoke supabase_auth_admin from postgres;
revoke supabase_realtime_admin from postgres;

-- initial-schema: short timeouts for the API roles (applied at login, as PostgREST's sessions do).
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
-- post-setup
alter role postgres set search_path to "$user", public, extensions;

-- Section: database and schemas
do $$
begin
  execute format('grant all on database %I to postgres', current_database());
  execute format('grant create on database %I to supabase_realtime_admin', current_database());
  execute format('alter database %I set search_path = "$user", public, extensions', current_database());
end
$$;

do $$
begin
  if not exists (select 1 from pg_namespace where nspname = 'extensions') then
    create schema extensions;
  end if;
end
$$;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
-- initial-schema: the platform creates pgcrypto in schema extensions (seeds hash passwords with
-- extensions.crypt(…, extensions.gen_salt('bf')), as GoTrue stores them).
create extension if not exists pgcrypto with schema extensions;
grant all on schema extensions to postgres;
grant usage on schema public to postgres, anon, authenticated, service_role;
grant create on schema public to postgres;

-- Section: pg_cron (created by the superuser; ansible/files/postgresql_extension_custom_scripts/
-- pg_cron/after-create.sql and migrations 20231020085357, 20260730000000 for what postgres gets)
do $$
begin
  -- pg_cron lives in one database of the cluster (cron.database_name).
  if current_database() = current_setting('cron.database_name', true) then
    create extension if not exists pg_cron;
    grant usage on schema cron to postgres with grant option;
    grant all on all functions in schema cron to postgres with grant option;
    grant all privileges on all tables in schema cron to postgres with grant option;
    revoke all on table cron.job from postgres;
    grant select on table cron.job to postgres with grant option;
    revoke trigger on cron.job_run_details from postgres;
  end if;
end
$$;

-- Section: pg_net (init-scripts/00000000000003-post-setup.sql: when pg_net is created, an event
-- trigger makes net.http_get / net.http_post security definer with search_path net and grants
-- them, and usage on schema net, to postgres, anon, authenticated, service_role and
-- supabase_functions_admin only)
create or replace function extensions.grant_pg_net_access()
  returns event_trigger
  language plpgsql
  as $$
  begin
    if not exists (select 1 from pg_event_trigger_ddl_commands() c
                     join pg_extension e on c.objid = e.oid where e.extname = 'pg_net') then
      return;
    end if;
    grant usage on schema net to supabase_functions_admin, postgres, anon, authenticated, service_role;
    alter function net.http_get(text, jsonb, jsonb, integer) security definer set search_path = net;
    alter function net.http_post(text, jsonb, jsonb, jsonb, integer) security definer set search_path = net;
    revoke all on function net.http_get(text, jsonb, jsonb, integer),
      net.http_post(text, jsonb, jsonb, jsonb, integer) from public;
    grant execute on function net.http_get(text, jsonb, jsonb, integer),
      net.http_post(text, jsonb, jsonb, jsonb, integer)
      to supabase_functions_admin, postgres, anon, authenticated, service_role;
  end;
  $$;
do $$
begin
  if not exists (select 1 from pg_event_trigger where evtname = 'issue_pg_net_access') then
    create event trigger issue_pg_net_access on ddl_command_end when tag in ('CREATE EXTENSION')
      execute function extensions.grant_pg_net_access();
  end if;
end
$$;

-- Section: auth (init-scripts/00000000000001-auth-schema.sql, 20211124212715_update-auth-owner,
-- 20211115181400_update-auth-permissions, 20250421084701_revoke_admin_roles_from_postgres)
do $$
begin
  if not exists (select 1 from pg_namespace where nspname = 'auth') then
    create schema auth authorization supabase_auth_admin;

    -- Only the columns this project and its tests use.
    create table auth.users (
      instance_id uuid,
      id uuid primary key,
      aud varchar(255),
      role varchar(255) default 'authenticated',
      email varchar(255) unique,
      raw_app_meta_data jsonb default '{}'::jsonb,
      raw_user_meta_data jsonb default '{}'::jsonb,
      created_at timestamptz default now(),
      updated_at timestamptz
    );
    comment on table auth.users is 'Local stand-in for Supabase Auth''s users table (the columns this project uses).';

    create function auth.jwt() returns jsonb
      language sql stable
      as $f$
        select coalesce(
          nullif(current_setting('request.jwt.claim', true), ''),
          nullif(current_setting('request.jwt.claims', true), '')
        )::jsonb
      $f$;
    create function auth.uid() returns uuid
      language sql stable
      as $f$
        select coalesce(
          nullif(current_setting('request.jwt.claim.sub', true), ''),
          (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
        )::uuid
      $f$;
    create function auth.role() returns text
      language sql stable
      as $f$
        select coalesce(
          nullif(current_setting('request.jwt.claim.role', true), ''),
          (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
        )::text
      $f$;
    alter table auth.users owner to supabase_auth_admin;
    alter function auth.jwt() owner to supabase_auth_admin;
    alter function auth.uid() owner to supabase_auth_admin;
    alter function auth.role() owner to supabase_auth_admin;
  end if;
end
$$;
-- What the local Auth stand-in (local/auth/auth_local.ts) signs in against: GoTrue's own
-- columns and tables, with GoTrue's names and types (supabase/auth migrations/
-- 00_init_auth_schema, 20210927181326_add_refresh_token_parent, 20220811173540_add_sessions_table,
-- 20221003041400_add_aal_and_factor_id_to_sessions, 20231027141322_add_session_refresh_columns).
-- Guarded separately, so a cluster made before they existed gets them too.
do $$
begin
  alter table auth.users
    add column if not exists encrypted_password varchar(255),
    add column if not exists email_confirmed_at timestamptz,
    add column if not exists last_sign_in_at timestamptz,
    add column if not exists phone text default null,
    add column if not exists banned_until timestamptz,
    add column if not exists is_anonymous boolean not null default false;
  if to_regtype('auth.aal_level') is null then
    create type auth.aal_level as enum ('aal1', 'aal2', 'aal3');
    alter type auth.aal_level owner to supabase_auth_admin;
  end if;
  if to_regclass('auth.sessions') is null then
    create table auth.sessions (
      id uuid primary key,
      user_id uuid not null references auth.users (id) on delete cascade,
      created_at timestamptz,
      updated_at timestamptz,
      factor_id uuid,
      aal auth.aal_level,
      refreshed_at timestamp without time zone,
      user_agent text,
      ip inet
    );
    create index sessions_user_id_idx on auth.sessions (user_id);
    comment on table auth.sessions is 'Auth: Stores session data associated to a user.';
    alter table auth.sessions owner to supabase_auth_admin;
  end if;
  if to_regclass('auth.refresh_tokens') is null then
    create table auth.refresh_tokens (
      instance_id uuid,
      id bigserial primary key,
      token varchar(255) unique,
      user_id varchar(255),
      revoked boolean,
      created_at timestamptz,
      updated_at timestamptz,
      parent varchar(255),
      session_id uuid references auth.sessions (id) on delete cascade
    );
    create index refresh_tokens_session_id_revoked_idx on auth.refresh_tokens (session_id, revoked);
    comment on table auth.refresh_tokens is 'Auth: Store of tokens used to refresh JWT tokens once they expire.';
    alter table auth.refresh_tokens owner to supabase_auth_admin;
  end if;
end
$$;
grant usage on schema auth to postgres, anon, authenticated, service_role;
revoke create on schema auth from postgres;
grant all on all tables in schema auth to postgres;
grant execute on all functions in schema auth to postgres, anon, authenticated, service_role,
  supabase_realtime_admin;

-- Section: realtime (init-scripts/00000000000003-realtime-schema.sql; the table and functions are
-- what Realtime's own migrations create when it first connects: supabase/realtime
-- lib/realtime/tenants/repo/migrations/*messages*, *send*)
do $$
begin
  if not exists (select 1 from pg_namespace where nspname = 'realtime') then
    create schema realtime authorization supabase_admin;
  end if;
end
$$;
grant usage on schema realtime to postgres with grant option;
grant usage on schema realtime to anon, authenticated, service_role;
grant all on schema realtime to supabase_realtime_admin with grant option;
revoke create on schema realtime from postgres;

-- Realtime creates its table when it first connects to the project; a test builds a project it
-- has not connected to yet with `set qh_platform.realtime_connected = off`.
do $$
begin
  if to_regclass('realtime.messages') is null
     and coalesce(nullif(current_setting('qh_platform.realtime_connected', true), ''), 'on') = 'on' then
    set local role supabase_realtime_admin;

    create table realtime.messages (
      topic text not null,
      extension text not null,
      payload jsonb,
      event text,
      private boolean default false,
      updated_at timestamp without time zone not null default now(),
      inserted_at timestamp without time zone not null default now(),
      id uuid not null default gen_random_uuid(),
      binary_payload bytea,
      primary key (id, inserted_at)
    ) partition by range (inserted_at);
    alter table realtime.messages enable row level security;
    grant select, insert, update on realtime.messages to postgres, anon, authenticated, service_role;

    create function realtime.topic() returns text
      language sql stable
      as $f$ select nullif(current_setting('realtime.topic', true), '')::text $f$;

    -- Hosted's realtime.send, as specified: adds an id to the payload, sets realtime.topic for
    -- the transaction, inserts as the caller (security invoker) and turns any failure into a
    -- warning. Locally it also NOTIFYs the row's id, which the stack's Realtime stand-in relays
    -- (hosted Realtime reads the table's changes instead).
    create function realtime.send(payload jsonb, event text, topic text, private boolean default true)
      returns void
      language plpgsql
      as $f$
      declare
        v_id uuid := gen_random_uuid();
      begin
        begin
          if not (payload ? 'id') then
            payload := jsonb_set(payload, '{id}', to_jsonb(v_id));
          end if;
          perform set_config('realtime.topic', topic, true);
          insert into realtime.messages (id, payload, event, topic, private, extension)
          values (v_id, payload, event, topic, private, 'broadcast');
          perform pg_notify('realtime:broadcast', json_build_object(
            'id', v_id, 'topic', topic, 'event', event, 'private', private)::text);
        exception when others then
          raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
        end;
      end;
      $f$;
    grant execute on function realtime.topic(), realtime.send(jsonb, text, text, boolean)
      to postgres, anon, authenticated, service_role;
    reset role;
  end if;
end
$$;

-- Realtime's janitor keeps daily partitions ahead and drops those older than 72 hours; the stack
-- creates yesterday's to a week ahead on every start.
do $$
declare
  v_day date;
begin
  if to_regclass('realtime.messages') is null then
    return;
  end if;
  for v_day in select d::date from generate_series(current_date - 1, current_date + 7, interval '1 day') d loop
    if to_regclass(format('realtime.messages_%s', to_char(v_day, 'YYYY_MM_DD'))) is null then
      execute format('create table realtime.%I partition of realtime.messages for values from (%L) to (%L)',
                     'messages_' || to_char(v_day, 'YYYY_MM_DD'), v_day, v_day + 1);
      execute format('alter table realtime.%I owner to supabase_realtime_admin',
                     'messages_' || to_char(v_day, 'YYYY_MM_DD'));
    end if;
  end loop;
end
$$;

-- Section: vault (supabase/vault; migrations/20221207154255_create_vault.sql for the grants).
-- Locally the secret is stored as given (no encryption key exists here); the interface, owner and
-- grants are hosted's: postgres may read decrypted_secrets, service_role may not.
do $$
begin
  if not exists (select 1 from pg_namespace where nspname = 'vault') then
    create schema vault;
    create table vault.secrets (
      id uuid primary key default gen_random_uuid(),
      name text,
      description text not null default '',
      secret text not null,
      key_id uuid,
      nonce bytea,
      created_at timestamptz not null default current_timestamp,
      updated_at timestamptz not null default current_timestamp
    );
    create unique index secrets_name_idx on vault.secrets (name) where name is not null;
    comment on table vault.secrets is 'Local stand-in for Supabase Vault''s table (not encrypted locally).';
    create view vault.decrypted_secrets as
      select s.id, s.name, s.description, s.secret, s.secret as decrypted_secret, s.key_id,
             s.nonce, s.created_at, s.updated_at
        from vault.secrets s;
    create function vault.create_secret(new_secret text, new_name text default null,
                                        new_description text default '', new_key_id uuid default null)
      returns uuid
      security definer
      set search_path = ''
      language sql
      as $f$
        insert into vault.secrets (secret, name, description, key_id)
        values (new_secret, new_name, coalesce(new_description, ''), new_key_id)
        returning id
      $f$;
    create function vault.update_secret(secret_id uuid, new_secret text default null,
                                        new_name text default null, new_description text default null,
                                        new_key_id uuid default null)
      returns void
      security definer
      set search_path = ''
      language sql
      as $f$
        update vault.secrets
           set secret = coalesce(new_secret, secret), name = coalesce(new_name, name),
               description = coalesce(new_description, description),
               key_id = coalesce(new_key_id, key_id), updated_at = now()
         where id = secret_id
      $f$;
    revoke all on function vault.create_secret(text, text, text, uuid) from public;
    revoke all on function vault.update_secret(uuid, text, text, text, uuid) from public;
  end if;
end
$$;
grant usage on schema vault to postgres with grant option;
grant select, delete on vault.secrets, vault.decrypted_secrets to postgres with grant option;
grant execute on function vault.create_secret(text, text, text, uuid),
  vault.update_secret(uuid, text, text, text, uuid) to postgres with grant option;

-- Section: settings (supautils.conf.j2 privileged_role_allowed_configs: postgres may set these
-- superuser-only parameters; the others on that list are extensions' or user-settable)
grant set on parameter session_replication_role, log_lock_waits, log_min_messages, track_io_timing
  to postgres;
