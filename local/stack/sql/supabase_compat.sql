-- Local stand-ins for what every Supabase database has and a plain Debian PostgreSQL lacks.
-- Applied by the local stack before the migrations. Every statement is guarded so that nothing
-- here is ever created in a database that already has it (a hosted Supabase project, or a local
-- database set up by `supabase start`).

-- Section: roles (as Supabase creates them)
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit password 'postgres';
    grant anon, authenticated, service_role to authenticator;
  end if;
end
$$;

-- Section: schemas
-- Supabase puts extensions (pgtap, pg_net, ...) in schema `extensions`, on the search_path.
do $$
begin
  if not exists (select 1 from pg_namespace where nspname = 'extensions') then
    create schema extensions;
    execute format('alter database %I set search_path = "$user", public, extensions',
                   current_database());
  end if;
end
$$;
grant usage on schema extensions to anon, authenticated, service_role;
grant usage on schema public to anon, authenticated, service_role;

-- Section: auth (the helpers PostgREST-issued requests rely on; they read request.jwt.claims)
do $$
begin
  if not exists (select 1 from pg_namespace where nspname = 'auth') then
    create schema auth;
    grant usage on schema auth to anon, authenticated, service_role;

    create table auth.users (
      id uuid primary key,
      email text unique,
      role text default 'authenticated',
      raw_app_meta_data jsonb default '{}'::jsonb,
      raw_user_meta_data jsonb default '{}'::jsonb,
      created_at timestamptz default now()
    );
    comment on table auth.users is 'Local stand-in for GoTrue''s users table (only the columns this project uses).';

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

    grant execute on function auth.jwt(), auth.uid(), auth.role() to anon, authenticated, service_role;
  end if;
end
$$;

-- Section: realtime (Broadcast from the database; locally, NOTIFY carries the messages)
do $$
begin
  if not exists (select 1 from pg_namespace where nspname = 'realtime') then
    create schema realtime;
    grant usage on schema realtime to anon, authenticated, service_role;

    create table realtime.messages (
      topic text not null,
      extension text not null,
      payload jsonb,
      event text,
      private boolean default false,
      updated_at timestamp without time zone not null default now(),
      inserted_at timestamp without time zone not null default now(),
      id uuid not null default gen_random_uuid(),
      primary key (id, inserted_at)
    );
    comment on table realtime.messages is 'Local stand-in for Realtime''s messages table: Broadcast rows, and the table Realtime Authorization policies are written on.';
    alter table realtime.messages enable row level security;
    grant select, insert on realtime.messages to authenticated;
    grant all on realtime.messages to service_role;

    -- Realtime sets realtime.topic for the transaction in which it checks a join.
    create function realtime.topic() returns text
      language sql stable
      as $f$ select nullif(current_setting('realtime.topic', true), '')::text $f$;
    grant execute on function realtime.topic() to anon, authenticated, service_role;

    -- Same signature and failure behaviour as Supabase's: a failed send only warns.
    create function realtime.send(payload jsonb, event text, topic text, private boolean default true)
      returns void
      language plpgsql
      as $f$
      declare
        v_id uuid;
      begin
        begin
          insert into realtime.messages (payload, event, topic, private, extension)
          values (payload, event, topic, private, 'broadcast')
          returning id into v_id;
          -- Local subscribers (the stack, tests, benchmarks) listen on this channel. NOTIFY
          -- payloads are limited to 8000 bytes, so it carries the row's id, not the payload.
          perform pg_notify('realtime:broadcast', json_build_object(
            'id', v_id, 'topic', topic, 'event', event, 'private', private)::text);
        exception when others then
          raise warning 'ErrorSendingBroadcastMessage: %', sqlerrm;
        end;
      end;
      $f$;
    grant execute on function realtime.send(jsonb, text, text, boolean) to authenticated, service_role;
  end if;
end
$$;
