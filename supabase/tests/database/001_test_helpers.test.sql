-- The pgTAP helpers (supabase/tests/helpers.sql) act as a user, the service role and anon the way
-- PostgREST does (role + request.jwt.claims for the transaction), so RLS tests mean something.
begin;
select plan(25);

-- Section: creating users
create temporary table fx_users (label text primary key, id uuid) on commit drop;
grant select on fx_users to anon, authenticated, service_role;
insert into fx_users values
  ('ada', tests.create_user('ada@example.test')),
  ('bob', tests.create_user('bob@example.test'));

select is(
  (select email::text from auth.users where id = (select id from fx_users where label = 'ada')),
  'ada@example.test',
  'create_user() inserts the user into auth.users and returns its id'
);
select isnt(
  (select id from fx_users where label = 'ada'), (select id from fx_users where label = 'bob'),
  'create_user() gives every user a new id'
);
select throws_like(
  $$ select tests.create_user('not an email') $$,
  '%p_email must be an email address%',
  'create_user() refuses something that is not an email, naming the parameter'
);

-- Section: acting as a user
select tests.authenticate_as((select id from fx_users where label = 'ada'));
select is(current_user::text, 'authenticated', 'authenticate_as() switches to the authenticated role');
select is(auth.uid(), (select id from fx_users where label = 'ada'), 'auth.uid() is that user');
select is(auth.role(), 'authenticated', 'auth.role() is authenticated');
select is(auth.jwt() ->> 'email', 'ada@example.test', 'the claims carry the user''s email');
select throws_ok(
  $$ select count(*) from auth.users $$,
  '42501',
  null,
  'an authenticated user cannot read auth.users'
);
select ok(
  not (select rolbypassrls from pg_roles where rolname = current_user),
  'an authenticated user does not bypass RLS'
);
select isnt(
  tests.create_user('carol@example.test'), null,
  'create_user() also works while acting as a user'
);
select tests.authenticate_as((select id from fx_users where label = 'bob'));
select is(
  auth.uid(), (select id from fx_users where label = 'bob'),
  'authenticate_as() can switch directly from one user to another'
);
select is(auth.jwt() ->> 'email', 'bob@example.test', 'and the email follows the new user');
select tests.authenticate_as('00000000-0000-4000-8000-000000000000');
select ok(
  auth.uid() = '00000000-0000-4000-8000-000000000000' and auth.jwt() ->> 'email' is null,
  'authenticate_as() an unknown id acts as that id without an email'
);

-- Section: acting as the service role
select tests.authenticate_as_service_role();
select is(current_user::text, 'service_role', 'authenticate_as_service_role() switches to service_role');
select is(auth.role(), 'service_role', 'auth.role() is service_role');
select is(auth.uid(), null, 'the service role has no auth.uid()');
select ok(
  (select rolbypassrls from pg_roles where rolname = current_user),
  'the service role bypasses RLS'
);

-- Section: acting as anon
select tests.authenticate_as_anon();
select is(current_user::text, 'anon', 'authenticate_as_anon() switches to anon');
select is(auth.role(), 'anon', 'auth.role() is anon');
select is(auth.uid(), null, 'anon has no auth.uid()');
select throws_ok(
  $$ select count(*) from auth.users $$,
  '42501',
  null,
  'anon cannot read auth.users'
);

-- Section: clearing
select tests.clear_authentication();
select is(current_user::text, session_user::text, 'clear_authentication() returns to the session user');
select is(auth.uid(), null, 'after clear_authentication() auth.uid() is null');
select is(auth.role(), null, 'after clear_authentication() auth.role() is null');
select is(auth.jwt(), null, 'after clear_authentication() there are no claims');

select * from finish();
rollback;
