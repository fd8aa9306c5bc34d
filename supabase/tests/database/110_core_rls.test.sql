-- Row-level security per role: members see only their project's rows in every table and view,
-- non-members and anon see nothing, admins manage members, only the service role captures.
begin;
select plan(32);

-- Section: fixture (as the session user)
select queue_health.ensure_partitions(now(), 0);
create temporary table fx_users (label text primary key, id uuid) on commit drop;
grant select on fx_users to anon, authenticated, service_role;
insert into fx_users values
  ('ada', tests.create_user('ada@acme.test')),     -- acme viewer
  ('adam', tests.create_user('adam@acme.test')),   -- acme admin
  ('gus', tests.create_user('gus@globex.test')),   -- globex viewer
  ('nora', tests.create_user('nora@nowhere.test'));-- member of nothing

insert into queue_health.project (id, name) values ('acme', 'Acme'), ('globex', 'Globex');
insert into queue_health.project_member (project_id, user_id, role)
select 'acme', id, 'viewer'::queue_health.member_role from fx_users where label = 'ada'
union all select 'acme', id, 'admin' from fx_users where label = 'adam'
union all select 'globex', id, 'viewer' from fx_users where label = 'gus';
insert into queue_health.project_queue_map (project_id, source, queue_pattern)
values ('acme', null, 'acme\_%'), ('globex', 'pgmq', 'globex\_%');
insert into queue_health.queue (source, source_schema, queue_name, project_id)
values ('pgmq', 'pgmq', 'acme_jobs', 'acme'), ('pgmq', 'pgmq', 'globex_jobs', 'globex');
insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name, depth, ready, in_flight, delayed)
values (now(), 'acme', 'pgmq', 'pgmq', 'acme_jobs', 3, 3, 0, 0),
       (now(), 'globex', 'pgmq', 'pgmq', 'globex_jobs', 5, 5, 0, 0);
insert into queue_health.metric_1m (bucket, project_id, source, source_schema, queue_name, samples)
values (date_trunc('minute', now(), 'UTC'), 'acme', 'pgmq', 'pgmq', 'acme_jobs', 1),
       (date_trunc('minute', now(), 'UTC'), 'globex', 'pgmq', 'pgmq', 'globex_jobs', 1);
insert into queue_health.metric_1h (bucket, project_id, source, source_schema, queue_name, samples)
values (date_trunc('hour', now(), 'UTC'), 'acme', 'pgmq', 'pgmq', 'acme_jobs', 1),
       (date_trunc('hour', now(), 'UTC'), 'globex', 'pgmq', 'pgmq', 'globex_jobs', 1);
insert into queue_health.capture_run (started_at, status) values (now(), 'ok');
insert into queue_health.rollup_watermark (resolution, rolled_up_to)
values ('1m', date_trunc('minute', now(), 'UTC')) on conflict do nothing;

create function pg_temp.visible_projects() returns jsonb language sql as $$
  select jsonb_build_object(
    'project', (select coalesce(jsonb_agg(distinct id), '[]') from queue_health.project),
    'project_member', (select coalesce(jsonb_agg(distinct project_id), '[]') from queue_health.project_member),
    'project_queue_map', (select coalesce(jsonb_agg(distinct project_id), '[]') from queue_health.project_queue_map),
    'queue', (select coalesce(jsonb_agg(distinct project_id), '[]') from queue_health.queue),
    'metric', (select coalesce(jsonb_agg(distinct project_id), '[]') from queue_health.metric),
    'metric_1m', (select coalesce(jsonb_agg(distinct project_id), '[]') from queue_health.metric_1m),
    'metric_1h', (select coalesce(jsonb_agg(distinct project_id), '[]') from queue_health.metric_1h),
    'queue_status', (select coalesce(jsonb_agg(distinct project_id), '[]') from queue_health.queue_status),
    'queue_history', (select coalesce(jsonb_agg(distinct h.project_id), '[]') from (
      select * from queue_health.queue_history('acme_jobs', now() - interval '1 hour', now() + interval '1 minute')
      union all
      select * from queue_health.queue_history('globex_jobs', now() - interval '1 hour', now() + interval '1 minute')) h)
  )
$$;
create function pg_temp.visible_global() returns jsonb language sql as $$
  select jsonb_build_object(
    'capture_run', (select count(*) > 0 from queue_health.capture_run),
    'capture_status', (select count(*) > 0 from queue_health.capture_status),
    'settings', (select count(*) > 0 from queue_health.settings),
    'rollup_watermark', (select count(*) > 0 from queue_health.rollup_watermark)
  )
$$;
grant execute on function pg_temp.visible_projects(), pg_temp.visible_global() to anon, authenticated, service_role;

-- Section: a viewer of acme
select tests.authenticate_as((select id from fx_users where label = 'ada'));
select is(pg_temp.visible_projects(), jsonb_build_object(
    'project', '["acme"]'::jsonb, 'project_member', '["acme"]'::jsonb,
    'project_queue_map', '["acme"]'::jsonb, 'queue', '["acme"]'::jsonb, 'metric', '["acme"]'::jsonb,
    'metric_1m', '["acme"]'::jsonb, 'metric_1h', '["acme"]'::jsonb,
    'queue_status', '["acme"]'::jsonb, 'queue_history', '["acme"]'::jsonb),
  'a member sees only their project''s rows in every table, view and in queue_history');
select is(pg_temp.visible_global(),
  '{"capture_run": true, "capture_status": true, "settings": true, "rollup_watermark": true}'::jsonb,
  'a member sees the monitor''s own state (capture runs, capture_status, settings)');
select is((select count(*)::int from queue_health.project_member), 2,
  'a member sees both members of their project');
select throws_ok(
  $$ insert into queue_health.project_member (project_id, user_id, role)
     select 'acme', id, 'viewer'::queue_health.member_role from fx_users where label = 'nora' $$,
  '42501', 'new row violates row-level security policy for table "project_member"',
  'a viewer cannot add members');
select is_empty(
  $$ update queue_health.project set name = 'Mine' where id = 'acme' returning id $$,
  'a viewer cannot rename the project');
select throws_ok($$ update queue_health.metric set depth = 0 $$, '42501', null,
  'a member cannot change metrics');
select throws_ok($$ insert into queue_health.project_queue_map (project_id, queue_pattern) values ('acme', '%') $$,
  '42501', null, 'a member cannot write queue mappings');
select throws_ok($$ select queue_health.capture() $$, '42501', null,
  'an authenticated user cannot call capture()');
select throws_ok($$ select queue_health.maintain() $$, '42501', null,
  'an authenticated user cannot run maintenance');
select throws_ok($$ select queue_health.schedule() $$, '42501', null,
  'an authenticated user cannot schedule jobs');
select throws_ok($$ update queue_health.settings set raw_retention = '3 hours' $$, '42501', null,
  'a member cannot change settings');

-- Section: a viewer of globex
select tests.authenticate_as((select id from fx_users where label = 'gus'));
select is(pg_temp.visible_projects() -> 'metric', '["globex"]'::jsonb,
  'a member of another project sees only that project''s metrics');
select is(pg_temp.visible_projects() -> 'queue_status', '["globex"]'::jsonb,
  'and only that project''s queues in queue_status');

-- Section: a signed-in user who is a member of nothing
select tests.authenticate_as((select id from fx_users where label = 'nora'));
select is(pg_temp.visible_projects(), jsonb_build_object(
    'project', '[]'::jsonb, 'project_member', '[]'::jsonb, 'project_queue_map', '[]'::jsonb,
    'queue', '[]'::jsonb, 'metric', '[]'::jsonb, 'metric_1m', '[]'::jsonb, 'metric_1h', '[]'::jsonb,
    'queue_status', '[]'::jsonb, 'queue_history', '[]'::jsonb),
  'a non-member sees no rows in any table, view or history');
select is(pg_temp.visible_global(),
  '{"capture_run": false, "capture_status": false, "settings": false, "rollup_watermark": false}'::jsonb,
  'a non-member sees nothing of the monitor''s state either');
select throws_ok(
  $$ insert into queue_health.project_member (project_id, user_id, role)
     select 'acme', id, 'admin'::queue_health.member_role from fx_users where label = 'nora' $$,
  '42501', 'new row violates row-level security policy for table "project_member"',
  'a non-member cannot make themselves a member');

-- Section: an admin of acme
select tests.authenticate_as((select id from fx_users where label = 'adam'));
select lives_ok(
  $$ insert into queue_health.project_member (project_id, user_id, role)
     select 'acme', id, 'viewer'::queue_health.member_role from fx_users where label = 'nora' $$,
  'an admin can add a member to their project');
select throws_ok(
  $$ insert into queue_health.project_member (project_id, user_id, role)
     select 'globex', id, 'viewer'::queue_health.member_role from fx_users where label = 'nora' $$,
  '42501', 'new row violates row-level security policy for table "project_member"',
  'an admin cannot add members to another project');
select is(
  (select count(*)::int from queue_health.project_member where project_id = 'globex'), 0,
  'an admin still sees nothing of another project');
select results_eq(
  $$ update queue_health.project set name = 'Acme Corp' where id in ('acme', 'globex') returning id $$,
  array['acme'],
  'an admin can rename their own project and only that one');
select throws_ok($$ insert into queue_health.project_queue_map (project_id, queue_pattern) values ('acme', '%') $$,
  '42501', null, 'an admin cannot write queue mappings either (they decide who sees a queue)');
select throws_ok($$ select queue_health.capture() $$, '42501', null,
  'an admin cannot call capture()');

-- Section: the newly added member now sees acme
select tests.authenticate_as((select id from fx_users where label = 'nora'));
select is(pg_temp.visible_projects() -> 'metric', '["acme"]'::jsonb,
  'a user added by an admin sees the project''s metrics');

-- Section: anon
select tests.authenticate_as_anon();
select throws_ok($$ select count(*) from queue_health.metric $$, '42501', null,
  'anon cannot read metrics');
select throws_ok($$ select count(*) from queue_health.queue_status $$, '42501', null,
  'anon cannot read queue_status');
select throws_ok($$ select queue_health.capture() $$, '42501', null, 'anon cannot call capture()');
select throws_ok($$ select * from queue_health.queue_history('acme_jobs', now() - interval '1 hour', now()) $$,
  '42501', null, 'anon cannot call queue_history()');

-- Section: the service role
select tests.authenticate_as_service_role();
select ok(
  (select count(distinct project_id) from queue_health.metric where project_id in ('acme', 'globex')) = 2,
  'the service role sees every project''s metrics');
select is(queue_health.capture() ->> 'skipped', 'false', 'the service role can call capture()');
select lives_ok(
  $$ insert into queue_health.project_queue_map (project_id, queue_pattern) values ('globex', 'x%') $$,
  'the service role can write queue mappings');

select ok(queue_health.is_member('globex', 'admin'), 'is_member() admits the service role (by its JWT) as admin of any project');
select tests.clear_authentication();
set local role service_role;
select ok(queue_health.is_member('acme', 'admin'), 'is_member() admits a connection that set role service_role without a JWT');
reset role;

select * from finish();
rollback;
