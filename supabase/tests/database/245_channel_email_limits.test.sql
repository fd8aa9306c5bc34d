-- An email channel is not an open relay: at most settings.max_email_recipients recipients (50,
-- Resend's own limit), and from/reply_to, when a channel names them, are one well-formed address
-- each (queue-alert uses them only when the operator lists them).
begin;
select plan(15);

-- Section: fixtures
create temporary table fx (label text primary key, id uuid) on commit drop;
grant select on fx to anon, authenticated, service_role;
insert into fx values ('admin', tests.create_user('t245-admin@example.test'));
insert into queue_health.project (id, name) values ('t245', 'Project 245');
insert into queue_health.project_member (project_id, user_id, role) values
  ('t245', (select id from fx where label = 'admin'), 'admin');

create function pg_temp.recipients(n int) returns jsonb language sql as $$
  select jsonb_build_object('to', jsonb_agg(format('r%s@example.test', i))) from generate_series(1, n) i
$$;
create function pg_temp.recipient_list(n int) returns jsonb language sql as $$
  select jsonb_build_object('to', string_agg(format('r%s@example.test', i), ', ')) from generate_series(1, n) i
$$;

-- Section: the recipient limit, as a project admin
select tests.authenticate_as((select id from fx where label = 'admin'));

select throws_like(
  $$ insert into queue_health.channel (project_id, name, kind, config)
     values ('t245', 'many', 'email', pg_temp.recipients(51)) $$,
  '%channel.config.to lists 51 recipients: at most 50 (queue_health.settings.max_email_recipients)%',
  'an email channel with 51 recipients is refused, naming the field and the setting'
);
select throws_like(
  $$ insert into queue_health.channel (project_id, name, kind, config)
     values ('t245', 'many-csv', 'email', pg_temp.recipient_list(51)) $$,
  '%lists 51 recipients: at most 50%',
  'a comma-separated list of 51 recipients is refused too'
);
select throws_like(
  $$ insert into queue_health.channel (project_id, name, kind, config)
     values ('t245', 'huge', 'email', pg_temp.recipients(20000)) $$,
  '%lists 20000 recipients: at most 50%',
  '20 000 recipients are refused'
);
select lives_ok(
  $$ insert into queue_health.channel (id, project_id, name, kind, config)
     values ('24500000-0000-0000-0000-000000000001', 't245', 'fifty', 'email', pg_temp.recipients(50)) $$,
  'an email channel with 50 recipients is accepted'
);
select throws_like(
  $$ update queue_health.channel set config = pg_temp.recipients(51)
      where id = '24500000-0000-0000-0000-000000000001' $$,
  '%lists 51 recipients: at most 50%',
  'changing a channel to 51 recipients is refused'
);

-- Section: from and reply_to
select throws_like(
  $$ insert into queue_health.channel (project_id, name, kind, config)
     values ('t245', 'crlf', 'email', jsonb_build_object('to', array['a@example.test'],
             'from', E'ops@example.test\r\nBcc: victim@example.test')) $$,
  '%channel.config.from must be one email address%',
  'a from with a line break (header injection) is refused'
);
select throws_like(
  $$ insert into queue_health.channel (project_id, name, kind, config)
     values ('t245', 'two-from', 'email',
             '{"to": ["a@example.test"], "from": "a@example.test, b@example.test"}') $$,
  '%channel.config.from must be one email address%',
  'a from naming two addresses is refused'
);
select throws_like(
  $$ insert into queue_health.channel (project_id, name, kind, config)
     values ('t245', 'reply', 'email', '{"to": ["a@example.test"], "reply_to": ["x@example.test"]}') $$,
  '%channel.config.reply_to must be one email address%',
  'a reply_to that is not one address is refused'
);
select lives_ok(
  $$ insert into queue_health.channel (project_id, name, kind, config)
     values ('t245', 'named', 'email',
             '{"to": ["a@example.test"], "from": "Ops <ops@example.test>", "reply_to": "oncall@example.test"}') $$,
  'a from and reply_to of one address each are stored (queue-alert decides whether to use them)'
);

-- Section: the setting, as the operator
select tests.clear_authentication();
update queue_health.settings set max_email_recipients = 5;
select tests.authenticate_as((select id from fx where label = 'admin'));
select throws_like(
  $$ insert into queue_health.channel (project_id, name, kind, config)
     values ('t245', 'six', 'email', pg_temp.recipients(6)) $$,
  '%lists 6 recipients: at most 5%',
  'a lower max_email_recipients is enforced for project admins'
);
select lives_ok(
  $$ insert into queue_health.channel (project_id, name, kind, config)
     values ('t245', 'five', 'email', pg_temp.recipients(5)) $$,
  'and as many as it allows are accepted'
);
select tests.clear_authentication();
select throws_ok(
  $$ update queue_health.settings set max_email_recipients = 51 $$,
  '23514', null,
  'max_email_recipients cannot exceed 50 (Resend''s limit per email)'
);
select throws_ok(
  $$ update queue_health.settings set max_email_recipients = 0 $$,
  '23514', null,
  'max_email_recipients is at least 1'
);

-- Section: privileges of the helper
select ok(
  not has_function_privilege('anon', 'queue_health._max_email_recipients()', 'execute'),
  'anon cannot call _max_email_recipients()'
);
select ok(
  (select prosecdef and proconfig @> array['search_path=""']
     from pg_proc where oid = 'queue_health._max_email_recipients()'::regprocedure),
  '_max_email_recipients() is security definer with an empty search_path'
);

select * from finish();
rollback;
