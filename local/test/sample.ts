import assert from 'node:assert/strict';

/**
 * The columns of `queue_health.sample`, in order, with their PostgreSQL types (and `'null'` where a
 * test must expect null): the one list {@link Sample} is derived from.
 * `local/test/metric_columns_test.ts` compares it with the database's type.
 */
export const SAMPLE_COLUMNS = [
  ['source', 'text'],
  ['source_schema', 'text'],
  ['queue_name', 'text'],
  ['ready', 'bigint'],
  ['in_flight', 'bigint'],
  ['delayed', 'bigint'],
  ['depth', 'bigint'],
  ['depth_estimated', 'boolean'],
  ['oldest_ready_age_s', 'double precision'],
  ['enqueued', 'bigint'],
  ['completed', 'bigint'],
  ['failed', 'bigint'],
  ['retried', 'bigint'],
  ['dead_lettered', 'bigint'],
  ['wait_p50_ms', 'double precision', 'null'],
  ['wait_p95_ms', 'double precision', 'null'],
  ['run_p50_ms', 'double precision', 'null'],
  ['run_p95_ms', 'double precision', 'null'],
  ['sample_ms', 'double precision'],
  ['cursor', 'jsonb', 'null'],
  ['error', 'text', 'null'],
] as const;

/** How postgres.js reads each PostgreSQL type of {@link SAMPLE_COLUMNS}: bigint as a string. */
interface PgAsRead {
  text: string;
  bigint: string;
  boolean: boolean;
  'double precision': number;
  jsonb: Record<string, unknown>;
}

type SampleColumn = (typeof SAMPLE_COLUMNS)[number];

/** The TypeScript type of one column of {@link SAMPLE_COLUMNS}. */
type ColumnType<C extends SampleColumn> = C extends readonly [string, infer T, 'null']
  ? PgAsRead[T & keyof PgAsRead] | null
  : PgAsRead[C[1]];

/**
 * The row a sampler (`queue_health._sample_pgmq()` / `_sample_pgboss()`) returns, as postgres.js
 * reads it: bigint columns come back as strings. Derived from {@link SAMPLE_COLUMNS}.
 */
export type Sample = { [C in SampleColumn as C[0]]: ColumnType<C> };

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
