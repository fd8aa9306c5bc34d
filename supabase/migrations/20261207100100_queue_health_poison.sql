-- Queue Health: poison messages (issue 22). A message taken settings.poison_read_count (R) times
-- or more that is still in its queue is poison: pgmq read_ct >= R (ready or in flight); pg-boss
-- jobs not finished (retry, active) with retry_count + 1 >= R (pg-boss 10, 11 and 12 bump
-- retry_count each time they hand out a job that was started before, so retry_count + 1 is how
-- often it was taken). Both samplers report them in the sample's cursor (poison, and
-- oldest_poison_at: the enqueue / creation time of the oldest), which _capture_rows() turns into
-- metric.poison and metric.oldest_poison_age_s. Bounded: exact up to settings.exact_count_limit,
-- estimated above it; a queue with no sign of redelivery and no poison at its previous snapshot
-- is not probed again. docs/metrics.md, "Poison messages".

-- Section: settings

create or replace function queue_health._source_settings()
returns jsonb
stable
security definer
set search_path = ''
language sql
as $$
  -- The settings row's columns; the documented defaults when the row is missing.
  select jsonb_build_object(
    'exact_count_limit', coalesce(s.exact_count_limit, 10000),
    'window_read_limit', coalesce(s.window_read_limit, 2000),
    'unchanged_reread_interval', coalesce(s.unchanged_reread_interval::text, '1 minute'),
    'excluded_pgboss_schemas', coalesce(to_jsonb(s.excluded_pgboss_schemas), '["pgboss_v10"]'::jsonb),
    'pgboss_cache_max_age', coalesce(s.pgboss_cache_max_age::text, '2 minutes'),
    'poison_read_count', coalesce(s.poison_read_count, 3)
  )
  from (select) one
  left join queue_health.settings s on s.id
$$;
comment on function queue_health._source_settings() is 'The settings the samplers use (exact_count_limit, window_read_limit, unchanged_reread_interval, excluded_pgboss_schemas, pgboss_cache_max_age, poison_read_count) from queue_health.settings, with the documented defaults when its row is missing.';
revoke execute on function queue_health._source_settings() from public, anon, authenticated;
grant execute on function queue_health._source_settings() to service_role;

-- Section: pgmq

alter type queue_health._pgmq_count_state
  add attribute poison bigint,               -- read_ct >= R: counted, or estimated above the bound
  add attribute oldest_poison_at timestamptz, -- the oldest enqueued_at among the poison seen
  add attribute poison_probed boolean,       -- the ready messages' read_ct was read this time
  add attribute redelivery_seen boolean,     -- a message read twice or more is in flight
  add attribute poison_estimated boolean,    -- poison is a block sample's share times the depth
  add attribute poison_sample bigint;        -- the rows of that sample

create or replace function queue_health._pgmq_sql_count_by_vt(p_rel regclass, p_has_last_read_at boolean)
returns text[]
stable
set search_path = ''
language plpgsql
as $$
begin
  -- The count through the vt index: statements each planned cheaply, built by one call (every
  -- queue read runs them, and each call of a function with a SET clause costs more than the
  -- format() it makes).
  -- [1] the ready messages (vt <= $1), at most $2 of them: index-only and in vt order, so the
  --     first is the longest-ready message (exact at any size); returns count, min(vt).
  -- [2] the waiting messages (vt > $1), at most $2: count, first vt, in flight (read before),
  --     redelivered since the previous snapshot, the latest in-flight vt, then the poison among
  --     them (read_ct >= $5), the oldest one's enqueued_at and the highest read_ct. A
  --     redelivery is a read of a message that had been read before (read_ct > 1 while in
  --     flight); it started since the previous snapshot when last_read_at (pgmq 1.10+) is later
  --     than that snapshot ($3), without last_read_at when its vt is later than the latest
  --     in-flight vt seen then ($4; exact while a queue's consumers use one visibility timeout).
  --     These rows are read from the heap already (read_ct): the poison columns add enqueued_at.
  -- [3] [1] with the heap: the same count and first vt, and the poison among the ready
  --     messages (read_ct >= $3) with the oldest one's enqueued_at. Run instead of [1] (or after
  --     it) only when poison is possible (_pgmq_count_messages()). Only the columns needed are
  --     read: never message, headers, ...
  return array[
    format(
    'select count(*), min(vt) from (select vt from %s where vt <= $1 order by vt limit $2) s',
      p_rel),
    format(
          'select count(*), min(vt),
                  count(*) filter (where read_ct > 0),
                  count(*) filter (where read_ct > 1 and %s),
                  max(vt) filter (where read_ct > 0),
                  count(*) filter (where read_ct >= $5),
                  min(enqueued_at) filter (where read_ct >= $5),
                  max(read_ct)
             from (select %s from %s where vt > $1 order by vt limit $2) s',
      case when p_has_last_read_at then 'last_read_at > $3' else 'vt > $4' end,
      case when p_has_last_read_at then 'read_ct, vt, enqueued_at, last_read_at' else 'read_ct, vt, enqueued_at' end,
      p_rel),
    format(
          'select count(*), min(vt), count(*) filter (where read_ct >= $3),
                  min(enqueued_at) filter (where read_ct >= $3)
             from (select vt, read_ct, enqueued_at from %s where vt <= $1 order by vt limit $2) s',
      p_rel)];
end;
$$;
comment on function queue_health._pgmq_sql_count_by_vt(regclass, boolean) is 'SQL texts of the count of the queue table p_rel through its vt index ($1 now, $2 the budget): [1] count and first vt of the ready messages (index-only), [2] count, first vt, in flight, redelivered ($3/$4 the previous snapshot), latest in-flight vt, poison (read_ct >= $5), oldest poison enqueued_at and highest read_ct of the waiting ones, [3] as [1] with the poison among the ready ones (read_ct >= $3).';
revoke execute on function queue_health._pgmq_sql_count_by_vt(regclass, boolean) from public, anon, authenticated;
grant execute on function queue_health._pgmq_sql_count_by_vt(regclass, boolean) to service_role;

create function queue_health._pgmq_sql_poison(p_rel regclass, p_sample boolean)
returns text
stable
set search_path = ''
language plpgsql
as $$
begin
  -- The poison among rows the vt-index count does not see: how many of the rows read have
  -- read_ct >= $1, the oldest one's enqueued_at, and how many rows were read. p_sample: a block
  -- sample (tablesample system, $2 percent, seed $3: the estimates' pages, see
  -- _pgmq_estimate_above_limit()); otherwise at most $2 rows in physical order (tables without a
  -- vt index).
  return format(
    'select count(*) filter (where read_ct >= $1), min(enqueued_at) filter (where read_ct >= $1),
            count(*)
       from (select read_ct, enqueued_at from %s %s) s',
    p_rel, case when p_sample then 'tablesample system ($2) repeatable ($3)' else 'limit $2' end);
end;
$$;
comment on function queue_health._pgmq_sql_poison(regclass, boolean) is 'SQL text: poison (read_ct >= $1), its oldest enqueued_at and the rows read, over a block sample ($2 percent, seed $3) of the queue table p_rel (p_sample) or at most $2 of its rows.';
revoke execute on function queue_health._pgmq_sql_poison(regclass, boolean) from public, anon, authenticated;
grant execute on function queue_health._pgmq_sql_poison(regclass, boolean) to service_role;

create function queue_health._pgmq_count_poison(
  p_rel regclass, p_density bigint, p_now timestamptz, p_limit bigint,
  p_poison_read_count int, p_count queue_health._pgmq_count_state)
returns queue_health._pgmq_count_state
volatile
set search_path = ''
language plpgsql
as $$
declare
  c queue_health._pgmq_count_state := p_count;
  v_total bigint := c.ready + c.in_flight + c.delayed;
  v_seed float8 := floor(extract(epoch from p_now) / 3600);
  v_pct real;
  v_n bigint;
  v_first timestamptz;
  v_read bigint;
begin
  -- The poison of a queue whose count did not read every row's read_ct: a table without a vt
  -- index below the bound (at most p_limit rows, exact) or a queue above the bound (estimated:
  -- the share of poison among the rows of a block sample of about 1000 rows, the same pages for
  -- an hour, times the queue's depth; never less than the poison counted exactly). Called only
  -- when poison is possible (_pgmq_count_messages()): one more bounded statement.
  if c.exact then
    execute queue_health._pgmq_sql_poison(p_rel, false)
      using p_poison_read_count, p_limit into v_n, v_first, v_read;
    c.poison := v_n;
    c.oldest_poison_at := v_first;
    c.poison_probed := true;
    return c;
  end if;
  v_pct := least(100, 100.0 * 1000 / greatest(coalesce(p_density, v_total), v_total, 1))::real;
  execute queue_health._pgmq_sql_poison(p_rel, true)
    using p_poison_read_count, v_pct, v_seed into v_n, v_first, v_read;
  if v_read > 0 then
    c.poison := greatest(coalesce(c.poison, 0), round(v_total::numeric * v_n / v_read)::bigint);
    c.oldest_poison_at := least(c.oldest_poison_at, v_first);
  end if;
  c.poison_probed := true;
  c.poison_estimated := true;
  c.poison_sample := v_read;
  return c;
end;
$$;
comment on function queue_health._pgmq_count_poison(regclass, bigint, timestamptz, bigint, int, queue_health._pgmq_count_state) is 'The poison (read_ct >= p_poison_read_count) of a pgmq queue table whose count did not read every read_ct: at most p_limit rows (exact, tables without a vt index) or, above the bound, a block sample''s share times the depth.';
revoke execute on function queue_health._pgmq_count_poison(regclass, bigint, timestamptz, bigint, int, queue_health._pgmq_count_state) from public, anon, authenticated;
grant execute on function queue_health._pgmq_count_poison(regclass, bigint, timestamptz, bigint, int, queue_health._pgmq_count_state) to service_role;

drop function queue_health._pgmq_count_messages(regclass, boolean, boolean, boolean, bigint, timestamptz, bigint, jsonb, boolean);
create function queue_health._pgmq_count_messages(
  p_rel regclass, p_has_vt_index boolean, p_has_id_index boolean, p_has_last_read_at boolean,
  p_density bigint, p_now timestamptz, p_limit bigint, p_prev jsonb, p_prepare boolean,
  p_poison_read_count int, p_poison_possible boolean)
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
  v_max_read_ct int;
  v_n bigint;
  v_vt timestamptz;
  v_ready_poison bigint;
  v_ready_poison_at timestamptz;
  c queue_health._pgmq_count_state;
begin
  -- A queue that was far above the bound at the previous snapshot and still is by its
  -- statistics is estimated straight away (_pgmq_estimate_directly()); one that has meanwhile
  -- shrunk is counted as any other: up to the bound (through the vt index here, or
  -- _pgmq_count_bounded_rows() without one), and estimated above it
  -- (_pgmq_estimate_above_limit()). The common case, a queue below the bound with a vt index,
  -- is written here rather than as a step of its own: it runs for every queue read, and every
  -- call of a function with a SET clause (each step and builder) adds to each queue's cost.
  --
  -- Poison (read_ct >= p_poison_read_count): the waiting messages' read_ct is read anyway (their
  -- split needs it), so their poison is always counted. The ready ones are counted index-only;
  -- their read_ct costs a heap read, paid only when poison is possible: p_poison_possible (the
  -- caller's judgement from the previous cursor: poison or a redelivery seen there, or its
  -- probe too old), a redelivery now (a waiting message read twice or more, or one counted as
  -- redelivered). Otherwise the ready messages hold no poison: none did at the previous probe,
  -- and a message becomes poison only by being read again. docs/metrics.md "Poison messages".
  if p_has_vt_index and p_has_id_index and p_limit > 0
     and not coalesce((p_prev ->> 'exact')::boolean, true)
     and (p_prev ->> 'depth')::bigint >= 2 * p_limit then
    v_density := coalesce(v_density, queue_health._pgmq_density(p_rel));
    if v_density >= 2 * p_limit then
      c := queue_health._pgmq_estimate_directly(p_rel, p_has_last_read_at, v_density,
        p_now, p_limit, v_prev_at, v_prev_vt_max, p_prepare);
      if c.scan is not null then
        c.poison := 0;
        c.redelivery_seen := c.redelivered > 0;
        if p_poison_possible or c.redelivery_seen then
          c := queue_health._pgmq_count_poison(p_rel, v_density, p_now, p_limit, p_poison_read_count, c);
        end if;
        return c;
      end if;
    end if;
  end if;
  if p_has_vt_index then
    -- One budget for the whole queue: ready messages are counted through the vt index, then the
    -- waiting ones with what ready left of the budget, plus one entry: depth is exact exactly
    -- while the queue holds fewer than p_limit messages, and only then is the waiting part's
    -- split into in flight and delayed (read_ct is in the heap) exact. The first waiting entry
    -- is the next message to become visible. With poison possible (and the previous count
    -- exact), the ready messages are counted with their heap rows ([3]) instead.
    v_sql := queue_health._pgmq_sql_count_by_vt(p_rel, p_has_last_read_at);
    c.scan := 'vt_index';
    c.poison_probed := p_poison_possible and coalesce((p_prev ->> 'exact')::boolean, true);
    if c.poison_probed then
      execute v_sql[3] using p_now, p_limit, p_poison_read_count
        into c.ready, c.oldest_vt, v_ready_poison, v_ready_poison_at;
    else
      execute v_sql[1] using p_now, p_limit into c.ready, c.oldest_vt;
    end if;
    if p_limit = 0 then
      execute queue_health._pgmq_sql_first_vt(p_rel, true) using p_now into c.oldest_vt;
    end if;
    execute v_sql[2] using p_now, greatest(p_limit - c.ready, 0) + 1, v_prev_at, v_prev_vt_max,
      p_poison_read_count
      into c.waiting, c.next_vt, c.in_flight, c.redelivered, c.in_flight_vt_max, c.poison,
        c.oldest_poison_at, v_max_read_ct;
    c.exact := c.ready + c.waiting < p_limit;
    c.redelivery_seen := v_max_read_ct > 1 or c.redelivered > 0;
    if c.exact then
      c.delayed := c.waiting - c.in_flight;
      if not c.poison_probed and (p_poison_possible or c.redelivery_seen) then
        -- Poison possible, or a redelivery in flight now: read the ready messages' read_ct too.
        execute v_sql[3] using p_now, p_limit, p_poison_read_count
          into v_n, v_vt, v_ready_poison, v_ready_poison_at;
        c.poison_probed := true;
      end if;
    else
      c.waiting := least(c.waiting, greatest(p_limit - c.ready, 0));
      if c.next_vt is null then
        -- Ready filled the budget: the next to become visible is one more probe.
        execute queue_health._pgmq_sql_first_vt(p_rel, false) using p_now into c.next_vt;
      end if;
    end if;
    c.poison := c.poison + coalesce(v_ready_poison, 0);
    c.oldest_poison_at := least(c.oldest_poison_at, v_ready_poison_at);
  else
    c := queue_health._pgmq_count_bounded_rows(p_rel, p_has_last_read_at, p_now, p_limit,
      v_prev_at, v_prev_vt_max);
    c.poison := 0;
  end if;
  if not c.exact then
    c := queue_health._pgmq_estimate_above_limit(p_rel, p_has_vt_index, p_has_id_index,
      p_has_last_read_at, v_density, p_now, p_limit, v_prev_at, v_prev_vt_max, c);
  end if;
  if (not c.exact or not p_has_vt_index)
     and (p_poison_possible or c.redelivered > 0 or coalesce(c.redelivery_seen, false)) then
    -- Above the bound (a block sample) or without a vt index (its rows again, up to the bound).
    c := queue_health._pgmq_count_poison(p_rel, v_density, p_now, p_limit, p_poison_read_count, c);
  end if;
  return c;
end;
$$;
comment on function queue_health._pgmq_count_messages(regclass, boolean, boolean, boolean, bigint, timestamptz, bigint, jsonb, boolean, int, boolean) is 'Counts (up to p_limit) or estimates (above it) the messages of a pgmq queue table by state, and its poison (read_ct >= p_poison_read_count; the ready messages'' only when p_poison_possible or a redelivery is seen now), from its catalog facts and previous cursor p_prev.';
revoke execute on function queue_health._pgmq_count_messages(regclass, boolean, boolean, boolean, bigint, timestamptz, bigint, jsonb, boolean, int, boolean) from public, anon, authenticated;
grant execute on function queue_health._pgmq_count_messages(regclass, boolean, boolean, boolean, bigint, timestamptz, bigint, jsonb, boolean, int, boolean) to service_role;
create or replace function queue_health._pgmq_sql_read()
returns text
immutable
set search_path = ''
language sql
as $fn$
  -- The second statement of a capture: reads the queues the check statement listed ($3 names,
  -- $4 tables, $5 fingerprints, $6 previous cursors; $1 now, $2 exact_count_limit, $7 whether
  -- big queues' estimates may be prepared statements, $8 poison_read_count, $9 how long the
  -- ready messages may go without a poison probe), one call of _sample_pgmq_queue() each,
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
      ft.has_id_index, ft.has_last_read_at, ft.archive, ft.density, $7, $8, $9) x
    where x.source is not null
  $q$, queue_health._pgmq_sql_table_facts())
$fn$;
comment on function queue_health._pgmq_sql_read() is 'SQL text: the second statement of a pgmq capture, which samples each listed queue through _sample_pgmq_queue() with its table facts (_pgmq_sql_table_facts(), inline).';
revoke execute on function queue_health._pgmq_sql_read() from public, anon, authenticated;
grant execute on function queue_health._pgmq_sql_read() to service_role;

drop function queue_health._sample_pgmq_queue(text, regclass, regclass, bigint, bigint, text, timestamptz, bigint, jsonb, boolean, boolean, boolean, regclass, bigint, boolean);
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
  p_prepare boolean default false,
  -- settings.poison_read_count (null: read here), and how long the ready messages may go
  -- without a poison probe while nothing suggests one (null: probe on every read).
  p_poison_read_count int default null,
  p_poison_reprobe interval default null
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
  v_poison_read_count int := coalesce(p_poison_read_count,
    (queue_health._source_settings() ->> 'poison_read_count')::int);
  -- Poison possible among the ready messages (_pgmq_count_messages()): unless the previous
  -- probe found none and saw no redelivery, and is younger than p_poison_reprobe.
  v_poison_possible boolean := coalesce(p_poison_reprobe is null
    or jsonb_typeof(p_prev -> 'poison') is distinct from 'number'
    or (p_prev ->> 'poison')::bigint > 0
    or coalesce((p_prev ->> 'redelivery_seen')::boolean, true)
    or p_now - (p_prev ->> 'poison_probe_at')::timestamptz >= p_poison_reprobe, true);
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
      v_has_last_read_at, v_density, p_now, p_limit, p_prev, p_prepare, v_poison_read_count,
      v_poison_possible);

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
      'scan', v_count.scan,
      -- Poison (read by _capture_rows()): read_ct >= R, and the oldest one's enqueued_at; when
      -- the ready messages' read_ct was last read, and whether a redelivery is in sight.
      'poison', v_count.poison,
      'oldest_poison_at', case when v_count.poison > 0 then v_count.oldest_poison_at end,
      'poison_probe_at', case when v_count.poison_probed then to_jsonb(p_now) else p_prev -> 'poison_probe_at' end,
      'redelivery_seen', coalesce(v_count.redelivery_seen, false),
      -- Estimated from a sample of poison_sample rows (above the bound), as pg-boss's.
      'poison_estimated', coalesce(v_count.poison_estimated, false),
      'poison_sample', v_count.poison_sample
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
comment on function queue_health._sample_pgmq_queue(text, regclass, regclass, bigint, bigint, text, timestamptz, bigint, jsonb, boolean, boolean, boolean, regclass, bigint, boolean, int, interval) is 'Samples one pgmq queue by reading its table (see docs/metrics.md), from the catalog facts _sample_pgmq() read for it, with its poison (read_ct >= p_poison_read_count) in the cursor. Returns null when the queue no longer exists, a sample with error set when sampling failed; never raises.';
revoke execute on function queue_health._sample_pgmq_queue(text, regclass, regclass, bigint, bigint, text, timestamptz, bigint, jsonb, boolean, boolean, boolean, regclass, bigint, boolean, int, interval) from public, anon, authenticated;
grant execute on function queue_health._sample_pgmq_queue(text, regclass, regclass, bigint, bigint, text, timestamptz, bigint, jsonb, boolean, boolean, boolean, regclass, bigint, boolean, int, interval) to service_role;

create or replace function queue_health._sample_pgmq(p_now timestamptz default now())
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
    -- Poison (_pgmq_count_messages()): the ready messages' read_ct is read again at least as
    -- often as an unchanged queue is (v_reread), or on every read with that at 0.
    execute queue_health._pgmq_sql_read() into v_read_samples
      using p_now, v_limit, v_names, v_rels, v_fingerprints, v_prevs, v_prepare,
        (v_settings ->> 'poison_read_count')::int, nullif(v_reread, interval '0');
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
comment on function queue_health._sample_pgmq(timestamptz) is 'One sample per pgmq queue (pgmq.meta), or none when pgmq is absent. Cost O(queues): index-bounded counts, exact up to settings.exact_count_limit, estimated above (depth_estimated); a queue unchanged since the previous capture is not read (settings.unchanged_reread_interval); poison (read_ct >= settings.poison_read_count) in each cursor. Never raises for one queue.';
revoke execute on function queue_health._sample_pgmq(timestamptz) from public, anon, authenticated;
grant execute on function queue_health._sample_pgmq(timestamptz) to service_role;

-- Section: pg-boss

create function queue_health._pgboss_sql_lateral_poison(p_job text, p_queue text)
returns text
immutable
set search_path = ''
language plpgsql
as $$
begin
  -- pz: the poison of a pg-boss queue, its live jobs (retry, active) taken R times or more
  -- (settings.poison_read_count; pg-boss 10, 11 and 12 bump retry_count each time they hand out
  -- a job started before, so a job was taken retry_count + 1 times). The probe runs only when
  -- poison is possible: first sight, a cursor without poison, poison at the previous snapshot, or
  -- retries started since it (x.w: retried, or its read capped). Otherwise the queue had none and
  -- no job was taken again since: 0 without a read. An unchanged queue repeats its cursor
  -- (_pgboss_sql_select), so its probe never runs.
  -- s, counted: at most $2 (exact_count_limit) live jobs. v12 reads them through its (name,
  -- state, ...) index; v10 scans the queue's partition, v11 its rows of job_common (no index on
  -- state), as the in-flight count does. Fewer than $2: exact.
  -- sm, estimated (only when s read $2: more live jobs than the bound): a sample of the queue's
  -- jobs in the order of the (name, id) primary key, which every version has. pg-boss's ids are
  -- random (version 4) UUIDs, so that order is independent of age, state and retry_count: the
  -- first 1000 live jobs (created, retry, active: what depth counts) among at most 5000 entries
  -- from a starting id drawn from the queue's name and the hour (the same jobs for an hour, so
  -- they stay in shared buffers; then elsewhere), wrapping around at the end. The poison is the
  -- sample's share times the depth reported (v), never less than s counted.
  return format($f$cross join lateral (
      select case when not pr.probe then 0::bigint
                  when not s.capped or sm.live = 0 then s.n
                  else greatest(s.n, round((v.ready + v.in_flight + v.delayed)::numeric * sm.n
                                           / sm.live)::bigint) end as n,
        least(s.first, sm.first) as first,
        pr.probe and s.capped as estimated,
        case when pr.probe and s.capped then sm.live end as sample
      from (select u.unchanged is not true and (x.prev_at is null
              or jsonb_typeof(r.cursor -> 'poison') is distinct from 'number'
              or (r.cursor ->> 'poison')::bigint > 0
              or coalesce((x.w).retried > 0 or (x.w).retried_capped, true)) as probe,
            (select coalesce(max(st.poison_read_count), 3) from queue_health.settings st) as r,
            pg_catalog.md5(%2$s || ':' || floor(extract(epoch from $1) / 3600)::text)::uuid as start) pr
      cross join lateral (
        select count(*) filter (where c.retry_count + 1 >= pr.r) as n,
          min(c.created_on) filter (where c.retry_count + 1 >= pr.r) as first,
          count(*) >= $2 as capped
        from (select j.retry_count, j.created_on
              from %1$s j
              where j.name = %2$s and j.state in ('retry', 'active') and pr.probe
              limit $2) c) s
      cross join lateral (
        select count(*) as live,
          count(*) filter (where t.state <> 'created' and t.retry_count + 1 >= pr.r) as n,
          min(t.created_on) filter (where t.state <> 'created' and t.retry_count + 1 >= pr.r) as first
        from (select t0.state, t0.retry_count, t0.created_on
              from ((select j.state, j.retry_count, j.created_on from %1$s j
                     where j.name = %2$s and j.id >= pr.start and s.capped order by j.id limit 5000)
                    union all
                    (select j.state, j.retry_count, j.created_on from %1$s j
                     where j.name = %2$s and j.id < pr.start and s.capped order by j.id limit 5000)
                    limit 5000) t0
              where t0.state in ('created', 'retry', 'active')
              limit 1000) t) sm
      offset 0
    ) pz$f$, p_job, p_queue);
end;
$$;
comment on function queue_health._pgboss_sql_lateral_poison(text, text) is 'Part of _pgboss_sample_sql: the lateral join pz (a pg-boss queue''s live jobs taken settings.poison_read_count times or more and their oldest created_on, only when poison is possible: counted among at most exact_count_limit live jobs, and above that estimated from a sample of up to 1000 live jobs in primary-key (random id) order times the depth).';
revoke execute on function queue_health._pgboss_sql_lateral_poison(text, text) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_lateral_poison(text, text) to service_role;
create or replace function queue_health._pgboss_sql_select(p_schema text, p_layout jsonb)
returns text
immutable
set search_path = ''
language plpgsql
as $$
begin
  -- The statement's select list: one queue_health.sample per queue, from the gauges reported (v),
  -- the counts since the previous snapshot (x, x2), the poison (pz) and the next cursor.
  return format($f$select 'pgboss'::text, %1$L::text, b.name::text,
      v.ready, v.in_flight, v.delayed, v.ready + v.in_flight + v.delayed, v.estimated,
      coalesce(greatest(extract(epoch from $1 - o.oldest)::float8, 0), 0),
      case when x.prev_at is null or u.unchanged then 0::bigint
           when (x.w).enqueued >= $6 and (x.w).enqueued_first < $1
             then greatest((x.w).enqueued, round((x.w).enqueued * extract(epoch from $1 - x.prev_at)
                            / extract(epoch from $1 - (x.w).enqueued_first))::bigint)
           else (x.w).enqueued end,
      case when x.prev_at is null or u.unchanged then 0::bigint else round((x.w).completed * x2.scale)::bigint end,
      case when x.prev_at is null or u.unchanged then 0::bigint else round((x.w).failed * x2.scale)::bigint end,
      case when x.prev_at is null or u.unchanged then 0::bigint else (x.w).retried end,
      case when x.prev_at is null or u.unchanged then 0::bigint else round((x.w).dead_lettered * x2.scale)::bigint end,
      (x.w).wait_ms[1], (x.w).wait_ms[2], (x.w).run_ms[1], (x.w).run_ms[2],
      -- The queue's own time: from its first step (q) to here (this row's projection).
      (extract(epoch from clock_timestamp() - q.t0) * 1000)::float8,
      -- v2 adds the gauges' values (read back by the next snapshot, p below) and which gauges
      -- were not counted (k below); read_at, fingerprint, oldest (start_after of the oldest
      -- ready job) and next_due (when the next delayed job falls due; $1 when not known: more
      -- than the bound) are for the unchanged check (u below). An unchanged queue's cursor is
      -- its previous one at this snapshot's time.
      case when u.unchanged then r.cursor || jsonb_build_object('at', $1) else
      jsonb_build_object('v', 2, 'at', $1, 'read_at', $1, 'fingerprint', f.fingerprint,
        'oldest', o.oldest,
        'next_due', case when k.skip_delayed or (x.dly).n >= $2 then $1 else (x.dly).first end,
        'counts', jsonb_build_object('ready', g.ready_src, 'delayed', g.delayed_src, 'in_flight', g.in_flight_src),
        'ready', g.ready, 'delayed', g.delayed, 'in_flight', g.in_flight,
        'skipped', to_jsonb(pg_catalog.array_remove(array[
          case when k.skip_ready then 'ready' end,
          case when k.skip_delayed then 'delayed' end,
          case when k.skip_in_flight then 'in_flight' end], null)),
        'cache_age_s', k.cache_age,
        'capped', to_jsonb(case when x.prev_at is null then '{}'::text[] else %2$s end),
        -- Poison (pz, read by _capture_rows()): jobs taken R times or more, still live;
        -- estimated from a sample of poison_sample live jobs above the bound.
        'poison', pz.n, 'oldest_poison_at', pz.first, 'poison_estimated', pz.estimated,
        'poison_sample', pz.sample) end,
      null::text$f$, p_schema, queue_health._pgboss_sql_capped(p_layout));
end;
$$;
comment on function queue_health._pgboss_sql_select(text, jsonb) is 'Part of _pgboss_sample_sql: the select list (one queue_health.sample per pg-boss queue, with its next cursor and its poison).';
revoke execute on function queue_health._pgboss_sql_select(text, jsonb) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sql_select(text, jsonb) to service_role;
create or replace function queue_health._pgboss_sample_sql(
  p_schema text,
  p_layout jsonb,
  p_queue text default null,
  p_statistics boolean default true,
  p_table text default null,
  p_other_than text default null
)
returns text
immutable
set search_path = ''
language plpgsql
as $$
declare
  -- The probes read p_table (one partition of job, for the queues whose queue.table_name it is)
  -- when given, else job itself (run-time partition pruning picks each queue's partition). A
  -- partition planned directly costs much less than planning the partitioned job with it (the
  -- partitioned indexes' relation cache entries and the partition expansion), most of all in a
  -- new session.
  v_job text := format('%I.%I', p_schema, coalesce(p_table, 'job'));
  -- The queue each probe reads: the statement's queue row (b.name), or with p_queue that queue's
  -- name as a constant, so that the planner prunes job's partitions at plan time.
  v_queue text := case when p_queue is null then 'b.name' else format('%L', p_queue) end;
begin
  -- The statement's parameters: $1 p_now, $2 exact_count_limit, $3 pgboss_cache_max_age, $4 the
  -- schema's name (unused: the text holds it as a constant, see below; callers still pass it),
  -- $5 one queue's name (used only with p_queue), $6 window_read_limit, $7 how long an unchanged
  -- queue may go unread (_reread_interval(); 0: read every queue). b is the queue's row in
  -- <schema>.queue, r its registry row (previous cursor), f and u the unchanged check, x the
  -- queue's probes, e the estimate from the table statistics (only computed for a queue that
  -- needs it), g the gauges, v the gauges reported, pz the poison.
  --
  -- The schema's name is a constant (%L; $4 stays a declared parameter, unused): the statement
  -- is one schema's, and _sample_pgboss() runs it as a prepared statement with a generic plan,
  -- which would otherwise estimate the schema's queues (and their registry rows) from a
  -- parameter and join a thousand of them by nested loops (much slower than planned with the
  -- constant).
  return E'\n    '
    || case when p_statistics then E'\n    ' || queue_health._pgboss_sql_statistics(p_schema) || E'\n  ' else '' end
    || E'\n    ' || queue_health._pgboss_sql_select(p_schema, p_layout)
    || E'\n    ' || queue_health._pgboss_sql_from(p_schema)
    || E'\n    ' || queue_health._pgboss_sql_lateral_unchanged(p_schema, p_layout, v_job, v_queue, p_table)
    || E'\n    ' || queue_health._pgboss_sql_lateral_skip(p_layout, p_statistics)
    || E'\n    ' || queue_health._pgboss_sql_lateral_probes(p_layout, v_job, v_queue)
    || E'\n    ' || queue_health._pgboss_sql_lateral_gauges(p_layout, p_statistics)
    || E'\n    ' || queue_health._pgboss_sql_lateral_reported(p_layout, v_job, v_queue)
    || E'\n    ' || queue_health._pgboss_sql_lateral_poison(v_job, v_queue)
    || E'\n    ' || queue_health._pgboss_sql_where(p_table, p_other_than, p_queue)
    || E'\n    order by b.name\n  ';
end;
$$;
comment on function queue_health._pgboss_sample_sql(text, jsonb, text, boolean, text, text) is 'The one statement that samples every queue of a pg-boss schema (parameters $1 p_now, $2 exact_count_limit, $3 pgboss_cache_max_age, $4 schema (unused: the text names it), $5 the one queue (with p_queue), $6 window_read_limit, $7 re-read interval of unchanged queues, 0 to read all), built from the schema''s layout (see _pgboss_schemas); with p_queue, the statement for that queue alone (its partition pruned at plan time; pass it as $5 too); with p_table, for the queues whose queue.table_name is p_table, reading that table directly; with p_other_than, for the queues in any other table, through job.';
revoke execute on function queue_health._pgboss_sample_sql(text, jsonb, text, boolean, text, text) from public, anon, authenticated;
grant execute on function queue_health._pgboss_sample_sql(text, jsonb, text, boolean, text, text) to service_role;
