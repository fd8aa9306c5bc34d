-- The hostile-tenant suite (issue 19): every table, view, function and procedure in schema
-- queue_health, read from the catalog, tried as four callers who must reach nothing of project P:
--   anon        the anon key (role anon, no user)
--   stranger    a signed-in user who belongs to no project
--   q_viewer    a viewer of another project Q
--   q_admin     an admin of another project Q
-- For each relation: reading P's rows finds none (RLS) or is refused; inserting a row of P,
-- updating or deleting P's rows, and moving one's own rows into P are refused or touch nothing;
-- TRUNCATE (which bypasses RLS), TRIGGER and REFERENCES are never granted. For each function:
-- the caller may not execute it, or it is on the allow-list below (with why it is safe) and,
-- called with P's ids, gives nothing of P away. A relation or an executable function that is on
-- no list fails the suite with the message to classify it here, so a new object is covered the
-- day it is added. Finally no security definer function may take text it could run as SQL.
--
-- Every attempt runs in a subtransaction that is rolled back (pg_temp.attempt), so nothing a
-- caller manages to write survives into the next check.
begin;

-- Section: fixtures (as the table owner): P, the victim, and Q, the attacker's own project

create temporary table hostile_caller (name text primary key, role text not null, user_id uuid);
insert into hostile_caller values
  ('anon', 'anon', null),
  ('stranger', 'authenticated', tests.create_user('hostile-stranger@example.test')),
  ('q_viewer', 'authenticated', tests.create_user('hostile-q-viewer@example.test')),
  ('q_admin', 'authenticated', tests.create_user('hostile-q-admin@example.test'));
create temporary table hostile_fx (label text primary key, value text not null);
insert into hostile_fx values
  ('p', 'hostile_p'), ('q', 'hostile_q'), ('p_queue', 'hostile_p_jobs'),
  ('p_admin', tests.create_user('hostile-p-admin@example.test')::text),
  ('p_rule', '90000000-0000-0000-0000-0000000000a1'), ('q_rule', '90000000-0000-0000-0000-0000000000b1'),
  ('p_channel', '90000000-0000-0000-0000-00000000000a'), ('q_channel', '90000000-0000-0000-0000-00000000000b'),
  ('p_token', '90000000-0000-0000-0000-0000000000f1');

insert into queue_health.project (id, name) values ('hostile_p', 'Victim P'), ('hostile_q', 'Attacker Q');
insert into queue_health.project_member (project_id, user_id, role) values
  ('hostile_p', (select value::uuid from hostile_fx where label = 'p_admin'), 'admin'),
  ('hostile_q', (select user_id from hostile_caller where name = 'q_viewer'), 'viewer'),
  ('hostile_q', (select user_id from hostile_caller where name = 'q_admin'), 'admin');
insert into queue_health.project_queue_map (project_id, source, queue_pattern) values
  ('hostile_p', 'pgmq', 'hostile_p_%'), ('hostile_q', 'pgmq', 'hostile_q_%');
insert into queue_health.queue (source, source_schema, queue_name, project_id, depth) values
  ('pgmq', 'pgmq', 'hostile_p_jobs', 'hostile_p', 5), ('pgmq', 'pgmq', 'hostile_q_jobs', 'hostile_q', 5);
insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name, depth, ready,
  slo_total_s, slo_bad_s) values
  (now(), 'hostile_p', 'pgmq', 'pgmq', 'hostile_p_jobs', 5, 5, 10, 10),
  (now(), 'hostile_q', 'pgmq', 'pgmq', 'hostile_q_jobs', 5, 5, 10, 10);
insert into queue_health.queue_objective (project_id, source, queue_name, target_wait_s) values
  ('hostile_p', 'pgmq', 'hostile_p_jobs', 60), ('hostile_q', 'pgmq', 'hostile_q_jobs', 60);
insert into queue_health.metric_1m (bucket, project_id, source, source_schema, queue_name, depth_last, samples)
select date_trunc('minute', now()) - interval '1 minute', p, 'pgmq', 'pgmq', p || '_jobs', 5, 1
  from unnest(array['hostile_p', 'hostile_q']) p;
insert into queue_health.metric_1h (bucket, project_id, source, source_schema, queue_name, depth_last, samples)
select date_trunc('hour', now()) - interval '1 hour', p, 'pgmq', 'pgmq', p || '_jobs', 5, 1
  from unnest(array['hostile_p', 'hostile_q']) p;
insert into queue_health.queue_baseline (source, source_schema, queue_name, hour_of_week, depth_median, depth_mad,
  samples, history_days, computed_at)
select 'pgmq', 'pgmq', p || '_jobs', queue_health.hour_of_week(now()), 5, 1, 4, 28, now()
  from unnest(array['hostile_p', 'hostile_q']) p;
insert into queue_health.channel (id, project_id, name, kind, config) values
  ('90000000-0000-0000-0000-00000000000a', 'hostile_p', 'p-hook', 'webhook', '{"url": "https://hooks.example.test/p"}'),
  ('90000000-0000-0000-0000-00000000000b', 'hostile_q', 'q-hook', 'webhook', '{"url": "https://hooks.example.test/q"}');
insert into queue_health.channel_secret (channel_id, secret) values
  ('90000000-0000-0000-0000-00000000000a', '{"signing_secret": "p-secret-of-sixteen-chars"}'),
  ('90000000-0000-0000-0000-00000000000b', '{"signing_secret": "q-secret-of-sixteen-chars"}');
insert into queue_health.alert_rule (id, project_id, name, condition, threshold, channel_ids) values
  ('90000000-0000-0000-0000-0000000000a1', 'hostile_p', 'p-deep', 'depth', 1, array['90000000-0000-0000-0000-00000000000a']::uuid[]),
  ('90000000-0000-0000-0000-0000000000b1', 'hostile_q', 'q-deep', 'depth', 1, array['90000000-0000-0000-0000-00000000000b']::uuid[]);
insert into queue_health.project_alert_settings (project_id) values ('hostile_p'), ('hostile_q');
insert into queue_health.silence (project_id, rule_id, ends_at, comment) values
  ('hostile_p', '90000000-0000-0000-0000-0000000000a1', now() + interval '1 hour', 'p maintenance'),
  ('hostile_q', '90000000-0000-0000-0000-0000000000b1', now() + interval '1 hour', 'q maintenance');
insert into queue_health.alert (rule_id, project_id, source, source_schema, queue_name, state, value, started_at, fired_at, last_evaluated_at)
select ('90000000-0000-0000-0000-0000000000' || x.r)::uuid, x.p, 'pgmq', 'pgmq', x.p || '_jobs', 'firing', 5, now(), now(), now()
  from (values ('a1', 'hostile_p'), ('b1', 'hostile_q')) x (r, p);
insert into queue_health.alert_event (alert_id, rule_id, project_id, source, source_schema, queue_name, from_state, to_state, value, threshold, at)
select a.id, a.rule_id, a.project_id, a.source, a.source_schema, a.queue_name, 'pending', 'firing', 5, 1, now()
  from queue_health.alert a where a.project_id in ('hostile_p', 'hostile_q');
insert into queue_health.notification_group (channel_id, project_id, group_key, flush_at, created_at) values
  ('90000000-0000-0000-0000-00000000000a', 'hostile_p', 'p-group', now(), now()),
  ('90000000-0000-0000-0000-00000000000b', 'hostile_q', 'q-group', now(), now());
insert into queue_health.notification (project_id, channel_id, group_key, payload) values
  ('hostile_p', '90000000-0000-0000-0000-00000000000a', 'p-group', '{"v": 1, "queue": "hostile_p_jobs"}'),
  ('hostile_q', '90000000-0000-0000-0000-00000000000b', 'q-group', '{"v": 1, "queue": "hostile_q_jobs"}');
insert into queue_health.scrape_token (id, project_id, name, token_hash, token_prefix) values
  ('90000000-0000-0000-0000-0000000000f1', 'hostile_p', 'p-prom', encode(sha256('qhst_hostile_p'::bytea), 'hex'), 'qhst_hostile'),
  ('90000000-0000-0000-0000-0000000000f2', 'hostile_q', 'q-prom', encode(sha256('qhst_hostile_q'::bytea), 'hex'), 'qhst_hostile');
-- The newest capture run failed on one of P's queues: its error text names the queue.
insert into queue_health.alert_evaluation (project_id, failing, failures, last_error, last_error_at) values
  ('hostile_p', true, 1, 'evaluation failed for hostile_p_jobs', now()),
  ('hostile_q', true, 1, 'evaluation failed for hostile_q_jobs', now());
insert into queue_health.capture_run (started_at, finished_at, duration_ms, queues, rows, status, error, errors)
values (now() + interval '1 second', now() + interval '1 second', 1, 2, 1, 'partial',
  '1 error(s); first: relation "pgmq.q_hostile_p_jobs" does not exist',
  '[{"source": "pgmq", "source_schema": "pgmq", "queue_name": "hostile_p_jobs", "error": "relation \"pgmq.q_hostile_p_jobs\" does not exist"}]');

-- Section: classification of every relation

-- kind 'project': rows belong to a project; p_rows finds P's rows (format: %1$L = P's id, %2$L =
--   P's queue name). Members of P only may see or change them.
-- kind 'global': holds no tenant's data (settings, progress markers); tenants may read, never write.
-- kind 'private': operator-only (secrets, dispatch keys, pacing): no hostile role holds any
--   privilege on it at all.
create temporary table hostile_relation (relname text primary key, kind text not null
  check (kind in ('project', 'global', 'private')), p_rows text, why text not null);
insert into hostile_relation values
  ('alert', 'project', 'project_id = %1$L', 'alert state per rule and queue'),
  ('alert_event', 'project', 'project_id = %1$L', 'alert state history'),
  ('alert_evaluation', 'project', 'project_id = %1$L', 'a project''s failing alert evaluation (its error text)'),
  ('alert_rule', 'project', 'project_id = %1$L', 'rules, writable by P''s admins'),
  -- Runs are shared by all projects; P's part is any error text naming P's queues (finding 8).
  ('capture_run', 'project', 'strpos(coalesce(error, '''') || errors::text, %2$L) > 0', 'capture runs: errors name queues'),
  ('capture_status', 'project', 'strpos(coalesce(last_run_error, ''''), %2$L) > 0', 'the last run and its error'),
  ('channel', 'project', 'project_id = %1$L', 'alert channels (destinations)'),
  ('channel_health', 'project', 'project_id = %1$L', 'per-channel delivery errors'),
  ('channel_secret', 'private', null, 'signing secrets and Slack URLs: service role only'),
  ('dispatch_settings', 'private', null, 'the queue-alert URL and key: service role only'),
  ('firing_alert', 'project', 'project_id = %1$L', 'alerts as queue-health reports them'),
  ('metric', 'project', 'project_id = %1$L', 'snapshots'),
  ('metric_1h', 'project', 'project_id = %1$L', 'hour rollups'),
  ('metric_1m', 'project', 'project_id = %1$L', 'minute rollups'),
  ('notification', 'project', 'project_id = %1$L', 'the outbox (payloads name queues)'),
  ('notification_group', 'project', 'project_id = %1$L', 'grouping state'),
  ('project', 'project', 'id = %1$L', 'the project itself'),
  ('project_alert_settings', 'project', 'project_id = %1$L', 'grouping intervals, dashboard URL'),
  ('project_member', 'project', 'project_id = %1$L', 'who belongs to P'),
  ('project_queue_map', 'project', 'project_id = %1$L', 'which queues are P''s'),
  ('queue', 'project', 'project_id = %1$L', 'P''s queues and their latest values'),
  ('queue_objective', 'project', 'project_id = %1$L', 'latency objectives, writable by P''s admins'),
  ('queue_baseline', 'project', 'queue_name = %2$L', 'P''s queues'' seasonal baselines (no project_id: RLS joins the registry)'),
  ('queue_status', 'project', 'project_id = %1$L', 'the health view'),
  ('rollup_watermark', 'global', null, 'how far rollups got: one timestamp per resolution'),
  ('scrape_token', 'project', 'project_id = %1$L', 'P''s scrape tokens (hashes never granted)'),
  ('send_pace', 'private', null, 'delivery pacing keyed by Slack URL hashes: service role only'),
  ('settings', 'global', null, 'operator settings, the same for every project'),
  ('silence', 'project', 'project_id = %1$L', 'silences, writable by P''s admins'),
  ('uninstall_extension', 'private', null, 'which extensions the install created: the owner''s only');

-- Section: allow-list of functions a hostile role may execute, each with a probe that calls it
-- with P's ids (format: %1$L = P, %2$L = P's queue name, %3$L = P's rule id, %4$L = P's scrape
-- token id) and must answer true (expect 'true') or be refused with 42501 (expect 'refused').
create temporary table hostile_function (proname text, role text, probe text not null,
  expect text not null check (expect in ('true', 'refused')), why text not null,
  primary key (proname, role));
insert into hostile_function values
  -- The membership helpers answer for the caller only; they are what RLS policies call.
  ('is_member', 'authenticated', 'select not queue_health.is_member(%1$L) and not queue_health.is_member(%1$L, ''admin'')', 'true',
   'answers "am I a member of P?" for the caller only'),
  ('is_member_of_any', 'authenticated',
   'select queue_health.is_member_of_any() = exists (select 1 from queue_health.project_member m where m.user_id = auth.uid())', 'true',
   'answers "am I a member of anything?" for the caller only'),
  ('member_project_ids', 'authenticated',
   'select not (%1$L = any (queue_health.member_project_ids()) or %1$L = any (queue_health.member_project_ids(''admin'')))', 'true',
   'lists the caller''s own projects'),
  -- Security invoker: RLS on metric/metric_1m/metric_1h decides what comes back.
  ('queue_history', 'authenticated',
   'select count(*) = 0 from queue_health.queue_history(%2$L, now() - interval ''1 day'', now() + interval ''1 minute'')', 'true',
   'security invoker over RLS-protected tables'),
  -- Signals (issue 22): pure functions of their arguments, and the objective's figures, security
  -- invoker over RLS (P's queue has an objective and bad seconds; a stranger's call sees none).
  ('flow_status_of', 'authenticated', 'select queue_health.flow_status_of(0, 0, 0, 0, 0, 0, 1, 0, 0) = ''idle''', 'true',
   'computes from its arguments; reads nothing'),
  ('drain_eta_of', 'authenticated', 'select queue_health.drain_eta_of(10, 0, 1) = 10', 'true',
   'computes from its arguments; reads nothing'),
  ('expected_wait_of', 'authenticated', 'select queue_health.expected_wait_of(10, 2) = 5', 'true',
   'computes from its arguments; reads nothing'),
  ('slo_burn_rate', 'authenticated',
   'select queue_health.slo_burn_rate(''pgmq'', ''pgmq'', %2$L, interval ''1 day'') is null', 'true',
   'security invoker over RLS-protected tables'),
  ('slo_budget_remaining', 'authenticated',
   'select queue_health.slo_budget_remaining(''pgmq'', ''pgmq'', %2$L) is null', 'true',
   'security invoker over RLS-protected tables'),
  ('_slo_objective', 'authenticated',
   'select (queue_health._slo_objective(''pgmq'', ''pgmq'', %2$L)).id is null', 'true',
   'security invoker over RLS-protected tables'),
  ('_slo_seconds', 'authenticated',
   'select (s).total_s = 0 and (s).bad_s = 0 from (select queue_health._slo_seconds(''pgmq'', ''pgmq'', %2$L, now() - interval ''1 day'', now() + interval ''1 minute'') s) x', 'true',
   'security invoker over RLS-protected tables'),
  -- Formats the two rows it is given and reads no table: given P's rule id alone it can only
  -- echo what the caller passed in, never P's rule name or queue.
  ('alert_summary', 'authenticated',
   'select strpos(coalesce(queue_health.alert_summary(jsonb_populate_record(null::queue_health.alert_rule, jsonb_build_object(''id'', %3$L, ''project_id'', %1$L)), jsonb_populate_record(null::queue_health.alert, jsonb_build_object(''rule_id'', %3$L, ''project_id'', %1$L))), ''''), ''p-deep'') = 0', 'true',
   'renders the rows the caller passes; reads nothing'),
  ('create_scrape_token', 'authenticated', 'select count(*) from queue_health.create_scrape_token(%1$L)', 'refused',
   'admins of the project only (checked inside)'),
  ('revoke_scrape_token', 'authenticated', 'select not queue_health.revoke_scrape_token(%4$L::uuid)', 'true',
   'admins of the token''s project only; "no such token" and "not yours" look the same'),
  -- Called by the validation triggers, which run as the tenant writing a rule or channel: they
  -- read only the operator's settings (the same for every project) or compare their arguments.
  ('_settings', 'authenticated', 'select (queue_health._settings()).id', 'true',
   'the operator''s settings row, the same for every project'),
  ('_is_tenant', 'authenticated', 'select queue_health._is_tenant() is not null', 'true',
   'answers "is the caller a tenant?" for the caller only'),
  ('_check_interval', 'authenticated',
   'select count(*) = 1 from (select queue_health._check_interval(''probe'', interval ''1 minute'', interval ''0'', interval ''1 hour'', null, null)) x',
   'true', 'compares its arguments; reads nothing'),
  ('_max_email_recipients', 'authenticated', 'select queue_health._max_email_recipients() between 1 and 50', 'true',
   'a global setting'),
  ('_e164_list', 'authenticated', 'select queue_health._e164_list(''["+14155550123"]'') = array[''+14155550123'']', 'true',
   'parses its argument; reads nothing'),
  ('_is_e164', 'authenticated', 'select queue_health._is_e164(''+14155550123'')', 'true',
   'compares its argument; reads nothing'),
  ('_validate_sms_config', 'authenticated',
   'select count(*) = 1 from (select queue_health._validate_sms_config(''{"to": ["+14155550123"], "from": "+14155550100"}'')) x',
   'true', 'checks its argument; reads nothing'),
  ('_validate_oncall_config', 'authenticated',
   'select count(*) = 1 from (select queue_health._validate_oncall_config(''pagerduty'', ''{}'')) x',
   'true', 'checks its arguments; reads nothing'),
  -- Capture errors, scoped to the caller's projects (issue 19 finding 8).
  ('capture_run_errors', 'authenticated',
   'select not exists (select 1 from queue_health.capture_run r, jsonb_array_elements(queue_health.capture_run_errors(r.id)) e where strpos(e.value::text, %2$L) > 0)',
   'true', 'the errors of the caller''s own projects only'),
  ('capture_run_error', 'authenticated',
   'select not exists (select 1 from queue_health.capture_run r where strpos(coalesce(queue_health.capture_run_error(r.id), ''''), %2$L) > 0)',
   'true', 'a summary of capture_run_errors(), the caller''s projects only'),
  -- Seasonal baselines: immutable arithmetic on the arguments; they read no table.
  ('hour_of_week', 'authenticated', 'select queue_health.hour_of_week(''2031-03-10 00:00:00+00'') = 0', 'true',
   'computes from its argument; reads nothing'),
  ('is_anomalous', 'authenticated', 'select queue_health.is_anomalous(10, 3, 1.5, 3)', 'true',
   'compares its arguments; reads nothing');
  -- Deliberately absent: evaluate_monitor_stale() (issue 19 finding 2: it takes the evaluation
  -- lock and flushes every project's notifications, so it is the service role's only).

-- Security definer functions that take text (or names): each reviewed to bind the text as a
-- value and never run it as SQL or as an identifier it has not checked against the catalog.
create temporary table definer_text (proname text primary key, why text not null);
insert into definer_text values
  ('is_member', 'compares the project id with project_member'),
  ('is_member_of_any', 'takes no text (role enum)'),
  ('member_project_ids', 'takes no text (role enum)'),
  ('create_scrape_token', 'stores the id and name as values'),
  ('install_default_rules', 'inserts rows for the project id'),
  ('scrape_token_project', 'compares a hash'),
  ('_pgboss_schemas', 'compares names with pg_namespace and quotes with %I'),
  ('_sample_pgboss_queue', 'schema checked by _pgboss_schemas; names bound as values'),
  ('_sample_pgmq', 'takes no text'),
  ('_source_settings', 'takes no text');
  -- Deliberately absent: _planner_rows(text) (issue 19 finding 1: it EXECUTEs its argument).

create or replace function pg_temp.fx(p_label text) returns text language sql stable
as $$ select value from pg_temp.hostile_fx where label = p_label $$;

-- Runs p_sql (a query of one value, or a DML statement: its row count) as the caller in a subtransaction that is always rolled back; answers
-- 'ok:<value>' or 'error:<sqlstate>:<message>'. Not security definer: it changes the role.
create or replace function pg_temp.attempt(p_caller text, p_sql text) returns text
language plpgsql
as $$
declare
  v_role text;
  v_user uuid;
  v_value text;
  v_count bigint;
begin
  select c.role, c.user_id into v_role, v_user from pg_temp.hostile_caller c where c.name = p_caller;
  begin
    if v_user is null then
      perform tests.authenticate_as_anon();
    else
      perform tests.authenticate_as(v_user);
    end if;
    if p_sql ~* '^\s*(insert|update|delete)\s' then
      -- Without RETURNING, as PostgREST's return=minimal: RETURNING would also apply the
      -- SELECT policies to the new rows and could hide a hole in the write policies.
      execute p_sql;
      get diagnostics v_count = row_count;
      v_value := v_count::text;
    else
      execute p_sql into v_value;
    end if;
    raise exception using errcode = 'QH900', message = coalesce(v_value, '<null>');
  exception
    when sqlstate 'QH900' then
      return 'ok:' || sqlerrm;
    when others then
      return 'error:' || sqlstate || ':' || sqlerrm;
  end;
end;
$$;

-- What the caller can do to P through one relation: null when nothing, else the findings.
create or replace function pg_temp.relation_findings(p_caller text, p_rel regclass) returns text
language plpgsql
as $$
declare
  v_role text := (select role from pg_temp.hostile_caller where name = p_caller);
  v_own text := case when p_caller in ('q_viewer', 'q_admin') then pg_temp.fx('q') end;
  v_cls record;
  v_pred text;
  v_found text[] := '{}';
  v_n bigint;
  v_r text;
  v_row jsonb;
  v_cols text;
  v_exprs text;
  v_first text;
  v_has_project boolean;
begin
  select * into v_cls from pg_temp.hostile_relation h
   where h.relname = (select c.relname from pg_catalog.pg_class c where c.oid = p_rel);
  if has_table_privilege(v_role, p_rel, 'truncate') then
    v_found := array_append(v_found, 'TRUNCATE is granted (it bypasses RLS)');
  end if;
  if has_table_privilege(v_role, p_rel, 'trigger') or has_table_privilege(v_role, p_rel, 'references') then
    v_found := array_append(v_found, 'TRIGGER or REFERENCES is granted');
  end if;
  if v_cls is null then
    return array_to_string(array_append(v_found, 'unclassified (see the classification assertion)'), '; ');
  end if;
  if v_cls.kind = 'private' then
    if has_any_column_privilege(v_role, p_rel, 'select, insert, update')
       or has_table_privilege(v_role, p_rel, 'delete') then
      v_found := array_append(v_found, 'an operator-only relation is granted to this role');
    end if;
  elsif v_cls.kind = 'global' then
    if has_any_column_privilege(v_role, p_rel, 'insert, update') or has_table_privilege(v_role, p_rel, 'delete') then
      v_found := array_append(v_found, 'tenants may write a relation shared by all projects');
    end if;
  else
    v_pred := format(v_cls.p_rows, pg_temp.fx('p'), pg_temp.fx('p_queue'));
    execute format('select count(*) from %s where %s', p_rel, v_pred) into v_n;
    if v_n = 0 then
      v_found := array_append(v_found, format('fixture: no rows of P in %s (add some above, or the checks prove nothing)', p_rel));
    end if;
    v_has_project := exists (select 1 from pg_catalog.pg_attribute a
      where a.attrelid = p_rel and a.attname = 'project_id' and not a.attisdropped);
    if has_any_column_privilege(v_role, p_rel, 'select') then
      v_r := pg_temp.attempt(p_caller, format('select count(*) from %s where %s', p_rel, v_pred));
      if v_r <> 'ok:0' and v_r not like 'error:42501:%' then
        v_found := array_append(v_found, format('SELECT finds P''s rows (%s)', v_r));
      end if;
    end if;
    if has_any_column_privilege(v_role, p_rel, 'update') then
      select quote_ident(a.attname) into v_first from pg_catalog.pg_attribute a
       where a.attrelid = p_rel and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
       order by a.attname <> 'project_id', a.attnum limit 1;
      v_r := pg_temp.attempt(p_caller, format(
        'update %s set %s = %2$s where %s', p_rel, v_first, v_pred));
      if v_r <> 'ok:0' and v_r not like 'error:42501:%' then
        v_found := array_append(v_found, format('UPDATE of P''s rows is not refused (%s)', v_r));
      end if;
      if v_has_project and v_own is not null then
        -- References to the caller's own rules and channels are cleared, so that only the
        -- policy (not a validation trigger) can refuse the move.
        select string_agg(format(', %I = null', a.attname), '') into v_cols
          from pg_catalog.pg_attribute a
         where a.attrelid = p_rel and a.attnum > 0 and not a.attisdropped and not a.attnotnull
           and a.atttypid in ('uuid'::regtype, 'uuid[]'::regtype);
        -- No WHERE clause: one that reads a column would make Postgres apply the SELECT
        -- policies to the new row as well, hiding an UPDATE policy that lets rows leave.
        v_r := pg_temp.attempt(p_caller, format('update %s set project_id = %L%s',
          p_rel, pg_temp.fx('p'), coalesce(v_cols, '')));
        if v_r <> 'ok:0' and v_r not like 'error:42501:%' then
          v_found := array_append(v_found, format('moving the caller''s own rows into P is not refused (%s)', v_r));
        end if;
      end if;
    end if;
    if has_any_column_privilege(v_role, p_rel, 'insert') then
      -- A copy of one of P's not-null columns (not its generated ids and timestamps, nor the
      -- optional references a validation trigger would check first), unique text made unique: only
      -- the policy can refuse it, so anything but 42501 means the check proves nothing.
      execute format('select to_jsonb(t) from %s t where %s limit 1', p_rel, v_pred) into v_row;
      select string_agg(quote_ident(a.attname), ', ' order by a.attnum),
             string_agg(case when a.atttypid = 'text'::regtype and a.attname <> 'project_id'
                              and exists (select 1 from pg_catalog.pg_index i
                                           where i.indrelid = p_rel and i.indisunique and a.attnum = any (i.indkey))
                             then format('r.%I || ''-hostile''', a.attname) else format('r.%I', a.attname) end,
                        ', ' order by a.attnum)
        into v_cols, v_exprs
        from pg_catalog.pg_attribute a
       where a.attrelid = p_rel and a.attnum > 0 and not a.attisdropped and a.attnotnull
         and a.attidentity = '' and a.attgenerated = ''
         and not (a.atthasdef and a.atttypid in ('uuid'::regtype, 'timestamptz'::regtype));
      v_r := pg_temp.attempt(p_caller, format(
        'insert into %1$s (%2$s) select %3$s from jsonb_populate_record(null::%1$s, %4$L) r',
        p_rel, v_cols, v_exprs, v_row));
      if v_r not like 'error:42501:%' then
        v_found := array_append(v_found, format('INSERT of a row of P is not refused by policy (%s)', v_r));
      end if;
    end if;
    if has_table_privilege(v_role, p_rel, 'delete') then
      v_r := pg_temp.attempt(p_caller, format(
        'delete from %s where %s', p_rel, v_pred));
      if v_r <> 'ok:0' and v_r not like 'error:42501:%' then
        v_found := array_append(v_found, format('DELETE of P''s rows is not refused (%s)', v_r));
      end if;
    end if;
  end if;
  return nullif(array_to_string(v_found, '; '), '');
end;
$$;

-- What the caller can do to P through one function: null when nothing, else the finding.
create or replace function pg_temp.function_finding(p_caller text, p_fn regprocedure) returns text
language plpgsql
as $$
declare
  v_role text := (select role from pg_temp.hostile_caller where name = p_caller);
  v_allowed record;
  v_r text;
begin
  if not has_function_privilege(v_role, p_fn, 'execute') then
    return null;
  end if;
  select * into v_allowed from pg_temp.hostile_function h
   where h.proname = (select p.proname from pg_catalog.pg_proc p where p.oid = p_fn) and h.role = v_role;
  if v_allowed is null then
    return format('%s may execute %s and it is on no list: revoke execute from %s, or add it to '
      'hostile_function in supabase/tests/database/900_hostile_tenant.test.sql with why it is '
      'safe and a probe that calls it with P''s ids', v_role, p_fn, v_role);
  end if;
  v_r := pg_temp.attempt(p_caller, format(v_allowed.probe, pg_temp.fx('p'), pg_temp.fx('p_queue'),
    pg_temp.fx('p_rule'), pg_temp.fx('p_token')));
  if v_allowed.expect = 'true' and v_r <> 'ok:true' then
    return format('called with P''s ids it gave something of P away (%s)', v_r);
  elsif v_allowed.expect = 'refused' and v_r not like 'error:42501:%' then
    return format('called with P''s ids it was not refused (%s)', v_r);
  end if;
  return null;
end;
$$;

create temporary view hostile_relations as
select c.oid::regclass as rel, c.relname::text as relname
  from pg_catalog.pg_class c
 where c.relnamespace = 'queue_health'::regnamespace
   and c.relkind in ('r', 'p', 'v', 'm', 'f')
   and not c.relispartition;

create temporary view hostile_functions as
select p.oid::regprocedure as fn, p.proname::text as proname, p.prosecdef,
       p.proargtypes::regtype[] as argtypes
  from pg_catalog.pg_proc p
 where p.pronamespace = 'queue_health'::regnamespace;

create temporary view definer_text_functions as
select f.* from pg_temp.hostile_functions f
 where f.prosecdef
   and f.argtypes && array['text', 'name', 'character varying', 'text[]', 'name[]']::regtype[];

select plan((
  (select count(*) from pg_temp.hostile_relations) * 5
  + (select count(*) from pg_temp.hostile_functions) * 4
  + (select count(*) from pg_temp.definer_text_functions)
  + 2)::int);

-- Section: the fixture is complete and the callers are who they claim to be

select is((select count(*)::int from pg_temp.hostile_relation h
            where not exists (select 1 from pg_temp.hostile_relations r where r.relname = h.relname)), 0,
  'every classified relation still exists (remove dropped ones from hostile_relation)');
select is(
  (select array_agg(h.proname order by h.proname) from pg_temp.hostile_function h
    where not exists (select 1 from pg_temp.hostile_functions f where f.proname = h.proname)),
  null, 'every allow-listed function still exists (remove dropped ones from hostile_function)');

-- Section: relations

select ok(h.relname is not null,
  format('queue_health.%s is classified%s', r.relname, case when h.relname is null then format(
    ': add it to hostile_relation in supabase/tests/database/900_hostile_tenant.test.sql as '
    '''project'' (with the predicate that finds P''s rows), ''global'' or ''private''') end))
  from pg_temp.hostile_relations r
  left join pg_temp.hostile_relation h on h.relname = r.relname
 order by r.relname;

select ok(x.finding is null,
  format('%s reaches nothing of P through queue_health.%s%s', x.caller, x.relname,
    coalesce(': ' || x.finding, '')))
  from (select c.name as caller, r.relname, pg_temp.relation_findings(c.name, r.rel) as finding
          from pg_temp.hostile_caller c cross join pg_temp.hostile_relations r
         order by c.name, r.relname) x;

-- Section: functions and procedures

select ok(x.finding is null,
  format('%s reaches nothing of P through %s%s', x.caller, x.fn, coalesce(': ' || x.finding, '')))
  from (select c.name as caller, f.fn, pg_temp.function_finding(c.name, f.fn) as finding
          from pg_temp.hostile_caller c cross join pg_temp.hostile_functions f
         order by c.name, f.fn::text) x;

-- Section: no path from the service role to postgres through SQL text

select ok(d.proname is not null,
  format('security definer %s takes text and is reviewed%s', f.fn, case when d.proname is null then
    ': a definer function must not run text it is given; take regclass/oid and build the '
    'statement inside, or make it security invoker, or review it and add it to definer_text in '
    'supabase/tests/database/900_hostile_tenant.test.sql' end))
  from pg_temp.definer_text_functions f
  left join pg_temp.definer_text d on d.proname = f.proname
 order by f.fn::text;

select * from finish();
rollback;
