-- pgTAP helpers, schema `tests`. Loaded by the test runner after `create extension pgtap`, never
-- by the migrations. Idempotent: loading the file twice changes nothing.
--
-- Acting as someone lasts until the end of the current transaction (set_config(..., true)), which
-- in a pgTAP file (`begin; ... rollback;`) means until the file ends or until the next call:
--
--   select tests.authenticate_as(tests.create_user('ada@example.test'));  -- as PostgREST would
--   select tests.authenticate_as_service_role();
--   select tests.authenticate_as_anon();
--   select tests.clear_authentication();                                   -- back to the session user
--
-- Outside an explicit transaction each call only lasts for its own statement, which is useless:
-- always call these inside `begin; ... rollback;`.

create schema if not exists tests;
comment on schema tests is 'pgTAP helpers of the Queue Health test suite (tests only).';
-- Every role a test switches to must be able to switch back and to another user.
grant usage on schema tests to anon, authenticated, service_role;

create or replace function tests.create_user(p_email text)
  returns uuid
  volatile
  security definer
  set search_path = ''
  language plpgsql
as $$
declare
  v_id uuid := gen_random_uuid();
begin
  if p_email is null or p_email !~ '^[^@\s]+@[^@\s]+$' then
    raise exception 'tests.create_user: p_email must be an email address: got %', p_email;
  end if;
  -- Only columns that both the local stand-in and GoTrue's real auth.users have.
  insert into auth.users (id, email, raw_user_meta_data)
  values (v_id, p_email, jsonb_build_object('test_user', true));
  return v_id;
end;
$$;
comment on function tests.create_user(text) is
  'Creates a user in auth.users with the given email and returns its id.';
revoke execute on function tests.create_user(text) from public;
grant execute on function tests.create_user(text) to anon, authenticated, service_role;

create or replace function tests._user_email(p_user_id uuid)
  returns text
  stable
  security definer
  set search_path = ''
  language sql
as $$ select email::text from auth.users where id = p_user_id $$;
comment on function tests._user_email(uuid) is
  'The email of a user (null if unknown): authenticate_as() runs as the current role and cannot read auth.users.';
revoke execute on function tests._user_email(uuid) from public;
grant execute on function tests._user_email(uuid) to anon, authenticated, service_role;

-- Not security definer: a security definer function may not change the role.
create or replace function tests._act_as(p_role text, p_claims jsonb)
  returns void
  volatile
  language plpgsql
as $$
begin
  perform set_config('role', p_role, true);
  perform set_config('request.jwt.claims', coalesce(p_claims::text, ''), true);
  -- The pre-PostgREST-9 per-claim settings take precedence in auth.uid()/auth.role(): clear them.
  perform set_config('request.jwt.claim.sub', '', true);
  perform set_config('request.jwt.claim.role', '', true);
end;
$$;
comment on function tests._act_as(text, jsonb) is
  'Sets the role and request.jwt.claims for the rest of the transaction.';
revoke execute on function tests._act_as(text, jsonb) from public;
grant execute on function tests._act_as(text, jsonb) to anon, authenticated, service_role;

create or replace function tests.authenticate_as(p_user_id uuid)
  returns void
  volatile
  language plpgsql
as $$
begin
  if p_user_id is null then
    raise exception 'tests.authenticate_as: p_user_id must not be null';
  end if;
  perform tests._act_as('authenticated', jsonb_strip_nulls(jsonb_build_object(
    'sub', p_user_id,
    'role', 'authenticated',
    'aud', 'authenticated',
    'email', tests._user_email(p_user_id)
  )));
end;
$$;
comment on function tests.authenticate_as(uuid) is
  'For the rest of the transaction, acts as that user: role authenticated and request.jwt.claims '
  '{sub, role: authenticated, email}, as PostgREST sets them. The user need not exist.';
revoke execute on function tests.authenticate_as(uuid) from public;
grant execute on function tests.authenticate_as(uuid) to anon, authenticated, service_role;

create or replace function tests.authenticate_as_service_role()
  returns void
  volatile
  language sql
as $$ select tests._act_as('service_role', '{"role": "service_role"}'::jsonb) $$;
comment on function tests.authenticate_as_service_role() is
  'For the rest of the transaction, acts as the service role (role service_role, claims {role}).';
revoke execute on function tests.authenticate_as_service_role() from public;
grant execute on function tests.authenticate_as_service_role() to anon, authenticated, service_role;

create or replace function tests.authenticate_as_anon()
  returns void
  volatile
  language sql
as $$ select tests._act_as('anon', '{"role": "anon"}'::jsonb) $$;
comment on function tests.authenticate_as_anon() is
  'For the rest of the transaction, acts as an anonymous caller (role anon, claims {role}).';
revoke execute on function tests.authenticate_as_anon() from public;
grant execute on function tests.authenticate_as_anon() to anon, authenticated, service_role;

create or replace function tests.clear_authentication()
  returns void
  volatile
  language sql
as $$ select tests._act_as('none', null) $$;
comment on function tests.clear_authentication() is
  'Back to the session user (postgres in the test runner) with no JWT claims.';
revoke execute on function tests.clear_authentication() from public;
grant execute on function tests.clear_authentication() to anon, authenticated, service_role;
