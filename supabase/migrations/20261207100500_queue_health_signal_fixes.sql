-- Queue Health: fixes to the signals (20261207100000_queue_health_signals.sql) found by the
-- scenario tests (local/test/signal_scenarios_test.ts).

-- Section: capture without JIT

-- _capture_rows()'s statement is planned with the default estimates of its set-returning helpers
-- (1000 rows each for _metric_totals_before()) and of never-analyzed small tables (settings), so
-- its cost passes jit_above_cost and jit_optimize_above_cost even for two queues: with JIT on, as
-- on a fresh database, LLVM compiled and optimized ~160 functions on every capture, and a capture
-- of 2 pgmq queues took 9 s instead of 20 ms. It runs fast without: JIT off, as for the samplers'
-- and the alert evaluation's big statements.
alter function queue_health._capture_rows(timestamptz, queue_health.sample[]) set jit = off;
