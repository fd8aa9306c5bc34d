-- Dispatch after notifications are written: NOTIFY without pg_net; net.http_post to queue-alert
-- when pg_net is installed and the URL and key are configured (Vault secrets first, else
-- dispatch_settings). Where pg_net is installed (the local stack installs its stand-in) the
-- requests are read from net.http_request_queue, where they wait for commit: this file rolls
-- back, so none is ever sent. Where pg_net is absent a stand-in with its signature records them.
-- Vault: vault.create_secret() where it exists, else a stand-in of it. All rolled back at the end.
begin;
select plan(8);

-- Section: fixtures
delete from queue_health.dispatch_settings; -- a dev stack configures it; this file starts without
do $$ begin perform queue_health.ensure_partitions(now() - interval '1 day', 3); end $$;
create function pg_temp.t(p_minute numeric) returns timestamptz language sql stable
  as $$ select date_trunc('minute', now()) + p_minute * interval '1 minute' $$;

insert into queue_health.project (id, name) values ('t250', 'Dispatch tests');
delete from queue_health.alert_rule where project_id = 't250';
insert into queue_health.channel (project_id, name, kind, config) values ('t250', 'hook', 'webhook', '{"url": "https://hooks.example.test/t250"}');
insert into queue_health.queue (source, source_schema, queue_name, project_id, first_seen_at, last_seen_at)
values ('pgmq', 'pgmq', 'd1', 't250', pg_temp.t(-60), pg_temp.t(10)), ('pgmq', 'pgmq', 'd2', 't250', pg_temp.t(-60), pg_temp.t(10));
insert into queue_health.alert_rule (project_id, name, condition, threshold, queue_name, group_wait) values
  ('t250', 'deep1', 'depth', 100, 'd1', '0'), ('t250', 'deep2', 'depth', 100, 'd2', '0');
insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name, ready, in_flight, delayed, depth,
  enqueued, completed, failed, retried, dead_lettered, interval_s)
select pg_temp.t(m), 't250', 'pgmq', 'pgmq', q, 500, 0, 0, 500, 0, 0, 0, 0, 0, 60
  from generate_series(0, 10) m, unnest(array['d1', 'd2']) q
 where q = 'd1' or m >= 5;

select to_regnamespace('net') is null as no_net, to_regnamespace('vault') is null as no_vault \gset
\if :no_net
-- Section: without pg_net
select is(
  queue_health.evaluate_alerts(pg_temp.t(0)) ->> 'dispatch',
  'notify', 'without pg_net, new notifications are announced with NOTIFY queue_health_dispatch');

-- Section: a stand-in for pg_net (only where it is absent)
create temporary table fx_http (url text, body jsonb, headers jsonb) on commit drop;
create schema net;
create function net.http_post(url text, body jsonb default '{}', params jsonb default '{}',
  headers jsonb default '{"Content-Type": "application/json"}', timeout_milliseconds int default 5000)
  returns bigint language sql
  as 'insert into pg_temp.fx_http values (url, body, headers); select 1::bigint';
create temporary view requests as select url, body, headers from fx_http;
create function pg_temp.clear_requests() returns void language sql as 'delete from pg_temp.fx_http';
\else
select is(
  queue_health.evaluate_alerts(pg_temp.t(0)) ->> 'dispatch',
  'notify', 'with pg_net but nothing configured, new notifications are announced with NOTIFY');
create temporary view requests as
  select q.url, convert_from(q.body, 'UTF8')::jsonb as body, q.headers
    from net.http_request_queue q where q.url like 'https://%.example.test/%';
create function pg_temp.clear_requests() returns void language sql
  as $$ delete from net.http_request_queue q where q.url like 'https://%.example.test/%' $$;
\endif
\if :no_vault
create schema vault;
create table vault.decrypted_secrets (name text, decrypted_secret text);
create function vault.create_secret(new_secret text, new_name text default null, new_description text default '')
  returns uuid language sql
  as 'insert into vault.decrypted_secrets values (new_name, new_secret); select gen_random_uuid()';
\endif

select is(
  queue_health.sweep_notifications(pg_temp.t(1)) ->> 'dispatch', 'notify',
  'with pg_net but no URL or key configured, dispatch falls back to NOTIFY');

insert into queue_health.dispatch_settings (queue_alert_url, queue_alert_key) values ('https://ref.example.test/functions/v1/queue-alert', 'table-key');
select is(queue_health.evaluate_alerts(pg_temp.t(5)) ->> 'dispatch', 'http', 'with pg_net and dispatch_settings, a new notification is POSTed');
select is(
  (select row(url, body, headers ->> 'Authorization')::text from requests),
  row('https://ref.example.test/functions/v1/queue-alert', '{"reason": "dispatch", "evaluate": false, "project_ids": ["t250"]}'::jsonb, 'Bearer table-key')::text,
  'the POST goes to queue_alert_url with the key as bearer token, naming the projects');

select vault.create_secret('https://vault.example.test/functions/v1/queue-alert', 'queue_health_alert_url');
select vault.create_secret('vault-key', 'queue_health_alert_key');
select pg_temp.clear_requests();
-- A due row for the sweep to re-dispatch.
update queue_health.notification set status = 'failed', next_attempt_at = pg_temp.t(6) where project_id = 't250';
select is(queue_health.sweep_notifications(pg_temp.t(7)) ->> 'dispatch', 'http', 'the sweep re-dispatches due rows the same way');
select is(
  (select row(url, body ->> 'evaluate', headers ->> 'Authorization')::text from requests),
  row('https://vault.example.test/functions/v1/queue-alert', 'true', 'Bearer vault-key')::text,
  'Vault secrets take precedence over dispatch_settings; the sweep asks queue-alert to evaluate');

select pg_temp.clear_requests();
update queue_health.notification set status = 'sent', sent_at = pg_temp.t(8) where project_id = 't250';
select is(queue_health.sweep_notifications(pg_temp.t(9)) ->> 'dispatch', 'none', 'nothing due: no dispatch');
select is((select count(*)::int from requests), 0, '... and no HTTP call');

select * from finish();
rollback;
