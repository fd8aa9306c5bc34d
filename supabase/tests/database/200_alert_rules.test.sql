-- Alert rules: invalid rules are refused with messages naming the field; every project gets the
-- documented default rules; channels, secrets and silences are validated too.
begin;
select plan(33);

insert into queue_health.project (id, name) values ('t200', 'Alert rule tests'), ('t200_other', 'Another project');
insert into queue_health.channel (id, project_id, name, kind, config) values
  ('20000000-0000-0000-0000-000000000001', 't200', 'ops', 'webhook', '{"url": "https://hooks.example.test/ops"}'),
  ('20000000-0000-0000-0000-000000000002', 't200_other', 'theirs', 'webhook', '{"url": "https://hooks.example.test/theirs"}');

-- Section: default rules

select is(
  (select array_agg(name::text order by name) from queue_health.alert_rule where project_id = 't200' and is_default),
  array['consumer_silent', 'dead_letters', 'failure_rate', 'flow_stopped', 'monitor_stale', 'oldest_ready_age',
        'poison', 'stalled'],
  'a new project gets the eight default rules (five of 0.1.0, three of the signals)'
);
select is(
  (select count(*)::int from queue_health.alert_rule where project_id = 't200' and is_default and enabled),
  8,
  'the default rules are installed enabled'
);
select is(
  (select count(*)::int from queue_health.alert_rule where project_id = 'default' and is_default),
  8,
  'the default project has the default rules (the signals'' added by their migration)'
);
select is(
  (select row(condition, comparator, threshold, for_duration)::text from queue_health.alert_rule
    where project_id = 't200' and name = 'oldest_ready_age'),
  row('oldest_ready_age_s', '>', 60::float8, interval '2 minutes')::text,
  'default: oldest ready age > 60 s for 2 minutes'
);
select is(
  (select row(condition, window_duration, severity)::text from queue_health.alert_rule
    where project_id = 't200' and name = 'stalled'),
  row('stalled', interval '5 minutes', 'critical'::queue_health.alert_severity)::text,
  'default: stalled over 5 minutes, critical'
);
select is(
  (select row(condition, threshold, window_duration, min_volume)::text from queue_health.alert_rule
    where project_id = 't200' and name = 'failure_rate'),
  row('failure_rate', 0.05::float8, interval '10 minutes', 20::bigint)::text,
  'default: failure rate > 5 % over 10 minutes with at least 20 jobs'
);
select is(
  (select row(condition, comparator, threshold)::text from queue_health.alert_rule
    where project_id = 't200' and name = 'dead_letters'),
  row('dead_letters', '>', 0::float8)::text,
  'default: dead letters > 0'
);
select is(
  (select row(condition, threshold)::text from queue_health.alert_rule
    where project_id = 't200' and name = 'monitor_stale'),
  row('monitor_stale', 3::float8)::text,
  'default: monitor stale > 3 capture intervals'
);
select is(queue_health.install_default_rules('t200'), 0, 'install_default_rules() is idempotent');

-- Section: invalid rules are refused, naming the field

select throws_like(
  $$ insert into queue_health.alert_rule (project_id, name, condition, threshold) values ('t200', 'nan', 'depth', 'NaN') $$,
  '%alert_rule.threshold must be a finite number%', 'a NaN threshold is refused, naming alert_rule.threshold');
select throws_like(
  $$ insert into queue_health.alert_rule (project_id, name, condition, threshold) values ('t200', 'inf', 'depth', 'Infinity') $$,
  '%alert_rule.threshold must be a finite number%', 'an infinite threshold is refused');
select throws_like(
  $$ insert into queue_health.alert_rule (project_id, name, condition) values ('t200', 'bogus', 'queue_size') $$,
  '%alert_rule.condition must be one of%', 'an unknown condition is refused, naming alert_rule.condition');
select throws_like(
  $$ insert into queue_health.alert_rule (project_id, name, condition, comparator) values ('t200', 'cmp', 'depth', '=>') $$,
  '%alert_rule.comparator must be one of%', 'an unknown comparator is refused');
select throws_like(
  $$ insert into queue_health.alert_rule (project_id, name, condition) values ('t200', 'stall', 'stalled') $$,
  '%alert_rule.window_duration is required for stalled%', 'stalled without a window is refused');
select throws_like(
  $$ insert into queue_health.alert_rule (project_id, name, condition, for_duration) values ('t200', 'neg', 'depth', '-1 minute') $$,
  '%alert_rule.for_duration must be 0 or more%', 'a negative for is refused');
select throws_like(
  $$ insert into queue_health.alert_rule (project_id, name, condition, keep_firing_for) values ('t200', 'negk', 'depth', '-5 seconds') $$,
  '%alert_rule.keep_firing_for must be 0 or more%', 'a negative keep_firing_for is refused');
select throws_like(
  $$ insert into queue_health.alert_rule (project_id, name, condition, threshold, window_duration) values ('t200', 'pct', 'failure_rate', 5, '10 minutes') $$,
  '%alert_rule.threshold must be a fraction between 0 and 1%', 'a failure rate threshold given in percent is refused');
select throws_like(
  $$ insert into queue_health.alert_rule (project_id, name, condition, queue_name, queue_pattern) values ('t200', 'both', 'depth', 'a', 'a%') $$,
  '%alert_rule.queue_pattern must be null when alert_rule.queue_name is set%', 'exact name and pattern together are refused');
select throws_like(
  $$ insert into queue_health.alert_rule (project_id, name, condition, queue_pattern) values ('t200', 'ms', 'monitor_stale', 'a%') $$,
  '%must be empty for monitor_stale%', 'a queue selector on monitor_stale is refused');
select throws_like(
  $$ insert into queue_health.alert_rule (project_id, name, condition, runbook_url) values ('t200', 'rb', 'depth', 'ftp://runbooks') $$,
  '%alert_rule.runbook_url must start with http%', 'a runbook URL that is not http(s) is refused');
select throws_like(
  $$ insert into queue_health.alert_rule (project_id, name, condition, channel_ids) values ('t200', 'ch', 'depth', array['20000000-0000-0000-0000-000000000002']::uuid[]) $$,
  '%alert_rule.channel_ids: 20000000-0000-0000-0000-000000000002 is not a channel of project t200%', 'a channel of another project is refused');
select throws_like(
  $$ insert into queue_health.alert_rule (project_id, name, condition, labels) values ('t200', 'lab', 'depth', '["a"]') $$,
  '%alert_rule.labels must be a JSON object%', 'labels that are not an object are refused');
select throws_like(
  $$ insert into queue_health.alert_rule (project_id, name, condition, repeat_interval) values ('t200', 'rep', 'depth', '0 seconds') $$,
  '%alert_rule.repeat_interval must be positive%', 'a zero repeat_interval is refused');
select throws_like(
  $$ insert into queue_health.alert_rule (project_id, name, condition, source) values ('t200', 'src', 'depth', 'redis') $$,
  '%alert_rule.source must be pgmq, pgboss or null%', 'an unknown source is refused');
select throws_like(
  $$ update queue_health.alert_rule set threshold = 'NaN' where project_id = 't200' and name = 'oldest_ready_age' $$,
  '%alert_rule.threshold must be a finite number%', 'an update to an invalid threshold is refused as well');
select lives_ok(
  $$ insert into queue_health.alert_rule (project_id, name, condition, comparator, threshold, window_duration, min_volume,
       for_duration, keep_firing_for, severity, channel_ids, queue_pattern, labels, summary, runbook_url)
     values ('t200', 'valid', 'failure_rate', '>=', 0.1, '15 minutes', 50, '1 minute', '5 minutes', 'critical',
       array['20000000-0000-0000-0000-000000000001']::uuid[], 'billing_%', '{"team": "billing"}',
       '{{queue}} fails {{value}}', 'https://runbooks.example.test/{{rule}}') $$,
  'a valid rule is accepted');

-- Section: channels, secrets and silences

select throws_like(
  $$ insert into queue_health.channel (project_id, name, kind, config) values ('t200', 'mail', 'email', '{"to": []}') $$,
  '%channel.config.to must be a non-empty array of email addresses%', 'an email channel without recipients is refused');
select lives_ok(
  $$ insert into queue_health.channel (project_id, name, kind, config) values ('t200', 'mail2', 'email', '{"recipients": "a@example.test, b@example.test"}') $$,
  'an email channel may list recipients as "recipients", comma-separated');
select throws_like(
  $$ insert into queue_health.channel (project_id, name, kind, config) values ('t200', 'hook', 'webhook', '{"url": "hooks.example.test"}') $$,
  '%channel.config.url must be an http(s) URL%', 'a webhook channel without an http(s) URL is refused');
select throws_like(
  $$ insert into queue_health.channel (project_id, name, kind, config) values ('t200', 'slack', 'slack', '{"url": "https://hooks.slack.com/services/T/B/X"}') $$,
  '%channel.config must not hold secrets%', 'a Slack webhook URL in channel.config is refused (it is a secret)');
select throws_like(
  $$ insert into queue_health.channel_secret (channel_id, secret) values ('20000000-0000-0000-0000-000000000001', '{"signing_secret": "short"}') $$,
  '%channel_secret.secret.signing_secret must be at least 16 characters%', 'a short webhook signing secret is refused');
select throws_like(
  $$ insert into queue_health.silence (project_id, starts_at, ends_at, comment) values ('t200', now(), now() - interval '1 hour', 'oops') $$,
  '%silence.ends_at must be after silence.starts_at%', 'a silence ending before it starts is refused');
select throws_like(
  $$ insert into queue_health.silence (project_id, ends_at, comment) values ('t200', now() + interval '1 hour', ' ') $$,
  '%silence.comment must say why%', 'a silence without a comment is refused');

select * from finish();
rollback;
