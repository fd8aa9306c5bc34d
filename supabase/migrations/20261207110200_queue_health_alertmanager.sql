-- Queue Health: the outbox side of the alertmanager channel kind. Alertmanager groups, waits and
-- repeats by itself, and it resolves an alert whose endsAt has passed, so a client keeps sending
-- every active alert with endsAt a few resend intervals ahead (Prometheus: every
-- --rules.alert.resend-delay, default 1m, with endsAt = now + 4 x max(resend delay, evaluation
-- interval): prometheus/prometheus rules/alerting.go, sendAlerts; "Clients are expected to
-- continuously re-send alerts as long as they are still active": prometheus.io/docs/alerting/clients).
-- For alertmanager channels the outbox therefore has no group_wait or group_interval: a change
-- (an alert starts firing, one resolves) goes out at once, and while anything fires a notification
-- carrying all firing alerts of the channel is written every settings.alertmanager_resend_interval,
-- each with valid_until (the endsAt of its firing alerts). Resolves are always sent, whatever the
-- rule's send_resolved says: Alertmanager's own receivers decide whether to tell anyone. A newer
-- notification supersedes older unsent ones of the channel (they are marked dead, their resolves
-- carried over), and sent ones are kept a day, not 30: a firing channel writes 1 440 a day.

-- Section: settings

alter table queue_health.settings
  add column alertmanager_resend_interval interval not null default interval '1 minute',
  add constraint settings_alertmanager_resend_interval_range
    check (alertmanager_resend_interval between interval '10 seconds' and interval '1 hour');
comment on column queue_health.settings.alertmanager_resend_interval is 'How often the firing alerts of an alertmanager channel are sent again (default 1 minute, Prometheus''s --rules.alert.resend-delay); each send says endsAt = 4 x max(this, capture_interval) ahead, so Alertmanager keeps them active through three missed resends and resolves them by itself should Queue Health stop.';
comment on constraint settings_alertmanager_resend_interval_range on queue_health.settings is 'Alertmanager resends go out every 10 seconds to 1 hour.';

-- Section: the unsent rows of a channel

-- Each alertmanager write reads the channel's unsent rows twice (the resolves they carry, then to
-- supersede them). notification_channel_idx would walk all of the channel's rows to find them:
-- a day of sent resends and 30 days of superseded ones, up to ~45 000 for a channel that fires.
create index notification_channel_unsent_idx on queue_health.notification (channel_id)
  where status in ('pending', 'failed');
comment on index queue_health.notification_channel_unsent_idx is 'A channel''s unsent (pending or failed) notifications: what an alertmanager write supersedes and carries the resolves of.';

-- Section: timing per channel kind

create function queue_health._group_timing(p_channel queue_health.channel, p_alerts uuid[])
returns table (group_wait interval, group_interval interval, repeat_interval interval)
stable
set search_path = ''
language sql
as $$
  -- Alertmanager groups by itself: no wait, no interval between changes, and the resend interval
  -- as the repeat. Other kinds: the shortest of the rules involved, each falling back to its
  -- project's defaults.
  select interval '0', interval '0',
         coalesce((queue_health._settings()).alertmanager_resend_interval, interval '1 minute')
   where p_channel.kind = 'alertmanager'
  union all
  select min(coalesce(r.group_wait, s.group_wait, interval '30 seconds')),
         min(coalesce(r.group_interval, s.group_interval, interval '5 minutes')),
         min(coalesce(r.repeat_interval, s.repeat_interval, interval '4 hours'))
    from queue_health.alert a
    join queue_health.alert_rule r on r.id = a.rule_id
    left join queue_health.project_alert_settings s on s.project_id = r.project_id
   where a.id = any (p_alerts)
  having p_channel.kind is distinct from 'alertmanager'
$$;
comment on function queue_health._group_timing(queue_health.channel, uuid[]) is 'group_wait, group_interval and repeat_interval of p_channel''s group holding alerts p_alerts: for alertmanager channels 0, 0 and settings.alertmanager_resend_interval (Alertmanager groups by itself and needs firing alerts resent); otherwise the shortest of the rules'' values, each falling back to its project''s defaults.';
revoke execute on function queue_health._group_timing(queue_health.channel, uuid[]) from public, anon, authenticated;

create function queue_health._alertmanager_valid_until(p_now timestamptz)
returns timestamptz
stable
set search_path = ''
language sql
as $$
  -- Prometheus: ValidUntil = now + 4 x max(resend delay, evaluation interval), which "allows for
  -- two Eval or Alertmanager send failures" (rules/alerting.go). Here the evaluation interval is
  -- the capture interval.
  select p_now + 4 * greatest(coalesce(s.alertmanager_resend_interval, interval '1 minute'),
                              coalesce(s.capture_interval, interval '10 seconds'))
    from (select (queue_health._settings()).*) s
$$;
comment on function queue_health._alertmanager_valid_until(timestamptz) is 'The endsAt of the firing alerts in an alertmanager notification written at p_now: p_now + 4 x max(settings.alertmanager_resend_interval, settings.capture_interval), as Prometheus computes ValidUntil.';
revoke execute on function queue_health._alertmanager_valid_until(timestamptz) from public, anon, authenticated;

create function queue_health._alertmanager_unsent_resolved(p_channel_id uuid, p_firing uuid[])
returns uuid[]
stable
set search_path = ''
language sql
as $$
  -- Resolves that older notifications of the channel still hold unsent (pending or failed): the
  -- next notification supersedes those rows, so it carries their resolves along, unless the alert
  -- fires again.
  select coalesce(array_agg(distinct (e.v ->> 'alert_id')::uuid), '{}')
    from queue_health.notification n
   cross join lateral jsonb_array_elements(n.payload -> 'alerts') e(v)
   where n.channel_id = p_channel_id and n.status in ('pending', 'failed')
     and e.v ->> 'state' = 'resolved'
     and e.v ->> 'alert_id' ~ '^[0-9a-f-]{36}$'
     and not ((e.v ->> 'alert_id')::uuid = any (p_firing))
     and exists (select 1 from queue_health.alert a where a.id = (e.v ->> 'alert_id')::uuid)
$$;
comment on function queue_health._alertmanager_unsent_resolved(uuid, uuid[]) is 'Alert ids reported resolved by unsent (pending or failed) notifications of alertmanager channel p_channel_id, less those in p_firing: carried into the notification that supersedes them.';
revoke execute on function queue_health._alertmanager_unsent_resolved(uuid, uuid[]) from public, anon, authenticated;

create function queue_health._alertmanager_written(p_channel_id uuid, p_id uuid, p_now timestamptz)
returns void
set search_path = ''
language sql
as $$
  -- A stale resend delivered after a newer one is pointless (and, arriving late, could revive a
  -- resolved alert): older unsent rows are given up, with the reason appended to their last error.
  -- Sent rows of the channel are kept a day: one is written every resend interval while
  -- anything fires.
  update queue_health.notification n
     set status = 'dead', lease_until = null,
         last_error = left(coalesce(n.last_error || '; ', '') || 'superseded by notification ' || p_id
                           || ', which carries the current alerts', 2000)
   where n.channel_id = p_channel_id and n.id <> p_id and n.status in ('pending', 'failed');
  delete from queue_health.notification n
   where n.channel_id = p_channel_id and n.status = 'sent' and n.created_at < p_now - interval '1 day';
$$;
comment on function queue_health._alertmanager_written(uuid, uuid, timestamptz) is 'After notification p_id was written to alertmanager channel p_channel_id at p_now: marks the channel''s older unsent (pending/failed) notifications dead as superseded, and deletes its sent notifications older than a day.';
revoke execute on function queue_health._alertmanager_written(uuid, uuid, timestamptz) from public, anon, authenticated;

-- Section: the flush, with the timing and resolves per channel kind

create or replace function queue_health._flush_notifications(p_now timestamptz, p_project_id text default null)
returns integer
set search_path = ''
language plpgsql
as $$
-- Per channel (= per (project, channel) group):
--   firing   = firing, unsilenced alerts of enabled rules routed to the channel;
--   resolved = alerts the last notification reported firing that no longer fire (send_resolved,
--              or always for alertmanager channels; unsilenced).
-- A group with nothing to say is deleted. A new group waits group_wait; afterwards it notifies
-- at most every group_interval, when an alert started firing or resolved, or when repeat_interval
-- has passed since the last notification while something still fires (_group_timing: for
-- alertmanager channels no wait, and every resend interval). Whether a firing alert is silenced
-- does not depend on the channel, so it is decided once per alert, before the channels: per
-- channel it made a project at every quota (50 channels, 500 silences, 381 firing alerts) spend
-- 3.7 s here on every evaluation, writing nothing. Likewise each alert is rendered once per
-- flush (_notification_alerts, kept in v_alerts), however many channels it goes to.
declare
  v_unsilenced uuid[];
  v_alerts jsonb := '{}'::jsonb;
  v_missing uuid[];
  v_ch queue_health.channel;
  v_g queue_health.notification_group;
  v_firing uuid[];
  v_resolved uuid[];
  v_wait interval;
  v_group_interval interval;
  v_repeat interval;
  v_send boolean;
  v_id uuid;
  v_payload jsonb;
  v_count integer := 0;
begin
  select coalesce(array_agg(a.id), '{}') into v_unsilenced
    from queue_health.alert a
    join queue_health.alert_rule r on r.id = a.rule_id
   where (p_project_id is null or a.project_id = p_project_id) and a.state = 'firing' and r.enabled
     and not queue_health._is_silenced(a, r, p_now);

  for v_ch in
    select c.*
      from queue_health.channel c
     where c.enabled and (p_project_id is null or c.project_id = p_project_id)
       and (exists (select 1 from queue_health.notification_group g where g.channel_id = c.id)
            or exists (
              select 1
                from queue_health.alert a
                join queue_health.alert_rule r on r.id = a.rule_id
               where a.project_id = c.project_id and a.state = 'firing' and r.enabled
                 and (r.channel_ids is null or c.id = any (r.channel_ids))))
     order by c.project_id, c.id
  loop
    select * into v_g from queue_health.notification_group g where g.channel_id = v_ch.id for update;

    select coalesce(array_agg(a.id order by a.id), '{}') into v_firing
      from unnest(v_unsilenced) u(id)
      join queue_health.alert a on a.id = u.id
      join queue_health.alert_rule r on r.id = a.rule_id
     where a.project_id = v_ch.project_id
       and (r.channel_ids is null or v_ch.id = any (r.channel_ids));

    select coalesce(array_agg(a.id order by a.id), '{}') into v_resolved
      from unnest(v_g.last_firing) l(id)
      join queue_health.alert a on a.id = l.id
      join queue_health.alert_rule r on r.id = a.rule_id
     where v_g.channel_id is not null and a.state <> 'firing'
       and (r.send_resolved or v_ch.kind = 'alertmanager')
       and not queue_health._is_silenced(a, r, p_now);

    if cardinality(v_firing) = 0 and cardinality(v_resolved) = 0 then
      if v_g.channel_id is not null then
        delete from queue_health.notification_group g where g.channel_id = v_ch.id;
      end if;
      continue;
    end if;

    -- The timing is needed for a new group, and for a group whose flush_at has come: a group
    -- that waits (the common case while alerts fire) skips it.
    if v_g.channel_id is null or p_now >= v_g.flush_at then
      select t.group_wait, t.group_interval, t.repeat_interval
        into v_wait, v_group_interval, v_repeat
        from queue_health._group_timing(v_ch, v_firing || v_resolved) t;
    end if;
    if v_g.channel_id is null then
      insert into queue_health.notification_group (channel_id, project_id, group_key, flush_at, created_at)
      values (v_ch.id, v_ch.project_id, v_ch.project_id || '/' || v_ch.id, p_now + v_wait, p_now)
      returning * into v_g;
    end if;

    if p_now < v_g.flush_at then
      continue;
    end if;

    v_send := cardinality(v_resolved) > 0
      or exists (select unnest(v_firing) except select unnest(v_g.last_firing))
      or (cardinality(v_firing) > 0 and v_g.last_sent_at is not null and v_g.last_sent_at + v_repeat <= p_now);

    if not v_send then
      -- Forget alerts that stopped firing without a resolved notification, so that firing again
      -- counts as new.
      update queue_health.notification_group g
         set last_firing = coalesce((
           select array_agg(a.id order by a.id)
             from unnest(g.last_firing) l(id)
             join queue_health.alert a on a.id = l.id
            where a.state = 'firing'), '{}')
       where g.channel_id = v_ch.id;
      continue;
    end if;

    v_id := gen_random_uuid();
    if v_ch.kind = 'alertmanager' then
      v_resolved := array(select distinct x from unnest(
        v_resolved || queue_health._alertmanager_unsent_resolved(v_ch.id, v_firing)) x order by x);
    end if;
    v_missing := array(select x from unnest(v_firing || v_resolved) x where not v_alerts ? x::text);
    if cardinality(v_missing) > 0 then
      v_alerts := v_alerts || queue_health._notification_alerts(v_missing, p_now);
    end if;
    v_payload := queue_health._notification_payload_of(v_id, v_ch, v_firing, v_resolved, p_now, v_alerts);
    if v_ch.kind = 'alertmanager' then
      v_payload := v_payload || jsonb_build_object('valid_until', queue_health._alertmanager_valid_until(p_now));
    end if;

    insert into queue_health.notification (id, project_id, channel_id, group_key, payload, next_attempt_at, created_at)
    values (v_id, v_ch.project_id, v_ch.id, v_g.group_key, v_payload, p_now, p_now);
    if v_ch.kind = 'alertmanager' then
      perform queue_health._alertmanager_written(v_ch.id, v_id, p_now);
    end if;

    update queue_health.notification_group g
       set last_firing = v_firing, last_sent_at = p_now, flush_at = p_now + v_group_interval
     where g.channel_id = v_ch.id;
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;
comment on function queue_health._flush_notifications(timestamptz, text) is 'Writes due notifications to the outbox, one per (project, channel) group of p_project_id (null: every project), with Alertmanager''s group_wait / group_interval / repeat_interval (_group_timing); for alertmanager channels every change at once and all firing alerts again every settings.alertmanager_resend_interval, with valid_until, resolves always, older unsent rows superseded; each firing alert silenced-checked and each alert rendered once per flush. Returns how many.';
revoke execute on function queue_health._flush_notifications(timestamptz, text) from public, anon, authenticated;
