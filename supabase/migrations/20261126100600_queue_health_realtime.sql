-- Queue Health: Realtime. A statement trigger on metric broadcasts each capture's snapshot to
-- the private channel queue_health:<project_id> with realtime.send(), and
-- install_realtime_policy() lets project members subscribe to their own project's channel.

create function queue_health._broadcast_snapshot()
returns trigger
volatile
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_message record;
  v_mode text;
begin
  if pg_catalog.to_regprocedure('realtime.send(jsonb, text, text, boolean)') is null then
    return null;
  end if;
  begin
    -- Every broadcast is also a row of realtime.messages, which hosted Realtime keeps for about
    -- three days: settings.realtime_payload says how much of each snapshot goes out.
    select s.realtime_payload into v_mode from queue_health.settings s where s.id;
    v_mode := coalesce(v_mode, 'slim');
    if v_mode = 'off' then
      return null;
    end if;
    -- One message per project per statement, split into parts of at most ~60 000 bytes of queue
    -- items each (plus one item and the envelope), which keeps every message under 64 KiB. A
    -- capture inserts one snapshot; a bulk load of history (several captured_at) broadcasts only
    -- each project's latest snapshot. Slim (payload v2): each queue is the array [source,
    -- source_schema, queue, depth, oldest_ready_age_s, enqueued, completed, failed,
    -- depth_estimated] (realtime_payload.ts, SLIM_QUEUE_FIELDS). Full (v1): each queue is an
    -- object with every gauge and count of the row.
    for v_message in
      with latest as (
        select n.*, max(n.captured_at) over (partition by n.project_id) as latest_at
        from new_rows n
      ),
      item as (
        select n.project_id, n.captured_at,
          case when v_mode = 'full' then
            jsonb_build_object('source', n.source, 'source_schema', n.source_schema,
              'queue', n.queue_name, 'depth', n.depth, 'ready', n.ready, 'in_flight', n.in_flight,
              'delayed', n.delayed, 'oldest_ready_age_s', n.oldest_ready_age_s,
              'enqueued', n.enqueued, 'completed', n.completed, 'failed', n.failed,
              'dead_lettered', n.dead_lettered, 'depth_estimated', n.depth_estimated)
          else
            jsonb_build_array(n.source, n.source_schema, n.queue_name, n.depth,
              n.oldest_ready_age_s, n.enqueued, n.completed, n.failed, n.depth_estimated)
          end as queue,
          -- The item's size as JSON text, without printing it (jsonb to text costs ~15 us an
          -- item): the punctuation (full: the keys too, 197 bytes; slim: brackets and ", ", 18)
          -- and a boolean (at most 5), the names as JSON strings, each number as jsonb prints it
          -- (null: 4), and the separator: never less than the printed size.
          case when v_mode = 'full' then 202 else 23 end
            + octet_length(to_json(n.source)::text) + octet_length(to_json(n.source_schema)::text)
            + octet_length(to_json(n.queue_name)::text)
            + coalesce(length(n.depth::text), 4)
            + coalesce(length(n.enqueued::text), 4) + coalesce(length(n.completed::text), 4)
            + coalesce(length(n.failed::text), 4)
            + case when v_mode = 'full' then
                coalesce(length(n.ready::text), 4) + coalesce(length(n.in_flight::text), 4)
                + coalesce(length(n.delayed::text), 4) + coalesce(length(n.dead_lettered::text), 4)
              else 0 end
            -- a float's digits as jsonb prints them (shortest exact, positional) are at most its
            -- float8 text or its positional numeric text, give or take an exponent's digits
            + coalesce(greatest(length(n.oldest_ready_age_s::text),
                                length(n.oldest_ready_age_s::numeric::text)) + 8, 4)
            + 2 as size,
          row_number() over (partition by n.project_id order by n.source, n.source_schema, n.queue_name) as n
        from latest n
        where n.captured_at = n.latest_at
      ),
      sized as (
        select i.*, sum(i.size) over (partition by i.project_id order by i.n) as bytes
        from item i
      ),
      chunk as (
        select s.project_id, max(s.captured_at) as captured_at, floor((s.bytes - 1) / 60000) as chunk,
          jsonb_agg(s.queue order by s.n) as queues
        from sized s
        group by s.project_id, floor((s.bytes - 1) / 60000)
      )
      select c.project_id, c.captured_at, c.queues,
        dense_rank() over (partition by c.project_id order by c.chunk) as part,
        count(*) over (partition by c.project_id) as parts
      from chunk c
      order by c.project_id, c.chunk
    loop
      perform realtime.send(
        jsonb_build_object('v', case when v_mode = 'full' then 1 else 2 end,
          'project_id', v_message.project_id,
          'captured_at', v_message.captured_at, 'part', v_message.part, 'parts', v_message.parts,
          'queues', v_message.queues),
        'snapshot', 'queue_health:' || v_message.project_id, true);
    end loop;
  exception when others then
    -- A broadcast is best-effort: it must never fail the capture that stored the rows.
    raise warning 'queue_health: Realtime broadcast failed: %', sqlerrm;
  end;
  return null;
end;
$$;
comment on function queue_health._broadcast_snapshot() is 'Statement trigger on metric: broadcasts the inserted rows (each project''s latest captured_at) with realtime.send(payload, ''snapshot'', ''queue_health:<project_id>'', private), one message per project (split into parts under 64 KiB), as settings.realtime_payload says: slim (default) {v: 2, project_id, captured_at, part, parts, queues: [[source, source_schema, queue, depth, oldest_ready_age_s, enqueued, completed, failed, depth_estimated], ...]}, full {v: 1, ..., queues: [{source, source_schema, queue, depth, ready, in_flight, delayed, oldest_ready_age_s, enqueued, completed, failed, dead_lettered, depth_estimated}, ...]}, off: nothing. Never fails the insert.';
revoke execute on function queue_health._broadcast_snapshot() from public, anon, authenticated;

create trigger metric_broadcast_snapshot
  after insert on queue_health.metric
  referencing new table as new_rows
  for each statement
  execute function queue_health._broadcast_snapshot();
comment on trigger metric_broadcast_snapshot on queue_health.metric is 'Pushes every new snapshot to the project''s private Realtime topic.';

-- Realtime Authorization: Realtime checks a join by selecting from realtime.messages as the user,
-- with realtime.topic set to the channel's topic. On hosted Supabase realtime.messages belongs to
-- supabase_realtime_admin: postgres may create and drop policies on it (supautils policy_grants)
-- but, before supautils 3.3, not comment on them; and the table only exists once Realtime has
-- connected to the project. So the policy is installed by a function that never fails an install:
-- the migration calls it, schedule() calls it again, and it says what to do when it cannot.
create function queue_health.install_realtime_policy()
returns text
volatile
security definer
set search_path = ''
language plpgsql
as $$
declare
  v_name constant text := 'Project members can receive Queue Health snapshots';
begin
  if pg_catalog.to_regclass('realtime.messages') is null then
    raise notice 'queue_health: realtime.messages does not exist yet, so the Realtime policy for queue_health:<project_id> topics is not installed.'
      using hint = 'Realtime creates the table when it first connects to the project (open Realtime in the dashboard, or subscribe once); then run select queue_health.install_realtime_policy(); (queue_health.schedule() runs it too).';
    return 'realtime_absent';
  end if;
  begin
    -- Drop and create in one subtransaction: a refused create keeps the previous policy.
    execute format('drop policy if exists %I on realtime.messages', v_name);
    execute format($p$create policy %I on realtime.messages for select to authenticated using (
        realtime.messages.extension = 'broadcast'
        and left((select realtime.topic()), 13) = 'queue_health:'
        and realtime.messages.topic = (select realtime.topic())
        and (select queue_health.is_member(substr((select realtime.topic()), 14)))
      )$p$, v_name);
  exception when insufficient_privilege then
    raise notice 'queue_health: % may not create policies on realtime.messages (%), so members cannot join queue_health:<project_id> topics yet.', current_user, sqlerrm
      using hint = 'On Supabase, run select queue_health.install_realtime_policy(); as postgres from the SQL editor; elsewhere, as the owner of realtime.messages.';
    return 'refused';
  end;
  begin
    execute format('comment on policy %I on realtime.messages is %L', v_name,
      'Admits a user to the private topic queue_health:<project_id> only when queue_health.is_member() says they belong to that project.');
  exception when insufficient_privilege then
    -- supautils before 3.3 lets postgres create policies on realtime.messages but not comment on
    -- them; the policy's name says what it does.
    null;
  end;
  return 'installed';
end;
$$;
comment on function queue_health.install_realtime_policy() is 'Creates (or re-creates) the SELECT policy on realtime.messages that admits only a project''s members to the private topic queue_health:<project_id>. Never fails: returns installed, realtime_absent (Realtime has not created its table yet; a notice says what to do) or refused (no privilege; a notice says who can). Called by the migration and by schedule(); safe to run again.';
revoke execute on function queue_health.install_realtime_policy() from public, anon, authenticated;
grant execute on function queue_health.install_realtime_policy() to service_role;

select queue_health.install_realtime_policy();

-- uninstall() removes the policy before it drops the schema (the policy calls is_member()).
create function queue_health._uninstall_realtime_policy()
returns text
volatile
set search_path = ''
language plpgsql
as $$
declare
  v_name constant text := 'Project members can receive Queue Health snapshots';
begin
  if pg_catalog.to_regclass('realtime.messages') is null then
    return 'realtime_absent';
  end if;
  if not exists (select 1 from pg_catalog.pg_policy p
                  where p.polrelid = 'realtime.messages'::regclass and p.polname = v_name) then
    return 'absent';
  end if;
  execute format('drop policy %I on realtime.messages', v_name);
  return 'dropped';
end;
$$;
comment on function queue_health._uninstall_realtime_policy() is 'Drops the policy install_realtime_policy() created on realtime.messages, as the caller; returns dropped, absent or realtime_absent. A caller who may not drop it gets the error (uninstall() then removes nothing).';
revoke execute on function queue_health._uninstall_realtime_policy() from public, anon, authenticated;
