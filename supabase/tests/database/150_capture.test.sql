-- capture(): with no sources, with sources standing in for the samplers (so the registry,
-- cursors, dropped queues, intervals and errors are checked against known samples), with a
-- failing source, and with alert evaluation. capture() calls the samplers and evaluate_alerts()
-- directly: the stand-ins replace them (create or replace) inside this test's transaction.
begin;
select plan(32);
set local timezone = 'UTC';
select queue_health.ensure_partitions('2032-05-01 00:00:00+00', 0);

-- Section: no sources at all (samplers that find no queue, an evaluation that answers nothing)
create or replace function queue_health._sample_pgmq(p_now timestamptz default now())
returns setof queue_health.sample language sql as $$ select (null::queue_health.sample).* where false $$;
create or replace function queue_health._sample_pgboss(p_now timestamptz default now())
returns setof queue_health.sample language sql as $$ select (null::queue_health.sample).* where false $$;
create or replace function queue_health.evaluate_alerts(p_now timestamptz default now())
returns jsonb language sql as $$ select null::jsonb $$;

select is(
  queue_health.capture('2032-05-01 10:00:00+00') - 'run_id' - 'duration_ms',
  '{"status": "ok", "queues": 0, "rows": 0, "unchanged": 0, "skipped": false, "errors": [], "alerts": null}'::jsonb,
  'a capture with no source at all succeeds with nothing to store');
select is(
  (select status::text || '/' || queues || '/' || rows from queue_health.capture_run
   where started_at = '2032-05-01 10:00:00+00'),
  'ok/0/0', 'and records an ok run');
select ok(
  (select finished_at >= started_at and duration_ms >= 0 from queue_health.capture_run
   where started_at = '2032-05-01 10:00:00+00'),
  'the run records its duration');

-- Section: stand-in samplers that return whatever fx_samples holds
create temporary table fx_samples of queue_health.sample;
create temporary table fx_alert_calls (p_now timestamptz);
create or replace function queue_health._sample_pgmq(p_now timestamptz default now())
returns setof queue_health.sample language sql as $$
  select * from pg_temp.fx_samples where source = 'pgmq'
$$;
create or replace function queue_health._sample_pgboss(p_now timestamptz default now())
returns setof queue_health.sample language plpgsql as $$
begin
  if exists (select 1 from pg_temp.fx_samples where source = 'pgboss' and queue_name = 'explode') then
    raise exception 'pg-boss schema vanished';
  end if;
  return query select * from pg_temp.fx_samples where source = 'pgboss';
end $$;

insert into queue_health.project (id, name) values ('billing', 'Billing');
insert into queue_health.project_queue_map (project_id, source, queue_pattern, priority)
values ('billing', 'pgmq', 'invoice%', 10), ('default', 'pgmq', 'invoice_internal%', 5);

insert into fx_samples (source, source_schema, queue_name, ready, in_flight, delayed, depth,
  depth_estimated, oldest_ready_age_s, enqueued, completed, failed, retried, dead_lettered, sample_ms, cursor)
values
  ('pgmq', 'pgmq', 'emails', 3, 1, 0, 4, false, 2.5, 0, 0, 0, 0, 0, 0.4, '{"sent": 4}'),
  ('pgmq', 'pgmq', 'invoices', 0, 0, 0, 0, false, null, 0, 0, 0, 0, 0, 0.2, '{"sent": 0, "read_at": "2032-05-01T09:59:00+00:00"}'),
  ('pgmq', 'pgmq', 'invoice_internal', 0, 0, 0, 0, false, null, 0, 0, 0, 0, 0, 0.2, null),
  ('pgboss', 'pgboss', 'reports', 1, 0, 5, 6, true, 1, 0, 0, 0, 0, 0, 0.3, '{"at": 1}');

select is(
  queue_health.capture('2032-05-01 10:00:10+00') - 'run_id' - 'duration_ms',
  '{"status": "ok", "queues": 4, "rows": 4, "unchanged": 1, "skipped": false, "errors": [], "alerts": null}'::jsonb,
  'a capture stores one row per sampled queue and says so, with how many queues a sampler repeated unread');
select results_eq(
  $$ select source, source_schema, queue_name, project_id, first_seen_at, last_seen_at, dropped_at
     from queue_health.queue order by source, queue_name $$,
  $$ values
     ('pgboss'::text, 'pgboss'::text, 'reports'::text, 'default'::text, '2032-05-01 10:00:10+00'::timestamptz, '2032-05-01 10:00:10+00'::timestamptz, null::timestamptz),
     ('pgmq', 'pgmq', 'emails', 'default', '2032-05-01 10:00:10+00', '2032-05-01 10:00:10+00', null),
     ('pgmq', 'pgmq', 'invoice_internal', 'default', '2032-05-01 10:00:10+00', '2032-05-01 10:00:10+00', null),
     ('pgmq', 'pgmq', 'invoices', 'billing', '2032-05-01 10:00:10+00', '2032-05-01 10:00:10+00', null) $$,
  'new queues are registered, with the project of the first matching mapping rule (by priority) or default');
select is(
  (select cursor from queue_health.queue where queue_name = 'emails'), '{"sent": 4}'::jsonb,
  'the sampler''s cursor is written back to the registry');
select results_eq(
  $$ select queue_name, project_id, depth, ready, in_flight, delayed, depth_estimated, interval_s
     from queue_health.metric where captured_at = '2032-05-01 10:00:10+00' order by queue_name $$,
  $$ values ('emails'::text, 'default'::text, 4::bigint, 3::bigint, 1::bigint, 0::bigint, false, null::float8),
            ('invoice_internal', 'default', 0, 0, 0, 0, false, null),
            ('invoices', 'billing', 0, 0, 0, 0, false, null),
            ('reports', 'default', 6, 1, 0, 5, true, null) $$,
  'metric rows carry the samples, the queue''s project, and no interval the first time');

-- Section: the next capture
update fx_samples set cursor = '{"sent": 9}', enqueued = 5, depth = 9 where queue_name = 'emails';
select is((queue_health.capture('2032-05-01 10:00:20+00') ->> 'rows')::int, 4, 'the next capture stores four rows again');
select is(
  (select interval_s from queue_health.metric where captured_at = '2032-05-01 10:00:20+00' and queue_name = 'emails'),
  10::float8, 'interval_s is the time since the previous snapshot of the queue');
select is(
  (select cursor from queue_health.queue where queue_name = 'emails'), '{"sent": 9}'::jsonb,
  'the cursor is replaced by the newest one');
select is(
  (select last_seen_at from queue_health.queue where queue_name = 'emails'),
  '2032-05-01 10:00:20+00'::timestamptz, 'last_seen_at moves to the capture''s p_now');

-- Section: a queue that disappears, and comes back
delete from fx_samples where queue_name = 'invoices';
select queue_health.capture('2032-05-01 10:00:30+00');
select is(
  (select dropped_at from queue_health.queue where queue_name = 'invoices'),
  '2032-05-01 10:00:30+00'::timestamptz, 'a queue a successful source no longer returns is marked dropped');
select is(
  (select count(*)::int from queue_health.metric where queue_name = 'invoices'), 2,
  'its history is kept');
select is(
  (select count(*)::int from queue_health.queue_status where queue_name = 'invoices'), 0,
  'a dropped queue leaves queue_status');
insert into fx_samples (source, source_schema, queue_name, depth, ready, in_flight, delayed, cursor)
values ('pgmq', 'pgmq', 'invoices', 1, 1, 0, 0, '{"sent": 1}');
select queue_health.capture('2032-05-01 10:00:40+00');
select is(
  (select dropped_at from queue_health.queue where queue_name = 'invoices'), null,
  'a dropped queue that comes back is no longer dropped');
select is(
  (select interval_s from queue_health.metric where captured_at = '2032-05-01 10:00:40+00' and queue_name = 'invoices'),
  20::float8, 'its interval runs from the last time it was seen (10:00:20)');

-- Section: a queue whose sample failed
insert into fx_samples (source, source_schema, queue_name, error)
values ('pgmq', 'pgmq', 'broken', 'relation "pgmq.q_broken" does not exist');
select is(
  queue_health.capture('2032-05-01 10:00:50+00') - 'run_id' - 'duration_ms' - 'alerts',
  '{"status": "partial", "queues": 5, "rows": 4, "unchanged": 0, "skipped": false,
    "errors": [{"source": "pgmq", "source_schema": "pgmq", "queue_name": "broken",
                "error": "relation \"pgmq.q_broken\" does not exist"}]}'::jsonb,
  'a failed queue costs only its own row and its error is reported');
select is(
  (select errors -> 0 ->> 'queue_name' from queue_health.capture_run where started_at = '2032-05-01 10:00:50+00'),
  'broken', 'the per-queue error is recorded in capture_run.errors');
select is(
  (select count(*)::int from queue_health.metric where queue_name = 'broken'), 0,
  'no metric row is written for a failed sample');
select ok(
  (select dropped_at is null from queue_health.queue where queue_name = 'broken'),
  'a queue whose sample failed is registered, not dropped');
delete from fx_samples where queue_name = 'broken';

-- Section: a failing source
insert into fx_samples (source, source_schema, queue_name) values ('pgboss', 'pgboss', 'explode');
select is(
  (select r ->> 'status' || '/' || (r ->> 'rows') from queue_health.capture('2032-05-01 10:01:00+00') r),
  'partial/3', 'when one source raises, the other source''s rows are still stored');
select is(
  (select errors -> 0 ->> 'source' || ': ' || (errors -> 0 ->> 'error') from queue_health.capture_run
   where started_at = '2032-05-01 10:01:00+00'),
  'pgboss: pg-boss schema vanished', 'the source''s error is recorded');
select ok(
  (select dropped_at is null from queue_health.queue where queue_name = 'reports'),
  'the queues of a source that failed are not marked dropped');
create or replace function queue_health._sample_pgmq(p_now timestamptz default now())
returns setof queue_health.sample language plpgsql as $$ begin raise exception 'pgmq schema vanished'; end $$;
select queue_health.capture('2032-05-01 10:01:10+00');
select is(
  (select status::text || ': ' || error from queue_health.capture_run
   where started_at = '2032-05-01 10:01:10+00'),
  'error: 2 error(s); first: pgmq schema vanished',
  'when every source fails the run is an error, with the reason');
delete from fx_samples where queue_name = 'explode';
create or replace function queue_health._sample_pgmq(p_now timestamptz default now())
returns setof queue_health.sample language sql as $$
  select * from pg_temp.fx_samples where source = 'pgmq'
$$;

-- Section: alert evaluation
create or replace function queue_health.evaluate_alerts(p_now timestamptz default now())
returns jsonb language plpgsql as $$
begin
  insert into pg_temp.fx_alert_calls values (p_now);
  return jsonb_build_object('evaluated', (select count(*) from queue_health.metric where captured_at = p_now));
end $$;
select is(
  queue_health.capture('2032-05-01 10:01:20+00') -> 'alerts', '{"evaluated": 4}'::jsonb,
  'capture() calls evaluate_alerts(p_now) after storing the rows, and returns its summary');
select is(
  (select array_agg(p_now) from fx_alert_calls), array['2032-05-01 10:01:20+00'::timestamptz],
  'evaluate_alerts() is called once, with the capture''s p_now');
create or replace function queue_health.evaluate_alerts(p_now timestamptz default now())
returns jsonb language plpgsql as $$ begin raise exception 'rule table missing'; end $$;
select is(
  (select r ->> 'status' || '/' || (r ->> 'rows') from queue_health.capture('2032-05-01 10:01:30+00') r),
  'partial/4', 'a failing evaluate_alerts() leaves the capture stored, as partial');
select is(
  (select error from queue_health.capture_run where started_at = '2032-05-01 10:01:30+00'),
  'alert evaluation failed: rule table missing', 'and the run says why');
create or replace function queue_health.evaluate_alerts(p_now timestamptz default now())
returns jsonb language sql as $$ select null::jsonb $$;

-- Section: the transaction-scoped lock
select is(
  (select (queue_health.capture('2032-05-01 10:01:40+00') ->> 'skipped') || '/' ||
          (queue_health.capture('2032-05-01 10:01:41+00') ->> 'skipped')),
  'false/false', 'two captures in one transaction both run (the lock is held by that transaction)');
select ok(
  exists (select 1 from pg_locks l, (select hashtextextended('queue_health.capture', 0) as k) k
          where l.locktype = 'advisory' and l.pid = pg_backend_pid() and l.objsubid = 1
            and l.classid = ((k.k >> 32) & 4294967295)::oid and l.objid = (k.k & 4294967295)::oid),
  'capture() holds its advisory lock until the transaction ends');

-- Section: samples from sources with odd names
insert into fx_samples (source, source_schema, queue_name, depth, ready, in_flight, delayed)
values ('pgmq', 'pgmq', 'sélect "quoted" name; drop table x', 1, 1, 0, 0),
       ('pgmq', 'pgmq', repeat('q', 47), 1, 1, 0, 0);
select is((queue_health.capture('2032-05-01 10:01:50+00') ->> 'rows')::int, 6,
  'queue names with quotes, spaces, unicode and 47 characters are stored like any other');
select is(
  (select count(*)::int from queue_health.queue where queue_name in ('sélect "quoted" name; drop table x', repeat('q', 47))), 2,
  'and registered under their exact names');

select * from finish();
rollback;
