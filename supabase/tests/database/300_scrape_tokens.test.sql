-- Prometheus scrape tokens (20261126101200_queue_health_api.sql): only project admins and the
-- service role create and revoke them, only a hash is stored, only the service role looks one up,
-- and a revoked or expired token resolves to nothing. Plus the firing_alert view's RLS.
begin;
select plan(27);

-- Section: fixture (as the session user)
create temporary table fx (label text primary key, id uuid, token_id uuid, token text) on commit drop;
grant select, insert, update on fx to anon, authenticated, service_role;
insert into fx (label, id) values
  ('adam', tests.create_user('adam@acme.test')),   -- acme admin
  ('ada', tests.create_user('ada@acme.test')),     -- acme viewer
  ('nora', tests.create_user('nora@nowhere.test'));-- member of nothing
insert into queue_health.project (id, name) values ('acme', 'Acme'), ('globex', 'Globex');
insert into queue_health.project_member (project_id, user_id, role)
select 'acme', id, 'admin'::queue_health.member_role from fx where label = 'adam'
union all select 'acme', id, 'viewer' from fx where label = 'ada';

-- Section: creating
select has_table('queue_health', 'scrape_token', 'scrape_token exists');
select ok((select relrowsecurity from pg_class where oid = 'queue_health.scrape_token'::regclass),
  'RLS is enabled on scrape_token');

select tests.authenticate_as((select id from fx where label = 'adam'));
update fx set (token_id, token) = (select t.id, t.token from queue_health.create_scrape_token('acme', 'prom') t)
 where label = 'adam';
select matches((select token from fx where label = 'adam'), '^qhst_[0-9a-f]{64}$',
  'an admin creates a token and sees its plaintext once');

select tests.authenticate_as((select id from fx where label = 'ada'));
select throws_ok($$ select queue_health.create_scrape_token('acme') $$, '42501', null,
  'a viewer cannot create a token');
select tests.authenticate_as((select id from fx where label = 'nora'));
select throws_ok($$ select queue_health.create_scrape_token('acme') $$, '42501', null,
  'a non-member cannot create a token');
select tests.authenticate_as_anon();
select throws_ok($$ select queue_health.create_scrape_token('acme') $$, '42501', null,
  'anon cannot create a token');

select tests.authenticate_as_service_role();
insert into fx (label, token_id, token)
select 'svc', t.id, t.token from queue_health.create_scrape_token('acme', 'svc') t;
select is((select created_by from queue_health.scrape_token where id = (select token_id from fx where label = 'svc')),
  null, 'the service role creates tokens too (created_by null)');
select throws_ok($$ select queue_health.create_scrape_token('nope') $$, '23503', null,
  'a token needs an existing project');

-- Section: what is stored
select tests.clear_authentication();
select is((select token_hash from queue_health.scrape_token where id = (select token_id from fx where label = 'adam')),
  encode(sha256(convert_to((select token from fx where label = 'adam'), 'UTF8')), 'hex'),
  'the stored hash is the hex SHA-256 of the token');
select is((select count(*)::int from queue_health.scrape_token t, fx
            where fx.token is not null and to_jsonb(t)::text like '%' || substr(fx.token, 6) || '%'),
  0, 'no column holds the plaintext');
select is((select created_by from queue_health.scrape_token where id = (select token_id from fx where label = 'adam')),
  (select id from fx where label = 'adam'), 'created_by is the creator');

-- Section: reading the table
select tests.authenticate_as((select id from fx where label = 'adam'));
select is((select count(*)::int from queue_health.scrape_token), 2, 'an admin sees the project''s tokens');
select throws_ok($$ select token_hash from queue_health.scrape_token $$, '42501', null,
  'not even an admin can read the hashes');
select tests.authenticate_as((select id from fx where label = 'ada'));
select is((select count(*)::int from queue_health.scrape_token), 0, 'a viewer sees no tokens');
select tests.authenticate_as((select id from fx where label = 'nora'));
select is((select count(*)::int from queue_health.scrape_token), 0, 'a non-member sees no tokens');
select throws_ok($$ insert into queue_health.scrape_token (project_id, token_hash, token_prefix)
                    values ('acme', repeat('a', 64), 'x') $$, '42501', null,
  'nobody writes the table directly');

-- Section: looking up
select tests.authenticate_as((select id from fx where label = 'adam'));
select throws_ok($$ select queue_health.scrape_token_project(repeat('a', 64)) $$, '42501', null,
  'a user cannot look tokens up');
select tests.authenticate_as_service_role();
select is(queue_health.scrape_token_project(encode(sha256(convert_to((select token from fx where label = 'adam'), 'UTF8')), 'hex')),
  'acme', 'the service role resolves a valid token to its project');
select isnt((select last_used_at from queue_health.scrape_token where id = (select token_id from fx where label = 'adam')),
  null, 'a lookup records last_used_at');
select is(queue_health.scrape_token_project(repeat('0', 64)), null, 'an unknown hash resolves to null');

-- Section: revoking and expiry
select tests.authenticate_as((select id from fx where label = 'ada'));
select is(queue_health.revoke_scrape_token((select token_id from fx where label = 'adam')), false,
  'a viewer cannot revoke');
select tests.authenticate_as((select id from fx where label = 'adam'));
select is(queue_health.revoke_scrape_token((select token_id from fx where label = 'adam')), true,
  'an admin revokes');
select is(queue_health.revoke_scrape_token((select token_id from fx where label = 'adam')), false,
  'revoking twice changes nothing');
select tests.authenticate_as_service_role();
select is(queue_health.scrape_token_project(encode(sha256(convert_to((select token from fx where label = 'adam'), 'UTF8')), 'hex')),
  null, 'a revoked token resolves to null');
update queue_health.scrape_token set expires_at = now() - interval '1 second'
 where id = (select token_id from fx where label = 'svc');
select is(queue_health.scrape_token_project(encode(sha256(convert_to((select token from fx where label = 'svc'), 'UTF8')), 'hex')),
  null, 'an expired token resolves to null');

-- Section: firing_alert
select tests.clear_authentication();
update queue_health.alert_rule set enabled = false where project_id in ('acme', 'globex');
insert into queue_health.alert (rule_id, project_id, source, source_schema, queue_name, state, value,
  started_at, fired_at, last_evaluated_at)
select r.id, r.project_id, '*', '*', '*', 'firing', 7, now(), now(), now()
  from queue_health.alert_rule r where r.name = 'monitor_stale' and r.project_id in ('acme', 'globex');
select tests.authenticate_as((select id from fx where label = 'ada'));
select results_eq($$ select project_id, queue_name, severity::text from queue_health.firing_alert $$,
  $$ values ('acme'::text, null::text, 'critical'::text) $$,
  'a member sees their project''s firing alerts; project-level alerts have no queue');
select tests.authenticate_as((select id from fx where label = 'nora'));
select is((select count(*)::int from queue_health.firing_alert), 0, 'a non-member sees no alerts');

select * from finish();
rollback;
