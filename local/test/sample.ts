import assert from 'node:assert/strict';

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

/** The counts a sample must show, as a test tracked them from its own workload. */
export interface Expected {
  ready: number;
  in_flight: number;
  delayed: number;
  enqueued: number;
  completed: number;
  failed: number;
  retried: number;
  dead_lettered: number;
}

/** Asserts that an exact (not estimated), error-free sample shows exactly the expected counts. */
export function assertCounts(sample: Sample | undefined, expected: Expected, what: string) {
  assert.ok(sample, `${what}: no sample`);
  assert.equal(sample.error, null, `${what}: error ${sample.error}`);
  assert.deepEqual(
    {
      ready: Number(sample.ready),
      in_flight: Number(sample.in_flight),
      delayed: Number(sample.delayed),
      enqueued: Number(sample.enqueued),
      completed: Number(sample.completed),
      failed: Number(sample.failed),
      retried: Number(sample.retried),
      dead_lettered: Number(sample.dead_lettered),
    },
    expected,
    what,
  );
  assert.equal(Number(sample.depth), expected.ready + expected.in_flight + expected.delayed, what);
  assert.equal(sample.depth_estimated, false, `${what}: depth_estimated`);
  assert.ok(sample.sample_ms > 0, `${what}: sample_ms`);
}
