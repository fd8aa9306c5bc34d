/**
 * The row a sampler (`queue_health._sample_pgmq()` / `_sample_pgboss()`) returns, as postgres.js
 * reads it: bigint columns come back as strings.
 */
export interface Sample {
  source: string;
  source_schema: string;
  queue_name: string;
  ready: string;
  in_flight: string;
  delayed: string;
  depth: string;
  depth_estimated: boolean;
  oldest_ready_age_s: number;
  enqueued: string;
  completed: string;
  failed: string;
  retried: string;
  dead_lettered: string;
  wait_p50_ms: number | null;
  wait_p95_ms: number | null;
  run_p50_ms: number | null;
  run_p95_ms: number | null;
  sample_ms: number;
  cursor: Record<string, unknown> | null;
  error: string | null;
}
