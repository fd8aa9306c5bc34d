-- Queue Health: the pgmq source. Turns every pgmq queue (the extension 1.4/1.5, or a
-- compatible schema) into queue_health.sample rows: _sample_pgmq() lists the queues,
-- _sample_pgmq_queue() samples one; the _pgmq_sql_* builders write the statements they run.

-- The statements that read pgmq's tables are written by the builders below, one per probe: each
-- takes the table (a regclass, quoted by its output) and what changes the text (the queue's
-- columns), and returns the SQL text; values go in as parameters ($1 ...), never into the text.
-- _sample_pgmq() runs the check and read statements; _sample_pgmq_queue() and its steps
-- (_pgmq_count_messages(), _pgmq_count_bounded_rows(), _pgmq_estimate_directly(),
-- _pgmq_estimate_above_limit()) run the others. All run with search_path = '', so a table's name is always schema-qualified.

create function queue_health._pgmq_sql_table_facts()
returns text
immutable
set search_path = ''
language sql
as $fn$
  -- What reading a queue table u.rel (named u.name in pgmq.meta) needs to know of it: which
  -- indexes it has (standard and unlogged queues have the msg_id primary key and the vt index;
  -- pg_partman-partitioned ones may have neither), whether it has last_read_at (pgmq 1.10+), its
  -- archive table (to_regnamespace: this is created before, or without, pgmq), and its density
  -- (plain tables; null for a partitioned one, whose leaves _pgmq_density() sums): the
  -- planner's method without planning, tuples per page from the last ANALYZE/VACUUM times the
  -- pages the table has now; null while it was never analyzed (reltuples = -1), 0 when it was
  -- analyzed empty and still is. A lateral subquery's text: the read statement writes it inline.
  select $q$
      select ix.has_vt_index, ix.has_id_index,
        exists (select 1 from pg_catalog.pg_attribute a
                 where a.attrelid = u.rel and a.attname = 'last_read_at' and not a.attisdropped)
          as has_last_read_at,
        (select ac.oid::regclass from pg_catalog.pg_class ac
          where ac.relnamespace = pg_catalog.to_regnamespace('pgmq') and ac.relname = 'a_' || lower(u.name)
            and ac.relkind in ('r', 'p')) as archive,
        (select round(case when c.reltuples < 0 then null
                           when c.relpages > 0 then c.reltuples / c.relpages
                             * (pg_catalog.pg_relation_size(c.oid) / pg_catalog.current_setting('block_size')::numeric)
                           when pg_catalog.pg_relation_size(c.oid) = 0 then 0 end)::bigint
           from pg_catalog.pg_class c where c.oid = u.rel and c.relkind = 'r') as density
      from (select coalesce(bool_or(a.attname = 'vt'), false) as has_vt_index,
                   coalesce(bool_or(a.attname = 'msg_id'), false) as has_id_index
              from pg_catalog.pg_index i
              join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
             where i.indrelid = u.rel and i.indpred is null) ix$q$
$fn$;
comment on function queue_health._pgmq_sql_table_facts() is 'SQL text: a subquery giving, for the queue table u.rel named u.name, its vt and msg_id indexes, last_read_at column, archive table and density (plain tables); written inline into the read statement and run by _pgmq_table_facts().';
revoke execute on function queue_health._pgmq_sql_table_facts() from public, anon, authenticated;
grant execute on function queue_health._pgmq_sql_table_facts() to service_role;

create function queue_health._pgmq_table_facts(p_rel regclass, p_queue_name text)
returns table (has_vt_index boolean, has_id_index boolean, has_last_read_at boolean,
  archive regclass, density bigint)
stable
set search_path = ''
language plpgsql
as $$
begin
  -- The facts of one table, for a direct call of _sample_pgmq_queue() without them; a capture
  -- reads them for all queues at once, in the read statement, from the same text. Planned on
  -- every call (dynamic), which only direct calls pay.
  return query execute format(
    'select ft.has_vt_index, ft.has_id_index, ft.has_last_read_at, ft.archive, ft.density
       from (select $1::oid as rel, $2::text as name) u cross join lateral (%s) ft',
    queue_health._pgmq_sql_table_facts())
    using p_rel, p_queue_name;
end;
$$;
comment on function queue_health._pgmq_table_facts(regclass, text) is 'The catalog facts reading a pgmq queue table needs: its vt and msg_id indexes, last_read_at column, archive table and density (plain tables).';
revoke execute on function queue_health._pgmq_table_facts(regclass, text) from public, anon, authenticated;
grant execute on function queue_health._pgmq_table_facts(regclass, text) to service_role;

create function queue_health._pgmq_density(p_rel regclass)
returns bigint
stable
security definer
set search_path = ''
language sql
as $$
  -- The density of the table itself or the sum over the leaves of a partitioned one (null while
  -- any was never analyzed). Each is one index lookup in pg_class (offset 0 keeps it a lookup: as
  -- a join, the planner scans all of pg_class, milliseconds per queue in a database with many).
  select case when bool_and(c.density is not null) then round(sum(c.density))::bigint end
    from (select p_rel::oid as relid
          union all
          select t.relid from pg_catalog.pg_partition_tree(p_rel) t where t.isleaf) t
   cross join lateral (
         -- Each leaf as in _pgmq_sql_table_facts(): tuples per page of the last ANALYZE/VACUUM
         -- times its pages now; null while never analyzed.
         select case when c.reltuples < 0 then null
                     when c.relpages > 0 then c.reltuples / c.relpages
                       * (pg_catalog.pg_relation_size(c.oid) / pg_catalog.current_setting('block_size')::numeric)
                     when pg_catalog.pg_relation_size(c.oid) = 0 then 0 end as density
           from pg_catalog.pg_class c
          where c.oid = t.relid and c.relkind = 'r' offset 0) c
$$;
comment on function queue_health._pgmq_density(regclass) is 'Estimated row count of a (partitioned) table in O(1): reltuples/relpages of the last ANALYZE times its current pages; null while never analyzed.';
revoke execute on function queue_health._pgmq_density(regclass) from public, anon, authenticated;
grant execute on function queue_health._pgmq_density(regclass) to service_role;

create function queue_health._pgmq_sql_check()
returns text
immutable
set search_path = ''
language sql
as $fn$
  -- The first statement of a capture ($1 now, $3 the re-read interval; $2 unused): finds every
  -- queue and tells the unchanged ones, whose snapshots it repeats; the read statement
  -- (_pgmq_sql_read()) reads the others and runs only when there are any. Split so that a
  -- capture in a new session (pg_cron's) plans the catalog joins of the reads only when some
  -- queue changed. Each queue table, its statistics and the previous cursor come from joins
  -- over the catalogs, which never fail for a table dropped meanwhile; its msg_id sequence from
  -- the cursor (an unchanged queue only).
  --
  -- Unchanged since the previous snapshot (docs/metrics.md): the same statistics fingerprint
  -- (the table's relfilenode, which TRUNCATE changes, and its count of inserted, updated and
  -- deleted rows, this session's not yet reported ones included; null for partitioned tables,
  -- whose statistics are their partitions'), the same number of messages ever sent (the
  -- sequence, read for these queues only: nextval is immediate and not transactional, so a send
  -- is never missed whatever the statistics say), no message due to become visible since
  -- (next_vt), and read less than $3 ago (unchanged_reread_interval, or five times it while no
  -- session runs a long statement: _reread_interval()), because the statistics reach the shared
  -- counters only when a statement has ended. Such a queue repeats its previous snapshot without
  -- its table being opened. Returns the unchanged queues' samples, then the names, tables,
  -- fingerprints and previous cursors of the others. Text run with EXECUTE, because pgmq.meta
  -- may not exist when this is created (or linted).
  select $q$
    with f as (
      select m.name, c.oid as rel,
        -- The statistics fingerprint (its relfilenode and its count of rows inserted, updated
        -- and deleted, this session's not yet reported ones included), written out here rather
        -- than as a function: a function is inlined only without a SET clause.
        case when c.relkind = 'r' then c.relfilenode::text || ':' || (
            pg_catalog.pg_stat_get_tuples_inserted(c.oid) + pg_catalog.pg_stat_get_tuples_updated(c.oid)
          + pg_catalog.pg_stat_get_tuples_deleted(c.oid)
          + pg_catalog.pg_stat_get_xact_tuples_inserted(c.oid) + pg_catalog.pg_stat_get_xact_tuples_updated(c.oid)
          + pg_catalog.pg_stat_get_xact_tuples_deleted(c.oid))::text end
          as fingerprint,
        -- The previous cursor as stored (its time: cursor.at, else last_seen_at); the read queues
        -- get it with that time merged in (prev, below), the others do not need to.
        case when jsonb_typeof(q.cursor) = 'object' then q.cursor end as cur, q.last_seen_at
      from (select m.queue_name::text as name from pgmq.meta m) m
      -- The tables by name (one hash join with pg_class, not a name lookup per queue).
      join pg_catalog.pg_class c
        on c.relnamespace = 'pgmq'::regnamespace and c.relname = 'q_' || lower(m.name)
       and c.relkind in ('r', 'p')
      left join queue_health.queue q
        on q.source = 'pgmq' and q.source_schema = 'pgmq' and q.queue_name = m.name
    ),
    u as (
      select f.*,
        -- The sequence as the previous read found it (cursor.seq), while the table is the same
        -- relation (cursor.rel): no catalog lookup for it. A stale one fails the statement, and
        -- the retry below reads every queue, which records the current one.
        case when f.fingerprint is not null and $3 > interval '0'
               and f.cur ->> 'fingerprint' = f.fingerprint
               and f.cur ?& array['sent', 'ready', 'in_flight', 'delayed', 'next_vt', 'read_at',
                                   'rel', 'seq', 'seq_start', 'seq_increment']
               and (f.cur ->> 'rel')::oid = f.rel
               and (f.cur ->> 'seq') is not null
               and coalesce((f.cur ->> 'next_vt')::timestamptz, 'infinity') > $1
               and $1 >= coalesce((f.cur ->> 'at')::timestamptz, f.last_seen_at)
               and $1 - (f.cur ->> 'read_at')::timestamptz < $3
          then (pg_catalog.pg_sequence_last_value((f.cur ->> 'seq')::oid::regclass)
                - (f.cur ->> 'seq_start')::bigint) / (f.cur ->> 'seq_increment')::bigint + 1
                 = (f.cur ->> 'sent')::bigint
          else false end as unchanged
      from f
    )
    -- The unchanged queues' samples (columns in the order of queue_health.sample), and what
    -- v_read needs of the others.
    select coalesce(array_agg(row('pgmq', 'pgmq', u.name, v.ready, v.in_flight, v.delayed,
        v.ready + v.in_flight + v.delayed, v.depth_estimated,
        case when v.ready > 0 then coalesce(greatest(extract(epoch from $1 - v.oldest_vt), 0), 0)
             else 0 end,
        0, 0, 0, 0, 0, null, null, null, null, 0,
        u.cur || jsonb_build_object('at', $1, 'archived', 0, 'in_flight_vt_max',
          greatest(coalesce((u.cur ->> 'in_flight_vt_max')::timestamptz, '-infinity'), $1)),
        null)::queue_health.sample) filter (where u.unchanged), '{}'),
      array_agg(u.name) filter (where not u.unchanged),
      array_agg(u.rel) filter (where not u.unchanged),
      array_agg(u.fingerprint) filter (where not u.unchanged),
      array_agg(case when u.cur is not null then jsonb_build_object('at', u.last_seen_at) || u.cur end)
        filter (where not u.unchanged)
    from u
    cross join lateral (
      select (u.cur ->> 'ready')::bigint as ready, (u.cur ->> 'in_flight')::bigint as in_flight,
        (u.cur ->> 'delayed')::bigint as delayed,
        not coalesce((u.cur ->> 'exact')::boolean, false) as depth_estimated,
        (u.cur ->> 'oldest_vt')::timestamptz as oldest_vt) v
  $q$
$fn$;
comment on function queue_health._pgmq_sql_check() is 'SQL text: the first statement of a pgmq capture, which finds every queue, repeats the snapshots of those unchanged since the previous capture and lists the others.';
revoke execute on function queue_health._pgmq_sql_check() from public, anon, authenticated;
grant execute on function queue_health._pgmq_sql_check() to service_role;

create function queue_health._pgmq_sql_read()
returns text
immutable
set search_path = ''
language sql
as $fn$
  -- The second statement of a capture: reads the queues the check statement listed ($3 names,
  -- $4 tables, $5 fingerprints, $6 previous cursors; $1 now, $2 exact_count_limit, $7 whether
  -- big queues' estimates may be prepared statements), one call of _sample_pgmq_queue() each,
  -- which contains any failure to that queue. The table facts are _pgmq_sql_table_facts()
  -- written inline, not a call of _pgmq_table_facts(): a function with a SET clause (which
  -- Supabase's advisor asks of every function) is never inlined, and calling it once per queue
  -- made a capture of many changed queues measurably slower (docs/benchmarks.md, "Rerun after
  -- issues 18 and 19").
  select pg_catalog.format($q$
    select coalesce(array_agg(x), '{}')
    from unnest($3::text[], $4::oid[], $5::text[], $6::jsonb[]) u(name, rel, fingerprint, prev)
    cross join lateral (%s) ft
    -- The msg_id identity (or serial) sequence.
    left join lateral (
      select sq.seqrelid, sq.seqstart, sq.seqincrement
        from pg_catalog.pg_attribute a
        join pg_catalog.pg_depend d
          on d.refclassid = 'pg_catalog.pg_class'::regclass and d.refobjid = u.rel
         and d.refobjsubid = a.attnum and d.classid = 'pg_catalog.pg_class'::regclass
         and d.deptype in ('a', 'i')
        join pg_catalog.pg_sequence sq on sq.seqrelid = d.objid
       where a.attrelid = u.rel and a.attname = 'msg_id'
       limit 1) sq on true
    cross join lateral queue_health._sample_pgmq_queue(u.name, u.rel::regclass, sq.seqrelid::regclass,
      sq.seqstart, sq.seqincrement, u.fingerprint, $1, $2, u.prev, ft.has_vt_index,
      ft.has_id_index, ft.has_last_read_at, ft.archive, ft.density, $7) x
    where x.source is not null
  $q$, queue_health._pgmq_sql_table_facts())
$fn$;
comment on function queue_health._pgmq_sql_read() is 'SQL text: the second statement of a pgmq capture, which samples each listed queue through _sample_pgmq_queue() with its table facts (_pgmq_sql_table_facts(), inline).';
revoke execute on function queue_health._pgmq_sql_read() from public, anon, authenticated;
grant execute on function queue_health._pgmq_sql_read() to service_role;

create function queue_health._pgmq_sql_sequence_state(p_seq regclass)
returns text
stable
set search_path = ''
language plpgsql
as $$
begin
  -- A sequence's last_value and is_called, read from the sequence itself (what
  -- pg_sequence_last_value() cannot say of one never called).
  return format('select last_value, is_called from %s', p_seq);
end;
$$;
comment on function queue_health._pgmq_sql_sequence_state(regclass) is 'SQL text: the last_value and is_called of the sequence p_seq.';
revoke execute on function queue_health._pgmq_sql_sequence_state(regclass) from public, anon, authenticated;
grant execute on function queue_health._pgmq_sql_sequence_state(regclass) to service_role;

create function queue_health._pgmq_sql_count_by_vt(p_rel regclass, p_has_last_read_at boolean)
returns text[]
stable
set search_path = ''
language plpgsql
as $$
begin
  -- The count through the vt index: two statements, each planned cheaply (one statement with
  -- lateral parts costs more to plan than these two together; docs/benchmarks.md), built by one
  -- call: every queue read runs them, and each call of a function with a SET clause costs more
  -- than the format() it makes.
  -- [1] the ready messages (vt <= $1), at most $2 of them: index-only and in vt order, so the
  --     first is the longest-ready message (exact at any size); returns count, min(vt).
  -- [2] the waiting messages (vt > $1), at most $2: count, first vt, in flight (read before),
  --     redelivered since the previous snapshot and the latest in-flight vt. A redelivery is a
  --     read of a message that had been read before (read_ct > 1 while in flight); it started
  --     since the previous snapshot when last_read_at (pgmq 1.10+) is later than that snapshot
  --     ($3), without last_read_at when its vt is later than the latest in-flight vt seen then
  --     ($4; exact while a queue's consumers use one visibility timeout). Only the columns
  --     needed are read: never message, headers, ...
  return array[
    format(
    'select count(*), min(vt) from (select vt from %s where vt <= $1 order by vt limit $2) s',
      p_rel),
    format(
          'select count(*), min(vt),
                  count(*) filter (where read_ct > 0),
                  count(*) filter (where read_ct > 1 and %s),
                  max(vt) filter (where read_ct > 0)
             from (select %s from %s where vt > $1 order by vt limit $2) s',
      case when p_has_last_read_at then 'last_read_at > $3' else 'vt > $4' end,
      case when p_has_last_read_at then 'read_ct, vt, last_read_at' else 'read_ct, vt' end,
      p_rel)];
end;
$$;
comment on function queue_health._pgmq_sql_count_by_vt(regclass, boolean) is 'SQL texts of the count of the queue table p_rel through its vt index ($1 now, $2 the budget, $3/$4 the previous snapshot): [1] count and first vt of the ready messages, [2] count, first vt, in flight, redelivered and latest in-flight vt of the waiting ones.';
revoke execute on function queue_health._pgmq_sql_count_by_vt(regclass, boolean) from public, anon, authenticated;
grant execute on function queue_health._pgmq_sql_count_by_vt(regclass, boolean) to service_role;

create function queue_health._pgmq_sql_first_vt(p_rel regclass, p_ready boolean)
returns text
stable
set search_path = ''
language plpgsql
as $$
begin
  -- One entry of the vt index: the first ready message's vt (p_ready), or the first waiting
  -- one's, the next to become visible ($1 now).
  return format('select vt from %s where vt %s $1 order by vt limit 1',
    p_rel, case when p_ready then '<=' else '>' end);
end;
$$;
comment on function queue_health._pgmq_sql_first_vt(regclass, boolean) is 'SQL text: the vt of the first ready message (p_ready) or of the first waiting one ($1 now) of the queue table p_rel.';
revoke execute on function queue_health._pgmq_sql_first_vt(regclass, boolean) from public, anon, authenticated;
grant execute on function queue_health._pgmq_sql_first_vt(regclass, boolean) to service_role;

create function queue_health._pgmq_sql_count_rows(p_rel regclass, p_has_last_read_at boolean)
returns text
stable
set search_path = ''
language plpgsql
as $$
begin
  -- Without a vt index (pg_partman-partitioned queues): at most $2 rows in physical order, split
  -- as _pgmq_sql_count_by_vt() splits the waiting ones. Returns scanned, ready, in flight,
  -- redelivered, latest in-flight vt, first ready vt, first waiting vt.
  return format(
          'select count(*), count(*) filter (where vt <= $1),
                  count(*) filter (where vt > $1 and read_ct > 0),
                  count(*) filter (where vt > $1 and read_ct > 1 and %s),
                  max(vt) filter (where vt > $1 and read_ct > 0),
                  min(vt) filter (where vt <= $1),
                  min(vt) filter (where vt > $1)
             from (select %s from %s limit $2) s',
    case when p_has_last_read_at then 'last_read_at > $3' else 'vt > $4' end,
    case when p_has_last_read_at then 'read_ct, vt, last_read_at' else 'read_ct, vt' end,
    p_rel);
end;
$$;
comment on function queue_health._pgmq_sql_count_rows(regclass, boolean) is 'SQL text: the split (ready, in flight, redelivered, first vts) of at most $2 rows of the queue table p_rel in physical order ($1 now, $3/$4 the previous snapshot), for tables without a vt index.';
revoke execute on function queue_health._pgmq_sql_count_rows(regclass, boolean) from public, anon, authenticated;
grant execute on function queue_health._pgmq_sql_count_rows(regclass, boolean) to service_role;

create function queue_health._pgmq_sql_sample(p_rel regclass, p_has_last_read_at boolean,
  p_with_ends boolean, p_has_id_index boolean)
returns text
stable
set search_path = ''
language plpgsql
as $$
begin
  -- A block sample (tablesample system, $2 percent, seed $5) split as _pgmq_sql_count_rows()
  -- splits its rows: count, ready, in flight, redelivered, latest in-flight vt. p_with_ends puts
  -- both ends of the msg_id key first (two index lookups; null::bigint without the index), so
  -- that the range and the sample are one statement.
  return format(
            'select %scount(*), count(*) filter (where vt <= $1),
                    count(*) filter (where vt > $1 and read_ct > 0),
                    count(*) filter (where vt > $1 and read_ct > 1 and %s),
                    max(vt) filter (where vt > $1 and read_ct > 0)
               from (select %s from %s tablesample system ($2) repeatable ($5)) s',
    case when not p_with_ends then ''
         when p_has_id_index then format(
           '(select msg_id from %1$s order by msg_id limit 1), '
           '(select msg_id from %1$s order by msg_id desc limit 1), ', p_rel)
         else 'null::bigint, null::bigint, ' end,
    case when p_has_last_read_at then 'last_read_at > $3' else 'vt > $4' end,
    case when p_has_last_read_at then 'read_ct, vt, last_read_at' else 'read_ct, vt' end,
    p_rel);
end;
$$;
comment on function queue_health._pgmq_sql_sample(regclass, boolean, boolean, boolean) is 'SQL text: a block sample ($2 percent, seed $5) of the queue table p_rel split into ready, in flight and redelivered ($1 now, $3/$4 the previous snapshot), after both ends of its msg_id key when p_with_ends.';
revoke execute on function queue_health._pgmq_sql_sample(regclass, boolean, boolean, boolean) from public, anon, authenticated;
grant execute on function queue_health._pgmq_sql_sample(regclass, boolean, boolean, boolean) to service_role;

create function queue_health._pgmq_sql_id_ends(p_rel regclass)
returns text
stable
set search_path = ''
language plpgsql
as $$
begin
  -- Both ends of the msg_id key (two index lookups).
  return format('select (select msg_id from %1$s order by msg_id limit 1),
                                   (select msg_id from %1$s order by msg_id desc limit 1)', p_rel);
end;
$$;
comment on function queue_health._pgmq_sql_id_ends(regclass) is 'SQL text: the lowest and highest msg_id of the queue table p_rel.';
revoke execute on function queue_health._pgmq_sql_id_ends(regclass) from public, anon, authenticated;
grant execute on function queue_health._pgmq_sql_id_ends(regclass) to service_role;

create function queue_health._pgmq_sql_estimate(p_rel regclass, p_has_last_read_at boolean)
returns text
stable
set search_path = ''
language plpgsql
as $$
begin
  -- A big queue estimated in one statement: both ends of the msg_id key, the first ready and the
  -- first waiting entry of the vt index, and the block sample of _pgmq_sql_sample() ($1 now, $2
  -- percent, $3/$4 the previous snapshot, $5 seed). Run as a prepared statement named after
  -- this text (_pgmq_estimate_directly()): the text must not change between captures.
  return format(
          'select (select msg_id from %1$s order by msg_id limit 1),
                  (select msg_id from %1$s order by msg_id desc limit 1),
                  (select vt from %1$s where vt <= $1 order by vt limit 1),
                  (select vt from %1$s where vt > $1 order by vt limit 1),
                  count(*), count(*) filter (where vt <= $1),
                  count(*) filter (where vt > $1 and read_ct > 0),
                  count(*) filter (where vt > $1 and read_ct > 1 and %2$s),
                  max(vt) filter (where vt > $1 and read_ct > 0)
             from (select %3$s from %1$s tablesample system ($2) repeatable ($5)) s',
    p_rel,
    case when p_has_last_read_at then 'last_read_at > $3' else 'vt > $4' end,
    case when p_has_last_read_at then 'read_ct, vt, last_read_at' else 'read_ct, vt' end);
end;
$$;
comment on function queue_health._pgmq_sql_estimate(regclass, boolean) is 'SQL text: the one-statement estimate of a big pgmq queue table p_rel (msg_id ends, first ready and waiting vt, block sample split); its md5 names the prepared statement.';
revoke execute on function queue_health._pgmq_sql_estimate(regclass, boolean) from public, anon, authenticated;
grant execute on function queue_health._pgmq_sql_estimate(regclass, boolean) to service_role;

create function queue_health._pgmq_sql_count_archived(p_archive regclass)
returns text
stable
set search_path = ''
language plpgsql
as $$
begin
  -- Archived between the previous snapshot ($1) and now ($2), at most $3 (archived_at index).
  return format(
    'select count(*) from (select 1 from %s where archived_at > $1 and archived_at <= $2 limit $3) s',
    p_archive);
end;
$$;
comment on function queue_health._pgmq_sql_count_archived(regclass) is 'SQL text: how many messages the archive table p_archive received after $1 up to $2, at most $3.';
revoke execute on function queue_health._pgmq_sql_count_archived(regclass) from public, anon, authenticated;
grant execute on function queue_health._pgmq_sql_count_archived(regclass) to service_role;

-- The per-queue steps. The counting steps pass one state along (queue_health._pgmq_count_state),
-- which _sample_pgmq_queue() turns into the sample and its cursor. They run as their caller,
-- with its lock_timeout and plan_cache_mode (_sample_pgmq() sets both), and with its
-- search_path, so the prepared statements keep their plans.

create type queue_health._pgmq_count_state as (
  ready bigint,
  waiting bigint,                 -- vt > now: in flight or delayed
  in_flight bigint,
  delayed bigint,
  redelivered bigint,             -- in flight with read_ct > 1, read since the previous snapshot
  in_flight_vt_max timestamptz,
  oldest_vt timestamptz,          -- the first ready message's vt
  next_vt timestamptz,            -- the first waiting message's vt: the next to become visible
  exact boolean,
  scanned bigint,                 -- rows read in physical order (tables without a vt index)
  scan text                       -- 'vt_index', 'bounded_rows' or 'estimate' (the cursor's scan)
);
comment on type queue_health._pgmq_count_state is 'What counting one pgmq queue table found, passed between the counting steps of _sample_pgmq_queue() (_pgmq_count_messages() and the functions it calls).';

create function queue_health._pgmq_count_bounded_rows(
  p_rel regclass, p_has_last_read_at boolean, p_now timestamptz, p_limit bigint,
  p_prev_at timestamptz, p_prev_vt_max timestamptz)
returns queue_health._pgmq_count_state
volatile
set search_path = ''
language plpgsql
as $$
declare
  c queue_health._pgmq_count_state;
begin
  -- No vt index (pg_partman-partitioned queues): look at no more than p_limit rows in physical
  -- order. Exact when the table holds fewer rows than that.
  c.scan := 'bounded_rows';
  execute queue_health._pgmq_sql_count_rows(p_rel, p_has_last_read_at)
    using p_now, p_limit, p_prev_at, p_prev_vt_max
    into c.scanned, c.ready, c.in_flight, c.redelivered, c.in_flight_vt_max, c.oldest_vt, c.next_vt;
  c.exact := c.scanned < p_limit;
  c.waiting := c.scanned - c.ready;
  c.delayed := c.waiting - c.in_flight;
  if not c.exact then
    -- The rows not read may become visible at any time: never treat this queue as unchanged.
    c.next_vt := p_now;
  end if;
  return c;
end;
$$;
comment on function queue_health._pgmq_count_bounded_rows(regclass, boolean, timestamptz, bigint, timestamptz, timestamptz) is 'Counts at most p_limit rows of a pgmq queue table without a vt index, in physical order: exact below the bound; above it, what was counted, for _pgmq_estimate_above_limit().';
revoke execute on function queue_health._pgmq_count_bounded_rows(regclass, boolean, timestamptz, bigint, timestamptz, timestamptz) from public, anon, authenticated;
grant execute on function queue_health._pgmq_count_bounded_rows(regclass, boolean, timestamptz, bigint, timestamptz, timestamptz) to service_role;

create function queue_health._pgmq_estimate_directly(
  p_rel regclass, p_has_last_read_at boolean, p_density bigint, p_now timestamptz,
  p_limit bigint, p_prev_at timestamptz, p_prev_vt_max timestamptz, p_prepare boolean)
returns queue_health._pgmq_count_state
volatile
set search_path = ''
language plpgsql
as $$
declare
  -- About 1000 rows of blocks; the seed keeps the same blocks for an hour (they stay in shared
  -- buffers between captures instead of costing random reads every time).
  v_pct real := least(100, 100.0 * 1000 / p_density)::real;
  v_seed float8 := floor(extract(epoch from p_now) / 3600);
  v_stmt text := queue_health._pgmq_sql_estimate(p_rel, p_has_last_read_at);
  v_name text;
  v_args text;
  v_min_id bigint;
  v_max_id bigint;
  v_total bigint;
  v_s_all bigint;
  v_s_ready bigint;
  v_s_in_flight bigint;
  v_s_redelivered bigint;
  c queue_health._pgmq_count_state;
begin
  -- A queue (with both indexes) that was far above the bound at the previous snapshot and still
  -- is by its density, estimated in one statement without counting up to the bound first.
  -- Returns null (the caller counts instead) when the msg_id range says it has shrunk
  -- meanwhile, or the sample is empty.
  if p_prepare then
    -- Parsing and planning this statement cost about as much as running it. Prepared once per
    -- session under a name derived from its text, its generic plan (_sample_pgmq() sets
    -- plan_cache_mode) serves the session's later captures: the pg_cron job's runner captures
    -- six times a minute in one session. EXECUTE cannot take the USING parameters: they go in as
    -- literals. A statement this session does not hold (its first capture, or after DISCARD ALL
    -- / DEALLOCATE) is prepared when EXECUTE says so; one whose table was dropped and created
    -- again is planned again by PostgreSQL itself.
    v_name := 'queue_health_' || md5(v_stmt);
    v_args := format('%L, %L, %L, %L, %L', p_now, v_pct, p_prev_at, p_prev_vt_max, v_seed);
    begin
      execute format('execute %I(%s)', v_name, v_args)
        into v_min_id, v_max_id, c.oldest_vt, c.next_vt,
          v_s_all, v_s_ready, v_s_in_flight, v_s_redelivered, c.in_flight_vt_max;
    exception when invalid_sql_statement_name then
      execute format('prepare %I (timestamptz, real, timestamptz, timestamptz, float8) as %s',
        v_name, v_stmt);
      execute format('execute %I(%s)', v_name, v_args)
        into v_min_id, v_max_id, c.oldest_vt, c.next_vt,
          v_s_all, v_s_ready, v_s_in_flight, v_s_redelivered, c.in_flight_vt_max;
    end;
  else
    execute v_stmt
      using p_now, v_pct, p_prev_at, p_prev_vt_max, v_seed
      into v_min_id, v_max_id, c.oldest_vt, c.next_vt,
        v_s_all, v_s_ready, v_s_in_flight, v_s_redelivered, c.in_flight_vt_max;
  end if;
  v_total := least(v_max_id - v_min_id + 1, p_density);
  if not (v_total >= 2 * p_limit and v_s_all > 0) then
    return null;
  end if;
  c.scan := 'estimate';
  c.exact := false;
  c.ready := round(v_total::numeric * v_s_ready / v_s_all)::bigint;
  c.in_flight := round(v_total::numeric * v_s_in_flight / v_s_all)::bigint;
  c.redelivered := round(v_total::numeric * v_s_redelivered / v_s_all)::bigint;
  c.delayed := greatest(v_total - c.ready - c.in_flight, 0);
  return c;
end;
$$;
comment on function queue_health._pgmq_estimate_directly(regclass, boolean, bigint, timestamptz, bigint, timestamptz, timestamptz, boolean) is 'Estimates a big pgmq queue table (density p_density) in one statement, a prepared statement of the session when p_prepare; null when the queue no longer looks big.';
revoke execute on function queue_health._pgmq_estimate_directly(regclass, boolean, bigint, timestamptz, bigint, timestamptz, timestamptz, boolean) from public, anon, authenticated;
grant execute on function queue_health._pgmq_estimate_directly(regclass, boolean, bigint, timestamptz, bigint, timestamptz, timestamptz, boolean) to service_role;

create function queue_health._pgmq_estimate_above_limit(
  p_rel regclass, p_has_vt_index boolean, p_has_id_index boolean, p_has_last_read_at boolean,
  p_density bigint, p_now timestamptz, p_limit bigint, p_prev_at timestamptz,
  p_prev_vt_max timestamptz, p_count queue_health._pgmq_count_state)
returns queue_health._pgmq_count_state
volatile
set search_path = ''
language plpgsql
as $$
declare
  c queue_health._pgmq_count_state := p_count;
  v_density bigint := coalesce(p_density, queue_health._pgmq_density(p_rel));
  v_counted bigint := case when p_has_vt_index then p_count.ready + p_count.waiting
                           else p_count.scanned end;
  v_seed float8 := floor(extract(epoch from p_now) / 3600);
  v_pct real;
  v_min_id bigint;
  v_max_id bigint;
  v_range bigint;
  v_total bigint;
  v_s_all bigint;
  v_s_ready bigint;
  v_s_in_flight bigint;
  v_s_redelivered bigint;
  v_s_vt_max timestamptz;
begin
  -- Above the bound: estimate the total, then split it. Whatever was counted exactly stays
  -- exact; the rest is split in the proportions of a block sample (tablesample system) of about
  -- 1000 rows: a constant number of pages whatever the queue's size, the same pages for an hour
  -- (v_seed). The total is the lesser of the msg_id range (the two ends of the primary key:
  -- exact when the live ids are contiguous, as in a FIFO queue consumed in order; an
  -- over-estimate when messages in the middle went first) and the density (_pgmq_density()).
  -- That density is unknown while a table was never analyzed (reltuples = -1): then the range
  -- alone, or EXPLAIN's guess without one.
  if v_density is not null then
    -- Sized by the density, the range and the sample are one statement.
    v_pct := least(100, 100.0 * 1000 / greatest(v_density, v_counted, 1))::real;
    execute queue_health._pgmq_sql_sample(p_rel, p_has_last_read_at, true, p_has_id_index)
      using p_now, v_pct, p_prev_at, p_prev_vt_max, v_seed
      into v_min_id, v_max_id, v_s_all, v_s_ready, v_s_in_flight, v_s_redelivered, v_s_vt_max;
    v_range := v_max_id - v_min_id + 1;
    v_total := greatest(coalesce(least(v_range, v_density), v_density), v_counted);
  else
    if p_has_id_index then
      execute queue_health._pgmq_sql_id_ends(p_rel) into v_min_id, v_max_id;
      v_range := v_max_id - v_min_id + 1;
    end if;
    v_total := greatest(coalesce(v_range, queue_health._planner_rows(p_rel), 0), v_counted);
    v_pct := least(100, 100.0 * 1000 / greatest(v_total, 1))::real;
    execute queue_health._pgmq_sql_sample(p_rel, p_has_last_read_at, false, p_has_id_index)
      using p_now, v_pct, p_prev_at, p_prev_vt_max, v_seed
      into v_s_all, v_s_ready, v_s_in_flight, v_s_redelivered, v_s_vt_max;
  end if;
  if p_has_vt_index then
    -- The waiting messages were only counted: what we know of them comes from the sample.
    c.in_flight := 0;
    c.redelivered := 0;
    c.in_flight_vt_max := v_s_vt_max;
  end if;
  if v_s_all = 0 then
    -- An empty block sample (tiny tables): use the rows counted above.
    v_s_all := c.ready + c.waiting;
    v_s_ready := c.ready;
    v_s_in_flight := c.in_flight;
    v_s_redelivered := c.redelivered;
  end if;
  if p_has_vt_index and c.ready < p_limit then
    -- ready is exact; the rest are waiting, split by the sample.
    c.waiting := greatest(v_total - c.ready, c.waiting);
    if v_s_all - v_s_ready > 0 then
      c.in_flight := round(c.waiting::numeric * v_s_in_flight / (v_s_all - v_s_ready))::bigint;
      c.redelivered := round(c.waiting::numeric * v_s_redelivered / (v_s_all - v_s_ready))::bigint;
    end if;
    c.delayed := c.waiting - c.in_flight;
  else
    c.ready := greatest(round(v_total::numeric * v_s_ready / greatest(v_s_all, 1))::bigint, c.ready);
    c.in_flight := round(v_total::numeric * v_s_in_flight / greatest(v_s_all, 1))::bigint;
    c.redelivered := greatest(c.redelivered,
      round(v_total::numeric * v_s_redelivered / greatest(v_s_all, 1))::bigint);
    c.delayed := greatest(v_total - c.ready - c.in_flight, 0);
  end if;
  return c;
end;
$$;
comment on function queue_health._pgmq_estimate_above_limit(regclass, boolean, boolean, boolean, bigint, timestamptz, bigint, timestamptz, timestamptz, queue_health._pgmq_count_state) is 'Completes the count p_count of a pgmq queue table above the bound: estimates its total (msg_id range, density or the planner) and splits what was not counted by a block sample.';
revoke execute on function queue_health._pgmq_estimate_above_limit(regclass, boolean, boolean, boolean, bigint, timestamptz, bigint, timestamptz, timestamptz, queue_health._pgmq_count_state) from public, anon, authenticated;
grant execute on function queue_health._pgmq_estimate_above_limit(regclass, boolean, boolean, boolean, bigint, timestamptz, bigint, timestamptz, timestamptz, queue_health._pgmq_count_state) to service_role;

create function queue_health._pgmq_count_messages(
  p_rel regclass, p_has_vt_index boolean, p_has_id_index boolean, p_has_last_read_at boolean,
  p_density bigint, p_now timestamptz, p_limit bigint, p_prev jsonb, p_prepare boolean)
returns queue_health._pgmq_count_state
volatile
set search_path = ''
language plpgsql
as $$
declare
  v_prev_at timestamptz := (p_prev ->> 'at')::timestamptz;
  v_prev_vt_max timestamptz := coalesce((p_prev ->> 'in_flight_vt_max')::timestamptz, v_prev_at, '-infinity');
  v_density bigint := p_density;
  v_sql text[];
  c queue_health._pgmq_count_state;
begin
  -- A queue that was far above the bound at the previous snapshot and still is by its
  -- statistics is estimated straight away (_pgmq_estimate_directly()); one that has meanwhile
  -- shrunk is counted as any other: up to the bound (through the vt index here, or
  -- _pgmq_count_bounded_rows() without one), and estimated above it
  -- (_pgmq_estimate_above_limit()). The common case, a queue below the bound with a vt index,
  -- is written here rather than as a step of its own: it runs for every queue read, and every
  -- call of a function with a SET clause (each step and builder) adds to each queue's cost.
  if p_has_vt_index and p_has_id_index and p_limit > 0
     and not coalesce((p_prev ->> 'exact')::boolean, true)
     and (p_prev ->> 'depth')::bigint >= 2 * p_limit then
    v_density := coalesce(v_density, queue_health._pgmq_density(p_rel));
    if v_density >= 2 * p_limit then
      c := queue_health._pgmq_estimate_directly(p_rel, p_has_last_read_at, v_density,
        p_now, p_limit, v_prev_at, v_prev_vt_max, p_prepare);
      if c.scan is not null then
        return c;
      end if;
    end if;
  end if;
  if p_has_vt_index then
    -- One budget for the whole queue: ready messages are counted through the vt index, then the
    -- waiting ones with what ready left of the budget, plus one entry: depth is exact exactly
    -- while the queue holds fewer than p_limit messages, and only then is the waiting part's
    -- split into in flight and delayed (read_ct is in the heap) exact. The first waiting entry
    -- is the next message to become visible.
    v_sql := queue_health._pgmq_sql_count_by_vt(p_rel, p_has_last_read_at);
    c.scan := 'vt_index';
    execute v_sql[1] using p_now, p_limit into c.ready, c.oldest_vt;
    if p_limit = 0 then
      execute queue_health._pgmq_sql_first_vt(p_rel, true) using p_now into c.oldest_vt;
    end if;
    execute v_sql[2] using p_now, greatest(p_limit - c.ready, 0) + 1, v_prev_at, v_prev_vt_max
      into c.waiting, c.next_vt, c.in_flight, c.redelivered, c.in_flight_vt_max;
    c.exact := c.ready + c.waiting < p_limit;
    if c.exact then
      c.delayed := c.waiting - c.in_flight;
    else
      c.waiting := least(c.waiting, greatest(p_limit - c.ready, 0));
      if c.next_vt is null then
        -- Ready filled the budget: the next to become visible is one more probe.
        execute queue_health._pgmq_sql_first_vt(p_rel, false) using p_now into c.next_vt;
      end if;
    end if;
  else
    c := queue_health._pgmq_count_bounded_rows(p_rel, p_has_last_read_at, p_now, p_limit,
      v_prev_at, v_prev_vt_max);
  end if;
  if not c.exact then
    c := queue_health._pgmq_estimate_above_limit(p_rel, p_has_vt_index, p_has_id_index,
      p_has_last_read_at, v_density, p_now, p_limit, v_prev_at, v_prev_vt_max, c);
  end if;
  return c;
end;
$$;
comment on function queue_health._pgmq_count_messages(regclass, boolean, boolean, boolean, bigint, timestamptz, bigint, jsonb, boolean) is 'Counts (up to p_limit) or estimates (above it) the messages of a pgmq queue table by state, from its catalog facts and previous cursor p_prev.';
revoke execute on function queue_health._pgmq_count_messages(regclass, boolean, boolean, boolean, bigint, timestamptz, bigint, jsonb, boolean) from public, anon, authenticated;
grant execute on function queue_health._pgmq_count_messages(regclass, boolean, boolean, boolean, bigint, timestamptz, bigint, jsonb, boolean) to service_role;

create function queue_health._sample_pgmq_queue(
  p_queue_name text,
  p_rel regclass,
  p_seq regclass,
  p_seq_start bigint,
  p_seq_increment bigint,
  p_fingerprint text,
  p_now timestamptz,
  p_limit bigint,
  p_prev jsonb,
  -- The table's facts, when the caller read them for all queues at once (_sample_pgmq() does):
  -- with p_has_vt_index null, all of them are looked up here.
  p_has_vt_index boolean default null,
  p_has_id_index boolean default null,
  p_has_last_read_at boolean default null,
  p_archive regclass default null,
  p_density bigint default null,
  -- Run the big-queue estimate as a prepared statement of this session
  -- (_pgmq_estimate_directly()); the caller decides, as it knows how many this session holds.
  p_prepare boolean default false
)
returns queue_health.sample
volatile
-- Not security definer, and no lock_timeout of its own: called once per queue that changed by
-- _sample_pgmq(), which is security definer with search_path = '' and lock_timeout = 500ms (a
-- queue table locked by a concurrent DROP/ALTER costs this queue its sample, not the whole
-- capture); unchanged queues never reach it. search_path is set all the same (the same value as
-- the caller's, so the prepared statements keep their plans), so that a direct caller's
-- search_path cannot change what its names mean. Every name here is schema-qualified or in
-- pg_catalog; only service_role may call it directly.
set search_path = ''
language plpgsql
as $$
-- The table, its sequence, its statistics fingerprint and (from _sample_pgmq()) its indexes,
-- columns, archive and density come from the caller, read for all queues in one statement; a
-- direct call without them looks them up here. Reading the table costs two planned statements
-- while the queue holds fewer than p_limit messages, one or two more above that.
declare
  v_started timestamptz := clock_timestamp();
  v_sample queue_health.sample;
  v_has_vt_index boolean := p_has_vt_index;
  v_has_id_index boolean := coalesce(p_has_id_index, false);
  v_has_last_read_at boolean := coalesce(p_has_last_read_at, false);
  v_archive regclass := p_archive;
  v_density bigint := p_density;
  v_count queue_health._pgmq_count_state;
  v_last_value bigint;
  v_is_called boolean := true;
  v_sent bigint;
  v_archived bigint;
  v_prev_at timestamptz := (p_prev ->> 'at')::timestamptz;
  v_prev_sent bigint := (p_prev ->> 'sent')::bigint;
  v_prev_depth bigint := coalesce((p_prev ->> 'depth')::bigint, 0);
begin
  v_sample.source := 'pgmq';
  v_sample.source_schema := 'pgmq';
  v_sample.queue_name := p_queue_name;
  begin
    -- Messages ever sent: the msg_id identity sequence (respecting is_called, start and step).
    if p_seq is not null then
      v_last_value := pg_catalog.pg_sequence_last_value(p_seq);
      if v_last_value is null then
        -- Never called (or reset with is_called false): last_value is the next value to hand out.
        execute queue_health._pgmq_sql_sequence_state(p_seq) into v_last_value, v_is_called;
      end if;
      v_sent := (v_last_value - p_seq_start) / p_seq_increment + case when v_is_called then 1 else 0 end;
    end if;
    if p_has_vt_index is null then
      select f.has_vt_index, f.has_id_index, f.has_last_read_at, f.archive, f.density
        into v_has_vt_index, v_has_id_index, v_has_last_read_at, v_archive, v_density
        from queue_health._pgmq_table_facts(p_rel, p_queue_name) f;
    end if;

    v_count := queue_health._pgmq_count_messages(p_rel, v_has_vt_index, v_has_id_index,
      v_has_last_read_at, v_density, p_now, p_limit, p_prev, p_prepare);

    v_sample.ready := v_count.ready;
    v_sample.in_flight := v_count.in_flight;
    v_sample.delayed := v_count.delayed;
    v_sample.depth := v_count.ready + v_count.in_flight + v_count.delayed;
    v_sample.depth_estimated := not v_count.exact;
    v_sample.oldest_ready_age_s := coalesce(greatest(extract(epoch from p_now - v_count.oldest_vt), 0), 0);

    if p_prev is null then
      -- First sight: nothing happened "since the previous snapshot".
      v_sample.enqueued := 0;
      v_sample.completed := 0;
      v_sample.retried := 0;
    else
      if v_sent is not null and v_prev_sent is not null and v_sent < v_prev_sent then
        -- The sequence went backwards: the queue was dropped and created again.
        v_prev_sent := 0;
        v_prev_depth := 0;
      end if;
      v_sample.enqueued := greatest(v_sent - v_prev_sent, 0);
      -- Conservation: what arrived minus what the queue grew by has left it (deleted or archived).
      v_sample.completed := greatest(v_sample.enqueued - (v_sample.depth - v_prev_depth), 0);
      v_sample.retried := v_count.redelivered;
      -- Archived since the previous snapshot (bounded, archived_at index), reported in the cursor:
      -- read only when messages left the queue (nothing left, nothing was archived).
      v_archived := 0;
      if v_archive is not null and v_sample.completed > 0 then
        execute queue_health._pgmq_sql_count_archived(v_archive)
          using v_prev_at, p_now, p_limit into v_archived;
      end if;
    end if;
    v_sample.failed := 0;
    v_sample.dead_lettered := 0;
    v_sample.cursor := jsonb_build_object(
      'v', 2,
      'at', p_now,
      'read_at', p_now,
      'sent', v_sent,
      'depth', v_sample.depth,
      'ready', v_sample.ready,
      'in_flight', v_sample.in_flight,
      'delayed', v_sample.delayed,
      'oldest_vt', case when v_sample.ready > 0 then v_count.oldest_vt end,
      'next_vt', v_count.next_vt,
      -- Reads after this snapshot get a vt beyond this (see retried).
      'in_flight_vt_max', greatest(v_count.in_flight_vt_max, p_now),
      'archived', v_archived,
      'exact', v_count.exact,
      'fingerprint', p_fingerprint,
      -- The table and its sequence, so the next capture's unchanged check needs no catalog lookup.
      'rel', p_rel::oid,
      'seq', p_seq::oid,
      'seq_start', p_seq_start,
      'seq_increment', p_seq_increment,
      'scan', v_count.scan
    );
    v_sample.sample_ms := extract(epoch from clock_timestamp() - v_started) * 1000;
    return v_sample;
  exception
    when undefined_table then
      return null; -- dropped while we sampled it
    when others then
      if to_regclass(format('pgmq.%I', 'q_' || lower(p_queue_name))) is null then
        return null; -- dropped concurrently ("could not open relation"): gone, not broken
      end if;
      return row('pgmq', 'pgmq', p_queue_name, null, null, null, null, null, null, null, null,
        null, null, null, null, null, null, null, extract(epoch from clock_timestamp() - v_started) * 1000, p_prev,
        sqlstate || ': ' || sqlerrm)::queue_health.sample;
  end;
end;
$$;
comment on function queue_health._sample_pgmq_queue(text, regclass, regclass, bigint, bigint, text, timestamptz, bigint, jsonb, boolean, boolean, boolean, regclass, bigint, boolean) is 'Samples one pgmq queue by reading its table (see docs/metrics.md), from the catalog facts _sample_pgmq() read for it. Returns null when the queue no longer exists, a sample with error set when sampling failed; never raises.';
revoke execute on function queue_health._sample_pgmq_queue(text, regclass, regclass, bigint, bigint, text, timestamptz, bigint, jsonb, boolean, boolean, boolean, regclass, bigint, boolean) from public, anon, authenticated;
grant execute on function queue_health._sample_pgmq_queue(text, regclass, regclass, bigint, bigint, text, timestamptz, bigint, jsonb, boolean, boolean, boolean, regclass, bigint, boolean) to service_role;

create function queue_health._sample_pgmq(p_now timestamptz default now())
returns setof queue_health.sample
volatile
security definer
set search_path = ''
-- Never wait long behind DDL on pgmq.meta or a queue table: this applies to every queue's
-- sampling too (the per-queue function inherits it), so one locked queue costs at most this.
set lock_timeout = '500ms'
-- The big-queue estimates run as prepared statements of the session (_pgmq_estimate_directly()):
-- with generic plans from the first execution on, they are never planned again in the session.
-- The statements it runs itself are dynamic (one-shot, always custom plans) or have no parameter
-- a plan could fold.
set plan_cache_mode = force_generic_plan
language plpgsql
as $$
declare
  v_settings jsonb := queue_health._source_settings();
  v_limit bigint := (v_settings ->> 'exact_count_limit')::bigint;
  v_reread interval;
  v_samples queue_health.sample[];
  v_error text;
  v_started timestamptz;
  -- Two statements (_pgmq_sql_check(), _pgmq_sql_read()): the first finds every queue and
  -- repeats the unchanged ones' snapshots, the second reads the others, only when there are any.
  v_check text := queue_health._pgmq_sql_check();
  v_names text[];
  v_rels oid[];
  v_fingerprints text[];
  v_prevs jsonb[];
  v_read_samples queue_health.sample[];
  v_prepare boolean;
begin
  if to_regclass('pgmq.meta') is null then
    return; -- pgmq is not installed
  end if;
  -- The statistics must be current, not what an earlier read in this transaction cached.
  perform pg_catalog.pg_stat_clear_snapshot();
  -- Unchanged queues: see _reread_interval().
  v_reread := queue_health._reread_interval(v_settings);
  v_started := clock_timestamp();
  begin
    execute v_check into v_samples, v_names, v_rels, v_fingerprints, v_prevs
      using p_now, v_limit, v_reread;
  exception when others then
    -- The unchanged check could not read a queue's sequence (the queue being dropped, or locked
    -- for longer than lock_timeout by DDL): read every queue through _sample_pgmq_queue(), which
    -- contains such a failure to its own queue.
    get stacked diagnostics v_error = message_text;
    raise log 'queue_health: pgmq unchanged-queue check failed (%), reading every queue', v_error;
    execute v_check into v_samples, v_names, v_rels, v_fingerprints, v_prevs
      using p_now, v_limit, interval '0';
  end;
  if cardinality(v_names) > 0 then
    -- Big queues' estimates as prepared statements (one per big queue table) while the session
    -- may hold more: a database with more such queues prepares the first ones.
    v_prepare := queue_health._may_prepare();
    execute queue_health._pgmq_sql_read() into v_read_samples
      using p_now, v_limit, v_names, v_rels, v_fingerprints, v_prevs, v_prepare;
    v_samples := v_samples || v_read_samples;
  end if;
  -- What an unchanged queue (read_at earlier than this snapshot) cost is its share of the
  -- statements: their time less what the queues that were read took, evenly over the unchanged
  -- ones. Dead-letter convention: pgmq has no dead-letter queues of its own; applications move
  -- poison messages to a queue named <name>_dlq. What arrived there counts as <name>'s
  -- dead_lettered.
  return query
    with x as materialized (
      select u.*, (u.cursor ->> 'read_at')::timestamptz < p_now as unchanged
      from unnest(v_samples) u
    ),
    sh as (
      select (extract(epoch from clock_timestamp() - v_started) * 1000
              - coalesce(sum(x.sample_ms) filter (where not x.unchanged), 0))
             / nullif(count(*) filter (where x.unchanged), 0) as share
      from x
    )
    select x.source, x.source_schema, x.queue_name, x.ready, x.in_flight, x.delayed, x.depth,
      x.depth_estimated, x.oldest_ready_age_s, x.enqueued, x.completed, x.failed, x.retried,
      case when x.error is null and x.enqueued is not null and d.queue_name is not null
        then coalesce(d.enqueued, 0) else x.dead_lettered end,
      x.wait_p50_ms, x.wait_p95_ms, x.run_p50_ms, x.run_p95_ms,
      case when x.unchanged then greatest(sh.share, 0.001) else x.sample_ms end,
      x.cursor, x.error
    from x
    cross join sh
    left join x d on d.queue_name = x.queue_name || '_dlq' and d.error is null
    order by x.queue_name;
end;
$$;
comment on function queue_health._sample_pgmq(timestamptz) is 'One sample per pgmq queue (pgmq.meta), or none when pgmq is absent. Cost O(queues): index-bounded counts, exact up to settings.exact_count_limit, estimated above (depth_estimated); a queue unchanged since the previous capture is not read (settings.unchanged_reread_interval). Never raises for one queue.';
revoke execute on function queue_health._sample_pgmq(timestamptz) from public, anon, authenticated;
grant execute on function queue_health._sample_pgmq(timestamptz) to service_role;
