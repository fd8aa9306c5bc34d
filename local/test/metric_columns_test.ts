/**
 * The TypeScript `Sample` type against the database: `SAMPLE_COLUMNS` (local/test/sample.ts), from
 * which the type is derived, lists the columns of `queue_health.sample` in order with their types,
 * and a row of that type as postgres.js reads it has exactly those keys. The database's other
 * lists of the metric columns are checked against each other by pgTAP
 * (supabase/tests/database/105_metric_columns.test.sql); docs/development.md, "Adding a metric".
 *
 * @module
 */
import assert from 'node:assert/strict';
import { connect } from './db.ts';
import { SAMPLE_COLUMNS } from './sample.ts';

Deno.test('SAMPLE_COLUMNS lists the columns of queue_health.sample, in order, with their types', async () => {
  const sql = connect();
  try {
    const rows = await sql<{ name: string; type: string }[]>`
      select a.attname::text as name, format_type(a.atttypid, a.atttypmod) as type
        from pg_attribute a
        join pg_type t on t.typrelid = a.attrelid
       where t.oid = 'queue_health.sample'::regtype and a.attnum > 0 and not a.attisdropped
       order by a.attnum`;
    assert.ok(rows.length > 0, 'queue_health.sample has columns');
    assert.deepEqual(
      SAMPLE_COLUMNS.map(([name, type]) => `${name} ${type}`),
      rows.map((r) => `${r.name} ${r.type}`),
      'local/test/sample.ts SAMPLE_COLUMNS (left) against queue_health.sample (right)',
    );
  } finally {
    await sql.end();
  }
});

/** A value of each PostgreSQL type of SAMPLE_COLUMNS, and the `typeof` postgres.js reads it as. */
const EXAMPLES: Record<string, { value: unknown; read: string }> = {
  text: { value: 'x', read: 'string' },
  bigint: { value: 1, read: 'string' },
  boolean: { value: true, read: 'boolean' },
  'double precision': { value: 1.5, read: 'number' },
  jsonb: { value: { a: 1 }, read: 'object' },
};

Deno.test('a queue_health.sample row as postgres.js reads it has the keys and value types of Sample', async () => {
  const sql = connect();
  try {
    const filled = Object.fromEntries(SAMPLE_COLUMNS.map(([name, type]) => {
      assert.ok(EXAMPLES[type], `no example value of type ${type} (column ${name})`);
      return [name, EXAMPLES[type].value];
    }));
    const values = JSON.stringify(filled);
    const [row] = await sql<Record<string, unknown>[]>`
      select (jsonb_populate_record(null::queue_health.sample, ${values}::text::jsonb)).*`;
    assert.deepEqual(Object.keys(row), SAMPLE_COLUMNS.map(([name]) => name));
    assert.deepEqual(
      Object.fromEntries(Object.entries(row).map(([name, value]) => [name, typeof value])),
      Object.fromEntries(SAMPLE_COLUMNS.map(([name, type]) => [name, EXAMPLES[type].read])),
      'typeof each column as read (bigint as a string, as Sample says)',
    );
  } finally {
    await sql.end();
  }
});
