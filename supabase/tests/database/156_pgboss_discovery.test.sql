-- _pgboss_schemas(): which schemas are pg-boss schemas and what layout each has, found in the
-- catalog (by tables, columns and indexes, never by schema name or version number). Look-alike
-- schemas stand in for pg-boss here; the sampler's behaviour against the real pg-boss 10/11/12
-- is tested in local/test/sources_pgboss_test.ts.
begin;
select plan(7);

-- v12-like: job partitioned, the (name, created_on) and (name, completed_on) indexes on a
-- partition only, queue.table_name, job.blocked
create schema "qh disc ""v12""";
create table "qh disc ""v12""".version (version int primary key);
create table "qh disc ""v12""".queue (name text primary key, table_name text);
create table "qh disc ""v12""".job (name text not null, id uuid not null, created_on timestamptz,
  completed_on timestamptz, blocked boolean) partition by list (name);
create table "qh disc ""v12""".job_common partition of "qh disc ""v12""".job default;
create index on "qh disc ""v12""".job_common (name, created_on);
create index on "qh disc ""v12""".job_common (name, completed_on);
-- v10-like: queue.partition_name, no timestamp indexes
create schema qh_disc_v10;
create table qh_disc_v10.version (version int primary key);
create table qh_disc_v10.queue (name text primary key, partition_name text);
create table qh_disc_v10.job (name text not null, id uuid not null, created_on timestamptz);
create index on qh_disc_v10.job (name, id);
-- not pg-boss: version and job but no queue table; a view named queue
create schema qh_disc_no_queue;
create table qh_disc_no_queue.version (version int primary key);
create table qh_disc_no_queue.job (name text);
create view qh_disc_no_queue.queue as select 1 as x;
-- excluded by the settings
create schema qh_disc_excluded;
create table qh_disc_excluded.version (version int primary key);
create table qh_disc_excluded.queue (name text primary key, table_name text);
create table qh_disc_excluded.job (name text not null, blocked boolean);
-- Supabase Storage's own pg-boss (excluded by default)
create schema if not exists pgboss_v10;
create table if not exists pgboss_v10.version (version int primary key);
create table if not exists pgboss_v10.queue (name text primary key, partition_name text);
create table if not exists pgboss_v10.job (name text not null);
update queue_health.settings set excluded_pgboss_schemas = excluded_pgboss_schemas || 'qh_disc_excluded'::text;

select is(
  (select layout from queue_health._pgboss_schemas() where schema_name = 'qh disc "v12"'),
  '{"job.blocked": true, "queue.table_name": true, "index.created_on": true, "index.completed_on": true}'::jsonb,
  'a quoted schema name is found, with its columns and the indexes on a partition of job');
select is(
  (select layout from queue_health._pgboss_schemas() where schema_name = 'qh_disc_v10'),
  '{"queue.partition_name": true}'::jsonb,
  'a v10-like schema: its own optional column, no timestamp indexes');
select is(
  (select count(*)::int from queue_health._pgboss_schemas() where schema_name = 'qh_disc_no_queue'),
  0, 'version and job tables without a queue table: not a pg-boss schema');
select is(
  (select count(*)::int from queue_health._pgboss_schemas() where schema_name = 'qh_disc_excluded'),
  0, 'a schema in settings.excluded_pgboss_schemas is left out');
select is(
  (select count(*)::int from queue_health._pgboss_schemas() where schema_name = 'pgboss_v10'),
  0, 'the default exclusion (Supabase Storage''s pgboss_v10) holds');
select ok(
  (select array_agg(schema_name) = array_agg(schema_name order by schema_name)
     from queue_health._pgboss_schemas()),
  'schemas come in name order');

-- A dropped column is no longer a feature.
alter table qh_disc_v10.queue drop column partition_name;
select is(
  (select layout from queue_health._pgboss_schemas() where schema_name = 'qh_disc_v10'),
  '{}'::jsonb, 'a dropped column no longer counts');

select * from finish();
rollback;
