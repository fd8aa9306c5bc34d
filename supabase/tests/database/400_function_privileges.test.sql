-- Who may run what (issue 19): no security definer function runs SQL text or identifiers it is
-- given (the service role must not become the owner), evaluate_monitor_stale() belongs to the
-- service role, no function is executable by PUBLIC or anon, authenticated runs only the
-- functions on the allow-list below, and no policy pretends to guard the service role.
begin;
select plan(19);

-- Section: fixtures (as the table owner)
create temporary table fx (label text primary key, id uuid) on commit drop;
grant select on fx to anon, authenticated, service_role;
insert into fx values
  ('admin', tests.create_user('t400-admin@example.test')),
  ('outsider', tests.create_user('t400-outsider@example.test'));
insert into queue_health.project (id, name) values ('t400', 'Project 400');
insert into queue_health.project_member (project_id, user_id, role) values
  ('t400', (select id from fx where label = 'admin'), 'admin');

-- Section: definer functions never run what they are given
select is(
  (select coalesce(array_agg(p.oid::regprocedure::text order by p.oid::regprocedure::text), '{}')
     from pg_catalog.pg_proc p
    where p.pronamespace = 'queue_health'::regnamespace and p.prosecdef
      and p.prosrc ~* '\mexecute\M'
      and exists (select 1 from unnest(p.proargtypes::oid[]) t(oid)
                   where t.oid in ('text'::regtype, 'name'::regtype, 'varchar'::regtype,
                                   'bpchar'::regtype, 'regclass'::regtype, 'oid'::regtype))),
  '{}'::text[],
  'no security definer function that runs dynamic SQL takes text, a name or a relation');
select is(to_regprocedure('queue_health._planner_rows(text)'), null,
  '_planner_rows() takes no SQL text');
select is((select prosecdef from pg_catalog.pg_proc where oid = 'queue_health._planner_rows(regclass)'::regprocedure),
  false, '_planner_rows(regclass) runs as its caller');
select is((select prosecdef from pg_catalog.pg_proc
            where oid = 'queue_health._sample_pgboss_queue(text, jsonb, text, timestamptz, bigint, interval, jsonb, bigint)'::regprocedure),
  false, '_sample_pgboss_queue() (given a schema name) runs as its caller');
select cmp_ok(queue_health._planner_rows('queue_health.project'::regclass), '>=', 0::bigint,
  '_planner_rows() still estimates a table''s rows');

select tests.authenticate_as_service_role();
select throws_ok(
  $$ select queue_health._planner_rows('select 1; create table public.t400_pwn as select current_user; explain (format json) select 1') $$,
  null, null, 'service role: the issue''s exploit through _planner_rows() fails');
select throws_ok(
  $$ select queue_health._planner_rows('select 1; create table public.t400_pwn as select current_user; explain (format json) select 1'::text) $$,
  '42602', null, 'service role: _planner_rows() given SQL text reads it as a table name, and refuses it');
select tests.clear_authentication();
select is(to_regclass('public.t400_pwn'), null, 'the exploit created no table');

-- Section: evaluate_monitor_stale() is the service role's
select tests.authenticate_as_anon();
select throws_ok($$ select queue_health.evaluate_monitor_stale() $$, '42501', null,
  'anon: cannot run evaluate_monitor_stale()');
select tests.authenticate_as((select id from fx where label = 'outsider'));
select throws_ok($$ select queue_health.evaluate_monitor_stale() $$, '42501', null,
  'a signed-in non-member: cannot run evaluate_monitor_stale()');
select tests.authenticate_as((select id from fx where label = 'admin'));
select throws_ok($$ select queue_health.evaluate_monitor_stale() $$, '42501', null,
  'a project admin: cannot run evaluate_monitor_stale() (it flushes every project)');
select tests.authenticate_as_service_role();
select lives_ok($$ select queue_health.evaluate_monitor_stale() $$,
  'service role: runs evaluate_monitor_stale()');
select tests.clear_authentication();

-- Section: the allow-lists (a new function is closed unless it is added here, with its reason)
select is(
  (select coalesce(array_agg(p.oid::regprocedure::text order by p.oid::regprocedure::text), '{}')
     from pg_catalog.pg_proc p
     cross join lateral aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
    where p.pronamespace = 'queue_health'::regnamespace and a.grantee = 0),
  '{}'::text[],
  'no queue_health function or procedure is executable by PUBLIC');
select is(
  (select coalesce(array_agg(p.oid::regprocedure::text order by p.oid::regprocedure::text), '{}')
     from pg_catalog.pg_proc p
    where p.pronamespace = 'queue_health'::regnamespace
      and has_function_privilege('anon', p.oid, 'execute')),
  '{}'::text[],
  'anon executes no queue_health function');
select is(
  (select coalesce(array_agg(p.oid::regprocedure::text order by p.oid::regprocedure::text), '{}')
     from pg_catalog.pg_proc p
    where p.pronamespace = 'queue_health'::regnamespace
      and has_function_privilege('authenticated', p.oid, 'execute')),
  (select array_agg(f order by f) from unnest(array[
    -- RLS helpers, asked by the policies (they answer only for the caller).
    'queue_health.is_member(text,queue_health.member_role)',
    'queue_health.is_member_of_any(queue_health.member_role)',
    'queue_health.member_project_ids(queue_health.member_role)',
    -- Security invoker: RLS decides what it returns.
    'queue_health.queue_history(text,timestamp with time zone,timestamp with time zone,text)',
    -- Signals (issue 22): pure definitions, and the objective's figures, security invoker over
    -- row-level security.
    'queue_health.flow_status_of(bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,double precision)',
    'queue_health.drain_eta_of(bigint,double precision,double precision,double precision)',
    'queue_health.expected_wait_of(bigint,double precision,double precision)',
    'queue_health.slo_burn_rate(text,text,text,interval,timestamp with time zone)',
    'queue_health.slo_budget_remaining(text,text,text,timestamp with time zone)',
    'queue_health._slo_seconds(text,text,text,timestamp with time zone,timestamp with time zone)',
    'queue_health._slo_objective(text,text,text)',
    -- A project admin's own scrape tokens (checked inside).
    'queue_health.create_scrape_token(text,text,timestamp with time zone)',
    'queue_health.revoke_scrape_token(uuid,timestamp with time zone)',
    -- firing_alert's summary column (the view filters by membership).
    'queue_health.alert_summary(queue_health.alert_rule,queue_health.alert)',
    -- Called by the validation triggers that run as the tenant writing a rule or channel: the
    -- operator's settings and pure comparisons.
    'queue_health._settings()',
    'queue_health._is_tenant()',
    'queue_health._check_interval(text,interval,interval,interval,text,text)',
    'queue_health._max_email_recipients()',
    'queue_health._e164_list(jsonb)',
    'queue_health._is_e164(text)',
    'queue_health._validate_sms_config(jsonb)',
    'queue_health._validate_oncall_config(text,jsonb)',
    -- Capture errors of the caller's own projects only (definer, filtered inside).
    'queue_health.capture_run_errors(bigint)',
    'queue_health.capture_run_error(bigint)',
    -- Seasonal baselines: pure (immutable) arithmetic on their arguments; they read nothing.
    'queue_health.hour_of_week(timestamp with time zone)',
    'queue_health.is_anomalous(double precision,double precision,double precision,double precision)'
  ]::text[]) f),
  'authenticated executes exactly the allow-listed queue_health functions');

-- Section: uninstall() is the owner's alone (it drops the schema, a policy on realtime.messages
-- and extensions: the service role, a member of nothing that may, must not gain that)
select is(
  (select coalesce(array_agg(p.oid::regprocedure::text order by p.oid::regprocedure::text), '{}')
     from pg_catalog.pg_proc p
    where p.pronamespace = 'queue_health'::regnamespace and p.proname ~ '^_?uninstall'
      and (has_function_privilege('service_role', p.oid, 'execute')
           or has_function_privilege('authenticated', p.oid, 'execute')
           or has_function_privilege('anon', p.oid, 'execute'))),
  '{}'::text[],
  'nobody but the owner executes uninstall() or its helpers');
select tests.authenticate_as_service_role();
select throws_ok($$ select queue_health.uninstall() $$, '42501', null,
  'service role: cannot run uninstall()');
select tests.clear_authentication();

-- Section: policies
select is(
  (select count(*)::int from pg_catalog.pg_policies
    where schemaname = 'queue_health' and 'service_role' = any (roles)),
  0, 'no policy names the service role (it bypasses RLS: such a policy would only mislead)');
select is(
  (select count(*)::int from pg_catalog.pg_policies
    where schemaname = 'queue_health' and qual = 'true' and 'public' <> all (roles) and cmd = 'ALL'),
  0, 'no "using (true)" policy for all commands is left');

select * from finish();
rollback;
