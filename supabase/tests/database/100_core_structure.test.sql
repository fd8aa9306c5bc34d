-- Structure of the core schema: tables, partitions, RLS on every table, comments on everything,
-- the rows that must always exist.
begin;
select plan(26);

select has_schema('queue_health');
select has_table('queue_health', t, 'table queue_health.' || t || ' exists')
from unnest(array['project', 'project_member', 'project_queue_map', 'queue', 'metric', 'metric_1m',
  'metric_1h', 'rollup_watermark', 'capture_run', 'settings']) t;
select has_view('queue_health', 'queue_status', 'view queue_status exists');
select has_view('queue_health', 'capture_status', 'view capture_status exists');
select is(
  (select c.relkind::text from pg_class c where c.oid = 'queue_health.metric'::regclass), 'p',
  'metric is a partitioned table'
);
select is(
  (select pg_get_partkeydef('queue_health.metric'::regclass)), 'RANGE (captured_at)',
  'metric is partitioned by range of captured_at'
);
select ok(
  (select count(*) from pg_inherits where inhparent = 'queue_health.metric'::regclass) >= 3,
  'the migration creates today''s partition and two ahead'
);

select is(
  (select coalesce(array_agg(n.nspname || '.' || c.relname order by c.relname), '{}')::text[]
   from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'queue_health' and c.relkind in ('r', 'p') and not c.relrowsecurity),
  '{}'::text[],
  'every table in queue_health (partitions included) has row-level security enabled'
);

select is(
  (select coalesce(array_agg(c.relname order by c.relname), '{}')::text[]
   from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'queue_health' and c.relkind in ('r', 'p', 'v')
     and c.relname in ('project', 'project_member', 'project_queue_map', 'queue', 'metric',
       'metric_1m', 'metric_1h', 'rollup_watermark', 'capture_run', 'settings', 'queue_status',
       'capture_status', 'uninstall_extension')
     and obj_description(c.oid, 'pg_class') is null),
  '{}'::text[],
  'every core table and view has a comment'
);
select is(
  (select coalesce(array_agg(c.relname || '.' || a.attname order by c.relname, a.attnum), '{}')::text[]
   from pg_class c
   join pg_namespace n on n.oid = c.relnamespace
   join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
   where n.nspname = 'queue_health' and c.relkind in ('r', 'p') and not c.relispartition
     and c.relname in ('project', 'project_member', 'project_queue_map', 'queue', 'metric',
       'metric_1m', 'metric_1h', 'rollup_watermark', 'capture_run', 'settings')
     and col_description(c.oid, a.attnum) is null),
  '{}'::text[],
  'every column of every core table has a comment'
);
select is(
  (select coalesce(array_agg(c.conrelid::regclass::text || ' ' || c.conname order by 1), '{}')::text[]
   from pg_constraint c
   where c.contype = 'c' and c.connamespace = 'queue_health'::regnamespace
     and (select relispartition from pg_class where oid = c.conrelid) = false
     and c.conrelid::regclass::text in ('queue_health.project', 'queue_health.project_member',
       'queue_health.project_queue_map', 'queue_health.queue', 'queue_health.metric',
       'queue_health.metric_1m', 'queue_health.metric_1h', 'queue_health.rollup_watermark',
       'queue_health.capture_run', 'queue_health.settings')
     and obj_description(c.oid, 'pg_constraint') is null),
  '{}'::text[],
  'every check constraint on a core table has a comment saying what it guarantees'
);
select is(
  (select coalesce(array_agg(p.oid::regprocedure::text order by 1), '{}')::text[]
   from pg_proc p
   where p.pronamespace = 'queue_health'::regnamespace
     and p.proname in ('is_member', 'is_member_of_any', 'member_project_ids', '_capture_cron_schedule', 'ensure_partitions', 'rollup',
       'apply_retention', 'maintain', 'cleanup_cron_history', 'capture', 'schedule',
       'unschedule', '_cron_jobs', '_broadcast_snapshot', '_metric_partition_name', 'queue_history',
       '_capture_error', '_capture_skipped', '_capture_ensure_partitions', '_capture_sample_sources',
       '_capture_store', '_capture_mark_dropped', '_capture_record_run', '_capture_alert_errors',
       '_capture_evaluate_alerts', 'uninstall', '_uninstall_dependents', '_uninstall_extensions',
       '_uninstall_leftovers', '_uninstall_realtime_policy')
     and obj_description(p.oid, 'pg_proc') is null),
  '{}'::text[],
  'every core function has a comment'
);
select is(
  (select coalesce(array_agg(p.oid::regprocedure::text order by 1), '{}')::text[]
   from pg_proc p
   where p.pronamespace = 'queue_health'::regnamespace and p.prosecdef
     and not coalesce(p.proconfig @> array['search_path=""'], false)),
  '{}'::text[],
  'every security definer function in queue_health sets search_path to an empty string'
);

select is((select count(*)::int from queue_health.project where id = 'default'), 1,
  'the default project exists');
select is((select count(*)::int from queue_health.settings), 1, 'settings holds exactly one row');
select throws_ok(
  $$ insert into queue_health.settings (id) values (false) $$,
  '23514', null, 'a second settings row is refused'
);
select throws_ok(
  $$ insert into queue_health.project (id, name) values ('Not Valid!', 'x') $$,
  '23514', null, 'project ids outside [a-z0-9_-] are refused'
);

select * from finish();
rollback;
