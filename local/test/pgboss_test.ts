import assert from 'node:assert/strict';
import { connect } from './db.ts';
import {
  commonApi,
  defaultPgBossSchema,
  PG_BOSS_VERSIONS,
  type PgBossVersion,
  startPgBoss,
} from './pgboss.ts';

async function jobStates(schema: string, ids: string[]): Promise<Record<string, string>> {
  const sql = connect({ max: 1 });
  try {
    const rows = await sql<{ id: string; state: string }[]>`
      select id::text, state::text from ${sql(schema)}.job where id::text = any(${ids})`;
    return Object.fromEntries(rows.map((r) => [r.id, r.state]));
  } finally {
    await sql.end();
  }
}

async function tablesOf(schema: string): Promise<string[]> {
  const sql = connect({ max: 1 });
  try {
    const rows = await sql<{ name: string }[]>`
      select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = ${schema} and c.relkind in ('r', 'p') and c.relname in ('version', 'job', 'queue')
      order by 1`;
    return rows.map((r) => r.name);
  } finally {
    await sql.end();
  }
}

async function schemaExists(schema: string): Promise<boolean> {
  const sql = connect({ max: 1 });
  try {
    const [{ exists }] = await sql<{ exists: boolean }[]>`
      select exists (select 1 from pg_namespace where nspname = ${schema}) as exists`;
    return exists;
  } finally {
    await sql.end();
  }
}

for (const version of PG_BOSS_VERSIONS) {
  Deno.test(`startPgBoss(${version}) runs a real pg-boss in its own schema: send, fetch, complete, fail`, async () => {
    const schema = `${defaultPgBossSchema(version)}_harness`;
    const pb = await startPgBoss(version, { schema, fresh: true });
    try {
      assert.equal(pb.schema, schema);
      assert.equal(pb.createdSchema, true);
      assert.deepEqual(await tablesOf(schema), ['job', 'queue', 'version']);

      const boss = commonApi(pb);
      await boss.createQueue('harness_jobs', { retryLimit: 0 });
      const first = await boss.send('harness_jobs', { n: 1 });
      const second = await boss.send('harness_jobs', { n: 2 });
      assert.ok(first && second, 'send() returns job ids');

      const fetched = await boss.fetch<{ n: number }>('harness_jobs', { batchSize: 5 });
      assert.deepEqual(fetched.map((j) => j.data.n).sort(), [1, 2]);
      assert.deepEqual(await jobStates(schema, [first, second]), {
        [first]: 'active',
        [second]: 'active',
      });

      await boss.complete('harness_jobs', first);
      await boss.fail('harness_jobs', second, { reason: 'test' });
      assert.deepEqual(await jobStates(schema, [first, second]), {
        [first]: 'completed',
        [second]: 'failed',
      });
      assert.deepEqual(pb.errors, []);
    } finally {
      await pb.stop({ dropSchema: true });
    }
    assert.equal(await schemaExists(schema), false, 'stop({ dropSchema: true }) drops the schema');
  });
}

Deno.test('startPgBoss() never drops a schema it did not create', async () => {
  const schema = 'qh_test_pgboss_preexisting';
  const sql = connect({ max: 1 });
  try {
    await sql`drop schema if exists ${sql(schema)} cascade`;
    await sql`create schema ${sql(schema)}`;
    await sql`create table ${sql(schema)}.keep_me (id int)`;
    const pb = await startPgBoss(11, { schema });
    assert.equal(pb.createdSchema, false);
    await pb.stop({ dropSchema: true });
    const [{ kept }] = await sql<{ kept: boolean }[]>`
      select to_regclass(${schema + '.keep_me'}) is not null as kept`;
    assert.equal(kept, true, 'the pre-existing schema and its table are still there');
  } finally {
    await sql`drop schema if exists ${sql(schema)} cascade`;
    await sql.end();
  }
});

Deno.test('startPgBoss() refuses bad input with a message naming the field', async () => {
  await assert.rejects(
    () => startPgBoss(9 as PgBossVersion),
    /version must be one of 10, 11, 12: got 9/,
  );
  await assert.rejects(
    () => startPgBoss(10, { schema: 'Bad-Schema' }),
    /schema must be a lower-case identifier/,
  );
  await assert.rejects(
    () => startPgBoss(10, { schema: 'pgboss', fresh: true }),
    /fresh: true only drops schemas named qh_test_\*/,
  );
});
