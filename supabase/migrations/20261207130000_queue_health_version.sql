-- Queue Health 0.2.0: the release's last migration says which release a database has (see
-- docs/development.md, "Releases"). 0.2.0 brings the signals (flow status, drain ETA, poison,
-- silent consumers and producers, seasonal baselines, latency objectives and burn rates), the
-- on-call channels (SMS, PagerDuty, Alertmanager), and the evaluation order and flush changes.

create or replace function queue_health.version()
returns text
immutable
set search_path = ''
language sql
as $$
  select '0.2.0'
$$;
comment on function queue_health.version() is 'The Queue Health release whose migrations this database has, e.g. 0.1.0.';
revoke execute on function queue_health.version() from public, anon, authenticated;
grant execute on function queue_health.version() to service_role;
