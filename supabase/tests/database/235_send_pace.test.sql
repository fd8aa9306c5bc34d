-- take_send_turn(): the pacing queue-alert shares across invocations (one message per second per
-- Slack webhook, whichever invocation sends it).
begin;
select plan(9);

select is(queue_health.take_send_turn('k1', 1000, null), 0::double precision,
  'the first turn of a key is now');
-- (each turn taken once: BETWEEN would evaluate its left side twice)
with t as materialized (select queue_health.take_send_turn('k1', 1000, null) as w)
select ok(w between 900 and 1000, 'the next one is an interval later, for any caller') from t;
with t as materialized (select queue_health.take_send_turn('k1', 1000, null) as w)
select ok(w between 1900 and 2000, 'and turns queue up: one interval each') from t;
select is(queue_health.take_send_turn('k1', 1000, 500), null,
  'a turn further away than p_max_wait_ms is refused');
with t as materialized (select queue_health.take_send_turn('k1', 1000, 5000) as w)
select ok(w between 2900 and 3000, 'and was not taken') from t;
select is(queue_health.take_send_turn('k2', 1000, 0), 0::double precision,
  'keys are paced independently');
select is((select count(*)::int from queue_health.send_pace where key in ('k1', 'k2')), 2,
  'one row per key');
select throws_ok($$select queue_health.take_send_turn('', 1000, null)$$, '22023',
  'p_key must not be empty', 'an empty key is refused');
select throws_ok($$select queue_health.take_send_turn('k3', -1, null)$$, '22023',
  'p_interval_ms must be between 0 and 3600000: got -1', 'a negative interval is refused');

select * from finish();
rollback;
