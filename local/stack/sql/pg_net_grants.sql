-- What hosted Supabase does when pg_net is created (its event trigger grant_pg_net_access in
-- supabase/postgres migrations/db/init-scripts/00000000000003-post-setup.sql): usage on schema
-- net and execute on net.http_get / net.http_post for postgres, anon, authenticated,
-- service_role and supabase_functions_admin only; both functions security definer with
-- search_path net. Applied by the superuser after local/stack/sql/pg_net.sql.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'supabase_functions_admin') then
    create user supabase_functions_admin noinherit createrole login noreplication;
  end if;
end
$$;

grant usage on schema net to supabase_functions_admin, postgres, anon, authenticated, service_role;

alter function net.http_get(url text, params jsonb, headers jsonb, timeout_milliseconds integer) security definer;
alter function net.http_post(url text, body jsonb, params jsonb, headers jsonb, timeout_milliseconds integer) security definer;

alter function net.http_get(url text, params jsonb, headers jsonb, timeout_milliseconds integer) set search_path = net;
alter function net.http_post(url text, body jsonb, params jsonb, headers jsonb, timeout_milliseconds integer) set search_path = net;

revoke all on function net.http_get(url text, params jsonb, headers jsonb, timeout_milliseconds integer) from public;
revoke all on function net.http_post(url text, body jsonb, params jsonb, headers jsonb, timeout_milliseconds integer) from public;

grant execute on function net.http_get(url text, params jsonb, headers jsonb, timeout_milliseconds integer)
  to supabase_functions_admin, postgres, anon, authenticated, service_role;
grant execute on function net.http_post(url text, body jsonb, params jsonb, headers jsonb, timeout_milliseconds integer)
  to supabase_functions_admin, postgres, anon, authenticated, service_role;
