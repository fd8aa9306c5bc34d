-- One truth for the metric columns: the places that list them agree.
--
-- A queue's measurements are written out in five places: the `queue_health.sample` type (what a
-- sampler returns), `queue_health.metric` (one row per queue per capture), the registry
-- `queue_health.queue` (its copy of the newest metric row, which alert evaluation reads), the
-- rollups `metric_1m` / `metric_1h` (which aggregate metric), and the TypeScript `Sample` type
-- (local/test/sample.ts, checked by local/test/metric_columns_test.ts). `metric` is the reference:
-- the rule table below says, for each of its columns, where else it must appear. Every column list
-- is read from the catalog, so a column added to one place and forgotten in another fails here with
-- its name in the diagnostics ("have: {…}"). docs/development.md, "Adding a metric", is the
-- checklist.
begin;
select plan(15);

-- Where each metric column goes. in_sample: a sampler measures it (so the sample type has it);
-- in_registry: capture() copies it into queue_health.queue; rollup: the columns metric_1m and
-- metric_1h aggregate it into (empty: not rolled up).
--   gauges (ready, in_flight, delayed, depth): _min, _avg, _max, _last;
--   oldest_ready_age_s: _max, _last; counts since the previous snapshot: their sum, same name;
--   p95 percentiles: _max (the worst of the bucket); p50 percentiles: none (a median of medians
--   means nothing); depth_estimated: bool_or, same name, not in the registry (alert evaluation does
--   not read it); sample_ms: registry only (what sampling cost); interval_s and the running totals
--   cum_*: computed by capture(), not by a sampler, registry only.
create temp table metric_column_rule (
  column_name text primary key,
  in_sample boolean not null,
  in_registry boolean not null,
  rollup text[] not null
);
insert into metric_column_rule (column_name, in_sample, in_registry, rollup) values
  ('captured_at', false, false, '{}'),  -- the rollups key on bucket instead
  ('project_id', false, true, '{project_id}'),
  ('source', true, true, '{source}'),
  ('source_schema', true, true, '{source_schema}'),
  ('queue_name', true, true, '{queue_name}'),
  ('ready', true, true, '{ready_min,ready_avg,ready_max,ready_last}'),
  ('in_flight', true, true, '{in_flight_min,in_flight_avg,in_flight_max,in_flight_last}'),
  ('delayed', true, true, '{delayed_min,delayed_avg,delayed_max,delayed_last}'),
  ('depth', true, true, '{depth_min,depth_avg,depth_max,depth_last}'),
  ('depth_estimated', true, false, '{depth_estimated}'),
  ('oldest_ready_age_s', true, true, '{oldest_ready_age_s_max,oldest_ready_age_s_last}'),
  ('enqueued', true, true, '{enqueued}'),
  ('completed', true, true, '{completed}'),
  ('failed', true, true, '{failed}'),
  ('retried', true, true, '{retried}'),
  ('dead_lettered', true, true, '{dead_lettered}'),
  ('wait_p50_ms', true, true, '{}'),
  ('wait_p95_ms', true, true, '{wait_p95_ms_max}'),
  ('run_p50_ms', true, true, '{}'),
  ('run_p95_ms', true, true, '{run_p95_ms_max}'),
  ('sample_ms', true, true, '{}'),
  ('interval_s', false, true, '{}'),
  ('cum_enqueued', false, true, '{}'),
  ('cum_completed', false, true, '{}'),
  ('cum_failed', false, true, '{}'),
  ('cum_retried', false, true, '{}'),
  ('cum_dead_lettered', false, true, '{}'),
  ('cum_interval_s', false, true, '{}'),
  ('cum_idle', false, true, '{}'),
  -- signals (20261207100000_queue_health_signals.sql): computed by capture() (poison from the
  -- sampler's cursor), registry copies; the objective's seconds summed and poison's worst kept.
  ('poison', false, true, '{poison_max}'),
  ('oldest_poison_age_s', false, true, '{}'),
  ('in_rate', false, true, '{}'),
  ('out_rate', false, true, '{}'),
  ('drain_eta_s', false, true, '{}'),
  ('expected_wait_s', false, true, '{}'),
  ('flow_status', false, true, '{}'),
  ('last_enqueue_at', false, true, '{}'),
  ('last_dequeue_at', false, true, '{}'),
  ('slo_total_s', false, true, '{slo_total_s}'),
  ('slo_bad_s', false, true, '{slo_bad_s}'),
  ('cum_ready_zero', false, true, '{}'),
  ('cum_slo_total_s', false, true, '{}'),
  ('cum_slo_bad_s', false, true, '{}');

-- Columns of the five places, from the catalog (site: sample, metric, queue, metric_1m, metric_1h).
create temp view metric_column_site as
select c.relname::text as site, a.attnum, a.attname::text as column_name,
       format_type(a.atttypid, a.atttypmod) as column_type
  from pg_attribute a
  join pg_class c on c.oid = a.attrelid
 where c.oid in ('queue_health.metric'::regclass, 'queue_health.queue'::regclass,
                 'queue_health.metric_1m'::regclass, 'queue_health.metric_1h'::regclass,
                 (select t.typrelid from pg_type t where t.oid = 'queue_health.sample'::regtype))
   and a.attnum > 0 and not a.attisdropped;

-- What each rollup column must be: the metric column it aggregates, and its type (an average is
-- double precision; a min, max, last, sum or bool_or keeps the metric column's type).
create temp view metric_rollup_column as
select r.column_name as metric_column, x.rollup_column,
       case when x.rollup_column like '%\_avg' then 'double precision' else m.column_type end
         as column_type
  from metric_column_rule r
  join metric_column_site m on m.site = 'metric' and m.column_name = r.column_name
 cross join lateral unnest(r.rollup) as x(rollup_column);

-- metric against the rule table

select is(
  array(select column_name from metric_column_site where site = 'metric'
        except select column_name from metric_column_rule order by 1),
  '{}'::text[],
  'every metric column has a rule in 105_metric_columns.test.sql (sample? registry? rollup?)'
);
select is(
  array(select column_name from metric_column_rule
        except select column_name from metric_column_site where site = 'metric' order by 1),
  '{}'::text[],
  'every column the rule table names exists in queue_health.metric'
);

-- the sample type

select is(
  array(select column_name from metric_column_rule where in_sample
        except select column_name from metric_column_site where site = 'sample' order by 1),
  '{}'::text[],
  'the sample type has every metric column a sampler measures'
);
select is(
  array(select column_name from metric_column_site where site = 'sample'
        except select column_name from metric_column_rule where in_sample
        except select unnest(array['cursor', 'error']) order by 1),
  '{}'::text[],
  'the sample type has no column metric does not store, besides the sampler''s cursor and error'
);
select is(
  array(select s.column_name || ': ' || s.column_type || ' in sample, ' || m.column_type || ' in metric'
          from metric_column_site s
          join metric_column_site m on m.site = 'metric' and m.column_name = s.column_name
         where s.site = 'sample' and s.column_type <> m.column_type order by 1),
  '{}'::text[],
  'the sample type''s metric columns have metric''s types'
);

-- the registry queue_health.queue

select is(
  array(select column_name from metric_column_rule where in_registry
        except select column_name from metric_column_site where site = 'queue' order by 1),
  '{}'::text[],
  'the registry queue_health.queue has every metric column capture() copies into it'
);
select is(
  array(select column_name from metric_column_site where site = 'queue'
        except select column_name from metric_column_rule where in_registry
        except select unnest(array['id', 'labels', 'cursor', 'first_seen_at', 'last_seen_at',
                                   'dropped_at', 'totals_at']) order by 1),
  '{}'::text[],
  'the registry has no metric-like column the rule table does not know (its own: id, labels, cursor, first_seen_at, last_seen_at, dropped_at, totals_at)'
);
select is(
  array(select q.column_name || ': ' || q.column_type || ' in queue, ' || m.column_type || ' in metric'
          from metric_column_site q
          join metric_column_site m on m.site = 'metric' and m.column_name = q.column_name
         where q.site = 'queue' and q.column_type <> m.column_type order by 1),
  '{}'::text[],
  'the registry''s copies of metric columns have metric''s types'
);
-- the rollups metric_1m and metric_1h

select is(
  array(select rollup_column from metric_rollup_column
        union select unnest(array['bucket', 'samples'])
        except select column_name from metric_column_site where site = 'metric_1m' order by 1),
  '{}'::text[],
  'metric_1m has every rollup column the rule table asks for (and bucket, samples)'
);
select is(
  array(select column_name from metric_column_site where site = 'metric_1m'
        except select rollup_column from metric_rollup_column
        except select unnest(array['bucket', 'samples']) order by 1),
  '{}'::text[],
  'metric_1m has no column that aggregates no metric column (besides bucket, samples)'
);
select is(
  array(select r.rollup_column || ': ' || s.column_type || ' in metric_1m, ' || r.column_type
               || ' expected from metric.' || r.metric_column
          from metric_rollup_column r
          join metric_column_site s on s.site = 'metric_1m' and s.column_name = r.rollup_column
         where s.column_type <> r.column_type order by 1),
  '{}'::text[],
  'metric_1m''s columns have the types of the metric columns they aggregate (averages double precision)'
);
select is(
  (select format_type(a.atttypid, a.atttypmod) from pg_attribute a
    where a.attrelid = 'queue_health.metric_1m'::regclass and a.attname = 'bucket'),
  (select format_type(a.atttypid, a.atttypmod) from pg_attribute a
    where a.attrelid = 'queue_health.metric'::regclass and a.attname = 'captured_at'),
  'metric_1m.bucket has the type of metric.captured_at'
);
select is(
  array(select column_name || ' ' || column_type from metric_column_site
         where site = 'metric_1h' order by attnum),
  array(select column_name || ' ' || column_type from metric_column_site
         where site = 'metric_1m' order by attnum),
  'metric_1h has metric_1m''s columns, in the same order, with the same types'
);

-- the rule table itself: no two metric columns are rolled up under the same name

select is(
  array(select rollup_column from metric_rollup_column group by 1 having count(*) > 1 order by 1),
  '{}'::text[],
  'no two metric columns aggregate into the same rollup column'
);
-- capture()'s row builder returns metric's columns flat, in metric's order (the store inserts them
-- by position), then the sampler's cursor, the newest flag and the sample's error.
select is(
  (select array_agg(a.n::text order by a.o)
     from pg_proc p, unnest(p.proargnames, p.proargmodes) with ordinality as a(n, m, o)
    where p.oid = 'queue_health._capture_rows(timestamptz, queue_health.sample[])'::regprocedure
      and a.m = 't'),
  (select array_agg(column_name order by attnum) from metric_column_site where site = 'metric')
    || array['cursor', 'newest', 'error'],
  '_capture_rows() returns metric''s columns in metric''s order, then cursor, newest, error'
);
select * from finish();
rollback;
