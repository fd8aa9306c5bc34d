-- Queue Health: fixes to the signals (20261207100000_queue_health_signals.sql) found by the
-- scenario tests (local/test/signal_scenarios_test.ts).

-- Section: objectives: seconds in a window

-- _slo_seconds() summed every metric_1h bucket from date_trunc('hour', p_since) on: once maintain()
-- had rolled up an hour, the whole hour holding the window's start was counted, up to 59 minutes
-- before it. Measured: after the hourly rollup, the burn rate over 1 hour of a queue breached a
-- third of its last 31 minutes fell from 17.0 to 8.6, below the fast-burn rule's 14.4. It also
-- lost a row captured exactly at the rollup's watermark (in no summed bucket, and not after it).
create or replace function queue_health._slo_seconds(
  p_source text, p_source_schema text, p_queue_name text, p_since timestamptz, p_now timestamptz,
  out total_s double precision, out bad_s double precision)
returns record
stable
set search_path = ''
language plpgsql
as $$
declare
  v_rolled timestamptz;
  v_hour timestamptz;
  v_from timestamptz;
  v_after timestamptz;
  v_last record;
  v_base record;
begin
  -- The seconds under the objective, and those that missed it, in (p_since, p_now], in up to three
  -- parts. Once the hourly rollup has passed the first whole hour of the window (v_hour): raw rows
  -- of (p_since, v_hour), at most an hour of them (none once raw retention has dropped them: the
  -- far end of a long window then counts a little short, never long); the whole hours
  -- [v_hour, watermark) of metric_1h (so windows longer than raw retention work); raw rows from
  -- the watermark on. Otherwise raw rows only. Raw runs are two probes of the running totals.
  select w.rolled_up_to into v_rolled from queue_health.rollup_watermark w where w.resolution = '1h';
  v_hour := pg_catalog.date_trunc('hour', p_since, 'UTC');
  if v_hour < p_since then
    v_hour := v_hour + interval '1 hour';
  end if;
  v_from := case when v_rolled is not null and least(v_rolled, p_now) > v_hour
                 then least(v_rolled, p_now) else p_since end;
  total_s := 0;
  bad_s := 0;
  if v_from > p_since then
    select coalesce(sum(h.slo_total_s), 0), coalesce(sum(h.slo_bad_s), 0) into total_s, bad_s
      from queue_health.metric_1h h
     where h.queue_name = p_queue_name and h.source = p_source and h.source_schema = p_source_schema
       and h.bucket >= v_hour and h.bucket < v_from;
    select total_s + coalesce(sum(m.slo_total_s), 0), bad_s + coalesce(sum(m.slo_bad_s), 0)
      into total_s, bad_s
      from queue_health.metric m
     where m.queue_name = p_queue_name and m.source = p_source and m.source_schema = p_source_schema
       and m.captured_at > p_since and m.captured_at < v_hour;
    -- The raw rows after the rollup start at the watermark itself (a bucket holds [start, end)).
    v_after := v_from - interval '1 microsecond';
  else
    v_after := p_since;
  end if;
  select m.cum_slo_total_s, m.cum_slo_bad_s into v_last
    from queue_health.metric m
   where m.queue_name = p_queue_name and m.source = p_source and m.source_schema = p_source_schema
     and m.captured_at <= p_now and m.captured_at > v_after
   order by m.captured_at desc limit 1;
  if v_last.cum_slo_total_s is null then
    return;
  end if;
  select m.cum_slo_total_s, m.cum_slo_bad_s into v_base
    from queue_health.metric m
   where m.queue_name = p_queue_name and m.source = p_source and m.source_schema = p_source_schema
     and m.captured_at <= v_after
   order by m.captured_at desc limit 1;
  if v_base.cum_slo_total_s is null then
    -- No row before: from the run's oldest row, less its own seconds.
    select m.cum_slo_total_s - coalesce(m.slo_total_s, 0) as cum_slo_total_s,
           m.cum_slo_bad_s - coalesce(m.slo_bad_s, 0) as cum_slo_bad_s
      into v_base
      from queue_health.metric m
     where m.queue_name = p_queue_name and m.source = p_source and m.source_schema = p_source_schema
       and m.captured_at > v_after and m.captured_at <= p_now
     order by m.captured_at limit 1;
  end if;
  total_s := total_s + v_last.cum_slo_total_s - coalesce(v_base.cum_slo_total_s, 0);
  bad_s := bad_s + v_last.cum_slo_bad_s - coalesce(v_base.cum_slo_bad_s, 0);
end;
$$;
comment on function queue_health._slo_seconds(text, text, text, timestamptz, timestamptz) is 'Seconds of the queue under its latency objective, and those that missed it, in (p_since, p_now]: the whole hours of metric_1h inside the window before the hourly rollup''s watermark, raw rows for the rest (the part before the first whole hour, and from the watermark on).';
revoke execute on function queue_health._slo_seconds(text, text, text, timestamptz, timestamptz) from public, anon;
-- Security invoker over row-level security (metric, metric_1h), as before: slo_burn_rate() and
-- slo_budget_remaining() call it as the caller.
grant execute on function queue_health._slo_seconds(text, text, text, timestamptz, timestamptz) to authenticated, service_role;
