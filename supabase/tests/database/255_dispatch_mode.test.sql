-- How alerts leave the database, as schedule() / dispatch_mode() report
-- it: http (pg_net with the queue-alert URL and key), not_configured (pg_net without them) or
-- notify (no pg_net: NOTIFY only, which nothing hears on hosted Supabase), and the fix for each.
begin;
select plan(16);

-- Section: the decision (no pg_net or Vault needed)
select is(queue_health._dispatch_mode(false, 'https://x.test/q', 'k'), 'notify',
  'without pg_net the mode is notify, whatever is configured');
select is(queue_health._dispatch_mode(true, 'https://x.test/q', 'k'), 'http',
  'pg_net with a URL and a key: http');
select is(queue_health._dispatch_mode(true, null, 'k'), 'not_configured', 'pg_net without a URL: not_configured');
select is(queue_health._dispatch_mode(true, 'https://x.test/q', null), 'not_configured', 'pg_net without a key: not_configured');

select is(queue_health._dispatch_fix('http', true, true), null, 'http needs no fix');
select ok(queue_health._dispatch_fix('notify', false, false) ~ 'create extension if not exists pg_net'
      and queue_health._dispatch_fix('notify', false, false) ~ 'vault\.create_secret\(''https://<project-ref>\.supabase\.co/functions/v1/queue-alert'', ''queue_health_alert_url''\)'
      and queue_health._dispatch_fix('notify', false, false) ~ 'vault\.create_secret\(''<your sb_secret_\.\.\. key, or QUEUE_ALERT_SECRET>'', ''queue_health_alert_key''\)',
  'notify: enable pg_net, then both Vault secrets, as copy-paste SQL');
select ok(queue_health._dispatch_fix('not_configured', true, false) ~ 'queue_health_alert_key'
      and queue_health._dispatch_fix('not_configured', true, false) !~ 'queue_health_alert_url'
      and queue_health._dispatch_fix('not_configured', true, false) !~ 'create extension',
  'not_configured with a URL: only the key''s secret is asked for');

-- Section: this database
delete from queue_health.dispatch_settings;
-- postgres may delete Vault secrets (hosted grants it select and delete on vault.secrets).
delete from vault.secrets where name in ('queue_health_alert_url', 'queue_health_alert_key');
select is(queue_health.dispatch_mode() ->> 'mode',
  case when queue_health._has_pg_net() then 'not_configured' else 'notify' end,
  'nothing configured: not_configured with pg_net, notify without');
insert into queue_health.dispatch_settings (queue_alert_url, queue_alert_key)
values ('https://ref.example.test/functions/v1/queue-alert', 'k');
select is(queue_health.dispatch_mode() - 'fix' - 'pg_net' - 'mode' - 'alerts_leave_database',
  '{"url_configured": true, "key_configured": true, "url_source": "dispatch_settings", "key_source": "dispatch_settings"}'::jsonb,
  'dispatch_mode() says what is configured and where, never the URL or key');
select is(queue_health.dispatch_mode() ->> 'mode',
  case when queue_health._has_pg_net() then 'http' else 'notify' end,
  'URL and key configured: http with pg_net, still notify without');
select to_regnamespace('cron') is not null as has_cron \gset
\if :has_cron
select is((queue_health.schedule() -> 'dispatch' ->> 'mode'), queue_health.dispatch_mode() ->> 'mode',
  'schedule() reports the dispatch mode in full');
select is((queue_health.schedule() -> 'dispatch' ->> 'fix') is null,
  queue_health._has_pg_net(), 'a fix is reported exactly when alerts cannot leave');
\else
select skip('pg_cron is not installed here', 2);
\endif
select vault.create_secret('https://vault.example.test/functions/v1/queue-alert', 'queue_health_alert_url');
select is(queue_health.dispatch_mode() ->> 'url_source', 'vault',
  'a Vault secret takes precedence over dispatch_settings');

-- Section: schedule() (needs pg_cron)
\if :has_cron
select is(queue_health.schedule() ->> 'dispatch_mode', queue_health.dispatch_mode() ->> 'mode',
  'schedule() reports the dispatch mode');
\else
select skip('pg_cron is not installed here', 1);
\endif

-- Section: who may ask
select tests.authenticate_as_service_role();
select lives_ok($$ select queue_health.dispatch_mode() $$, 'the service role may read the dispatch mode');
select tests.clear_authentication();
set local role authenticated;
select throws_ok($$ select queue_health.dispatch_mode() $$, '42501', null, 'a signed-in user may not');
reset role;

select * from finish();
rollback;
